"""End to end on a tiny twin: every source recipe, checked against direct reads of the files."""

from __future__ import annotations

import glob
import os
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.errors import MissingVariableError, SourceFileError, UnitsError, ValidationError
from ftcloud.core.grid import EASE2_25KM, covering_window, region_window
from ftcloud.workflows.ingest import ingest
from ftcloud.io.stores import open_group, store_status
from ftcloud.sources.imerg import imerg_url
from ftcloud.sources.targets import esdr_url, smap_url
from ftcloud.synth import generate

START, END = "2018-12-30", "2019-01-03"
IMERG = ("2019-01-01", "2019-01-02")
WINDOW = region_window("tiny")


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("twin")
    generate("tiny", START, END, str(root / "src"), seed=3, imerg_start=IMERG[0], imerg_end=IMERG[1], progress=False)
    return root / "src"


@pytest.fixture(scope="module")
def store(twin, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "store"
    res = ingest(str(twin), str(out), progress=False)
    assert set(res.groups) >= {"era5land", "imerg", "smap_e_ft", "esdr_ft", "statics", "networks", "cma"}
    return out


def test_all_groups_complete_with_cf_metadata(store):
    for group in (
        "predictors/era5land",
        "predictors/imerg",
        "targets/smap_e_ft",
        "targets/esdr_ft",
        "statics",
        "insitu/cma",
    ):
        assert store_status(str(store / group)) == "complete", group
        ds = open_group(str(store), group)
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and "ftcloud" in ds.attrs["history"]
        if "y" in ds.dims:
            assert ds.sizes["y"] == WINDOW.shape[0] and ds.sizes["x"] == WINDOW.shape[1]
            np.testing.assert_allclose(ds["x"].values, WINDOW.x)
            assert ds["crs"].attrs["grid_mapping_name"] == "lambert_cylindrical_equal_area"
            for v in ds.data_vars:
                assert ds[v].attrs.get("grid_mapping") == "crs", (group, v)
        if "time" in ds.dims and group != "predictors/imerg":
            expected = pd.date_range(START, END, freq="D")
            assert (pd.DatetimeIndex(ds["time"].values) == expected).all(), group


def test_smap_target_equals_the_granules(twin, store):
    ds = open_group(str(store), "targets/smap_e_ft")
    assert ds["smap_e_ft"].dtype == np.uint8
    assert (
        list(ds["smap_e_ft"].attrs["flag_values"]) == [0, 1]
        and ds["smap_e_ft"].attrs["flag_meanings"] == "thawed frozen"
    )
    for day in pd.date_range(START, END, freq="D"):
        with h5py.File(smap_url(str(twin), day)) as f:
            g = f["Freeze_Thaw_Retrieval_Data_Global"]
            raw = g["freeze_thaw"][:]
            x, y = g["x"][:], g["y"][:]
        c0 = int(np.argmin(np.abs(x - WINDOW.x[0])))
        r0 = int(np.argmin(np.abs(y - WINDOW.y[0])))
        raw = raw[:, r0 : r0 + WINDOW.shape[0], c0 : c0 + WINDOW.shape[1]]
        expect = np.where(raw == 254, 255, raw)
        np.testing.assert_array_equal(ds["smap_e_ft"].sel(time=day).values, expect)


def test_esdr_target_is_the_25km_code_split_and_resampled(twin, store):
    ds = open_group(str(store), "targets/esdr_ft")
    src = xr.open_dataset(esdr_url(str(twin), 2019), mask_and_scale=False)
    day = pd.Timestamp("2019-01-02")
    code = src["ft_status"].sel(time=day).values
    got = ds["esdr_ft"].sel(time=day).values
    cov = covering_window(WINDOW, EASE2_25KM, margin=1)
    xs, ys = src["x"].values, src["y"].values
    for i in range(0, WINDOW.shape[0], 3):
        for j in range(0, WINDOW.shape[1], 4):
            # hand: the 25 km cell whose square contains the 9 km cell centre
            col = int((WINDOW.x[j] - EASE2_25KM.x_min) // EASE2_25KM.cell_size)
            row = int((EASE2_25KM.y_max - WINDOW.y[i]) // EASE2_25KM.cell_size)
            c = code[int(np.argmin(np.abs(ys - EASE2_25KM.y(row)))), int(np.argmin(np.abs(xs - EASE2_25KM.x(col))))]
            am = {0: 1, 1: 0, 2: 1, 3: 0}.get(int(c), 255)
            pm = {0: 1, 1: 0, 2: 0, 3: 1}.get(int(c), 255)
            assert (got[0, i, j], got[1, i, j]) == (am, pm)
    assert cov.shape[0] <= src.sizes["y"]


def test_statics_and_auxiliary(twin, store):
    ds = open_group(str(store), "statics")
    for v in ("tci", "aow", "elevation", "land_cover", "koppen", "region", "permafrost_stability"):
        assert v in ds and ds[v].dims == ("y", "x")
    assert ds["tci"].attrs["units"] == "m" and np.isfinite(ds["tci"].values).all()
    assert float(ds["aow"].min()) >= 0 and float(ds["aow"].max()) <= 1
    aux = xr.open_dataset(os.path.join(twin, "auxiliary", "auxiliary_9km.nc"))
    np.testing.assert_array_equal(ds["permafrost_stability"].values, aux["permafrost_stability"].values)
    assert "flag_meanings" in ds["land_cover"].attrs


def test_statics_in_several_row_blocks_equal_one_block(twin, tmp_path):
    """A window taller than the statics' row block (China: 404 rows in blocks of 128) is
    written block by block; each block holds its own rows only."""
    from ftcloud.sources import pipelines, regions

    smap = pipelines.first_smap_url(str(twin), pd.Timestamp(START), END, None)
    one = pipelines.statics_recipe(str(twin), WINDOW, smap, tile=128)
    blocks = pipelines.statics_recipe(str(twin), WINDOW, smap, tile=4)  # 10 rows: blocks of 4, 4, 2
    assert len(blocks.urls) == 3
    regions.write_recipe(one, str(tmp_path / "one"))
    regions.write_recipe(blocks, str(tmp_path / "blocks"))
    a, b = xr.open_zarr(tmp_path / "one"), xr.open_zarr(tmp_path / "blocks")
    assert b.sizes == a.sizes == {"y": WINDOW.shape[0], "x": WINDOW.shape[1]}
    np.testing.assert_array_equal(b["y"].values, WINDOW.y)
    for v in a.data_vars:
        np.testing.assert_array_equal(b[v].values, a[v].values)


def test_era5_predictors_are_physical(store):
    ds = open_group(str(store), "predictors/era5land").load()
    assert ds["stl1"].dims == ("time", "pass", "step", "y", "x")
    assert 220 < float(ds["stl1"].min()) and float(ds["stl1"].max()) < 320
    assert float(ds["swvl1"].min()) >= 0 and float(ds["swvl1"].max()) <= 1
    assert float(ds["pr"].min()) >= 0 and float(ds["sde"].min()) >= 0
    # PM (afternoon) soil is warmer than AM (pre-dawn) on average in winter
    assert float(ds["stl1"].sel({"pass": "PM"}).mean()) > float(ds["stl1"].sel({"pass": "AM"}).mean())


def test_imerg_rate_is_mean_of_two_half_hours(twin, store):
    ds = open_group(str(store), "predictors/imerg")
    assert (pd.DatetimeIndex(ds["time"].values) == pd.date_range(*IMERG, freq="D")).all()
    day = pd.Timestamp(IMERG[1])
    lon, lat = WINDOW.lonlat
    # PM step 1 = 16 h local; tiny spans 101-102.2 E so the UTC hour is 16 - 6.8 -> 9 UTC for every column
    t_end = day + pd.Timedelta(hours=int(np.floor(16 - lon.mean() / 15 + 0.5)))
    vals = []
    for start in (t_end - pd.Timedelta(hours=1), t_end - pd.Timedelta(minutes=30)):
        with h5py.File(imerg_url(str(twin), start)) as f:
            vals.append((f["Grid/precipitation"][0], f["Grid/lat"][:], f["Grid/lon"][:]))
    mean = (vals[0][0] + vals[1][0]) / 2  # (lon, lat)
    glat, glon = vals[0][1], vals[0][2]
    i, j = 4, 6
    # hand bilinear at pixel (i, j)
    fx = (lon[i, j] - glon[0]) / (glon[1] - glon[0])
    fy = (lat[i, j] - glat[0]) / (glat[1] - glat[0])
    x0, y0 = int(fx), int(fy)
    wx, wy = fx - x0, fy - y0
    m = mean.astype("f8")
    expect = (
        m[x0, y0] * (1 - wx) * (1 - wy)
        + m[x0 + 1, y0] * wx * (1 - wy)
        + m[x0, y0 + 1] * (1 - wx) * wy
        + m[x0 + 1, y0 + 1] * wx * wy
    )
    assert float(ds["pr_imerg"].sel(time=day, step=1).sel({"pass": "PM"}).values[i, j]) == pytest.approx(
        expect, rel=1e-5, abs=1e-6
    )


def test_network_stations_keep_names_and_pixels(twin, store):
    ds = open_group(str(store), "insitu/networks")
    meta = pd.read_csv(os.path.join(twin, "insitu", "networks", "stations.csv"))
    assert sorted(ds["station"].values.tolist()) == sorted(meta["station"].astype(str))
    st = str(meta["station"].iloc[0])
    df = pd.read_csv(os.path.join(twin, "insitu", "networks", meta["network"].iloc[0], f"{st}.csv"))
    t = pd.Timestamp(df["timestamp_utc"].iloc[10])
    assert float(ds["tsoil"].sel(station=st, time=t)) == pytest.approx(df["tsoil_degC"].iloc[10], abs=1e-4)
    inside = (ds["pixel_row"] >= 0).values
    assert inside.any()


def test_cma_values_equal_the_csv(twin, store):
    ds = open_group(str(store), "insitu/cma")
    df = pd.read_csv(os.path.join(twin, "insitu", "cma", "t0cm_daily.csv"))
    row = df.iloc[len(df) // 2]
    got = ds["t0_min"].sel(station=str(row["station"]), time=pd.Timestamp(row["date"])).values
    assert float(got) == pytest.approx(row["t0_min_degC"], abs=1e-4)
    assert ds["pixel_row"].dtype == np.int32


# --------------------------------------------------------------------------------------
# failure modes of the other sources


def _copy(twin, tmp_path):
    dst = tmp_path / "src"
    shutil.copytree(twin, dst)
    return dst


def test_missing_smap_granule_is_named_and_nothing_written(twin, tmp_path):
    src = _copy(twin, tmp_path)
    os.remove(smap_url(str(src), pd.Timestamp("2019-01-02")))
    with pytest.raises(
        SourceFileError, match=r"SMAP_L3_FT_P_E_20190102_R18290_001\.h5 is missing; nothing was written"
    ):
        ingest(str(src), str(tmp_path / "store"), sources=["smap_e_ft"], progress=False)
    assert not (tmp_path / "store" / "targets").exists()


def test_esdr_unknown_code_is_an_error(twin, tmp_path):
    import netCDF4

    src = _copy(twin, tmp_path)
    with netCDF4.Dataset(esdr_url(str(src), 2019), "a") as nc:
        nc["ft_status"].set_auto_maskandscale(False)
        nc["ft_status"][0, 0, 0] = 7
    with pytest.raises(ValidationError, match=r"ESDR_FT_25km_2019\.nc: ft_status holds codes \[7\]"):
        ingest(str(src), str(tmp_path / "store"), sources=["esdr_ft"], progress=False)
    assert store_status(str(tmp_path / "store" / "targets" / "esdr_ft")) != "complete"


def test_imerg_wrong_units_is_an_error(twin, tmp_path):
    src = _copy(twin, tmp_path)
    f = sorted(glob.glob(str(src / "imerg" / "*" / "*" / "*" / "*.HDF5")))[3]
    with h5py.File(f, "a") as h:
        h["Grid/precipitation"].attrs["units"] = "kg m-2"
    with pytest.raises((UnitsError, MissingVariableError), match=r"units 'kg m-2', expected 'mm/hr'"):
        ingest(str(src), str(tmp_path / "store"), sources=["imerg"], progress=False)


def test_smap_day_without_retrievals_is_ingested_as_missing(twin, tmp_path):
    """A target day with no retrieval at all (safe mode, swath gap) is data, not an error."""
    import netCDF4

    src = _copy(twin, tmp_path)
    day = pd.Timestamp("2019-01-02")
    with netCDF4.Dataset(smap_url(str(src), day), "a") as nc:
        v = nc["Freeze_Thaw_Retrieval_Data_Global"]["freeze_thaw"]
        v.set_auto_maskandscale(False)
        v[:] = 254
    ingest(str(src), str(tmp_path / "store"), sources=["smap_e_ft"], progress=False)
    ds = open_group(str(tmp_path / "store"), "targets/smap_e_ft")
    assert (ds["smap_e_ft"].sel(time=day).values == 255).all()
    assert (ds["smap_e_ft"].sel(time=pd.Timestamp("2019-01-01")).values != 255).any()
