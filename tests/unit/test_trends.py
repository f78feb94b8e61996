"""ftcloud.science.trends: frozen days, Sen slope, Mann-Kendall (vs pymannkendall, false-positive rates, gaps),
FDR, regional table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import realdata

from ftcloud.errors import ValidationError
from ftcloud.testing import assert_lazy
from ftcloud.science.trends import fdr, frozen_days, mann_kendall, regional_table, sen_slope

pmk = pytest.importorskip("pymannkendall")


def _pmk(fn, x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(x, **kw)


def _series(rng, npix=160, n=41, nan_frac=0.06):
    """Integer-valued series (many ties) with a trend, NaNs, an all-NaN pixel and short pixels.

    Pixels 13.. of the first half are complete, the others have ``nan_frac`` of their years missing.
    """
    x = np.round(rng.normal(150, 6, (npix, n)) + np.arange(n) * rng.normal(-0.3, 0.4, (npix, 1)))
    gaps = rng.random(x.shape) < nan_frac
    gaps[13 : npix // 2] = False
    x[gaps] = np.nan
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


@pytest.mark.parametrize("lag", [1, 3, None])
@pytest.mark.parametrize(
    "variance, oracle",
    [
        ("original", "original_test"),
        ("hamed_rao", "hamed_rao_modification_test"),
        ("yue_wang", "yue_wang_modification_test"),
    ],
)
def test_mann_kendall_matches_pymannkendall(rng, variance, oracle, lag):
    """Every statistic of every pixel equals pymannkendall's with the same ``lag``; with gaps the
    corrected variances differ on purpose (true spacing, test_autocorrelation_uses_the_true_spacing),
    so there only S, tau and the slope (which do not depend on var(S)) are compared."""
    x = _series(rng)
    n = x.shape[1]
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": np.arange(n)}, attrs={"units": "days"})
    res = mann_kendall(da, variance=variance, min_count=3, lag=lag)
    fn = getattr(pmk, oracle)
    complete = 0
    for i in range(x.shape[0]):
        m = int(np.isfinite(x[i]).sum())
        assert int(res.n[i]) == m
        if m < 3:
            assert np.isnan(res.slope[i]) and np.isnan(res.p[i]) and np.isnan(res.tau[i])
            continue
        # mann_kendall clips lag to m - 1; pymannkendall needs that done for it
        o = _pmk(fn, x[i], **({} if variance == "original" else {"lag": None if lag is None else min(lag, m - 1)}))
        ref_slope = o.slope
        assert _close(res.slope[i], ref_slope, rtol=1e-6, atol=1e-12), (i, float(res.slope[i]), ref_slope)
        assert _close(res.s[i], o.s, atol=1e-9)
        assert _close(res.tau[i], o.Tau, atol=1e-12)
        if m < n and variance != "original":
            continue
        complete += m == n
        assert _close(res.p[i], o.p, atol=1e-6), (i, float(res.p[i]), o.p)
        assert _close(res.var_s[i], o.var_s, rtol=1e-9, atol=1e-9)
        assert _close(res.z[i], o.z, atol=1e-6)
        assert bool(res.significant[i]) == bool(o.h)
        if variance == "original":  # coordinate 0..n-1 = pymannkendall's index, so intercepts agree
            assert _close(res.intercept[i], o.intercept, rtol=1e-9, atol=1e-9)
    assert complete >= 60  # incl. the constant pixel and the random walks with significant autocorrelation
    assert res.slope.attrs["units"] == "days year-1"
    assert res.attrs["variance"] == variance
    assert res.attrs["lag"] == ("all" if lag is None else lag)


def _ar1(seed, nseries, n, phi):
    """Stationary Gaussian AR(1) series (nseries, n), unit innovations; phi = 0 is white noise."""
    r = np.random.default_rng(seed)
    e = r.standard_normal((nseries, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)  # the stationary distribution: no burn-in needed
    for k in range(1, n):
        x[:, k] = phi * x[:, k - 1] + e[:, k]
    return x


def _mk_exact_size(n, z):
    """P(|S| - 1 > z sd(S)) for n independent continuous values: the exact size of the original test.

    Under H0 every ordering is equally likely, S = n(n-1)/2 - 2 I with I the number of inversions,
    whose distribution is the product of the uniform distributions on 0..k-1, k = 1..n (Mahonian).
    """
    c = np.array([1.0])
    for k in range(1, n + 1):
        c = np.convolve(c, np.full(k, 1.0 / k))
    s = n * (n - 1) // 2 - 2 * np.arange(c.size)
    sd = np.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    return float(c[np.abs(s) - 1 > z * sd].sum())


def _model_size(n, z, variance):
    """Approximate size of a lag-1-corrected test on white noise (see test_false_positive_rates).

    Model: S normal with its nominal variance and independent of the lag-1 (rank) autocorrelation
    r ~ N(-1/n, 1/n) (Bartlett; detrended white noise); the test rejects when
    |z_S| > z sqrt(f(r)), f = 1 + 2 (1 - 1/n) r (Yue-Wang) or 1 + 2 (n-3)/n r when
    |r| > z/sqrt(n), else 1 (Hamed-Rao). E over r by quadrature.
    """
    from scipy.stats import norm

    r = np.linspace(-1, 1, 40001)
    w = norm.pdf(r, -1 / n, 1 / np.sqrt(n))
    w /= w.sum()
    if variance == "yue_wang":
        f = 1 + 2 * (1 - 1 / n) * r
    else:
        f = np.where(np.abs(r) > z / np.sqrt(n), 1 + 2 * (n - 3) / n * r, 1.0)
    return float(np.sum(w * 2 * norm.sf(z * np.sqrt(np.maximum(f, 1e-12)))))


def _ar1_original_size(n, z, phi):
    """Approximate size of the original test on AR(1) noise: S normal with the true var(S) of
    Hamed & Rao (1998, eq. 7-8), var(S) = var0 (1 + 2/(n(n-1)(n-2)) sum_k (n-k)(n-k-1)(n-k-2)
    rho_k), with the rank autocorrelation of a Gaussian AR(1), rho_k = 6/pi asin(phi^k / 2)."""
    from scipy.stats import norm

    k = np.arange(1, n)
    rho = 6 / np.pi * np.arcsin(phi**k / 2)
    ratio = 1 + 2 / (n * (n - 1) * (n - 2)) * np.sum((n - k) * (n - k - 1) * (n - k - 2) * rho)
    sd = np.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    return float(2 * norm.sf((z * sd + 1) / (sd * np.sqrt(ratio))))


FPR_N, FPR_SEEDS, FPR_LEN, FPR_ALPHA = 5000, (11, 12, 13, 14), 41, 0.05


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_false_positive_rates():
    """How often each var(S) declares a trend in trendless noise, n = 41, alpha = 0.05.

    20 000 series per case (4 seeds x 5 000, one vectorised mann_kendall call each). Every
    tolerance is 4 binomial standard errors of the rate over N series, SE = sqrt(p (1-p) / N)
    (p: the bound it is compared with), plus a stated allowance where the expectation is a model:

    * white noise, original: the exact size of the test (exact null distribution of S), +-4 SE.
    * white noise, hamed_rao / yue_wang (lag 1): liberal by construction, because var(S) is
      multiplied by a factor estimated from a 41-value lag-1 autocorrelation (SE ~ 1/sqrt(41) =
      0.16): an underestimated factor rejects more often than an overestimated one rejects less.
      Expected: :func:`_model_size` (Yue-Wang 0.074, Hamed-Rao 0.058), +-(4 SE + 0.01 for the
      model's normal approximations). The old default (all lags, Yue-Wang) gives ~0.46 here.
    * AR(1), phi = 0.3 and 0.5, original: liberal (serial correlation inflates var(S) by ~1.7 and
      ~2.7): expected :func:`_ar1_original_size` (0.135, 0.226) +-(4 SE + 0.02 for its normal
      approximation of S), and above alpha
      by at least 4 SE: the test must be able to see the problem the corrections address.
    * AR(1), yue_wang: it must remove at least half of the original test's excess over alpha,
      rate - alpha <= (rate_original - alpha) / 2 (+ 4 SE of that difference).
    * AR(1), hamed_rao: it screens the rank autocorrelation at +-1.96/sqrt(41) = +-0.31, which
      the lag-1 rank correlation of phi = 0.3 (0.29) does not reach in most series, so at
      phi = 0.3 it only has to be below the original (by 4 SE of the difference) and at
      phi = 0.5 remove a third of the excess: rate - alpha <= 2/3 (rate_original - alpha) + 4 SE.
    """
    from scipy.stats import norm

    z = norm.ppf(1 - FPR_ALPHA / 2)
    n, ntot = FPR_LEN, FPR_N * len(FPR_SEEDS)
    se = lambda p: np.sqrt(p * (1 - p) / ntot)  # noqa: E731
    rates = {}
    for phi in (0.0, 0.3, 0.5):
        hits = {v: 0 for v in ("original", "hamed_rao", "yue_wang")}
        for seed in FPR_SEEDS:
            x = _ar1(seed, FPR_N, n, phi)
            da = xr.DataArray(x, dims=("series", "year"), coords={"year": np.arange(1980, 1980 + n)})
            for v in hits:
                res = mann_kendall(da, variance=v, alpha=FPR_ALPHA)  # the default lag
                assert int(res.n.min()) == n
                hits[v] += int(res.significant.sum())
        rates[phi] = {v: h / ntot for v, h in hits.items()}
    # shown by: python -m pytest -q -s tests/unit/test_trends.py -k false_positive
    print(f"\nMann-Kendall false-positive rates, n = {n}, alpha = {FPR_ALPHA}, {ntot} series each (default lag):")
    for phi, r in rates.items():
        print(
            f"  {'white noise' if phi == 0 else f'AR(1) phi={phi}':<15}"
            + "".join(f"  {v} {p:.4f}" for v, p in r.items())
        )

    white = rates[0.0]
    p0 = _mk_exact_size(n, z)
    assert 0.045 < p0 < 0.05  # the continuity correction makes the test slightly conservative
    assert abs(white["original"] - p0) <= 4 * se(p0), (white, p0)
    for v in ("hamed_rao", "yue_wang"):
        pm = _model_size(n, z, v)
        assert abs(white[v] - pm) <= 4 * se(pm) + 0.01, (v, white[v], pm)
    for phi in (0.3, 0.5):
        r = rates[phi]
        po = _ar1_original_size(n, z, phi)
        assert abs(r["original"] - po) <= 4 * se(po) + 0.02, (phi, r["original"], po)
        assert r["original"] > FPR_ALPHA + 4 * se(FPR_ALPHA), (phi, r)
        # SE of a difference as if the two rates were independent: they come from the same series
        # and are positively correlated, so this overstates the noise (a looser bound)
        excess = r["original"] - FPR_ALPHA
        sd_yw = np.hypot(se(r["yue_wang"]), se(r["original"]) / 2)
        assert r["yue_wang"] - FPR_ALPHA <= excess / 2 + 4 * sd_yw, (phi, r)
        if phi == 0.3:
            assert r["hamed_rao"] <= r["original"] - 4 * np.hypot(se(r["hamed_rao"]), se(r["original"])), (phi, r)
        else:
            sd_hr = np.hypot(se(r["hamed_rao"]), 2 / 3 * se(r["original"]))
            assert r["hamed_rao"] - FPR_ALPHA <= 2 / 3 * excess + 4 * sd_hr, (phi, r)


def test_default_lag_is_one(rng):
    x = _ar1(3, 50, 41, 0.4)
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": np.arange(41)})
    for v, oracle in (("hamed_rao", pmk.hamed_rao_modification_test), ("yue_wang", pmk.yue_wang_modification_test)):
        res = mann_kendall(da, variance=v)
        assert res.attrs["lag"] == 1
        for i in range(0, 50, 7):
            assert _close(res.var_s[i], _pmk(oracle, x[i], lag=1).var_s, rtol=1e-9)
        assert not np.allclose(res.var_s, mann_kendall(da, variance=v, lag=None).var_s)
    for bad in (0, -1, 1.5, "all", True):
        with pytest.raises(ValidationError, match="lag"):
            mann_kendall(da, variance="yue_wang", lag=bad)


def _brute_variance(t, x, variance, lag, step, alpha=0.05):
    """var(S) of one series with gaps, written out pair by pair on the true time axis.

    The lag-k autocorrelation r_k = sum over the pairs of valid values with t_j - t_i = k step of
    y_i y_j, divided by sum y_i^2 (y: the values detrended with the Sen slope, ranks for
    Hamed-Rao, minus their mean); the pair-by-pair definition of mann_kendall's Notes.
    """
    from scipy.stats import norm, rankdata

    ok = np.isfinite(x)
    tv, xv = t[ok], x[ok]
    m = xv.size
    slopes = [(xv[j] - xv[i]) / (tv[j] - tv[i]) for i in range(m) for j in range(i + 1, m)]
    beta = np.median(slopes)
    d = xv - beta * tv
    if variance == "hamed_rao":
        d = rankdata(d)
    y = d - d.mean()
    c0 = np.sum(y * y)
    top = m - 1 if lag is None else min(lag, m - 1)
    r = np.zeros(top + 1)
    for i in range(m):
        for j in range(i + 1, m):
            k = (tv[j] - tv[i]) / step
            assert k == round(k)
            k = int(round(k))
            if k <= top:
                r[k] += y[i] * y[j] / c0
    var0 = m * (m - 1) * (2 * m + 5) / 18.0  # continuous values: no ties
    if variance == "yue_wang":
        return var0 * (1 + 2 * sum((1 - k / m) * r[k] for k in range(1, top + 1)))
    bound = norm.ppf(1 - alpha / 2) / np.sqrt(m)
    sig = [k for k in range(1, top + 1) if abs(r[k]) > bound]
    return var0 * (1 + 2 / (m * (m - 1) * (m - 2)) * sum((m - k) * (m - k - 1) * (m - k - 2) * r[k] for k in sig))


@pytest.mark.parametrize("variance", ["hamed_rao", "yue_wang"])
def test_autocorrelation_uses_the_true_spacing(variance):
    """With missing years the corrected var(S) pairs values by their true distance in time.

    The oracle is :func:`_brute_variance`, a loop over all pairs of valid values on the time
    coordinate. pymannkendall cannot be the oracle here: it drops the NaNs and so treats the
    values on either side of a gap as neighbours; it is used only to show that the case tells the
    two apart (and it still equals mann_kendall on complete series, test above).
    """
    step = {"hamed_rao": 1.0, "yue_wang": 5.0}[variance]  # lags count coordinate steps
    n = 41
    t = 1900 + step * np.arange(n)
    x = 0.08 * np.arange(n) + _ar1(5, 4, n, 0.7)
    x[0, [3, 4, 9, 17, 18, 19, 30, 36]] = np.nan
    x[1, 1::2] = np.nan  # every other step: no pairs at odd lags
    x[2, [0, 1, 2, 40]] = np.nan  # leading and trailing gaps only
    x[3, np.random.default_rng(9).random(n) < 0.3] = np.nan
    da = xr.DataArray(x, dims=("pixel", "year"), coords={"year": t})
    oracle = {"hamed_rao": pmk.hamed_rao_modification_test, "yue_wang": pmk.yue_wang_modification_test}[variance]
    squeezed_differs = 0
    for lag in (1, 2, 5, None):
        res = mann_kendall(da, variance=variance, lag=lag, min_count=5)
        for i in range(x.shape[0]):
            want = _brute_variance(t, x[i], variance, lag, step)
            assert float(res.var_s[i]) == pytest.approx(want, rel=1e-12), (i, lag)
            m = int(np.isfinite(x[i]).sum())
            squeezed = _pmk(oracle, x[i], lag=None if lag is None else min(lag, m - 1)).var_s
            squeezed_differs += abs(squeezed - want) > 0.01 * want
    assert squeezed_differs >= 8  # the gaps matter: squeezing them out gives another var(S)
    # every other step: no lag-1 pair exists, so a lag-1 Yue-Wang correction is exactly 1
    if variance == "yue_wang":
        r1 = mann_kendall(da.isel(pixel=[1]), variance=variance, lag=1, min_count=5)
        assert float(r1.var_s[0]) == pytest.approx(21 * 20 * 47 / 18.0, rel=1e-14)


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
        mann_kendall(
            da.assign_coords(year=[1980, 1981, 1983, 1990, 1991, 1992, 2000, 2001, 2002]), variance="hamed_rao"
        )


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
        (-30, 286): (0.02125, 0.1476),
        (-30, 288): (0.02275, 0.1567),
        (-32, 286): (0.02615, 0.1915),
        (-32, 288): (0.02863, 0.2052),
        (-34, 286): (0.02879, 0.2160),
        (-34, 288): (0.03064, 0.2266),
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
    st = xr.DataArray(
        stab,
        dims=("y", "x"),
        attrs={
            "flag_values": np.array([0, 1, 2, 6], "u1"),
            "flag_meanings": "none very_stable stable seasonally_frozen_ground",
        },
    )
    tab = regional_table(da, reg, st).set_index("name")
    assert tab.loc["qinghai_tibet", "n_pixels"] == 5
    assert tab.loc["qinghai_tibet", "mean_frozen_days"] == pytest.approx(
        np.mean([250, 240, 230, 220, 200]) + 20 * np.mean([-0.3, -0.32, -0.2, -0.24, -0.02])
    )
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


def test_regional_table_passes_variance_and_lag():
    """The regional series' test uses the requested var(S): compared with pymannkendall on the
    stratum means computed here (complete series, so pymannkendall is a valid oracle)."""
    years = np.arange(1980, 2021)
    region = np.array([[1, 1, 2], [1, 2, 2]], dtype="u1")
    fd = 150 - 0.2 * (years - 1980)[:, None, None] + 6 * _ar1(21, 6, years.size, 0.6).T.reshape(years.size, 2, 3)
    da = xr.DataArray(fd, dims=("year", "y", "x"), coords={"year": years}, attrs={"units": "days"})
    reg = xr.DataArray(
        region,
        dims=("y", "x"),
        attrs={"flag_values": np.array([0, 1, 2], "u1"), "flag_meanings": "none qinghai_tibet northwest"},
    )
    means = {"qinghai_tibet": fd[:, region == 1].mean(axis=1), "northwest": fd[:, region == 2].mean(axis=1)}
    for variance, lag, fn in (
        ("original", 1, pmk.original_test),
        ("yue_wang", 1, pmk.yue_wang_modification_test),
        ("yue_wang", None, pmk.yue_wang_modification_test),
        ("hamed_rao", 2, pmk.hamed_rao_modification_test),
    ):
        tab = regional_table(da, reg, variance=variance, lag=lag).set_index("name")
        assert tab.attrs["variance"] == variance and tab.attrs["lag"] == ("all" if lag is None else lag)
        for name, series in means.items():
            o = _pmk(fn, series) if variance == "original" else _pmk(fn, series, lag=lag)
            assert tab.loc[name, "p"] == pytest.approx(o.p, abs=1e-9), (variance, lag, name)
            assert tab.loc[name, "sen_slope"] == pytest.approx(o.slope, rel=1e-9)
    p_default = regional_table(da, reg, variance="yue_wang").set_index("name")["p"]
    assert np.allclose(p_default, regional_table(da, reg, variance="yue_wang", lag=1).set_index("name")["p"])
    with pytest.raises(ValidationError, match="variance"):
        regional_table(da, reg, variance="bogus")
    with pytest.raises(ValidationError, match="lag"):
        regional_table(da, reg, variance="yue_wang", lag=0)


def test_trends_cli_lag_option(monkeypatch, capsys):
    """`ftcloud trends --lag` reaches wf_trends.trends (default 1, 'all' = None); bad values are refused."""
    from ftcloud import cli
    from ftcloud.cli import main
    from ftcloud.workflows import trends as wf_trends

    seen = []
    # this test is about option parsing: the store/product checks at the door are tested in tests/integration/faults
    monkeypatch.setattr(cli, "_check_store", lambda *a, **k: {})
    monkeypatch.setattr(cli, "_check_product", lambda *a, **k: None)

    def fake_trends(product, store, out, **kw):
        from ftcloud.report.results import TrendsResults

        seen.append(kw)
        return TrendsResults(out=out)

    monkeypatch.setattr(wf_trends, "trends", fake_trends)
    base = ["-q", "trends", "--product", "p.zarr", "--store", "s", "--out", "o", "--variance", "yue_wang"]
    assert main(base) == 0
    assert main(base + ["--lag", "3"]) == 0
    assert main(base + ["--lag", "all"]) == 0
    assert [k["lag"] for k in seen] == [1, 3, None]
    assert all(k["variance"] == "yue_wang" for k in seen)
    for bad in ("0", "x", "1.5"):
        with pytest.raises(SystemExit) as e:
            main(base + ["--lag", bad])
        assert e.value.code == 2
        assert "--lag takes an integer >= 1 or 'all'" in capsys.readouterr().err
