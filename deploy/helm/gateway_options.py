# dask-gateway-server configuration for ftcloud: the cluster options users pick from
# (`ftcloud run --cluster gateway --workers N --worker-memory GiB --gpu`). The daskhub values in
# daskhub-values.yaml embed this file verbatim under dask-gateway.gateway.extraConfig, and the
# test suite's local gateway (ftcloud.testing.local_gateway) executes the same text, so what
# is tested is what is deployed (tests/e2e/test_deploy.py checks that the two copies agree).
from dask_gateway_server.options import Bool, Float, Integer, Options

# What a GPU worker needs from the backend. On Kubernetes: the CUDA image, one NVIDIA GPU and
# the GPU node taint's toleration; the local test gateway sets FTCLOUD_GPU_WORKER = {} before this runs.
FTCLOUD_GPU_WORKER = globals().get("FTCLOUD_GPU_WORKER", {
    "image": "ghcr.io/ftcloud/ftcloud:0.1.0-cuda",  # the Dockerfile built with the CUDA torch index
    "worker_extra_container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
    "worker_extra_pod_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
})


def ftcloud_cluster_options(options):
    out = {"worker_cores": options.worker_cores, "worker_memory": int(options.worker_memory * 2**30)}
    if options.gpu:
        # dask resources: ftcloud's prediction tasks ask for GPU=1, so they land only on these workers
        # (a dict literal: dask lower-cases keys spelled in variable names, GPU must stay GPU)
        out["environment"] = {"DASK_DISTRIBUTED__WORKER__RESOURCES": '{"GPU": 1}'}
        out.update(FTCLOUD_GPU_WORKER)
    return out


c.Backend.cluster_options = Options(  # noqa: F821 - `c` is the traitlets config object
    Integer("worker_cores", 2, min=1, max=16, label="Worker cores"),
    Float("worker_memory", 8, min=1, max=120, label="Worker memory (GiB)"),
    Bool("gpu", False, label="GPU workers (one NVIDIA GPU each)"),
    handler=ftcloud_cluster_options,
)
