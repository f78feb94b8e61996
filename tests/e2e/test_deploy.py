"""deploy/ and the Dockerfile: what can be checked without a Docker engine or a Kubernetes cluster.

The Helm values must parse, reference one image (the one the Dockerfile builds, tagged with the
package version) everywhere, and carry exactly the gateway options file the local-gateway test
runs; the Dockerfile must install with the README's constraints file and extras.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "daskhub-values.yaml"
OPTIONS = ROOT / "deploy" / "helm" / "gateway_options.py"


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load(VALUES.read_text())


def _version():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_helm_values_use_one_image_tagged_with_the_package_version(values):
    single = values["jupyterhub"]["singleuser"]["image"]
    backend = values["dask-gateway"]["gateway"]["backend"]["image"]
    assert single == backend == {"name": "ghcr.io/ftcloud/ftcloud", "tag": _version()}
    gpu_profile = [p for p in values["jupyterhub"]["singleuser"]["profileList"] if p["slug"] == "ftcloud-gpu"][0]
    over = gpu_profile["kubespawner_override"]
    assert over["image"] == f"{single['name']}:{_version()}-cuda"
    assert over["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert any(t["key"] == "nvidia.com/gpu" for t in over["tolerations"])
    env = values["jupyterhub"]["singleuser"]["extraEnv"]
    assert env["DASK_GATEWAY__ADDRESS"].startswith("http") and env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    # no secrets in the file: tokens are passed with --set
    assert not re.search(r"(secretToken|apiToken)\s*:", VALUES.read_text())


def test_gateway_options_are_the_tested_file_and_behave(values):
    embedded = values["dask-gateway"]["gateway"]["extraConfig"]["ftcloud-options"]
    assert embedded == OPTIONS.read_text(), "regenerate the extraConfig block from deploy/helm/gateway_options.py"
    pytest.importorskip("dask_gateway_server")

    class Section(dict):
        def __getattr__(self, k):
            return self.setdefault(k, Section())

        def __setattr__(self, k, v):
            self[k] = v

    ns = {"c": Section()}
    exec(compile(embedded, str(OPTIONS), "exec"), ns)  # the Kubernetes defaults (no FTCLOUD_GPU_WORKER preset)
    opts = ns["c"]["Backend"]["cluster_options"]
    assert [f.field for f in opts.fields] == ["worker_cores", "worker_memory", "gpu"]
    handler = ns["ftcloud_cluster_options"]

    class O:  # noqa: E742
        worker_cores, worker_memory, gpu = 4, 12.5, True

    cfg = handler(O)
    assert cfg["worker_cores"] == 4 and cfg["worker_memory"] == int(12.5 * 2**30)
    # the resource name survives dask's config parsing with its case (GPU, not gpu)
    assert ast.literal_eval(cfg["environment"]["DASK_DISTRIBUTED__WORKER__RESOURCES"]) == {"GPU": 1}
    assert cfg["image"] == f"ghcr.io/ftcloud/ftcloud:{_version()}-cuda"
    assert cfg["worker_extra_container_config"]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    O.gpu = False
    assert set(handler(O)) == {"worker_cores", "worker_memory"}


def _readme_install(kind: str) -> str:
    text = (ROOT / "README.md").read_text()
    cmds = re.findall(r"^python3 -m venv .*$", text, re.M)
    return [c for c in cmds if ("pytest" in c) == (kind == "test")][0]


def test_dockerfile_installs_like_the_readme():
    docker = (ROOT / "Dockerfile").read_text()
    readme = _readme_install("run")
    assert "-c constraints.txt" in readme
    install = [ln for ln in docker.splitlines() if ln.startswith("RUN pip install")]
    assert len(install) == 1
    # the image serves hub users and workers: every extra ([all]); the README's run installs [ingest,torch,retrieve]
    assert "-c constraints.txt" in install[0] and '".[all]"' in install[0] and '-e ".[ingest,torch,retrieve]"' in readme
    assert re.search(r"^COPY constraints\.txt ", docker, re.M)
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in docker
    # the pins the image gets are the README's: one constraints file, with the torch pin in it
    assert re.search(r"^torch==2\.13\.0$", (ROOT / "constraints.txt").read_text(), re.M)


def test_real_archive_config_is_a_valid_run_config():
    from ftcloud.config import load_config

    cfg = load_config(ROOT / "deploy" / "real-archives.yaml")
    assert cfg["region"] == "china" and cfg["source"].startswith("s3://") and cfg["cluster"]["kind"] == "gateway"
    text = (ROOT / "deploy" / "README.md").read_text()
    for name in ("reanalysis-era5-land", "GPM_3IMERGHH", "SPL3FTP_E", "NSIDC-0477", "FlinkRunner", "daskhub"):
        assert name in text, name


def test_real_archive_config_dry_runs_its_plan_without_data(capsys):
    """The China 1980-2020 config sizes its ingest from the file patterns alone (no file is
    opened: the source is an S3 bucket these tests cannot reach) and fits its workers."""
    import math

    from ftcloud.cli import main

    cfg = str(ROOT / "deploy" / "real-archives.yaml")
    assert main(["run", "--config", cfg, "--dry-run"]) == 0
    out = capsys.readouterr().out
    days = (pd.Timestamp("2020-12-31") - pd.Timestamp("1980-01-01")).days + 1
    assert days == 14976
    # ERA5-Land: one item per 32-day chunk and 512-cell tile of the 404 x 657 window
    items = math.ceil(days / 32) * math.ceil(404 / 512) * math.ceil(657 / 512)
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("era5land"))
    assert int(row[1]) == 41 * 12 and int(row[2]) == items, row
    # the TB groups (read by the retrieval families) from the targets' start: tb_smap one item per 32-day
    # chunk of the whole window, tb_multifreq per chunk and 256-cell tile; sized as if the source has them
    tb_days = (pd.Timestamp("2020-12-31") - pd.Timestamp("2015-04-01")).days + 1
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.strip().startswith("tb_") and len(line.split()) == 7
    }
    assert int(rows["tb_smap"][2]) == math.ceil(tb_days / 32) and int(rows["tb_smap"][4]) == 404 * 657, rows
    assert int(rows["tb_multifreq"][2]) == math.ceil(tb_days / 32) * 2 * 3, rows
    assert int(rows["tb_multifreq"][4]) == 256 * 256, rows
    assert "sized as if the source holds them" in out
    assert "fits" in out and "DOES NOT FIT" not in out
    # the same plan on workers too small for four items at a time is refused
    assert main(["run", "--config", cfg, "--dry-run", "--worker-memory", "4"]) == 2
    assert "DOES NOT FIT" in capsys.readouterr().out
