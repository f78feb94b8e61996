"""Chunk-wise inference: chunking independence, resume, metadata, one model load per worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr

torch = pytest.importorskip("torch")

from ftcloud import inference  # noqa: E402
from ftcloud.errors import ValidationError  # noqa: E402
from ftcloud.io.stores import open_group, store_status  # noqa: E402
from ftcloud.model.export import check_store_matches_card, read_card  # noqa: E402

from conftest import TINY_PERIOD  # noqa: E402

START, END = TINY_PERIOD


@pytest.fixture(scope="module")
def store(tiny_store):
    return tiny_store


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    return tiny_model


def _predict(store, model_dir, out, **plan):
    return inference.predict(store, model_dir, str(out), plan=inference.InferencePlan(**plan), progress=False)


def test_output_does_not_depend_on_chunking(store, model_dir, tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    _predict(store, model_dir, a, tile=4, space_chunk=4, time_chunk=16, batch_days=8, write_probability=True)
    _predict(store, model_dir, b, tile=4, space_chunk=8, time_chunk=32, batch_days=8, write_probability=True)
    ga, gb = zarr.open_group(str(a)), zarr.open_group(str(b))
    assert ga["ft"].chunks != gb["ft"].chunks
    assert ga["ft"][:].tobytes() == gb["ft"][:].tobytes()
    assert ga["p_frozen"][:].tobytes() == gb["p_frozen"][:].tobytes()
    ft = ga["ft"][:]
    assert set(np.unique(ft)) <= {0, 1, 255} and (ft != 255).any()


def test_product_equals_the_model_on_the_decoded_store(store, model_dir, tmp_path):
    """The product is the exported model applied to the predictors as any CF reader decodes them
    (xarray: the int16 packing undone): checked away from the window edges, where the tiles' NaN
    halo and the whole-window convolution's zero padding differ."""
    import xarray as xr

    from ftcloud.model.data import open_inputs, stack_inputs
    from ftcloud.model.export import load_model

    out = tmp_path / "p.zarr"
    _predict(store, model_dir, out)
    product = xr.open_zarr(str(out), mask_and_scale=False)  # the codes (255 is the FT _FillValue)
    pred, st = open_inputs(store, "AM")
    days = pd.DatetimeIndex(pred["time"].values)[:12]
    x = stack_inputs(pred.sel(time=days).load(), st.load())  # decoded by xarray, not by ftcloud
    model, card = load_model(model_dir, "AM", fmt="torchscript")
    with torch.no_grad():
        ft, _ = model(torch.from_numpy(x))
    halo = card["halo"]
    got = product["ft"].sel({"pass": "AM"}).sel(time=days).values
    core = (slice(None), slice(halo, -halo), slice(halo, -halo))
    assert got[core].size > 0 and (got[core] != 255).any()
    np.testing.assert_array_equal(got[core], ft.numpy()[core])


def test_product_metadata(store, model_dir, tmp_path):
    out = tmp_path / "p.zarr"
    _predict(store, model_dir, out, time_chunk=32, batch_days=16)
    ds = open_group(str(tmp_path), "p.zarr")
    assert ds["ft"].dims == ("pass", "time", "y", "x") and ds["ft"].dtype == np.uint8
    assert list(ds["pass"].values) == ["AM", "PM"]
    assert ds["ft"].attrs["flag_meanings"] == "thawed frozen" and ds["ft"].attrs["grid_mapping"] == "crs"
    assert ds["crs"].attrs["grid_mapping_name"] == "lambert_cylindrical_equal_area"
    assert (pd.DatetimeIndex(ds["time"].values) == pd.date_range(START, END)).all()
    card = read_card(model_dir, "AM")
    assert card["files"]["export"]["sha256"] in ds.attrs["model_sha256"]
    assert "ftcloud" in ds.attrs["software"] and ds.attrs["source_store"] == store


def test_killed_run_resumes_without_recomputing(store, model_dir, tmp_path, monkeypatch):
    clean = tmp_path / "clean.zarr"
    _predict(store, model_dir, clean, time_chunk=16, batch_days=8, region_chunks=1)
    out = tmp_path / "killed.zarr"
    calls = {"n": 0}
    real = inference.dask.compute

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(inference.dask, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        _predict(store, model_dir, out, time_chunk=16, batch_days=8, region_chunks=1)
    # nothing at the product's name; the partial product is staged beside it, incomplete
    assert store_status(str(out)) is None and store_status(str(tmp_path / ".killed.zarr.ftcloud-new")) == "incomplete"
    with pytest.raises(Exception, match="did not finish"):
        open_group(str(tmp_path), ".killed.zarr.ftcloud-new")
    calls["n"] = 0
    monkeypatch.setattr(
        inference.dask, "compute", lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1), real(*a, **k))[1]
    )
    res = _predict(store, model_dir, out, time_chunk=16, batch_days=8, region_chunks=1)
    n_regions = 2 * 4  # 2 passes x ceil(59 / 16) time regions
    assert res["regions"] == calls["n"] == n_regions - 2  # the two finished regions were not recomputed
    assert store_status(str(out)) == "complete"
    assert zarr.open_group(str(out))["ft"][:].tobytes() == zarr.open_group(str(clean))["ft"][:].tobytes()


def test_model_is_loaded_once_per_worker(store, model_dir, tmp_path, monkeypatch):
    inference._MODEL_CACHE.clear()
    loads = []
    real = inference.load_payload
    monkeypatch.setattr(inference, "load_payload", lambda p: (loads.append((p["pass"], p["fmt"])), real(p))[1])
    _predict(store, model_dir, tmp_path / "o.zarr", tile=4, space_chunk=4, time_chunk=16, batch_days=8)
    _predict(
        store, model_dir, tmp_path / "o2.zarr", tile=4, space_chunk=4, time_chunk=16, batch_days=8, fmt="torchscript"
    )
    # many blocks, one load per (pass, format); both exported formats run
    assert sorted(loads) == [("AM", "export"), ("AM", "torchscript"), ("PM", "export"), ("PM", "torchscript")]


def test_model_bytes_are_checked_before_loading(model_dir):
    """The payload that travels to the workers is refused when its bytes do not match the card."""
    payload = inference.model_payload(model_dir, "AM", "export")
    assert payload["sha256"] == read_card(model_dir, "AM")["files"]["export"]["sha256"]
    inference.load_payload(payload)  # intact: loads
    bad = dict(payload, bytes=payload["bytes"][:-1] + bytes([payload["bytes"][-1] ^ 1]))
    with pytest.raises(ValidationError, match="ft_convlstm_AM.pt2: received bytes have SHA-256"):
        inference.load_payload(bad)


def test_store_that_does_not_match_the_card_is_refused(store, model_dir):
    from ftcloud.model.data import open_inputs

    card = read_card(model_dir, "AM")
    pred, statics = open_inputs(store, "AM")
    bad = pred.copy()
    bad["stl1"] = bad["stl1"].assign_attrs(units="degC")
    with pytest.raises(ValidationError, match="'stl1' has units 'degC', the model card expects 'K'"):
        check_store_matches_card(card, bad, statics, dict(statics.attrs), "AM", store)
    with pytest.raises(ValidationError, match="trained for pass AM, not PM"):
        check_store_matches_card(card, pred, statics, dict(statics.attrs), "PM", store)


@pytest.mark.slow
def test_distributed_workers_give_the_same_bytes(store, model_dir, tmp_path):
    """Worker processes get the checksum-verified model file bytes (not pickled weights) and load them
    once per process; same answer."""
    from distributed import Client, LocalCluster

    ref = tmp_path / "ref.zarr"
    _predict(store, model_dir, ref, time_chunk=16, batch_days=8)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        out = tmp_path / "dist.zarr"
        inference.predict(
            store,
            model_dir,
            str(out),
            plan=inference.InferencePlan(time_chunk=16, batch_days=8),
            progress=False,
            client=client,
        )
        cached = client.run(lambda: len(__import__("ftcloud.inference", fromlist=["x"])._MODEL_CACHE))
    assert zarr.open_group(str(out))["ft"][:].tobytes() == zarr.open_group(str(ref))["ft"][:].tobytes()
    assert sum(cached.values()) >= 1 and all(v <= 2 for v in cached.values())  # at most one model per pass per worker


def test_bf16_plan_runs_and_mostly_agrees(store, model_dir, tmp_path):
    a, b = tmp_path / "fp32.zarr", tmp_path / "bf16.zarr"
    _predict(store, model_dir, a, time_chunk=32, batch_days=16)
    _predict(store, model_dir, b, time_chunk=32, batch_days=16, precision="bf16")
    fa, fb = zarr.open_group(str(a))["ft"][:], zarr.open_group(str(b))["ft"][:]
    assert (fa == fb).mean() > 0.95
    with pytest.raises(ValidationError, match="precision"):
        inference.InferencePlan(precision="fp8")
