"""kill -9 at random points of ingest, predict and `ftcloud run`, then resume: the same bytes as an
uninterrupted run, and at no moment an output that reads complete but differs from it.

The kill points are drawn (seeded) uniformly over the measured length of the clean run, so they
fall in imports, skeleton writes, region writes, status writes and swaps alike; after every kill
each group or product that reads complete is compared with the clean one (the invariant), and
after the final uninterrupted resume the whole tree is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from ftcloud.io.stores import store_status  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

GROUPS = ("predictors/era5land", "targets/smap_e_ft", "targets/esdr_ft", "statics")
PERIOD = ("2017-01-01", "2017-02-28")


def _digest(root: Path) -> dict:
    """SHA-256 of every file under ``root``, less what differs between runs by design: time stamps
    (``history`` in attributes, ``written`` in status records) and the store's path (``source_store``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.name in (".zattrs", ".zmetadata", ".ftcloud-status.json"):
            doc = json.loads(p.read_text())
            doc.pop("history", None)
            doc.pop("written", None)
            doc.pop("source_store", None)
            if p.name == ".zmetadata":
                doc = {
                    k: (
                        {kk: vv for kk, vv in v.items() if kk not in ("history", "source_store")}
                        if k.endswith(".zattrs")
                        else v
                    )
                    for k, v in doc["metadata"].items()
                }
            out[rel] = json.dumps(doc, sort_keys=True)
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _run(cmd, env=None) -> tuple[int, float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    return p.returncode, time.perf_counter() - t, p.stderr


def _kill_after(cmd, delay: float) -> bool:
    """Start ``cmd``, SIGKILL it after ``delay`` s; True if it was still running (killed)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(delay)
        return False
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return True


def _ft(cli):
    return [sys.executable, "-m", "ftcloud.cli", "-q", *cli]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    from ftcloud.synth import generate

    root = tmp_path_factory.mktemp("kill")
    generate("tiny", *PERIOD, str(root / "src"), seed=5, insitu=False, progress=False)
    return root / "src"


@pytest.fixture(scope="module")
def clean_ingest(src, tmp_path_factory):
    store = tmp_path_factory.mktemp("clean") / "store"
    rc, seconds, err = _run(_ft(["ingest", "--source", str(src), "--store", str(store)]))
    assert rc == 0, err
    return store, seconds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ingest_killed_at_random_points_resumes_to_the_clean_bytes(src, clean_ingest, tmp_path, seed):
    clean, seconds = clean_ingest
    store = tmp_path / "store"
    cmd = _ft(["ingest", "--source", str(src), "--store", str(store)])
    rng = np.random.default_rng(seed)
    killed = 0
    for _ in range(3):
        killed += _kill_after(cmd, float(rng.uniform(0.15, 1.0)) * seconds)
        for g in GROUPS:  # the invariant: complete means equal to the clean group
            if store_status(str(store / g)) == "complete":
                assert _digest(store / g) == _digest(clean / g), (seed, g)
    assert killed >= 1
    rc, _, err = _run(cmd)
    assert rc == 0, err
    assert _digest(store) == _digest(clean)
    assert not list(store.rglob("*.ftcloud-new")) and not (store.parent / "store.ftcloud-lock").exists()


@pytest.fixture(scope="module")
def clean_predict(clean_ingest, tiny_model, tmp_path_factory):
    store, _ = clean_ingest
    out = tmp_path_factory.mktemp("cleanp") / "p.zarr"
    cmd = _ft(
        [
            "predict",
            "--store",
            str(store),
            "--model",
            tiny_model,
            "--out",
            str(out),
            "--time-chunk",
            "16",
            "--batch-days",
            "8",
        ]
    )
    rc, seconds, err = _run(cmd)
    assert rc == 0, err
    return out, seconds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predict_killed_at_random_points_resumes_to_the_clean_bytes(
    clean_ingest, clean_predict, tiny_model, tmp_path, seed
):
    store, _ = clean_ingest
    clean, seconds = clean_predict
    out = tmp_path / "p.zarr"
    cmd = _ft(
        [
            "predict",
            "--store",
            str(store),
            "--model",
            tiny_model,
            "--out",
            str(out),
            "--time-chunk",
            "16",
            "--batch-days",
            "8",
        ]
    )
    rng = np.random.default_rng(100 + seed)
    for _ in range(3):
        _kill_after(cmd, float(rng.uniform(0.15, 1.0)) * seconds)
        if store_status(str(out)) == "complete":
            assert _digest(out) == _digest(clean), seed
        else:
            assert not out.exists() or store_status(str(out)) is None
    rc, _, err = _run(cmd)
    assert rc == 0, err
    assert _digest(out) == _digest(clean)
    assert not (tmp_path / ".p.zarr.ftcloud-new").exists() and not (tmp_path / "p.zarr.ftcloud-lock").exists()


def test_run_killed_at_random_points_resumes_to_the_clean_product(first_run, tmp_path):
    """`ftcloud run` (synth, ingest, train, predict, validate, trends, report) killed three times
    at random points, resumed each time: the product and the validation tables equal the clean
    run's (``first_run``, the same config run uninterrupted)."""
    assert first_run["rc"] == 0
    clean, seconds = first_run["out"], first_run["seconds"]
    out = tmp_path / "out"
    cmd = _ft(["run", "--config", str(first_run["root"] / "cfg.yaml"), "--out", str(out)])
    rng = np.random.default_rng(7)
    for _ in range(3):
        _kill_after(cmd, float(rng.uniform(0.1, 0.9)) * seconds)
    rc, _, err = _run(cmd)
    assert rc == 0, err
    summary = json.loads((clean / "run-summary.json").read_text())
    product = Path(summary["product"])
    assert _digest(out / product.relative_to(clean)) == _digest(product)
    tables = sorted(Path(summary["validation"]).rglob("*.csv"))
    assert tables
    for f in tables:
        assert (out / f.relative_to(clean)).read_text() == f.read_text(), f.name
