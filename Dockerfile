# One image for the notebook server, the dask scheduler and the workers (and Beam workers);
# deploy/helm/daskhub-values.yaml references it as ghcr.io/ftcloud/ftcloud:<version>[-cuda].
# CPU by default; `--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128` selects a CUDA
# build of the same torch version (the version itself is pinned in constraints.txt).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1

RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/ftcloud
COPY constraints.txt pyproject.toml README.md ./
COPY ftcloud ./ftcloud
COPY feedstock ./feedstock

# jupyterhub + jupyterlab: the same image is the hub's notebook server (jupyterhub-singleuser)
RUN pip install -c constraints.txt --extra-index-url ${TORCH_INDEX} ".[all]" jupyterhub jupyterlab
COPY notebooks ./notebooks

# no credentials are baked in: workers get them from the environment or an IAM role
ENTRYPOINT []
CMD ["ftcloud", "--help"]
