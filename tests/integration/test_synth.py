"""Tests of the digital twin (ftcloud.synth): file contract, determinism, error models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.core.grid import (
    EASE2_25KM,
    EASE2Regridder,
    LatLonRegridder,
    covering_window,
    latlon_source_box,
    region_window,
)
from ftcloud.synth import TwinParameters, generate
from ftcloud.synth import _physics as PH
from ftcloud.synth import writers as W
from ftcloud.core.timeutil import PASSES, request_hours, step_offsets

SHORT = dict(start="2018-02-26", end="2018-03-03", imerg_start="2018-02-28", imerg_end="2018-03-01", progress=False)
SMAP_GROUP = "Freeze_Thaw_Retrieval_Data_Global"


def _hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    out = tmp_path_factory.mktemp("short")
    return out, generate("tiny", out=out, **SHORT)


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """Ten months over a freeze/thaw cycle, for the error statistics."""
    out = tmp_path_factory.mktemp("season")
    return out, generate("tiny", "2017-09-01", "2018-06-30", out, insitu=False, progress=False)


# --------------------------------------------------------------------------------------
# run bookkeeping


def test_summary_and_success_marker(short):
    out, s = short
    assert s["files"]["era5land"] == 2  # Feb and Mar 2018
    assert s["files"]["smap_e_ft"] == 6
    assert s["files"]["esdr_ft"] == 1
    assert s["files"]["imerg"] > 0
    assert s["n_files"] == sum(s["files"].values())
    assert s["bytes"] == sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name not in ("_SUCCESS", ".ftcloud-synth")
    )
    ok = json.loads((out / "_SUCCESS").read_text())
    assert ok["parameters"]["region"] == "tiny" and ok["parameters"]["seed"] == 0
    assert ok["files"] == s["files"]
    params = json.loads((out / "truth" / "parameters.json").read_text())
    assert params["seed"] == 0
    assert params["parameters"]["truth"]["hysteresis_K"] == TwinParameters().truth.hysteresis_K
    assert set(params["planted_warming"]) >= {"qt_very_stable", "qt_unstable", "qt_seasonally_frozen_ground"}
    assert "numpy" in params["software"]


def test_no_temporary_files_left(short):
    out, _ = short
    assert not [p for p in out.rglob("*") if p.name.endswith(W.TMP_SUFFIX)]


def test_deterministic_byte_identical(short, tmp_path):
    out, _ = short
    generate("tiny", out=tmp_path, **SHORT)
    assert _hashes(tmp_path) == _hashes(out)


def test_other_seed_other_data_and_rerun_overwrites(short, tmp_path):
    out, _ = short
    kw = dict(SHORT, imerg_start=None)
    generate("tiny", out=tmp_path, seed=1, insitu=False, **kw)
    a = xr.open_dataset(out / "era5land" / "era5land_201803.nc").stl1.values
    b = xr.open_dataset(tmp_path / "era5land" / "era5land_201803.nc").stl1.values
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.1
    with (
        xr.open_dataset(out / "truth" / "truth_summary_9km.nc") as s0,
        xr.open_dataset(tmp_path / "truth" / "truth_summary_9km.nc") as s1,
    ):
        assert not np.array_equal(s0.magt_1980.values, s1.magt_1980.values)
    # rerun into the same folder with seed 0 regenerates the seed-0 files
    generate("tiny", out=tmp_path, seed=0, insitu=False, **kw)
    h0, h1 = _hashes(out), _hashes(tmp_path)
    for k, v in h1.items():
        if k.startswith(("era5land", "smap_e_ft", "esdr_ft", "auxiliary", "truth/truth_ft")):
            assert h0[k] == v, k
    assert json.loads((tmp_path / "_SUCCESS").read_text())["parameters"]["seed"] == 0


def test_rerun_removes_the_previous_runs_files(tmp_path):
    generate("tiny", "2018-02-26", "2018-03-03", tmp_path, insitu=False, progress=False)
    generate("tiny", "2018-03-02", "2018-03-03", tmp_path, insitu=False, progress=False)
    assert sorted(p.name for p in (tmp_path / "era5land").iterdir()) == ["era5land_201803.nc"]
    assert len(list((tmp_path / "smap_e_ft").rglob("*.h5"))) == 2
    (tmp_path / "era5land" / "my_notes.txt").write_text("kept")
    generate("tiny", "2018-03-02", "2018-03-03", tmp_path, insitu=False, progress=False)
    assert (tmp_path / "era5land" / "my_notes.txt").exists()


def test_interrupted_run_leaves_no_complete_looking_files(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = W.write_smap_day

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(*a, **k)

    monkeypatch.setattr(W, "write_smap_day", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate("tiny", "2018-02-26", "2018-03-03", tmp_path, insitu=False, progress=False)
    assert not (tmp_path / "_SUCCESS").exists()
    assert not (tmp_path / "truth" / "truth_ft_9km.nc").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(W.TMP_SUFFIX)]
    assert len(list((tmp_path / "smap_e_ft").rglob("*.h5"))) == 2


# --------------------------------------------------------------------------------------
# ERA5-Land


def test_pack_int16_never_hits_fill():
    v = np.array([[250.0, 251.5, np.nan], [300.0, 275.0, 260.0]])
    packed, scale, offset = W.pack_int16(v)
    assert packed.dtype == np.int16 and isinstance(scale, np.float64) and isinstance(offset, np.float64)
    assert packed[0, 2] == -32767
    ok = np.isfinite(v)
    assert packed[ok].min() == -32766 and packed[ok].max() == 32766
    assert np.abs(packed[ok] * scale + offset - v[ok]).max() <= scale / 2 + 1e-9
    const, s2, o2 = W.pack_int16(np.full((2, 2), 5.0))
    assert np.allclose(const * s2 + o2, 5.0) and (const != -32767).all()


def test_era5_layout(short):
    out, _ = short
    win = region_window("tiny")
    lats, lons = latlon_source_box(win)
    hours = request_hours(lons)
    files = sorted((out / "era5land").glob("era5land_*.nc"))
    assert [f.name for f in files] == ["era5land_201802.nc", "era5land_201803.nc"]
    for f in files:
        ds = netCDF4.Dataset(f)
        ds.set_auto_maskandscale(False)
        try:
            assert ds.file_format == "NETCDF4"
            assert ds.dimensions["time"].isunlimited()
            assert ds.getncattr("Conventions") == "CF-1.6" and "history" in ds.ncattrs()
            t = ds["time"]
            assert t.dtype == np.int32 and t.units == "hours since 1900-01-01 00:00:00.0" and t.calendar == "gregorian"
            assert t.long_name == "time"
            np.testing.assert_allclose(ds["latitude"][:], lats.astype("f4"))
            np.testing.assert_allclose(ds["longitude"][:], lons.astype("f4"))
            assert ds["latitude"].dtype == np.float32 and ds["latitude"].units == "degrees_north"
            assert ds["longitude"].units == "degrees_east"
            assert np.all(np.diff(ds["latitude"][:]) < 0)
            for name, units in (("stl1", "K"), ("swvl1", "m**3 m**-3"), ("sde", "m"), ("tp", "m")):
                v = ds[name]
                assert v.dimensions == ("time", "latitude", "longitude")
                assert v.dtype == np.int16
                assert v.units == units
                assert v.getncattr("_FillValue") == -32767 and v.getncattr("missing_value") == -32767
                assert isinstance(v.getncattr("scale_factor"), np.float64) and isinstance(
                    v.getncattr("add_offset"), np.float64
                )
                assert (v[:] != -32767).all()  # no sea in tiny
            assert ds["stl1"].long_name == "Soil temperature level 1"
            assert ds["sde"].long_name == "Snow depth"
            hrs = t[:].astype("i8")
            times = np.datetime64("1900-01-01T00", "h") + hrs.astype("timedelta64[h]")
        finally:
            ds.close()
        assert np.all(np.diff(hrs) > 0)
        assert sorted(set(int(h) for h in hrs % 24)) == hours
        days = np.unique(times.astype("datetime64[D]"))
        month = np.datetime64(f.name[9:13] + "-" + f.name[13:15])
        first = max(month.astype("datetime64[D]") - 1, np.datetime64("2018-02-25"))
        last = min((month + 1).astype("datetime64[D]") - 1, np.datetime64("2018-03-03"))
        np.testing.assert_array_equal(days, np.arange(first, last + 1))
        assert times.size == days.size * len(hours)
        x = xr.open_dataset(f)
        assert x.time.values[0] == np.datetime64(str(times[0]), "ns")
        assert 230 < float(x.stl1.min()) and float(x.stl1.max()) < 300
        assert float(x.swvl1.min()) >= 0 and float(x.swvl1.max()) < 0.5
        assert float(x.sde.min()) >= 0 and float(x.tp.min()) >= -1e-6
        x.close()


def test_era5_tp_accumulates_within_utc_day(short):
    out, _ = short
    x = xr.open_dataset(out / "era5land" / "era5land_201803.nc")
    tp = x.tp.values
    hours = pd.DatetimeIndex(x.time.values)
    for day in np.unique(hours.normalize()):
        idx = np.nonzero((hours.normalize() == day) & (hours.hour > 0))[0]
        assert np.all(np.diff(tp[idx], axis=0) >= -2 * float(x.tp.encoding["scale_factor"]))


# --------------------------------------------------------------------------------------
# IMERG


def test_imerg_granules(short):
    out, _ = short
    files = sorted((out / "imerg").rglob("*.HDF5"))
    win = region_window("tiny")
    lats, lons = latlon_source_box(win)
    expected = set()
    for d in np.arange(np.datetime64("2018-02-28"), np.datetime64("2018-03-02")):
        for p in PASSES:
            for o in np.unique(step_offsets(lons, p)):
                for m in (-60, -30):
                    expected.add(d.astype("datetime64[m]") + np.timedelta64(int(o) * 60 + m, "m"))
    got = set()
    for f in files:
        name = f.name
        assert name.startswith("3B-HHR.MS.MRG.3IMERG.") and name.endswith(".V07B.HDF5")
        day, s, e = name.split(".")[4].split("-")
        start = np.datetime64(f"{day[:4]}-{day[4:6]}-{day[6:]}T{s[1:3]}:{s[3:5]}")
        assert e == "E" + str((start + np.timedelta64(29, "m")).astype(object).strftime("%H%M")) + "59"
        assert int(name.split(".")[5]) == start.astype(object).hour * 60 + start.astype(object).minute
        assert f.parent == out / "imerg" / day[:4] / day[4:6] / day[6:]
        got.add(start)
        with h5py.File(f, "r") as h:
            p = h["Grid/precipitation"]
            assert p.dtype == np.float32 and p.shape == (1, h["Grid/lon"].size, h["Grid/lat"].size)
            assert p.attrs["units"] == "mm/hr" and p.attrs["DimensionNames"] == "time,lon,lat"
            assert np.isclose(p.attrs["_FillValue"][0], -9999.9)
            assert (p[...] >= 0).all()
            la, lo = h["Grid/lat"][...], h["Grid/lon"][...]
            assert np.allclose(np.diff(la), 0.1, atol=1e-4) and np.allclose(np.diff(lo), 0.1, atol=1e-4)
            assert la.min() < lats.min() and la.max() > lats.max() and lo.min() < lons.min() and lo.max() > lons.max()
            assert h["Grid/time"].dtype == np.int32
            secs = int(h["Grid/time"][0])
        assert np.datetime64("1980-01-06T00:00:00") + np.timedelta64(secs, "s") == start
    assert got == expected
    ds = xr.open_dataset(files[0], group="Grid", engine="h5netcdf")
    assert ds.precipitation.dims == ("time", "lon", "lat")


# --------------------------------------------------------------------------------------
# SMAP / ESDR / auxiliary / truth


def test_smap_layout(short):
    out, _ = short
    win = region_window("tiny")
    files = sorted((out / "smap_e_ft" / "2018").glob("*.h5"))
    assert [f.name for f in files][0] == "SMAP_L3_FT_P_E_20180226_R18290_001.h5"
    assert len(files) == 6
    with h5py.File(files[0], "r") as h:
        assert "EASE2_global_projection_9km" in h
        assert h["EASE2_global_projection_9km"].attrs["grid_mapping_name"] == b"lambert_cylindrical_equal_area"
    ds = xr.open_dataset(files[0], group=SMAP_GROUP, engine="h5netcdf", mask_and_scale=False)
    ft = ds.freeze_thaw
    assert ft.dims == ("am_pm", "y", "x") and ft.dtype == np.uint8
    assert ft.attrs["_FillValue"] == 254 and list(ft.attrs["flag_values"]) == [0, 1]
    assert ft.attrs["flag_meanings"] == "thawed frozen"
    assert set(np.unique(ft.values)) <= {0, 1, 254}
    np.testing.assert_allclose(ds.x.values, win.x)
    np.testing.assert_allclose(ds.y.values, win.y)
    assert ds.x.attrs["units"] == "m" and ds.x.attrs["standard_name"] == "projection_x_coordinate"
    for name in ("latitude", "longitude", "open_water_body_fraction", "terrain_complexity_index", "altitude_dem"):
        v = ds[name]
        assert v.dims == ("am_pm", "y", "x") and v.dtype == np.float32 and v.attrs["_FillValue"] == -9999.0
    assert ds.terrain_complexity_index.attrs["units"] == "m" and ds.altitude_dem.attrs["units"] == "meters"
    lon, lat = win.lonlat
    np.testing.assert_allclose(ds.latitude.values[0], lat, atol=1e-4)
    assert ds.crs.attrs["grid_mapping_name"] == "lambert_cylindrical_equal_area"
    # decoded: fill becomes NaN
    dec = xr.open_dataset(files[0], group=SMAP_GROUP, engine="h5netcdf")
    assert np.isnan(dec.freeze_thaw.values).sum() == (ft.values == 254).sum()


def test_esdr_layout(short):
    out, _ = short
    win = region_window("tiny")
    w25 = covering_window(win, EASE2_25KM, margin=1)
    f = out / "esdr_ft" / "ESDR_FT_25km_2018.nc"
    raw = netCDF4.Dataset(f)
    try:
        assert raw["time"].dtype == np.int32 and raw["time"].units == "days since 1979-01-01"
        assert raw["time"].calendar == "standard"
        assert raw["ft_status"].dtype == np.uint8 and raw["ft_status"].dimensions == ("time", "y", "x")
        assert raw["ft_status"].getncattr("_FillValue") == 254
    finally:
        raw.close()
    ds = xr.open_dataset(f, mask_and_scale=False)
    np.testing.assert_array_equal(
        ds.time.values, np.arange(np.datetime64("2018-02-26"), np.datetime64("2018-03-04")).astype("datetime64[ns]")
    )
    np.testing.assert_allclose(ds.x.values, w25.x)
    np.testing.assert_allclose(ds.y.values, w25.y)
    assert set(np.unique(ds.ft_status.values)) <= {0, 1, 2, 3, 254}
    assert list(ds.ft_status.attrs["flag_values"]) == [0, 1, 2, 3]
    assert ds.crs.attrs["grid_mapping_name"] == "lambert_cylindrical_equal_area"


def test_targets_start_limits_targets(tmp_path):
    s = generate("tiny", "2018-02-26", "2018-03-03", tmp_path, targets_start="2018-03-01", insitu=False, progress=False)
    assert s["files"]["smap_e_ft"] == 3
    ds = xr.open_dataset(tmp_path / "esdr_ft" / "ESDR_FT_25km_2018.nc")
    assert str(ds.time.values[0])[:10] == "2018-03-01"
    # SMAP never before 2015-04-01, ESDR may be
    s = generate("tiny", "2015-03-30", "2015-04-02", tmp_path, targets_start=None, insitu=False, progress=False)
    assert s["files"]["smap_e_ft"] == 2
    ds = xr.open_dataset(tmp_path / "esdr_ft" / "ESDR_FT_25km_2015.nc")
    assert str(ds.time.values[0])[:10] == "2015-03-30"


def test_auxiliary_and_truth_layout(short):
    out, _ = short
    win = region_window("tiny")
    aux = xr.open_dataset(out / "auxiliary" / "auxiliary_9km.nc")
    np.testing.assert_allclose(aux.x.values, win.x)
    assert aux.lat.dims == ("y", "x")
    for name in ("land_cover", "koppen", "region", "permafrost_stability"):
        raw = xr.open_dataset(out / "auxiliary" / "auxiliary_9km.nc", mask_and_scale=False)[name]
        assert raw.dtype == np.uint8 and "flag_values" in raw.attrs and "flag_meanings" in raw.attrs
        assert len(raw.attrs["flag_values"]) == len(raw.attrs["flag_meanings"].split())
    assert aux.permafrost_stability.attrs["flag_meanings"].split()[1] == "very_stable"
    assert (aux.region.values == 1).all()  # tiny lies on the Qinghai-Tibet Plateau
    assert 3000 < float(aux.elevation.min()) and float(aux.elevation.max()) < 5500
    tr = xr.open_dataset(out / "truth" / "truth_ft_9km.nc", mask_and_scale=False)
    assert tr.ft.dims == ("pass", "time", "y", "x") and tr.ft.dtype == np.uint8
    assert list(tr["pass"].values) == ["AM", "PM"]
    np.testing.assert_array_equal(
        tr.time.values, np.arange(np.datetime64("2018-02-26"), np.datetime64("2018-03-04")).astype("datetime64[ns]")
    )
    assert set(np.unique(tr.ft.values)) <= {0, 1}
    sm = xr.open_dataset(out / "truth" / "truth_summary_9km.nc")
    assert {"magt_1980", "warming_rate", "permafrost_stability", "frozen_days"} <= set(sm.data_vars)
    np.testing.assert_array_equal(sm.permafrost_stability.values, aux.permafrost_stability.values)


def test_insitu_files(short):
    out, _ = short
    st = pd.read_csv(out / "insitu" / "networks" / "stations.csv")
    assert list(st.columns) == ["network", "station", "lat", "lon", "elevation_m", "depth_cm"]
    assert set(st.network) == {"Maqu"} and 5 <= len(st) <= 19
    assert (st.depth_cm == 5).all()
    f = out / "insitu" / "networks" / "Maqu" / f"{st.station[0]}.csv"
    d = pd.read_csv(f)
    assert list(d.columns) == ["timestamp_utc", "tsoil_degC"]
    ts = pd.to_datetime(d.timestamp_utc, format="%Y-%m-%dT%H:%M")
    assert ts.iloc[0] == pd.Timestamp("2018-02-26 00:00") and ts.iloc[-1] == pd.Timestamp("2018-03-03 23:30")
    assert (ts.diff().dropna() == pd.Timedelta("30min")).all()
    cma = pd.read_csv(out / "insitu" / "cma" / "stations.csv", dtype={"station": str})
    assert list(cma.columns) == ["station", "lat", "lon", "elevation_m"] and len(cma) >= 5
    t0 = pd.read_csv(out / "insitu" / "cma" / "t0cm_daily.csv", dtype={"station": str})
    assert list(t0.columns) == ["station", "date", "t0_min_degC", "t0_max_degC"]
    assert len(t0) == len(cma) * 6
    ok = t0.dropna()
    assert (ok.t0_min_degC <= ok.t0_max_degC).all()
    # the 0 cm surface has a larger diurnal range than the 5 cm probes
    rng5 = np.mean(
        [
            pd.read_csv(out / "insitu" / "networks" / "Maqu" / f"{s}.csv")
            .assign(day=lambda x: x.timestamp_utc.str[:10])
            .groupby("day")
            .tsoil_degC.agg(lambda x: x.max() - x.min())
            .mean()
            for s in st.station
        ]
    )
    assert (ok.t0_max_degC - ok.t0_min_degC).mean() > 1.3 * rng5


# --------------------------------------------------------------------------------------
# error models


def _truth(out):
    return xr.open_dataset(out / "truth" / "truth_ft_9km.nc", mask_and_scale=False)


def test_era5_threshold_is_not_the_truth(season):
    out, _ = season
    win = region_window("tiny")
    tr = _truth(out)
    ft = tr.ft.values
    dates = pd.DatetimeIndex(tr.time.values)
    era = xr.open_mfdataset(
        sorted((out / "era5land").glob("*.nc")),
        combine="nested",
        concat_dim="time",
        data_vars="minimal",
        coords="minimal",
        compat="override",
    )
    era = era.drop_duplicates("time").load()
    rg = LatLonRegridder(era.latitude.values, era.longitude.values, win)
    lon, _ = win.lonlat
    agree = []
    for ip, p in enumerate(PASSES):
        off = step_offsets(lon, p)[..., 2]
        assert np.unique(off).size == 1
        want = dates + pd.to_timedelta(int(off.flat[0]), "h")
        e = rg(era.stl1.sel(time=want).values) < 273.15
        agree.append((e == (ft[ip] == 1)).mean())
    a = float(np.mean(agree))
    assert 0.75 < a < 0.97, a


def _smap(out, dates):
    files = sorted((out / "smap_e_ft").rglob("*.h5"))
    arr = np.stack(
        [
            xr.open_dataset(f, group=SMAP_GROUP, engine="h5netcdf", mask_and_scale=False).freeze_thaw.values
            for f in files
        ]
    )
    fd = pd.DatetimeIndex([pd.Timestamp(f.name.split("_")[5]) for f in files])
    return arr.transpose(1, 0, 2, 3), dates.get_indexer(fd)


def test_smap_and_esdr_accuracy_and_independent_errors(season):
    out, _ = season
    win = region_window("tiny")
    tr = _truth(out)
    ft = tr.ft.values
    dates = pd.DatetimeIndex(tr.time.values)
    smap, ti = _smap(out, dates)
    t = ft[:, ti]
    valid = smap <= 1
    assert 0.03 < (~valid).mean() < 0.6  # missing swaths
    acc_smap = (smap[valid] == t[valid]).mean()
    assert 0.8 < acc_smap < 0.96, acc_smap
    es = xr.open_dataset(out / "esdr_ft" / "ESDR_FT_25km_2018.nc", mask_and_scale=False)
    es = xr.concat([xr.open_dataset(out / "esdr_ft" / "ESDR_FT_25km_2017.nc", mask_and_scale=False), es], "time")
    code = EASE2Regridder(covering_window(win, EASE2_25KM, 1), win)(es.ft_status.values)
    assert es.time.size == dates.size
    esdr = np.stack(
        [np.where(code == 254, 254, np.isin(code, (0, 2))), np.where(code == 254, 254, np.isin(code, (0, 3)))]
    )
    ve = esdr <= 1
    acc_esdr = (esdr[ve] == ft[ve]).mean()
    assert 0.82 < acc_esdr < 0.98, acc_esdr
    # ESDR is better than SMAP on frozen soil
    fz = (t == 1) & valid
    fz_e = (ft == 1) & ve
    assert (esdr[fz_e] == 1).mean() > (smap[fz] == 1).mean()
    # errors are (nearly) independent
    e_s = (smap != t) & valid
    e_e = (esdr[:, ti] != t) & ve[:, ti]
    both = valid & ve[:, ti]
    r = np.corrcoef(e_s[both].astype(float), e_e[both].astype(float))[0, 1]
    assert abs(r) < 0.3, r
    assert (e_s & e_e)[both].mean() < 0.5 * min(e_s[both].mean(), e_e[both].mean())


# --------------------------------------------------------------------------------------
# internals


def test_hysteresis_holds_state_in_the_band():
    T = np.array([[1.0], [0.2], [-0.2], [-0.5], [0.1], [0.4], [-0.1]])
    st, last = PH.hysteresis(T, np.array([1], np.uint8), 0.3)
    assert st[:, 0].tolist() == [0, 0, 0, 1, 1, 0, 0] and last[0] == 0
    st, _ = PH.hysteresis(T[1:3], np.array([1], np.uint8), 0.3)
    assert st[:, 0].tolist() == [1, 1]


def test_fields_are_point_evaluable_and_consistent():
    twin = PH.Twin(0, TwinParameters(), PH.day_number("2021-01-01"))
    w = twin.world
    lon = np.array([101.9, 101.90001])
    z = w.elevation(lon, np.array([33.9, 33.9]))
    assert abs(z[0] - z[1]) < 1.0
    win = region_window("demo")
    lo, la = win.lonlat
    zz = w.elevation(lo, la)
    assert 2800 < np.percentile(zz, 5) and np.percentile(zz, 95) < 5200


def test_a_bbox_is_a_region_from_twin_to_store(tmp_path):
    """``--bbox`` / a box as the region: the box of the ``tiny`` region gives tiny's window, the twin records
    the box and the ingest reads it back from the twin (no --region needed), so the store is on that window."""
    import contextlib
    import io

    from ftcloud.cli import main
    from ftcloud.core.grid import REGIONS, region_window
    from ftcloud.io.stores import open_group

    t = REGIONS["tiny"]
    box = f"{t.lon_min:g},{t.lon_max:g},{t.lat_min:g},{t.lat_max:g}"
    w, wt = region_window(box), region_window("tiny")
    assert (w.row0, w.row1, w.col0, w.col1) == (wt.row0, wt.row1, wt.col0, wt.col1) and w.name == box
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["-q", "run", "--dry-run", "--bbox", box, "--start", "2018-01-01", "--end", "2018-12-31"])
    assert rc == 0 and f"ingest plan: {box} ({wt.shape[0]} x {wt.shape[1]} cells)" in buf.getvalue()
    assert (
        main(
            [
                "-q",
                "synth",
                "--region",
                box,
                "--start",
                "2017-01-01",
                "--end",
                "2017-01-05",
                "--out",
                str(tmp_path / "src"),
                "--no-insitu",
            ]
        )
        == 0
    )
    params = json.loads((tmp_path / "src" / "truth" / "parameters.json").read_text())
    assert params["region"]["name"] == box
    assert (
        main(
            [
                "-q",
                "ingest",
                "--source",
                str(tmp_path / "src"),
                "--store",
                str(tmp_path / "store"),
                "--sources",
                "era5land",
            ]
        )
        == 0
    )
    era = open_group(str(tmp_path / "store"), "predictors/era5land")
    np.testing.assert_allclose(era["x"].values, wt.x)
    np.testing.assert_allclose(era["y"].values, wt.y)
