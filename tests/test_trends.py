"""ftcloud.trends: frozen days, Sen slope, Mann-Kendall (vs pymannkendall), FDR, regional table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import realdata

from ftcloud.errors import ValidationError
from ftcloud.testing import assert_lazy
from ftcloud.trends import fdr, frozen_days, mann_kendall, regional_table, sen_slope

pmk = pytest.importorskip("pymannkendall")


def _pmk(fn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(x)


def _series(rng, npix=160, n=41, nan_frac=0.06):
    """Integer-valued series (many ties) with a trend, NaNs, an all-NaN pixel and short pixels."""
    x = np.round(rng.normal(150, 6, (npix, n)) + np.arange(n) * rng.normal(-0.3, 0.4, (npix, 1)))
    x[rng.random(x.shape) < nan_frac] = np.nan
    x[0] = np.nan  # all NaN
    x[1, :-4] = np.nan  # 4 valid values
    x[2, :-3] = np.nan  # 3 valid
    x[3, :-2] = np.nan  # 2 valid (< min_count 3)
    x[4] = 7.0  # constant: S = 0, var(S) = 0
    x[5, ::2] = np.nan  # every other year
    x[6:12] = np.round(np.cumsum(rng.normal(0, 2, (6, n)), axis=1))  # random walks: significant autocorrelation
    x[8, [3, 17]] = np.nan
    return x


def _close(a, b, rtol=0.0, atol=0.0):
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    return abs(a - b) <= atol + rtol * abs(b)


@pytest.mark.parametrize(
    "variance, oracle",
    [("original", "original_test"), ("hamed_rao", "hamed_rao_modification_test"), ("yue_wang", "yue_wang_modification_test")],
)
def test_mann_kendall_matches_pymannkendall(rng, variance, oracle):
    x = _series(rng)
    n = x.shape[1]
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": np.arange(n)}, attrs={"units": "days"})
    res = mann_kendall(da, variance=variance, min_count=3)
    fn = getattr(pmk, oracle)
    for i in range(x.shape[0]):
        m = int(np.isfinite(x[i]).sum())
        assert int(res.n[i]) == m
        if m < 3:
            assert np.isnan(res.slope[i]) and np.isnan(res.p[i]) and np.isnan(res.tau[i])
            continue
        o = _pmk(fn, x[i])
        ref_slope = o.slope
        assert _close(res.slope[i], ref_slope, rtol=1e-6, atol=1e-12), (i, float(res.slope[i]), ref_slope)
        assert _close(res.p[i], o.p, atol=1e-6), (i, float(res.p[i]), o.p)
        assert _close(res.s[i], o.s, atol=1e-9)
        assert _close(res.var_s[i], o.var_s, rtol=1e-9, atol=1e-9)
        assert _close(res.tau[i], o.Tau, atol=1e-12)
        assert _close(res.z[i], o.z, atol=1e-6)
        assert bool(res.significant[i]) == bool(o.h)
        if variance == "original":  # coordinate 0..n-1 = pymannkendall's index, so intercepts agree
            assert _close(res.intercept[i], o.intercept, rtol=1e-9, atol=1e-9)
    assert res.slope.attrs["units"] == "days year-1"
    assert res.attrs["variance"] == variance


def test_slope_per_unit_of_the_coordinate(rng):
    """A coordinate 1980, 1985, ..., 2020 gives slopes per year (pymannkendall's per step / 5)."""
    x = np.round(rng.normal(0, 3, (20, 9)) + np.arange(9) * 2.0)
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": np.arange(1980, 2021, 5)}, attrs={"units": "days"})
    res = mann_kendall(da, min_count=5)
    s = sen_slope(da, min_count=5)
    for i in range(20):
        o = _pmk(pmk.original_test, x[i])
        assert _close(res.slope[i], o.slope / 5, rtol=1e-12)
        assert _close(s[i], o.slope / 5, rtol=1e-12)
        assert _close(res.p[i], o.p, atol=1e-12)
    assert s.attrs["units"] == "days year-1"
    da2 = da.assign_coords(year=da.year.assign_attrs(units="a"))
    assert mann_kendall(da2, min_count=5).slope.attrs["units"] == "days a-1"
    with pytest.raises(ValidationError, match="regularly spaced"):
        mann_kendall(da.assign_coords(year=[1980, 1981, 1983, 1990, 1991, 1992, 2000, 2001, 2002]), variance="hamed_rao")


def test_sen_slope_is_the_exact_median_and_ci_matches_scipy(rng):
    from scipy.stats import theilslopes

    t = np.array([1.0, 2.0, 4.0, 7.0, 8.0, 12.0, 13.0, 20.0, 21.0, 30.0, 31.0])
    x = rng.normal(0, 1, (30, t.size)) + 0.1 * t
    x[3, [2, 5]] = np.nan  # 9 valid values: 36 pairs (even count)
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": t})
    res = mann_kendall(da, min_count=5)
    s = sen_slope(da, min_count=5)
    for i in range(30):
        ok = np.isfinite(x[i])
        xi, ti = x[i][ok], t[ok]
        slopes = [(xi[j] - xi[k]) / (ti[j] - ti[k]) for k in range(xi.size) for j in range(k + 1, xi.size)]
        assert float(s[i]) == pytest.approx(np.median(slopes), rel=1e-14)
        assert float(res.slope[i]) == float(s[i])
        ref = theilslopes(xi, ti, alpha=0.95)
        assert float(res.slope_low[i]) == pytest.approx(ref.low_slope, rel=1e-14)
        assert float(res.slope_high[i]) == pytest.approx(ref.high_slope, rel=1e-14)
        assert float(res.intercept[i]) == pytest.approx(ref.intercept, rel=1e-12, abs=1e-12)


def test_threaded_scheduler_equals_synchronous_and_is_lazy(rng):
    x = np.round(rng.normal(100, 5, (41, 30, 40)).astype("f4"))
    x[rng.random(x.shape) < 0.05] = np.nan
    da = xr.DataArray(x, dims=("year", "y", "x"), coords={"year": np.arange(1980, 2021)}, attrs={"units": "days"})
    lazy = mann_kendall(da.chunk({"y": 3, "x": 5}), variance="hamed_rao")  # 80 chunks
    assert_lazy(lazy)
    assert_lazy(sen_slope(da.chunk({"y": 3})))
    thr = lazy.compute(scheduler="threads", num_workers=8)
    syn = lazy.compute(scheduler="synchronous")
    eager = mann_kendall(da, variance="hamed_rao")
    for k in ("slope", "p", "z", "var_s", "slope_low", "slope_high", "n"):
        np.testing.assert_array_equal(thr[k].values, syn[k].values)
        np.testing.assert_array_equal(thr[k].values, eager[k].values)
    assert thr.p.dims == ("y", "x")


def test_mann_kendall_rejects_bad_input():
    da = xr.DataArray(np.arange(12.0), dims="time", coords={"time": pd.date_range("2000", periods=12, freq="YS")})
    with pytest.raises(ValidationError, match="dates"):
        mann_kendall(da, dim="time")
    da = xr.DataArray(np.arange(12.0), dims="year", coords={"year": np.arange(12)})
    with pytest.raises(ValidationError, match="variance"):
        mann_kendall(da, variance="bogus")
    with pytest.raises(ValidationError, match="min_count"):
        sen_slope(da, min_count=1)
    with pytest.raises(ValidationError, match="increasing"):
        sen_slope(da.assign_coords(year=np.arange(12)[::-1]))


def test_ersst_chile_real_series():
    """NOAA ERSST v5 off Chile, annual means 1854-2024: README section 4's Sen slopes and taus."""
    path = realdata("ersst_chile_1854_2025/sst.mnmean.nc")
    sst = xr.open_dataset(path)["sst"].load()
    months = sst.time.groupby("time.year").count()
    annual = sst.groupby("time.year").mean("time").sel(year=months.year[months == 12])
    annual = annual.sel(year=slice(1854, 2024))
    assert annual.sizes["year"] == 171
    res = mann_kendall(annual, dim="year")
    table = {  # (lat, lon): (Sen slope degC/decade, Kendall tau)
        (-30, 286): (0.02125, 0.1476), (-30, 288): (0.02275, 0.1567), (-32, 286): (0.02615, 0.1915),
        (-32, 288): (0.02863, 0.2052), (-34, 286): (0.02879, 0.2160), (-34, 288): (0.03064, 0.2266),
        (-36, 286): (0.03448, 0.2634),
    }
    for (lat, lon), (slope10, tau) in table.items():
        r = res.sel(lat=lat, lon=lon)
        assert float(r.slope) * 10 == pytest.approx(slope10, abs=6e-6)
        assert float(r.tau) == pytest.approx(tau, abs=6e-5)
        o = _pmk(pmk.original_test, annual.sel(lat=lat, lon=lon).values.astype("f8"))
        assert float(r.slope) == pytest.approx(o.slope, rel=1e-6)
        assert float(r.p) == pytest.approx(o.p, abs=1e-6)
    for lat, lon in [(-30, 290), (-32, 290), (-34, 290), (-36, 288), (-36, 290)]:  # land: all NaN
        r = res.sel(lat=lat, lon=lon)
        assert np.isnan(r.slope) and np.isnan(r.p) and int(r.n) == 0
    assert res.slope.attrs["units"] == "degC year-1"


def test_fdr_hand_case_and_brute_force(rng):
    p = xr.DataArray([0.001, 0.012, 0.021, 0.045, 0.30, np.nan, 0.026], dims="pixel")
    # m = 6; sorted 0.001 .012 .021 .026 .045 .30 vs k q/m = .00833 .01667 .025 .0333 .04167 .05
    # largest k with p_(k) <= k q/m: k = 4 (0.026 <= 0.0333) -> reject 0.001, 0.012, 0.021, 0.026
    sig = fdr(p, q=0.05)
    assert sig.values.tolist() == [True, True, True, False, False, False, True]
    assert sig.dtype == bool and sig.attrs["q"] == 0.05
    # brute force on random fields, per pass separately
    pv = rng.uniform(0, 1, (2, 50, 40)) ** 3
    pv[rng.random(pv.shape) < 0.1] = np.nan
    da = xr.DataArray(pv, dims=("pass", "y", "x"))
    out = fdr(da, q=0.1, dims=("y", "x"))
    for k in range(2):
        f = pv[k][np.isfinite(pv[k])]
        srt = np.sort(f)
        m = f.size
        below = np.flatnonzero(srt <= np.arange(1, m + 1) * 0.1 / m)
        thr = srt[below[-1]] if below.size else -1.0
        np.testing.assert_array_equal(out.values[k], np.isfinite(pv[k]) & (pv[k] <= thr))
    lazy = fdr(da.chunk({"y": 10}), q=0.1, dims=("y", "x"))
    assert_lazy(lazy)
    np.testing.assert_array_equal(lazy.values, out.values)


def _daily(years, values_for_day):
    t = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31", freq="D")
    return t, np.array([values_for_day(d) for d in t], dtype="u1")


def test_frozen_days_counts_and_missing_rule():
    t = pd.date_range("2019-01-01", "2021-12-31", freq="D")
    ft = np.where((t.month <= 2) | (t.month == 12), 1, 0).astype("u1")  # Jan, Feb, Dec frozen
    ft = np.stack([ft, ft]).T.copy()  # two pixels
    # pixel 1: 2020 (leap) loses 20 % of March-April, still >= 90 % valid -> scaled
    miss = (t.year == 2020) & (t.month.isin([3, 4])) & (t.day <= 6)
    ft[miss, 1] = 255
    # pixel 1: 2021 loses 60 days -> < 90 % valid -> NaN
    ft[(t.year == 2021) & (t.dayofyear <= 60), 1] = 255
    da = xr.DataArray(ft, dims=("time", "pixel"), coords={"time": t})
    fd = frozen_days(da)
    assert fd.dims == ("year", "pixel")
    assert fd.year.values.tolist() == [2019, 2020, 2021]
    np.testing.assert_array_equal(fd[:, 0].values, [31 + 28 + 31, 31 + 29 + 31, 31 + 28 + 31])
    assert fd[0, 1] == 90
    valid = 366 - 12
    assert float(fd[1, 1]) == pytest.approx(91 * 366 / valid)
    assert np.isnan(fd[2, 1])
    assert fd.attrs["units"] == "days" and fd.attrs["cell_methods"] == "time: sum"
    raw = frozen_days(da, scale=False)
    assert float(raw[1, 1]) == 91
    # float input (1/0/NaN) gives the same; lazy stays lazy
    fl = da.astype("f8").where(da != 255)
    np.testing.assert_array_equal(frozen_days(fl).values, fd.values)
    lazy = frozen_days(da.chunk({"time": 200}))
    assert_lazy(lazy)
    np.testing.assert_array_equal(lazy.values, fd.values)
    # a partial first year is NaN
    part = frozen_days(da.sel(time=slice("2019-03-01", None)))
    assert np.isnan(part[0, 0]) and part[1, 0] == 91
    with pytest.raises(ValidationError, match="one value per date"):
        frozen_days(xr.concat([da, da], "time"))


def test_regional_table_planted_slopes():
    years = np.arange(1980, 2021)
    region = np.array([[1, 1, 1, 2], [1, 1, 2, 2], [3, 3, 0, 0]], dtype="u1")
    stab = np.array([[1, 1, 2, 0], [2, 6, 0, 0], [0, 0, 0, 0]], dtype="u1")
    base = np.array([[250, 240, 230, 150], [220, 200, 140, 146], [100, 104, 0, 0]], float)
    slope = np.array([[-0.3, -0.32, -0.2, -0.3], [-0.24, -0.02, -0.34, -0.32], [-0.28, -0.30, 0, 0]])
    fd = base[None] + slope[None] * (years - 1980)[:, None, None]
    da = xr.DataArray(fd, dims=("year", "y", "x"), coords={"year": years}, attrs={"units": "days"})
    flags = {"flag_values": np.array([0, 1, 2, 3], "u1"), "flag_meanings": "none qinghai_tibet northwest north"}
    reg = xr.DataArray(region, dims=("y", "x"), attrs=flags)
    st = xr.DataArray(stab, dims=("y", "x"), attrs={"flag_values": np.array([0, 1, 2, 6], "u1"),
                                                   "flag_meanings": "none very_stable stable seasonally_frozen_ground"})
    tab = regional_table(da, reg, st).set_index("name")
    assert tab.loc["qinghai_tibet", "n_pixels"] == 5
    assert tab.loc["qinghai_tibet", "mean_frozen_days"] == pytest.approx(np.mean([250, 240, 230, 220, 200]) + 20 * np.mean([-0.3, -0.32, -0.2, -0.24, -0.02]))
    assert tab.loc["qinghai_tibet", "sen_slope"] == pytest.approx(np.mean([-0.3, -0.32, -0.2, -0.24, -0.02]))
    assert tab.loc["northwest", "sen_slope"] == pytest.approx(np.mean([-0.3, -0.34, -0.32]))
    assert tab.loc["north", "sen_slope"] == pytest.approx(-0.29)
    assert tab.loc["very_stable", "sen_slope"] == pytest.approx(-0.31)
    assert tab.loc["stable", "sen_slope"] == pytest.approx(-0.22)
    assert tab.loc["seasonally_frozen_ground", "sen_slope"] == pytest.approx(-0.02)
    assert tab.loc["all regions", "n_pixels"] == 10
    assert set(tab["group"]) == {"region", "all", "stability"}
    assert tab.loc["north", "p"] < 1e-6 and bool(tab.loc["north", "significant"])
    assert "none" not in tab.index
    assert tab.attrs["slope_units"] == "days year-1"
