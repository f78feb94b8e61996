"""Shared fixtures (real-data kit, seeded RNG, moto S3 on 127.0.0.1, tiny twin store/model, a first run) and the tiers.

Tiers: ``tests/unit`` (kernels against oracles, no store), ``tests/integration`` (stores, the
twin, S3, clusters, the CLI's failure paths), ``tests/e2e`` (whole runs, notebooks, deployment).
``pytest`` alone runs the fast lane: everything not marked ``slow``. A test is ``slow`` when it
is in ``tests/e2e``, carries the marker, or needs one of the fixtures in ``SLOW_FIXTURES`` (each
builds a twin of several years or trains a model). ``pytest -m "slow or not slow"`` (the
README's test command and ``.ci/run``) runs every test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The real-data kit lives beside the project (../shared/realdata); tests never copy it.
REALDATA = Path(os.environ.get("SHARED_REALDATA", ROOT.parent / "shared" / "realdata"))


#: fixtures that build a multi-year twin, ingest it or train a model: their tests are slow
SLOW_FIXTURES = frozenset(
    {
        "first_run",
        "tiny_model",
        "twin_2018",
        "twin_20y",
        "twin",
        "store",
        "clean_ingest",
        "clean_predict",
        "truths",
        "season",
        "model_dir",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if "e2e" in path.relative_to(ROOT / "tests").parts or SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def realdata(rel: str) -> Path:
    p = REALDATA / rel
    if not p.exists():
        pytest.skip(f"real-data file {rel} not available: ../shared/realdata is absent (or set SHARED_REALDATA)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(20240311)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for the session; yields its endpoint URL."""
    pytest.importorskip("moto")
    from ftcloud.testing import free_port

    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto S3 server did not start on 127.0.0.1 within 30 s")
    yield endpoint
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """Credentials for the local moto server only (fake values, set in the environment)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return {"endpoint_url": s3_server}


TINY_PERIOD = ("2017-01-01", "2017-02-28")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A twin of the `tiny` region, Jan-Feb 2017, ingested (predictors, targets, statics)."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    root = tmp_path_factory.mktemp("tiny")
    generate("tiny", *TINY_PERIOD, str(root / "src"), seed=5, insitu=False, progress=False)
    ingest(
        str(root / "src"), str(root / "store"), sources=["era5land", "smap_e_ft", "esdr_ft", "statics"], progress=False
    )
    return str(root / "store")


@pytest.fixture(scope="session")
def tiny_model(tiny_store, tmp_path_factory):
    """AM and PM models exported with fixed random weights and the tiny store's normalisation."""
    pytest.importorskip("torch")
    from ftcloud.testing.factories import random_model

    return random_model(tiny_store, str(tmp_path_factory.mktemp("model")), hidden=(4,), seed=3)


RUN_CONFIG = """\
region: tiny
start: "2014-01-01"
end: "2020-12-31"
targets_start: "2015-04-01"
train: {hidden: [4], epochs: 2, patience: 1}
synth: {tb: false}  # the families run in tests/e2e/test_run.py's TB run and its no-frozen-season run
"""


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """`ftcloud run` of RUN_CONFIG (tiny, 2014-2020, a small model): the clean run that
    tests/e2e/test_run.py inspects and tests/integration/faults/test_kill.py compares a killed run with."""
    pytest.importorskip("torch")
    import contextlib
    import io
    import time as _time

    from ftcloud.cli import main

    root = tmp_path_factory.mktemp("run")
    (root / "cfg.yaml").write_text(RUN_CONFIG)
    out = root / "out"
    buf = io.StringIO()
    t = _time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = main(["--quiet", "run", "--config", str(root / "cfg.yaml"), "--out", str(out)])
    return {"root": root, "out": out, "rc": rc, "stdout": buf.getvalue(), "seconds": _time.perf_counter() - t}
