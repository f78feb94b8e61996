"""Brightness temperatures into the store: predictors/tb_smap (9 km) and predictors/tb_multifreq (25 km
resampled to 9 km as ESDR is), with the guarantees of every source (values, time round trip, idempotent
re-runs, one-line errors on bad input)."""

from __future__ import annotations

import glob
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.core.grid import EASE2_25KM, region_window
from ftcloud.errors import ValidationError
from ftcloud.io.stores import open_group, store_status
from ftcloud.sources.tb import MULTIFREQ_CHANNELS, multifreq_url, smap_has_tb
from ftcloud.synth import generate
from ftcloud.workflows.ingest import ingest

START, TARGETS, END = "2016-01-01", "2016-02-01", "2016-04-30"
TB_SOURCES = ["tb_smap", "tb_multifreq"]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("tbtwin")
    generate(
        "tiny", START, END, str(root / "src"), seed=4, insitu=False, targets_start=TARGETS, progress=False, tb=True
    )
    return root / "src"


@pytest.fixture(scope="module")
def store(twin, tmp_path_factory):
    out = tmp_path_factory.mktemp("tbstore") / "store"
    res = ingest(str(twin), str(out), sources=TB_SOURCES, progress=False)
    assert set(res.groups) == set(TB_SOURCES)
    return out


def test_smap_tb_round_trip_and_time_axis(twin, store):
    ds = open_group(str(store), "predictors/tb_smap")
    days = pd.date_range(TARGETS, END, freq="D")  # the targets' period: TB come with the SMAP granules
    assert (pd.DatetimeIndex(ds["time"].values) == days).all()
    assert ds["tbh"].dims == ("time", "pass", "y", "x") and ds["tbh"].attrs["units"] == "K"
    for i in (0, 37, len(days) - 1):
        f = glob.glob(str(twin / "smap_e_ft" / "2016" / f"SMAP_L3_FT_P_E_{days[i]:%Y%m%d}_*.h5"))[0]
        with h5py.File(f) as h:
            raw = h["Freeze_Thaw_Retrieval_Data_Global/tbh_mean"][:]
        expect = np.where(raw == -9999, np.nan, raw)
        got = ds["tbh"].isel(time=i).values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
        np.testing.assert_allclose(got, expect, atol=0.0051, equal_nan=True)  # int16 hundredths of a kelvin


def test_multifreq_is_the_nearest_25km_cell(twin, store):
    ds = open_group(str(store), "predictors/tb_multifreq")
    assert {f"TB{c}" for c in MULTIFREQ_CHANNELS} <= set(ds.data_vars)
    w = region_window("tiny")
    f = xr.open_dataset(multifreq_url(str(twin), 2016, "36.5V", "PM"))  # decoded to K by its scale_factor
    t = 10
    got = ds["TB36.5V"].sel({"pass": "PM"}).isel(time=t).values
    # the oracle: each 9 km centre's own 25 km cell, by the grid's row/col arithmetic
    rows = np.floor(EASE2_25KM.row_of(w.y) + 0.5).astype(int)
    cols = np.floor(EASE2_25KM.col_of(w.x) + 0.5).astype(int)
    r0 = int(round(EASE2_25KM.row_of(float(f["y"][0]))))
    c0 = int(round(EASE2_25KM.col_of(float(f["x"][0]))))
    day = np.datetime64(TARGETS) + np.timedelta64(t, "D")
    tb25 = f["TB"].sel(time=day).values
    expect = tb25[np.ix_(rows - r0, cols - c0)]
    np.testing.assert_allclose(got, expect, atol=0.011, equal_nan=True)


def test_a_rerun_writes_the_same_content(twin, store):
    """Idempotent: ingesting the same sources again gives groups with the same content digest and values."""
    from ftcloud.io.stores import content_id

    groups = ("predictors/tb_smap", "predictors/tb_multifreq")
    before = {g: content_id(str(store / g)) for g in groups}
    values = open_group(str(store), "predictors/tb_multifreq")["TB18.7H"].values
    ingest(str(twin), str(store), sources=TB_SOURCES, progress=False)
    assert {g: content_id(str(store / g)) for g in groups} == before
    assert not before["predictors/tb_smap"].startswith("listing:")  # a digest of the values, not of file stamps
    np.testing.assert_array_equal(open_group(str(store), "predictors/tb_multifreq")["TB18.7H"].values, values)


def test_a_tb_outside_the_physical_range_is_one_line(twin, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(twin, src)
    f = sorted(glob.glob(str(src / "smap_e_ft" / "2016" / "*.h5")))[40]
    with h5py.File(f, "r+") as h:
        d = h["Freeze_Thaw_Retrieval_Data_Global/tbv_mean"]
        a = d[:]
        a[0, 2, 3] = 400.0
        d[...] = a
    with pytest.raises(ValidationError, match=r"SMAP_L3_FT_P_E_.*\.h5: tbv_mean holds 400 K; .*\[50, 350\] K"):
        ingest(str(src), str(tmp_path / "store"), sources=["tb_smap"], progress=False)
    assert store_status(str(tmp_path / "store" / "predictors" / "tb_smap")) != "complete"


def test_a_source_without_tb_gets_no_tb_groups(tmp_path):
    generate(
        "tiny",
        "2016-01-01",
        "2016-01-10",
        str(tmp_path / "src"),
        seed=1,
        insitu=False,
        targets_start="2016-01-01",
        progress=False,
    )
    assert not smap_has_tb(glob.glob(str(tmp_path / "src" / "smap_e_ft" / "2016" / "*.h5"))[0])
    res = ingest(str(tmp_path / "src"), str(tmp_path / "store"), sources=TB_SOURCES, progress=False)
    assert res.groups == {}
    assert store_status(str(tmp_path / "store" / "predictors" / "tb_smap")) is None


def test_tb_groups_follow_the_cf_and_acdd_rules(store):
    from ftcloud.testing import cf_problems

    for group in ("predictors/tb_smap", "predictors/tb_multifreq"):
        ds = open_group(str(store), group)
        assert not cf_problems(ds, group), cf_problems(ds, group)
        assert all(ds[v].attrs.get("units") == "K" for v in ds.data_vars)


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_multifreq_items_read_their_days_and_tile_only_and_write_what_one_window_writes(twin, tmp_path, monkeypatch):
    """A work item is one time chunk x one tile: it opens only its days and cells (memory: the item, not the
    year or the region), and the tiled store holds exactly the values of one whole-window item per chunk."""
    from ftcloud.sources import pipelines, regions

    win = region_window("tiny")  # 10 x 13 cells
    chunks = {"time": 16, "pass": 1, "y": 4, "x": 4}
    whole = pipelines.tb_multifreq_recipe(str(twin), win, TARGETS, END, chunks, tile=None)
    tiled = pipelines.tb_multifreq_recipe(str(twin), win, TARGETS, END, chunks, tile=8)
    items = regions.work_items(tiled)
    assert len(items) == 6 * 4  # 90 days in 16-day chunks x (2 x 2 tiles)
    it = items[5]  # days 16..31, rows 0..8, cols 8..13
    from ftcloud.sources import tb as tbmod

    opened, real_open = [], tbmod.open_xarray_file

    def spy(*a, **kw):
        opened.append((kw.get("lazy"), real_open(*a, **kw)))
        return opened[-1][1]

    monkeypatch.setattr(tbmod, "open_xarray_file", spy)
    part = tiled.item_opener(it.urls[0], it.start, it.stop, it.rows, it.cols)
    monkeypatch.undo()
    # every file of the item opened lazily and its TB never read whole (only the item's slice was)
    assert len(opened) == 24 and all(lazy for lazy, _ in opened)
    assert not any(ds["TB"].variable._in_memory for _, ds in opened)
    assert dict(part["TB36.5V"].sizes) == {"time": 16, "pass": 2, "y": 8, "x": 5}
    assert pd.Timestamp(part["time"].values[0]) == pd.Timestamp(TARGETS) + pd.Timedelta(days=16)
    regions.write_recipe(whole, str(tmp_path / "whole"))
    regions.write_recipe(tiled, str(tmp_path / "tiled"))
    a = xr.open_zarr(str(tmp_path / "whole"), mask_and_scale=False)
    b = xr.open_zarr(str(tmp_path / "tiled"), mask_and_scale=False)
    assert len(a.data_vars) >= 12
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values)
