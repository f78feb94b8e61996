"""Issue 10: predictors stored CF-packed to a stated precision, and training/evaluation that
read the targets on demand and accumulate their statistics batch by batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from ftcloud.core.grid import region_window
from ftcloud.workflows.ingest import ingest
from ftcloud.io.stores import store_status
from ftcloud.sources import era5land
from ftcloud.sources.common import months_between
from ftcloud.sources.packing import PREDICTOR_PACKING
from ftcloud.synth import generate

START, END = "2018-12-20", "2019-02-10"


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("packing")
    generate("tiny", START, END, str(root / "src"), seed=4, targets_start=START, insitu=False, progress=False)
    ingest(
        str(root / "src"), str(root / "store"), sources=["era5land", "smap_e_ft", "esdr_ft", "statics"], progress=False
    )
    return root


def test_predictors_are_packed_and_decode_within_the_stated_precision(twin):
    grp = zarr.open_group(str(twin / "store" / "predictors" / "era5land"), mode="r")
    ds = xr.open_zarr(str(twin / "store" / "predictors" / "era5land"))
    win = region_window("tiny")
    # the source's own values, opened the way the recipe opens them (float32), month by month
    parts = [
        era5land.preprocess_month(era5land.era5_url(str(twin / "src"), m), m, win, START, END)
        for m in months_between(START, END)
    ]
    ref = xr.concat(parts, dim="time")
    for name, p in PREDICTOR_PACKING.items():
        a = grp[name]
        assert a.dtype == np.int16 and a.compressor.cname == "zstd", (name, a.dtype, a.compressor)
        assert a.attrs["scale_factor"] == p.scale_factor and a.attrs["add_offset"] == p.add_offset
        got = ds[name].transpose(*ref[name].dims).values
        want = ref[name].values
        assert got.shape == want.shape
        assert np.array_equal(np.isnan(got), np.isnan(want)), name  # missing stays missing
        ok = np.isfinite(want)
        err = np.abs(got[ok].astype("f8") - want[ok].astype("f8"))
        # half a packing step, plus float32 rounding of (value - offset) when xarray packs float32
        # data and of the decoded value: two ulps of the larger of the values and the offset
        bound = p.precision + 2 * np.spacing(np.float32(max(np.abs(want[ok]).max(), abs(p.add_offset))))
        assert err.max() <= bound, (name, err.max(), bound)
        assert err.max() > 0 or name == "sde"  # lossy indeed (snow-free tiny windows may hold zeros only)


@pytest.mark.parametrize(
    "var,value,expected",
    [
        ("stl1", 512.0, "outside its physical range 180 .. 350 K"),  # int16 would hold it; it is not a soil temperature
        ("swvl1", 0.99, "expected -0.35534 .. 0.95534 m3 m-3 (the range its int16 packing holds)"),  # would wrap
    ],
)
def test_a_value_outside_the_physical_or_packable_range_is_one_line_and_no_complete_store(
    twin, tmp_path, monkeypatch, capsys, var, value, expected
):
    from ftcloud.cli import main

    real = era5land.preprocess_month

    def hot(url, month, *a, **k):
        ds = real(url, month, *a, **k)
        if month == pd.Timestamp("2019-01-01"):
            ds[var][3, 0, 1, 2, 2] = value
        return ds

    monkeypatch.setattr(era5land, "preprocess_month", hot)
    out = tmp_path / "store"
    rc = main(["-q", "ingest", "--source", str(twin / "src"), "--store", str(out), "--sources", "era5land"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "era5land_201901.nc (time 2019-01-04)" in err and f"{var!r}" in err and f"{value:g}" in err, err
    assert expected in err, err
    assert store_status(str(out / "predictors" / "era5land")) != "complete"


def test_packed_store_is_smaller_than_float32(twin):
    """The point of packing: fewer bytes per cell-year than the float32 + lz4 the store used to hold
    (the ratio on real archives is printed by ``benchmarks/scaling.py``)."""
    import os

    import numcodecs

    root = twin / "store" / "predictors" / "era5land"
    packed = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root / "stl1") for f in fs if not f.startswith(".")
    )
    raw = xr.open_zarr(str(root))["stl1"].values.astype("f4")
    lz4 = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    # the old layout: 32-day chunks of one pass, float32, lz4
    old = sum(
        len(lz4.encode(np.ascontiguousarray(raw[t : t + 32, p : p + 1])))
        for t in range(0, raw.shape[0], 32)
        for p in (0, 1)
    )
    assert packed < 0.7 * old, (packed, old)


# --------------------------------------------------------------------------------------
# targets on demand


def test_store_targets_read_on_demand_equal_xarray(twin):
    from ftcloud.model.data import StoreTarget, load_target_period

    data = load_target_period(str(twin / "store"), "PM")
    assert isinstance(data.smap, StoreTarget) and isinstance(data.esdr, StoreTarget)
    for name, t in (("smap_e_ft", data.smap), ("esdr_ft", data.esdr)):
        da = (
            xr.open_zarr(str(twin / "store" / "targets" / name), mask_and_scale=False)[name]
            .sel({"pass": "PM"})
            .sel(time=data.times)
        )
        eager = np.asarray(da.values, "u1")
        assert t.shape == eager.shape and np.array_equal(np.asarray(t), eager)
        idx = np.array([1, 2, 30, 40])
        assert np.array_equal(t.read(idx, slice(3, 9), slice(0, 4)), eager[idx][:, 3:9, 0:4])
    truth = (
        xr.open_dataset(str(twin / "src" / "truth" / "truth_ft_9km.nc"))["ft"].sel({"pass": "PM"}).sel(time=data.times)
    )
    tv = truth.values
    assert np.array_equal(np.asarray(data.truth), np.where(np.isfinite(tv), tv, 255).astype("u1"))


def test_streamed_target_summary_equals_the_whole_array_rule():
    from ftcloud.model.training import class_weights, head_targets, target_summary

    rng = np.random.default_rng(2)
    y = rng.choice(np.array([0, 1, 255], "u1"), size=(150, 6, 7), p=[0.5, 0.3, 0.2])
    y[:, 1, 1] = 255  # never observed
    y[:140, 2, 3] = 255  # missing on 140 of 150 days
    train = rng.random(150) < 0.7
    ((perm, counts),) = target_summary([y], train, 0.9, block_days=17)
    ht = head_targets(y, train, 0.9)
    assert np.array_equal(perm, (ht == 2).all(axis=0))
    assert counts.tolist() == [int((ht[train] == 0).sum()), int((ht[train] == 1).sum())]
    assert np.allclose(class_weights(counts=counts), class_weights([ht[train]]))


def test_common_counts_batch_by_batch_equal_one_compare():
    from ftcloud.science.compare import CommonCounts, compare, time_blocks

    rng = np.random.default_rng(9)
    t = pd.date_range("2018-01-01", periods=120)
    ref = rng.choice(np.array([0, 1, 255], "u1"), size=(120, 5, 4), p=[0.45, 0.45, 0.1])
    prods = {
        k: np.where(rng.random(ref.shape) < q, 1 - np.minimum(ref, 1), ref).astype("u1")
        for k, q in (("fused", 0.05), ("a", 0.1), ("b", 0.2))
    }
    prods["b"][rng.random(ref.shape) < 0.05] = 255
    blocks, nb = time_blocks(t, ref.shape[1:])
    mask = np.broadcast_to(np.asarray(t.month != 2)[:, None, None], ref.shape)
    whole = compare(prods, ref, blocks, nb, mask=mask, n_boot=300, seed=4)
    acc = CommonCounts(list(prods), nb, n_boot=300, seed=4)
    for a, b in ((0, 7), (7, 64), (64, 120)):  # batches that split 10-day blocks
        acc.add({k: v[a:b] for k, v in prods.items()}, ref[a:b], blocks[a:b], mask[a:b])
    part = acc.result()
    pd.testing.assert_frame_equal(part.table, whole.table)
    pd.testing.assert_frame_equal(part.gains, whole.gains)


def test_tiled_evaluation_equals_the_whole_window(twin, monkeypatch):
    """A region larger than the evaluation tile is scored tile by tile with the receptive-field
    halo read from the window: the card equals the whole-window card, and so do the channel
    statistics and the validation loss (to float rounding)."""
    torch = pytest.importorskip("torch")
    from ftcloud.model import training
    from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig
    from ftcloud.model.data import load_target_period

    data = load_target_period(str(twin / "store"), "AM")
    splits = {
        "train": (("2018-12-20", "2019-01-20"),),
        "val": (("2019-01-21", "2019-01-31"),),
        "test": (("2019-02-01", "2019-02-10"),),
    }
    train = training.split_mask(data.times, "train", splits)
    mean, std = training.channel_stats(data.X, train)
    torch.manual_seed(0)
    model = FusedFTModel(DualHeadConvLSTM(ModelConfig(hidden=(4,))), torch.tensor(mean), torch.tensor(std)).eval()
    whole = training.evaluate_test_period(model, data, splits, n_boot=100)
    cfg = training.TrainConfig(hidden=(4,), epochs=1, seed=3, splits=splits, batch_days=4, patch=8)
    r_whole = training.train_pass(data, cfg, progress=False)
    assert max(data.X.shape[-2:]) > 6
    monkeypatch.setattr(training, "EVAL_TILE", 6)  # tiny window 10 x 13 -> 2 x 3 tiles with a halo of 3
    assert len(list(training.tile_windows(*data.X.shape[-2:], 3))) == 6
    mean6, std6 = training.channel_stats(data.X, train)
    np.testing.assert_allclose(mean6, mean, rtol=1e-5)
    np.testing.assert_allclose(std6, std, rtol=1e-4)
    tiled = training.evaluate_test_period(model, data, splits, n_boot=100)
    assert tiled == whole
    r_tiled = training.train_pass(data, cfg, progress=False)
    np.testing.assert_allclose(
        [h["val_loss"] for h in r_tiled.history], [h["val_loss"] for h in r_whole.history], rtol=1e-4
    )
