"""Outputs are transactional and resumes are strict (the reliability issue, items 1-6 and 8).

Each test here failed on the code before the change: resume compared only the plan, the model
SHA, the store URL and the number of days; predict wrote the template over a complete product
before it checked the model; the status was the first of three writes; nothing stopped two
writers; impossible values were stored; a model predicted any window of its grid.
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

pytest.importorskip("torch")

from ftcloud import inference  # noqa: E402
from ftcloud.errors import LockedError, StorageError, ValidationError  # noqa: E402
from ftcloud.io import lease as lease_mod  # noqa: E402
from ftcloud.io.stores import STATUS_KEY, status_record, store_status  # noqa: E402
from ftcloud.io.transaction import staging_url  # noqa: E402

JAN = ("2017-01-01", "2017-01-28")  # as long as FEB: the old resume compared only the number of days
FEB = ("2017-02-01", "2017-02-28")


def _predict(store, model_dir, out, period=None, **kw):
    plan = inference.InferencePlan(time_chunk=16, batch_days=8, region_chunks=1)
    start, end = period or (None, None)
    return inference.predict(store, model_dir, str(out), start=start, end=end, plan=plan, progress=False, **kw)


def _ft_bytes(path) -> bytes:
    return zarr.open_group(str(path), mode="r")["ft"][:].tobytes()


def _days(path) -> list[str]:
    return [str(d)[:10] for d in xr.open_zarr(str(path))["time"].values]


def _files(path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _killed_at_call(n: int):
    """A stand-in for dask.compute that raises KeyboardInterrupt (a kill) at its ``n``-th call;
    ``calls["n"]`` counts the calls (reset it to arm it again)."""
    real = inference.dask.compute
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    return dying, calls


# --- 1. resume keys on exactly what it resumes -------------------------------------------------


def test_other_days_into_a_complete_product_recompute(tiny_store, tiny_model, tmp_path):
    out = tmp_path / "p.zarr"
    _predict(tiny_store, tiny_model, out, JAN)
    res = _predict(tiny_store, tiny_model, out, FEB)
    assert res["regions"] == 2 * 2 and not res.get("skipped")  # 28 days = 2 regions of 16, x 2 passes
    assert _days(out) == [str(d.date()) for d in pd.date_range(*FEB)]
    _predict(tiny_store, tiny_model, tmp_path / "fresh.zarr", FEB)
    assert _ft_bytes(out) == _ft_bytes(tmp_path / "fresh.zarr")
    # the same request again is skipped, and only then
    assert _predict(tiny_store, tiny_model, out, FEB)["skipped"]


def test_interrupted_run_resumed_for_other_days_starts_afresh(tiny_store, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "p.zarr"
    real = inference.dask.compute
    dying, calls = _killed_at_call(2)
    monkeypatch.setattr(inference.dask, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_store, tiny_model, out, JAN)
    monkeypatch.setattr(inference.dask, "compute", real)
    res = _predict(tiny_store, tiny_model, out, FEB)
    assert res["regions"] == 4  # nothing of January reused
    assert _days(out) == [str(d.date()) for d in pd.date_range(*FEB)]
    _predict(tiny_store, tiny_model, tmp_path / "fresh.zarr", FEB)
    assert _ft_bytes(out) == _ft_bytes(tmp_path / "fresh.zarr")


def test_changed_inputs_are_not_served_from_the_old_product(tiny_store, tiny_model, tmp_path):
    """Re-ingesting the store from other source data changes the groups' content digests: the
    next predict recomputes, and equals a fresh prediction from the new store."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    out = tmp_path / "p.zarr"
    _predict(str(store), tiny_model, out, JAN)
    before = status_record(str(store / "predictors" / "era5land"))["content"]
    generate("tiny", "2017-01-01", "2017-02-28", str(tmp_path / "src2"), seed=11, insitu=False, progress=False)
    ingest(str(tmp_path / "src2"), str(store), sources=["era5land"], progress=False)
    assert status_record(str(store / "predictors" / "era5land"))["content"] != before
    res = _predict(str(store), tiny_model, out, JAN)
    assert res["regions"] == 4 and not res.get("skipped")
    _predict(str(store), tiny_model, tmp_path / "fresh.zarr", JAN)
    assert _ft_bytes(out) == _ft_bytes(tmp_path / "fresh.zarr")


def test_content_digest_is_the_same_for_the_same_data(tiny_store, tmp_path):
    """Re-ingesting identical sources gives the identical digest, so a product stays valid."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    generate("tiny", "2017-01-01", "2017-01-31", str(tmp_path / "src"), seed=5, insitu=False, progress=False)
    ingest(str(tmp_path / "src"), str(tmp_path / "a"), sources=["era5land"], progress=False)
    ingest(str(tmp_path / "src"), str(tmp_path / "b"), sources=["era5land"], progress=False)
    a = status_record(str(tmp_path / "a" / "predictors" / "era5land"))["content"]
    b = status_record(str(tmp_path / "b" / "predictors" / "era5land"))["content"]
    assert a == b and a.startswith("sha256:")


# --- 2. a failing predict never destroys a complete product -------------------------------------


@pytest.mark.parametrize("damage", ["missing .pt2", "checksum mismatch"])
def test_failing_predict_leaves_the_complete_product_untouched(tiny_store, tiny_model, tmp_path, damage):
    out = tmp_path / "p.zarr"
    _predict(tiny_store, tiny_model, out, JAN)
    before = _files(out)
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    pt2 = sorted(model.glob("*AM*.pt2"))[0]
    if damage == "missing .pt2":
        pt2.unlink()
    else:
        b = bytearray(pt2.read_bytes())
        b[len(b) // 2] ^= 0xFF
        pt2.write_bytes(bytes(b))
    with pytest.raises(ValidationError):
        _predict(tiny_store, str(model), out, FEB)
    assert store_status(str(out)) == "complete" and _files(out) == before
    assert not os.path.exists(staging_url(str(out)))  # verified before anything was written


def test_predict_killed_while_replacing_keeps_the_old_product(tiny_store, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "p.zarr"
    _predict(tiny_store, tiny_model, out, JAN)
    before = _files(out)
    monkeypatch.setattr(inference.dask, "compute", _killed_at_call(3)[0])
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_store, tiny_model, out, FEB)
    assert store_status(str(out)) == "complete" and _files(out) == before
    # readers of the product see January; the partial February copy waits beside it
    assert _days(out)[0] == "2017-01-01" and store_status(staging_url(str(out))) == "incomplete"


# --- 3. complete is written last and whole; a corrupt record is recoverable ---------------------


def test_a_kill_before_the_status_record_leaves_an_incomplete_group(tiny_store, tiny_model, tmp_path, monkeypatch):
    """Kill at the last write of mark_complete: the group must read incomplete, not complete and broken."""
    from ftcloud.io import stores

    real = stores.put_whole

    def no_complete(url, data, *a, **k):
        if url.endswith(STATUS_KEY) and b'"complete"' in data:
            raise KeyboardInterrupt("killed before the status record")
        return real(url, data, *a, **k)

    monkeypatch.setattr(stores, "put_whole", no_complete)
    out = tmp_path / "p.zarr"
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_store, tiny_model, out, JAN)
    stage = staging_url(str(out))
    assert store_status(stage) == "incomplete" and store_status(str(out)) is None
    assert os.path.exists(os.path.join(stage, ".zmetadata"))  # everything else was written
    monkeypatch.setattr(stores, "put_whole", real)
    res = _predict(tiny_store, tiny_model, out, JAN)
    assert store_status(str(out)) == "complete" and res["regions"] == 0  # every region was recorded


def test_corrupt_progress_and_attributes_are_recovered(tiny_store, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "p.zarr"
    real = inference.dask.compute
    dying, calls = _killed_at_call(3)
    monkeypatch.setattr(inference.dask, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_store, tiny_model, out, JAN)
    monkeypatch.setattr(inference.dask, "compute", real)
    stage = staging_url(str(out))
    records = sorted(os.listdir(os.path.join(stage, inference.PROGRESS_DIR)))
    assert len(records) == 2
    with open(os.path.join(stage, inference.PROGRESS_DIR, records[0]), "w") as f:
        f.write('{"identity": "ab')  # half-written
    res = _predict(tiny_store, tiny_model, out, JAN)
    assert res["regions"] == 4 - 1  # the half-written record's region is redone, the other kept
    _predict(tiny_store, tiny_model, tmp_path / "fresh.zarr", JAN)
    assert _ft_bytes(out) == _ft_bytes(tmp_path / "fresh.zarr")
    # a half-written .zattrs of a staged copy: the next run starts that copy afresh
    monkeypatch.setattr(inference.dask, "compute", dying)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        _predict(tiny_store, tiny_model, out, FEB)
    monkeypatch.setattr(inference.dask, "compute", real)
    with open(os.path.join(stage, ".zattrs"), "w") as f:
        f.write('{"title": "ftcl')
    _predict(tiny_store, tiny_model, out, FEB)
    assert store_status(str(out)) == "complete" and _days(out)[0] == "2017-02-01"


def test_local_zarr_keys_are_written_through_a_rename(tmp_path, monkeypatch):
    """A kill in the middle of writing a key leaves the old bytes (AtomicLocalStore)."""
    from ftcloud.io import stores

    m = stores.get_mapper(str(tmp_path / "g"))
    m[".zattrs"] = b'{"a": 1}'
    real = stores.os.replace

    def killed(*a, **k):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(stores.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        m[".zattrs"] = b'{"a": 2, "b": "a longer document"}'
    monkeypatch.setattr(stores.os, "replace", real)
    assert json.loads((tmp_path / "g" / ".zattrs").read_text()) == {"a": 1}
    assert [p.name for p in (tmp_path / "g").iterdir()] == [".zattrs"]  # no temporary left


def test_legacy_groups_read_by_their_consolidated_metadata(tmp_path):
    """Groups written before the status record: complete only where .zmetadata says so."""
    ds = xr.Dataset({"a": ("x", np.arange(3))}, attrs={"ftcloud_status": "complete"})
    ds.to_zarr(str(tmp_path / "old"), consolidated=True)
    assert store_status(str(tmp_path / "old")) == "complete"
    ds.to_zarr(str(tmp_path / "half"), consolidated=False)  # killed before consolidation
    assert store_status(str(tmp_path / "half")) == "incomplete"


# --- 4. one writer at a time ----------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_holder_named(tiny_store, tiny_model, tmp_path):
    out = tmp_path / "p.zarr"
    with lease_mod.lease(str(out), None, "predict"):
        with pytest.raises(LockedError, match=r"being written by another ftcloud \(predict, host .* pid \d+"):
            _predict(tiny_store, tiny_model, out, JAN)
    assert not os.path.exists(str(out))
    _predict(tiny_store, tiny_model, out, JAN)  # released: the next writer goes ahead
    assert store_status(str(out)) == "complete" and not os.path.exists(lease_mod.lock_url(str(out)))


def test_stale_and_orphaned_leases_are_taken_over_and_reported(tiny_store, tiny_model, tmp_path, caplog):
    import subprocess
    import sys
    import time

    out = tmp_path / "p.zarr"
    lock = lease_mod.lock_url(str(out))
    # expired an hour ago, held by another host
    doc = {
        "owner": "elsewhere:1:x",
        "host": "elsewhere",
        "pid": 1,
        "what": "predict",
        "acquired": time.time() - 7200,
        "renewed": time.time() - 3700,
        "expires": time.time() - 3600,
    }
    with open(lock, "w") as f:
        json.dump(doc, f)
    with caplog.at_level("WARNING", logger="ftcloud.io.lease"):
        _predict(tiny_store, tiny_model, out, JAN)
    assert "taking over the stale lease of elsewhere pid 1" in caplog.text
    # valid for an hour, but its process (on this host) was killed
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    doc = {**doc, "host": lease_mod.socket.gethostname(), "pid": p.pid, "expires": time.time() + 3600}
    with open(lock, "w") as f:
        json.dump(doc, f)
    caplog.clear()
    with caplog.at_level("WARNING", logger="ftcloud.io.lease"):
        _predict(tiny_store, tiny_model, out, FEB)
    assert f"pid {p.pid} (predict): that process is gone" in caplog.text


def test_two_concurrent_ingests_one_wins_one_is_refused(tmp_path):
    """Two ingests into one store at the same time: the second stops with one line at once, the
    first completes, and the store equals an uninterrupted ingest."""
    import subprocess
    import sys
    import time

    from ftcloud.synth import generate

    # four months: the first ingest holds the lease for seconds, longer than the second needs to start
    # (one month let a loaded machine finish the first before the second asked, and the second then won)
    generate("tiny", "2017-01-01", "2017-04-30", str(tmp_path / "src"), seed=5, insitu=False, progress=False)
    cmd = [
        sys.executable,
        "-m",
        "ftcloud.cli",
        "-q",
        "ingest",
        "--source",
        str(tmp_path / "src"),
        "--store",
        str(tmp_path / "store"),
        "--sources",
        "era5land",
    ]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = lease_mod.lock_url(str(tmp_path / "store"))
    deadline = time.time() + 120
    while not os.path.exists(lock) and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip()
    assert len(line.splitlines()) == 1 and "being written by another ftcloud (ingest" in line, line
    assert store_status(str(tmp_path / "store" / "predictors" / "era5land")) == "complete"
    assert not os.path.exists(lock)


def test_two_predicts_in_threads_one_is_refused(tiny_store, tiny_model, tmp_path):
    out = tmp_path / "p.zarr"
    results, errors = [], []
    gate = threading.Barrier(2)

    def run():
        gate.wait()
        try:
            results.append(_predict(tiny_store, tiny_model, out, JAN))
        except LockedError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    # either the second was refused while the first held the lease, or it came after and skipped
    assert len(results) + len(errors) == 2 and len(results) >= 1
    assert all(r.get("skipped") for r in results[1:]) or errors
    assert store_status(str(out)) == "complete"
    _predict(tiny_store, tiny_model, tmp_path / "fresh.zarr", JAN)
    assert _ft_bytes(out) == _ft_bytes(tmp_path / "fresh.zarr")


# --- 5. impossible values are refused at the door --------------------------------------------------


@pytest.mark.parametrize(
    "var,fn,units,expect",
    [
        (
            "stl1",
            lambda a: np.where(np.arange(a.shape[0])[:, None, None] >= a.shape[0] // 2, 9999.0, a),
            None,
            "9999 K, outside its physical",
        ),
        ("swvl1", lambda a: a * 0 - 5, None, "-5 m3 m-3, outside its physical range 0 .. 1"),
        ("stl1", lambda a: a - 273.15, None, "(values in degC labelled K?)"),
    ],
)
def test_impossible_values_are_refused_with_file_variable_value_and_range(tmp_path, var, fn, units, expect):
    from test_recipes import WINDOW, write_month

    from ftcloud.workflows.ingest import ingest

    src = tmp_path / "src"
    write_month(src, pd.Timestamp("2001-01-01"))
    write_month(src, pd.Timestamp("2001-02-01"), values={var: fn})
    with pytest.raises(ValidationError) as e:
        ingest(
            str(src),
            str(tmp_path / "store"),
            region=WINDOW,
            start="2001-01-01",
            end="2001-02-28",
            sources=["era5land"],
            progress=False,
        )
    msg = str(e.value)
    assert "era5land_200102.nc (time 2001-02-" in msg and f"variable {var!r}" in msg and expect in msg, msg
    assert store_status(str(tmp_path / "store" / "predictors" / "era5land")) is None


# --- 6. a model predicts only the window it was trained on, unless told -----------------------------


def test_a_window_outside_the_model_card_is_refused_unless_transfer(tiny_store, tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    attrs = xr.open_zarr(os.path.join(tiny_store, "predictors", "era5land")).attrs
    r0, r1 = (int(v) for v in attrs["ease2_window_rows"].split(":"))
    for card in model.glob("*.json"):
        doc = json.loads(card.read_text())
        # trained on a window one row short of the store's
        doc["grid"] = {
            "ease2_grid": attrs["ease2_grid"],
            "ease2_window_rows": f"{r0 + 1}:{r1}",
            "ease2_window_cols": attrs["ease2_window_cols"],
            "region": "smaller",
        }
        card.write_text(json.dumps(doc))
    out = tmp_path / "p.zarr"
    with pytest.raises(ValidationError, match=r"is not inside the window the AM model was trained on .*--transfer"):
        _predict(tiny_store, str(model), out, JAN)
    assert not os.path.exists(str(out))
    _predict(tiny_store, str(model), out, JAN, transfer=True)
    rec = json.loads(xr.open_zarr(str(out)).attrs["ftcloud_model_transfer"])
    assert "'smaller'" in rec["AM"]["trained_window"] and "'tiny'" in rec["AM"]["applied_window"]


# --- 8. never create buckets ------------------------------------------------------------------------


@pytest.mark.s3
def test_ingest_into_a_missing_bucket_is_refused_and_creates_nothing(s3, tmp_path):
    import s3fs

    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    so = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    generate("tiny", "2017-01-01", "2017-01-05", str(tmp_path / "src"), seed=5, insitu=False, progress=False)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist .* never creates buckets"):
        ingest(
            str(tmp_path / "src"), "s3://no-such-bucket/store", sources=["era5land"], storage_options=so, progress=False
        )
    fs = s3fs.S3FileSystem(**so)
    fs.invalidate_cache()
    assert "no-such-bucket" not in [b.rstrip("/") for b in fs.ls("")]


def test_credential_like_storage_options_are_refused():
    from ftcloud.io.stores import filesystem

    for so in (
        {"key": "AKIA"},
        {"secret": "x"},
        {"token": "t"},
        {"client_kwargs": {"aws_secret_access_key": "x"}},
        {"s3_additional_kwargs": {"SSECustomerKey": "x"}},
        {"config_kwargs": {"password": "p"}},
    ):
        with pytest.raises(ValidationError, match="looks like a credential"):
            filesystem("s3://bucket/x", so)
    fs, _ = filesystem("memory://x", {"skip_instance_cache": True})  # ordinary options pass
    assert "memory" in fs.protocol


def test_urls_are_redacted():
    from ftcloud.io.secrets import redact_text, redact_url

    assert redact_url("http://user:PASS@host:8080/a/b.nc") == "http://***@host:8080/a/b.nc"
    assert redact_url("s3://bucket/key.nc") == "s3://bucket/key.nc"
    assert "SIG" not in redact_url("https://h/x.nc?X-Amz-Signature=SIG&X-Amz-Date=1")
    assert redact_text("from https://u:p@h/x and ftp://a@b/c") == "from https://***@h/x and ftp://***@b/c"


# --- found by review: stalled writers, concurrent re-ingest, killed skeletons, foreign folders -------


def test_a_writer_whose_lease_lapsed_writes_nothing_more(tiny_store, tiny_model, tmp_path, monkeypatch):
    """A stalled writer (its renewals stopped: SIGSTOP, a frozen VM) must not write into the
    output another writer took over."""
    import time as _time

    out = tmp_path / "p.zarr"
    real = inference.dask.compute
    calls = {"n": 0}

    def stalling(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # after one region: the clock jumps past the lease's life, no renewal since
            start = _time.time()
            monkeypatch.setattr(lease_mod.time, "time", lambda: start + 1e6)
        return real(*a, **k)

    monkeypatch.setattr(inference.dask, "compute", stalling)
    with pytest.raises(LockedError, match="lease lapsed"):
        _predict(tiny_store, tiny_model, out, JAN)
    monkeypatch.undo()
    records = os.listdir(os.path.join(staging_url(str(out)), inference.PROGRESS_DIR))
    assert len(records) == 1 and store_status(str(out)) is None


def test_inputs_reingested_during_predict_are_not_marked_complete(tiny_store, tiny_model, tmp_path, monkeypatch):
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    generate("tiny", "2017-01-01", "2017-02-28", str(tmp_path / "src2"), seed=11, insitu=False, progress=False)
    real = inference.dask.compute
    calls = {"n": 0}

    def reingest_midway(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            ingest(str(tmp_path / "src2"), str(store), sources=["era5land"], progress=False)
        return real(*a, **k)

    monkeypatch.setattr(inference.dask, "compute", reingest_midway)
    with pytest.raises(ValidationError, match="input groups changed while predicting"):
        _predict(str(store), tiny_model, tmp_path / "p.zarr", JAN)
    assert store_status(str(tmp_path / "p.zarr")) is None


def test_a_skeleton_killed_half_way_is_rewritten_not_resumed(tmp_path, monkeypatch):
    """The plan is recorded only after the whole skeleton: a kill before any coordinate chunk
    (here: before lat) leaves a stage that the next ingest starts afresh, equal to a clean one."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.io import stores
    from ftcloud.synth import generate

    generate("tiny", "2017-01-01", "2017-01-31", str(tmp_path / "src"), seed=5, insitu=False, progress=False)
    ingest(str(tmp_path / "src"), str(tmp_path / "clean"), sources=["era5land"], progress=False)
    real = stores.AtomicLocalStore.__setitem__

    def dying(self, key, value):
        if key.startswith("lat/") and not key.endswith((".zarray", ".zattrs")):
            raise KeyboardInterrupt("killed before lat's chunk")
        return real(self, key, value)

    monkeypatch.setattr(stores.AtomicLocalStore, "__setitem__", dying)
    with pytest.raises(KeyboardInterrupt):
        ingest(str(tmp_path / "src"), str(tmp_path / "store"), sources=["era5land"], progress=False)
    monkeypatch.undo()
    ingest(str(tmp_path / "src"), str(tmp_path / "store"), sources=["era5land"], progress=False)
    a = xr.open_zarr(str(tmp_path / "store" / "predictors" / "era5land"))
    b = xr.open_zarr(str(tmp_path / "clean" / "predictors" / "era5land"))
    assert np.isfinite(a["lat"].values).all()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert (
        status_record(str(tmp_path / "store" / "predictors" / "era5land"))["content"]
        == status_record(str(tmp_path / "clean" / "predictors" / "era5land"))["content"]
    )


def test_predict_refuses_to_replace_a_folder_it_did_not_write(tiny_store, tiny_model, tmp_path):
    from ftcloud.errors import StorageError as _StorageError

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("\\section{Permafrost}\n")
    with pytest.raises(_StorageError, match="is not an ftcloud output .* refusing to replace it"):
        _predict(tiny_store, tiny_model, mine, JAN)
    assert (mine / "chapter1.tex").read_text().startswith("\\section")


def test_a_bare_relative_output_name_works(tiny_store, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _predict(tiny_store, tiny_model, "p.zarr", JAN)
    assert store_status(str(tmp_path / "p.zarr")) == "complete"
