"""ftcloud.science.validation: FT from soil temperature (real Svartberget record), station sampling, CA_F/CA_T/CA_O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import realdata

from ftcloud.errors import UnitsError, ValidationError
from ftcloud.testing import assert_lazy
from ftcloud.science.validation import (
    DAILY_AGGREGATIONS,
    MIN_TABLE_COUNT,
    classification_accuracy,
    ft_from_temperature,
    mask_sparse_accuracies,
    sample_at_stations,
)


def _svartberget() -> xr.DataArray:
    path = realdata("svartberget/Svartberget_meteo_2019.csv")
    df = pd.read_csv(path, sep=";")
    t = pd.to_datetime(df[["year", "month", "day", "hour", "minute"]])  # local standard time (UTC+1)
    return xr.DataArray(
        df["Tsoil"].to_numpy("f8"), dims="time", coords={"time": t.to_numpy()}, attrs={"units": "degC"}, name="Tsoil"
    )


def test_svartberget_daily_mean_below_zero_on_23_days():
    tsoil = _svartberget()
    assert tsoil.sizes["time"] == 17520
    ft = ft_from_temperature(tsoil, how="mean")
    assert ft.dtype == np.uint8 and ft.sizes["time"] == 365
    frozen = pd.DatetimeIndex(ft.time.values[ft.values == 1])
    assert len(frozen) == 23
    assert frozen[0] == pd.Timestamp("2019-01-24") and frozen[-1] == pd.Timestamp("2019-02-15")
    assert (np.diff(frozen.asi8) == pd.Timedelta(days=1).value).all()  # contiguous
    assert (ft.values != 255).all()
    assert ft.attrs["daily_aggregation"] == "mean" and ft.attrs["min_samples_per_day"] == 24
    # the same in kelvin, and lazily in chunks that cut days in half
    k = (tsoil + 273.15).assign_attrs(units="K")
    np.testing.assert_array_equal(ft_from_temperature(k).values, ft.values)
    lazy = ft_from_temperature(tsoil.chunk({"time": 1000}))
    assert_lazy(lazy)
    np.testing.assert_array_equal(lazy.values, ft.values)
    # "any half-hour below zero" freezes more days than the daily mean, "max" fewer
    n_any = int((ft_from_temperature(tsoil, how="any") == 1).sum())
    n_max = int((ft_from_temperature(tsoil, how="max") == 1).sum())
    assert n_max <= 23 <= n_any and n_any > n_max


def _hourly(values, start="2020-01-01"):
    t = pd.date_range(start, periods=len(values), freq="h")
    return xr.DataArray(np.asarray(values, "f8"), dims="time", coords={"time": t}, attrs={"units": "degC"})


def test_threshold_is_strict_and_aggregations():
    day1 = [-1.0] * 12 + [1.0] * 12  # mean exactly 0 -> thawed (strict < 0)
    day2 = [-0.001] * 24  # frozen
    day3 = [0.0] * 24  # exactly 0 degC: thawed
    day4 = [-5.0] * 5 + [np.nan] * 19  # 5 valid samples < 12 -> missing
    da = _hourly(day1 + day2 + day3 + day4)
    assert ft_from_temperature(da, how="mean").values.tolist() == [0, 1, 0, 255]
    assert ft_from_temperature(da, how="min").values.tolist() == [1, 1, 0, 255]
    assert ft_from_temperature(da, how="any").values.tolist() == [1, 1, 0, 255]
    assert ft_from_temperature(da, how="max").values.tolist() == [0, 1, 0, 255]
    assert ft_from_temperature(da, min_samples=5).values.tolist() == [0, 1, 0, 1]
    assert ft_from_temperature(da, threshold=0.5, how="max").values.tolist() == [0, 1, 1, 255]
    k = (da + 273.15).assign_attrs(units="K")
    assert ft_from_temperature(k).values.tolist() == [0, 1, 0, 255]
    # a day with no sample at all inside the span is missing
    gap = da.isel(time=np.r_[0:24, 48:96])
    assert ft_from_temperature(gap, min_samples=5).values.tolist() == [0, 255, 0, 1]
    # daily input: thresholded value by value, NaN -> 255
    daily = xr.DataArray(
        [-0.1, 0.0, np.nan, 2.0],
        dims="time",
        coords={"time": pd.date_range("2020-01-01", periods=4)},
        attrs={"units": "°C"},
    )
    assert ft_from_temperature(daily).values.tolist() == [1, 0, 255, 0]
    out = ft_from_temperature(da)
    assert out.attrs["flag_meanings"] == "thawed frozen" and out.attrs["threshold_degC"] == 0.0


def test_units_are_never_guessed():
    da = _hourly([1.0] * 24)
    with pytest.raises(UnitsError, match="no units"):
        ft_from_temperature(da.assign_attrs(units=None).drop_attrs())
    with pytest.raises(UnitsError, match="degF"):
        ft_from_temperature(da.assign_attrs(units="degF"))
    with pytest.raises(ValidationError, match="how"):
        ft_from_temperature(da, how="median")


def _grid_product():
    t = pd.date_range("2019-01-01", periods=4)
    ft = np.arange(2 * 4 * 3 * 5).reshape(2, 4, 3, 5) % 2
    return xr.DataArray(
        ft.astype("u1"),
        dims=("pass", "time", "y", "x"),
        coords={
            "pass": ["AM", "PM"],
            "time": t,
            "y": np.arange(3) * -9.0,
            "x": np.arange(5) * 9.0,
            "lat": (("y", "x"), np.zeros((3, 5))),
        },
        attrs={"grid_mapping": "crs"},
    )


def test_sample_at_stations():
    prod = _grid_product()
    rows = xr.DataArray(
        [0, 2, -1, 1],
        dims="station",
        coords={"station": ["a", "b", "c", "d"], "network": ("station", ["N1", "N1", "N2", "N2"])},
    )
    cols = xr.DataArray([4, 0, 3, 5], dims="station")  # d: col 5 is outside the 5-column window
    s = sample_at_stations(prod, rows, cols)
    assert s.dims == ("pass", "time", "station") and s.dtype == np.uint8
    np.testing.assert_array_equal(s.sel(station="a").values, prod.values[:, :, 0, 4])
    np.testing.assert_array_equal(s.sel(station="b").values, prod.values[:, :, 2, 0])
    assert (s.sel(station=["c", "d"]).values == 255).all()
    assert s.network.values.tolist() == ["N1", "N1", "N2", "N2"] and "lat" not in s.coords
    f = sample_at_stations(prod.astype("f4"), [0, -1], [1, 1])
    assert f.dims == ("pass", "time", "station") and np.isnan(f.values[..., 1]).all()
    lazy = sample_at_stations(prod.chunk({"time": 2}), rows, cols)
    assert_lazy(lazy)
    np.testing.assert_array_equal(lazy.values, s.values)
    ds = sample_at_stations(prod.to_dataset(name="ft"), rows, cols)
    assert ds.ft.dims == ("pass", "time", "station")


def _pairs():
    """Product and reference at 3 stations on 6 days: Jan (frozen season), Mar (transition), Jul."""
    t = pd.to_datetime(["2019-01-10", "2019-01-11", "2019-03-05", "2019-03-06", "2019-07-01", "2019-07-02"])
    #                  Jan  Jan  Mar  Mar  Jul  Jul
    prod = np.array(
        [
            [1, 1, 0, 1, 0, 0],  # station s1 (network A)
            [1, 0, 1, 255, 0, 1],  # s2 (A)
            [0, 1, 0, 0, 0, 0],
        ],
        "u1",
    )  # s3 (B)
    ref = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 255, 0, 0, 0, 0]], "u1")
    coords = {"station": ["s1", "s2", "s3"], "network": ("station", ["A", "A", "B"]), "time": t}
    return (
        xr.DataArray(prod, dims=("station", "time"), coords=coords),
        xr.DataArray(ref, dims=("station", "time"), coords=coords),
    )


def test_classification_accuracy_hand_counted():
    prod, ref = _pairs()
    # valid pairs: 16 (s2 Mar-06 product missing, s3 Jan-11 reference missing)
    # N[F/F]: s1 Jan x2, s2 Jan-10, -> 3 ; N[T/F]: s1 Mar-05, s2 Jan-11, s3 Jan-10 -> 3
    # N[F/T]: s1 Mar-06, s2 Mar-05, s2 Jul-02 -> 3 ; N[T/T]: 16 - 9 = 7
    r = classification_accuracy(prod, ref, dim=("station", "time"))
    assert (int(r.N_FF), int(r.N_TF), int(r.N_FT), int(r.N_TT), int(r.n)) == (3, 3, 3, 7, 16)
    assert float(r.CA_F) == pytest.approx(3 / 6)
    assert float(r.CA_T) == pytest.approx(7 / 10)
    assert float(r.CA_O) == pytest.approx(10 / 16)
    assert r.CA_F.attrs["units"] == "1"
    by = classification_accuracy(prod, ref, dim=("station", "time"), by=["season", "network"])
    assert by.season.values.tolist() == ["frozen", "transition", "thawed"]
    assert by.network.values.tolist() == ["A", "B"]
    fz = by.sel(season="frozen")
    # frozen season, network A: s1 (F/F, F/F), s2 (F/F, T/F) -> FF 3, TF 1; network B: s3 Jan-10 T/F
    assert (int(fz.N_FF.sel(network="A")), int(fz.N_TF.sel(network="A"))) == (3, 1)
    assert (int(fz.N_FF.sel(network="B")), int(fz.N_TF.sel(network="B")), int(fz.n.sel(network="B"))) == (0, 1, 1)
    assert float(fz.CA_F.sel(network="A")) == 0.75 and np.isnan(fz.CA_T.sel(network="A"))  # no thawed reference
    tr = by.sel(season="transition", network="A")  # s1: T/F, F/T; s2: F/T (Mar-06 missing)
    assert (int(tr.N_TF), int(tr.N_FT), int(tr.N_FF), int(tr.N_TT)) == (1, 2, 0, 0)
    th = by.sel(season="thawed")
    assert int(th.N_TT.sum()) == 5 and int(th.N_FT.sum()) == 1
    total = by[["N_FF", "N_TF", "N_TT", "N_FT"]].sum(("season", "network"))
    assert [int(total[k]) for k in ("N_FF", "N_TF", "N_TT", "N_FT")] == [3, 3, 7, 3]
    # per station (kept dim) and lazily
    per = classification_accuracy(prod, ref, dim="time")
    assert per.n.values.tolist() == [6, 5, 5]
    lazy = classification_accuracy(
        prod.chunk({"time": 2}), ref.chunk({"time": 3}), dim=("station", "time"), by="season"
    )
    assert_lazy(lazy)
    eager = classification_accuracy(prod, ref, dim=("station", "time"), by="season")
    for k in eager.data_vars:
        np.testing.assert_array_equal(lazy[k].values, eager[k].values)


def test_classification_accuracy_by_pass_and_end_to_end():
    prod = _grid_product()
    rows = xr.DataArray([0, 2], dims="station", coords={"station": ["a", "b"], "network": ("station", ["N", "N"])})
    cols = xr.DataArray([4, 0], dims="station")
    sampled = sample_at_stations(prod, rows, cols)
    ref = xr.DataArray(
        np.ones((2, 4), "u1"), dims=("station", "time"), coords={"station": ["a", "b"], "time": prod.time.values}
    )
    r = classification_accuracy(sampled, ref, dim=("time", "station"))
    assert r.CA_F.dims == ("pass",)
    for p in ("AM", "PM"):
        v = sampled.sel(**{"pass": p}).values
        assert int(r.N_FF.sel(**{"pass": p})) == int((v == 1).sum())
    r2 = classification_accuracy(sampled, ref, dim=("pass", "time", "station"), by="pass")
    assert r2.N_FF.dims == ("pass",) and r2["pass"].values.tolist() == ["AM", "PM"]
    np.testing.assert_array_equal(r2.N_FF.values, r.N_FF.values)
    with pytest.raises(ValidationError, match="cannot group"):
        classification_accuracy(sampled, ref, dim="time", by="landcover")
    # float inputs: 1 / 0 / NaN
    rf = classification_accuracy(sampled.astype("f4"), ref.astype("f8"), dim=("time", "station"))
    np.testing.assert_array_equal(rf.N_FF.values, r.N_FF.values)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("units", ["K", "degC"])
def test_threshold_exactly_at_zero_in_the_inputs_precision(dtype, units):
    """A value stored exactly at 0 degC (273.15 K) is thawed in float32 as in float64; one ulp below is frozen.

    np.float32(273.15) = 273.149993896484375: converted to degC in float64 it is -6.1e-6 and a
    float64 comparison would call it frozen.
    """
    dt = np.dtype(dtype)
    at = np.asarray(273.15 if units == "K" else 0.0, dt)
    below, above = np.nextafter(at, dt.type(-np.inf)), np.nextafter(at, dt.type(np.inf))
    vals = np.array([at, below, above], dt)
    assert vals.dtype == dt and vals[1] < vals[0] < vals[2]
    daily = xr.DataArray(
        vals, dims="time", coords={"time": pd.date_range("2020-01-01", periods=3)}, attrs={"units": units}
    )
    assert ft_from_temperature(daily).values.tolist() == [0, 1, 0]
    assert ft_from_temperature(daily.chunk({"time": 2})).values.tolist() == [0, 1, 0]
    # sub-daily: every hour of a day at the value; all aggregations agree
    hourly = xr.DataArray(
        np.repeat(vals, 24),
        dims="time",
        coords={"time": pd.date_range("2020-01-01", periods=72, freq="h")},
        attrs={"units": units},
    )
    for how in DAILY_AGGREGATIONS:
        assert ft_from_temperature(hourly, how=how).values.tolist() == [0, 1, 0], how
    assert ft_from_temperature(daily).attrs["threshold_in_source_units"] == float(at)


def test_mask_sparse_accuracies_uses_each_accuracys_own_count():
    assert MIN_TABLE_COUNT == 20
    df = pd.DataFrame({"N_FF": [3, 500, 0], "N_TF": [1, 20, 0], "N_TT": [600, 2, 0], "N_FT": [30, 17, 0]})
    df["n"] = df[["N_FF", "N_TF", "N_TT", "N_FT"]].sum(axis=1)
    df["CA_F"], df["CA_T"], df["CA_O"] = (
        df.N_FF / (df.N_FF + df.N_TF),
        df.N_TT / (df.N_TT + df.N_FT),
        (df.N_FF + df.N_TT) / df.n,
    )
    got = mask_sparse_accuracies(df)
    # row 0: 4 frozen pairs -> CA_F masked; 630 thawed -> kept. row 1: 19 thawed pairs -> CA_T masked
    assert np.isnan(got.CA_F[0]) and got.CA_T[0] == 600 / 630 and got.CA_O[0] == 603 / 634
    assert got.CA_F[1] == 500 / 520 and np.isnan(got.CA_T[1]) and got.CA_O[1] == 502 / 539
    assert got[["CA_F", "CA_T", "CA_O"]].iloc[2].isna().all()
    assert (got[["N_FF", "N_TF", "N_TT", "N_FT", "n"]] == df[["N_FF", "N_TF", "N_TT", "N_FT", "n"]]).all().all()
    assert not np.isnan(mask_sparse_accuracies(df, min_count=4).CA_F[0])
    ds = xr.Dataset.from_dataframe(df)
    np.testing.assert_array_equal(mask_sparse_accuracies(ds)["CA_T"].values, got.CA_T.values)
    with pytest.raises(ValidationError, match="N_FF"):
        mask_sparse_accuracies(df.drop(columns="N_FF"))


def test_the_run_report_masks_accuracies_from_too_few_pixel_days():
    """fusion_by_season masks an accuracy whose denominator is below MIN_TABLE_COUNT (CA_T = 0.00 from one
    thawed pixel-day was printed as a finding); the counts stay."""
    from ftcloud.report.html import fusion_by_season
    from ftcloud.report.results import ModelCards
    from ftcloud.science.validation import MIN_TABLE_COUNT

    row = {"product": "fused", "N_FF": 40, "N_TF": 10, "N_TT": 0, "N_FT": 1}  # one thawed pixel-day, wrong
    row |= {"n": 51, "CA_F": 40 / 50, "CA_T": 0.0, "CA_O": 40 / 51, "CA_O_lo": 0.7, "CA_O_hi": 0.9}
    card = {"metrics": {"common_vs_truth": {"frozen": {"table": [row], "gains": []}}}}
    df = fusion_by_season(ModelCards("models", {"AM": card}))
    r = df.iloc[0]
    assert r["CA_T"] is None and r["CA_F"] == pytest.approx(80.0) and r["CA_O"] == pytest.approx(100 * 40 / 51)
    assert r["n"] == 51 and MIN_TABLE_COUNT > 1
    few = dict(row, N_FF=5, N_TF=0, N_TT=3, N_FT=1, n=9)
    df = fusion_by_season(ModelCards("models", {"AM": {"metrics": {"common_vs_truth": {"all": {"table": [few]}}}}}))
    assert df.iloc[0][["CA_F", "CA_T", "CA_O", "CA_O_lo", "CA_O_hi"]].isna().all()


def test_accuracy_bars_are_in_percent_from_zero_and_say_what_they_omit(tmp_path, monkeypatch):
    import pandas as pd

    from ftcloud.report import figures as F

    rows = []
    for net, (ff, tf, tt, ft) in {"all": (90, 10, 80, 20), "Maqu": (45, 5, 3, 1)}.items():
        n = ff + tf + tt + ft
        rows.append(
            {
                "product": "ConvLSTM_FT",
                "network": net,
                "season": "all",
                "pass": "AM",
                "N_FF": ff,
                "N_TF": tf,
                "N_TT": tt,
                "N_FT": ft,
                "n": n,
                "CA_F": ff / (ff + tf),
                "CA_T": tt / (tt + ft),
                "CA_O": (ff + tt) / n,
            }
        )
    drawn = {}
    monkeypatch.setattr(F, "_save", lambda fig, path: drawn.setdefault("fig", fig) and path)
    F.accuracy_bars(pd.DataFrame(rows), str(tmp_path / "a.png"), by="network")
    axes = drawn["fig"].axes
    assert all(ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 100 for ax in axes)
    assert axes[0].get_ylabel() == "accuracy (%)"
    heights = sorted(round(b.get_height(), 1) for b in axes[0].patches if np.isfinite(b.get_height()))
    assert heights == [90.0, 90.0]  # CA_F of all and Maqu in %, not fractions
    ca_t = [t.get_text() for t in axes[1].texts]
    assert "80" in ca_t and "n < 20" in ca_t  # Maqu's CA_T rests on 4 thawed station-days
    ca_f = [t.get_text() for t in axes[0].texts]
    assert sorted(ca_f) == ["90", "90\nn=50"]  # 100 pairs: a plain bar; Maqu's 45 + 5 frozen days: its count shown
    assert all(axes[1].get_xlim()[0] <= t.get_position()[0] <= axes[1].get_xlim()[1] for t in axes[1].texts)


def test_ease2_maps_carry_a_labelled_graticule(tmp_path, monkeypatch):
    """FT maps and slope maps of an EASE2 window draw latitude/longitude lines labelled in degrees."""
    import pandas as pd
    import xarray as xr

    from ftcloud.core.grid import region_window
    from ftcloud.report import figures as F

    w = region_window("demo")
    times = pd.date_range("2020-01-01", periods=1)
    da = xr.DataArray(np.ones((1, *w.shape), "u1"), dims=("time", "y", "x"), coords={"time": times, **w.coords()})
    drawn = []
    monkeypatch.setattr(F, "_save", lambda fig, path: drawn.append(fig) or path)
    F.ft_maps({"P": da}, times, str(tmp_path / "m.png"))
    labels = [t.get_text() for t in drawn[0].axes[0].texts]
    lon, lat = w.lonlat
    assert labels and all(t[-2:] in ("°N", "°E") for t in labels), labels
    assert {t[-1] for t in labels} == {"N", "E"}
    shown = sorted(float(t[:-2]) for t in labels)
    # the labelled lines lie within the window's own latitudes and longitudes (an independent check)
    assert all(min(lat.min(), lon.min()) - 1 <= v <= max(lat.max(), lon.max()) + 1 for v in shown)
    assert any(lat.min() <= v <= lat.max() for v in shown) and any(lon.min() <= v <= lon.max() for v in shown)
