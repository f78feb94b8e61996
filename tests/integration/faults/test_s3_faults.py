"""Ingest and predict through a faulty S3 (503 SlowDown, dropped and truncated responses, stalls).

The proxy of :mod:`.s3proxy` stands between ftcloud and moto. With 10 % of requests answered
503 and 5 % of connections dropped, ingest and predict end with exactly the bytes of a local
run (s3fs and botocore retry; every ftcloud write is idempotent). An endpoint that accepts
connections and never answers ends, after the configured timeouts, in one line that names it.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

pytest.importorskip("torch")

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.timeout(900)]

PERIOD = ("2017-01-01", "2017-01-16")


def _local_digest(root) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = _norm(p.name, p.read_bytes())
    return out


def _s3_digest(fs, prefix) -> dict:
    return {k[len(prefix) + 1 :]: _norm(k.rsplit("/", 1)[-1], fs.cat_file(k)) for k in sorted(fs.find(prefix))}


def _norm(name: str, data: bytes) -> str:
    """File bytes, less the run's time stamps (history, written) and the store's URL (source_store)."""
    if name in (".zattrs", ".zmetadata", ".ftcloud-status.json"):
        doc = json.loads(data)
        for k in ("history", "written", "source_store"):
            doc.pop(k, None)
        if name == ".zmetadata":
            doc = {
                k: (
                    {kk: vv for kk, vv in v.items() if kk not in ("history", "source_store")}
                    if k.endswith(".zattrs")
                    else v
                )
                for k, v in doc["metadata"].items()
            }
        return json.dumps(doc, sort_keys=True)
    return hashlib.sha256(data).hexdigest()


def test_ingest_and_predict_through_503s_and_dropped_connections_give_the_local_bytes(
    s3_faults, s3, tiny_model, tmp_path
):
    import s3fs

    from ftcloud.inference import InferencePlan, predict
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    generate("tiny", *PERIOD, str(tmp_path / "src"), seed=5, insitu=False, progress=False)
    local = tmp_path / "local"
    groups = ["era5land", "statics"]  # what predict reads (the targets add requests, not new faults)
    ingest(str(tmp_path / "src"), str(local), sources=groups, progress=False)
    plan = InferencePlan(time_chunk=16, batch_days=8, region_chunks=1)
    predict(str(local), tiny_model, str(tmp_path / "p.zarr"), plan=plan, progress=False)

    direct = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    s3fs.S3FileSystem(**direct).mkdir("ftcloud-faults")
    s3fs.S3FileSystem.clear_instance_cache()
    # a short read timeout: a response cut short by the proxy is then noticed (and retried) in seconds
    so = {
        "client_kwargs": {"endpoint_url": s3_faults.endpoint_url},
        "skip_instance_cache": True,
        "config_kwargs": {"read_timeout": 1},
    }
    s3_faults.set(p503=0.10, pdrop=0.05)
    ingest(str(tmp_path / "src"), "s3://ftcloud-faults/store", sources=groups, storage_options=so, progress=False)
    predict(
        "s3://ftcloud-faults/store",
        tiny_model,
        "s3://ftcloud-faults/p.zarr",
        plan=plan,
        storage_options=so,
        progress=False,
    )
    counts = dict(s3_faults.counts)
    s3_faults.set()
    assert counts.get("503", 0) >= 5 and counts.get("drop", 0) + counts.get("truncate", 0) >= 3, counts
    fs = s3fs.S3FileSystem(**direct, skip_instance_cache=True)
    assert _s3_digest(fs, "ftcloud-faults/store") == _local_digest(local)
    assert _s3_digest(fs, "ftcloud-faults/p.zarr") == _local_digest(tmp_path / "p.zarr")
    assert not fs.exists("ftcloud-faults/.p.zarr.ftcloud-new") and not fs.exists("ftcloud-faults/p.zarr.ftcloud-lock")


def test_an_endpoint_that_never_answers_ends_in_one_line_naming_it(s3_faults, s3, tmp_path, capsys, monkeypatch):
    import s3fs

    from ftcloud.cli import main
    from ftcloud.io import stores

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3["endpoint_url"]}).mkdir("ftcloud-stall")
    s3fs.S3FileSystem.clear_instance_cache()
    # the defaults (5 s connect, 20 s read, 2 attempts x 4 s3fs retries) made short for the test
    monkeypatch.setattr(
        stores,
        "S3_DEFAULTS",
        {
            "config_kwargs": {
                "connect_timeout": 1,
                "read_timeout": 1,
                "retries": {"max_attempts": 1, "mode": "standard"},
            }
        },
    )
    monkeypatch.setattr(stores, "S3FS_RETRIES", 2)
    s3_faults.set(stall=float("inf"))
    t = time.perf_counter()
    rc = main(
        [
            "-q",
            "info",
            "--store",
            "s3://ftcloud-stall/store",
            "--storage-option",
            f"endpoint_url={s3_faults.endpoint_url}",
        ]
    )
    took = time.perf_counter() - t
    err = capsys.readouterr().err.strip()
    s3_faults.set()
    assert rc == 2 and took < 60, (rc, took, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert s3_faults.endpoint_url in err and "did not answer" in err, err


def test_access_denied_is_one_line_naming_the_store(s3, tmp_path, capsys):
    """A private bucket read without credentials (``--anon``): one line with the URL, not a bare
    ``PermissionError: Forbidden``."""
    import s3fs

    from ftcloud.cli import main

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3["endpoint_url"]})
    fs.mkdir("ftcloud-closed")
    fs.pipe("ftcloud-closed/store/predictors/era5land/.zgroup", b'{"zarr_format": 2}')
    rc = main(
        [
            "-q",
            "info",
            "--store",
            "s3://ftcloud-closed/store",
            "--anon",
            "--storage-option",
            f"endpoint_url={s3['endpoint_url']}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "s3://ftcloud-closed/store" in err and "access denied" in err, err


def test_the_lease_works_on_s3(s3):
    """Exclusive create with If-None-Match on S3: a second writer is refused while the first
    holds the lease, and may take it once it is released."""
    import s3fs

    from ftcloud.errors import LockedError
    from ftcloud.io.lease import lease, lock_url

    so = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    fs = s3fs.S3FileSystem(**so)
    fs.mkdir("ftcloud-lease")
    out = "s3://ftcloud-lease/p.zarr"
    with lease(out, so, "predict"):
        assert fs.exists(lock_url(out))
        with pytest.raises(LockedError, match="being written by another ftcloud \\(predict"):
            lease(out, so, "predict").acquire()
    fs.invalidate_cache()
    assert not fs.exists(lock_url(out))
    with lease(out, so, "ingest"):
        pass
