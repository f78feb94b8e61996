"""Frozen-day counts, per-pixel Sen slope and Mann-Kendall trend tests, FDR field significance.

Layout (STYLE habit 1): the ``_*_rows`` / ``_*_kernel`` functions work on plain numpy arrays
and know nothing about attributes; the public functions validate their inputs, call the
kernels through :func:`xarray.apply_ufunc` with ``dask="parallelized"`` (lazy, one task per
chunk, no global state, so they are safe under dask's threaded scheduler) and stamp CF
metadata on the way out.

Conventions shared by every function here
-----------------------------------------
* Slopes are per unit of the **coordinate** of ``dim`` (years 1980..2020 -> per year; a
  coordinate 1980, 1985, ... still gives per year), never per index step. Their units are
  ``"<units of the data> <unit of the coordinate>-1"``; the coordinate's unit is its ``units``
  attribute or, when it has none, the name of ``dim`` (``"days year-1"``).
* NaN-aware: each pixel's NaNs are left out of S, var(S) and the pair slopes (pymannkendall's
  "skip"), and a pixel with fewer than ``min_count`` valid values gets NaN everywhere (its ``n``
  is still reported). The autocorrelation corrections keep the true spacing of the values
  around a gap (pymannkendall squeezes the gaps out; see :func:`mann_kendall`).
* The Mann-Kendall statistics of complete series follow pymannkendall 1.4 (original_test,
  hamed_rao_modification_test, yue_wang_modification_test with the same ``lag``) to
  floating-point precision; the corrected variants default to ``lag=1`` (pymannkendall: all).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr, ndtri

from ftcloud.errors import ValidationError
from ftcloud.study import MIN_TREND_YEARS
from ftcloud.core.metadata import flag_names, history_stamp

__all__ = ["frozen_days", "sen_slope", "mann_kendall", "fdr", "regional_table", "VARIANCE_METHODS"]

#: the var(S) variants mann_kendall offers
VARIANCE_METHODS = ("original", "hamed_rao", "yue_wang")

# Output fields of the Mann-Kendall kernel, in order, with their dtypes.
_MK_FIELDS = ("slope", "slope_low", "slope_high", "intercept", "s", "var_s", "tau", "z", "p", "n")
_PAIR_BUDGET = 1 << 21  # pair slopes held per block (16 MiB of float64)


# --------------------------------------------------------------------------------------
# numpy kernels (no attrs, no xarray)


def _pair_differences(x: np.ndarray) -> np.ndarray:
    """All x[:, j] - x[:, i] for i < j, ordered by lag (d = j - i) then by i: shape (P, n(n-1)/2)."""
    p, n = x.shape
    out = np.empty((p, n * (n - 1) // 2), dtype=np.float64)
    off = 0
    for d in range(1, n):
        seg = n - d
        np.subtract(x[:, d:], x[:, :-d], out=out[:, off : off + seg])
        off += seg
    return out


def _pair_steps(t: np.ndarray) -> np.ndarray:
    """t[j] - t[i] for i < j in the order of :func:`_pair_differences`."""
    n = t.size
    return np.concatenate([t[d:] - t[:-d] for d in range(1, n)]) if n > 1 else np.empty(0)


def _median_sorted(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Median of the first ``m`` entries of each (ascending) row of ``s``; NaN where m == 0."""
    mm = np.maximum(m, 1)
    rows = np.arange(s.shape[0])
    lo = s[rows, (mm - 1) // 2]
    hi = s[rows, mm // 2]
    return np.where(m > 0, (lo + hi) / 2, np.nan)


def _tie_term(xs: np.ndarray) -> np.ndarray:
    """sum over tie groups t(t-1)(2t+5) of each row; ``xs`` sorted ascending with NaN last.

    Walks each row once: an element that continues a run of equal values, making it t long,
    adds f(t) - f(t-1) = 6 (t^2 - 1) with f(t) = t(t-1)(2t+5). NaN never equals anything.
    """
    p, n = xs.shape
    if n < 2:
        return np.zeros(p)
    xt = np.ascontiguousarray(xs.T)  # (n, P): the run scan is vectorised across pixels
    same = xt[1:] == xt[:-1]
    run = np.ones(p)
    acc = np.zeros(p)
    for k in range(n - 1):
        sk = same[k]
        run = np.where(sk, run + 1, 1.0)
        acc += np.where(sk, run * run - 1, 0.0)
    return 6.0 * acc


def _count_below(s: np.ndarray, m: np.ndarray, value: float, strict: bool) -> np.ndarray:
    """Per row of ascending ``s`` (first ``m`` entries valid): how many are < value (<= if not strict)."""
    rows = np.arange(s.shape[0])
    lo = np.zeros(s.shape[0], np.intp)
    hi = m.astype(np.intp).copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        v = s[rows, np.minimum(mid, s.shape[1] - 1)]
        go_right = (v < value) if strict else (v <= value)
        lo = np.where(active & go_right, mid + 1, lo)
        hi = np.where(active & ~go_right, mid, hi)


def _acf_rows(y: np.ndarray, maxlag: int) -> np.ndarray:
    """Autocorrelation r_k, k = 0..maxlag, of rows on a regular axis with gaps: (P, maxlag+1).

    ``y`` is centred over each row's valid values and 0 at its gaps, so

    .. math:: r_k = \\frac{\\sum_{i:\\ i,\\ i+k\\ \\mathrm{valid}} y_i\\, y_{i+k}}{\\sum_{i\\ \\mathrm{valid}} y_i^2}

    sums over the pairs of valid values exactly k axis steps apart (the true spacing, not the
    series with its gaps squeezed out). Without gaps this is pymannkendall's estimator (biased
    autocovariance over lag 0); a missing partner counts as zero covariance, as the m - k pairs
    of a complete series are divided by m.
    """
    p, n = y.shape
    acov = np.zeros((p, maxlag + 1))
    for lag in range(0, min(maxlag, n - 1) + 1):
        acov[:, lag] = np.einsum("ij,ij->i", y[:, : n - lag], y[:, lag:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return acov / acov[:, :1]


def _variance_correction(
    x: np.ndarray, valid: np.ndarray, m: np.ndarray, beta_step: np.ndarray, method: str, alpha: float, lag: int | None
) -> np.ndarray:
    """n/n* factor of Hamed & Rao (1998) or Yue & Wang (2004) of rows on a regular axis (P, n).

    Each row is detrended at its true positions, ``x_i - i * beta_step`` (i = 1..n along the
    axis, NaN at the gaps), and its autocorrelation (of the ranks for Hamed-Rao) taken over
    pairs of valid values k steps apart (:func:`_acf_rows`), k = 1..L with L = m - 1, or
    ``min(lag, m - 1)``. Without gaps these are pymannkendall's operations, in its order.
    """
    p, n = x.shape
    pos = np.arange(1, n + 1, dtype=np.float64)
    xd = x - pos[None, :] * beta_step[:, None]  # NaN at the gaps
    mf = m.astype(np.float64)
    maxlag = n - 1
    lags = np.arange(maxlag + 1)
    last = (m - 1) if lag is None else np.minimum(lag, m - 1)
    use = (lags[None, :] >= 1) & (lags[None, :] <= last[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "hamed_rao":
            # rank among the row's valid values (NaN compares False); average ranks for ties
            less = (xd[:, None, :] < xd[:, :, None]).sum(axis=2)
            equal = (xd[:, None, :] == xd[:, :, None]).sum(axis=2)
            ranks = less + (equal + 1) / 2.0
            mean = np.where(valid, ranks, 0.0).sum(axis=1) / mf
            y = np.where(valid, ranks - mean[:, None], 0.0)
            acf = _acf_rows(y, maxlag)
            bound = ndtri(1 - alpha / 2) / np.sqrt(mf)
            outside = ~((acf <= bound[:, None]) & (acf >= -bound[:, None]))
            w = (mf[:, None] - lags) * (mf[:, None] - lags - 1) * (mf[:, None] - lags - 2)
            sni = np.sum(np.where(use & outside, w * acf, 0.0), axis=1)
            return 1 + 2 / (mf * (mf - 1) * (mf - 2)) * sni
        # yue_wang
        mean = np.where(valid, xd, 0.0).sum(axis=1) / mf
        y = np.where(valid, xd - mean[:, None], 0.0)
        acf = _acf_rows(y, maxlag)
        sni = np.sum(np.where(use, (1 - lags[None, :] / mf[:, None]) * acf, 0.0), axis=1)
        return 1 + 2 * sni


def _mk_rows(
    x: np.ndarray,
    t: np.ndarray,
    dt: np.ndarray,
    *,
    variance: str,
    alpha: float,
    min_count: int,
    lag: int | None,
    step: float,
    slope_only: bool,
) -> np.ndarray:
    """Mann-Kendall + Sen on the rows of ``x`` (P, n) float64; returns (len(_MK_FIELDS), P)."""
    p, n = x.shape
    out = np.full((len(_MK_FIELDS), p), np.nan)
    valid = ~np.isnan(x)
    m = valid.sum(axis=1)
    out[9] = m
    ok = m >= max(min_count, 2)
    if not ok.any():
        return out
    if not ok.all():  # only the pixels worth the work
        sub = _mk_rows(
            x[ok], t, dt, variance=variance, alpha=alpha, min_count=min_count, lag=lag, step=step, slope_only=slope_only
        )
        out[:, ok] = sub
        return out
    d = _pair_differences(x)
    d /= dt[None, :]  # dt > 0: sgn(slope) = sgn(x_j - x_i)
    d.sort(axis=1)  # NaN (pairs with a missing value) sort last
    npairs = m * (m - 1) // 2
    beta = _median_sorted(d, npairs)
    out[0] = beta
    if slope_only:
        return out
    xs = np.sort(x, axis=1)
    ts = np.sort(np.where(valid, t[None, :], np.nan), axis=1)
    out[3] = _median_sorted(xs, m) - _median_sorted(ts, m) * beta
    # S = #positive - #negative pair slopes, read off the sorted slopes
    s = (npairs - _count_below(d, npairs, 0.0, strict=False)).astype(np.float64) - _count_below(
        d, npairs, 0.0, strict=True
    )
    mf = m.astype(np.float64)
    var_s = (mf * (mf - 1) * (2 * mf + 5) - _tie_term(xs)) / 18.0
    if variance != "original":
        var_s = var_s * _variance_correction(x, valid, m, beta * step, variance, alpha, lag)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(var_s)
        z = np.where(s > 0, (s - 1) / sd, np.where(s < 0, (s + 1) / sd, 0.0))
        # Sen (1968) eq. 2.6 confidence interval, with scipy.stats.theilslopes' index rounding
        zq = ndtri(alpha / 2)  # negative
        hi_f = np.rint((npairs - zq * sd) / 2)
        lo_f = np.rint((npairs + zq * sd) / 2) - 1
    good = np.isfinite(sd)
    rows = np.arange(p)
    hi = np.minimum(np.where(good, hi_f, 0), npairs - 1).astype(np.intp)
    lo = np.maximum(np.where(good, lo_f, 0), 0).astype(np.intp)
    out[1] = np.where(good, d[rows, lo], np.nan)
    out[2] = np.where(good, d[rows, hi], np.nan)
    out[4] = s
    out[5] = var_s
    out[6] = s / npairs
    out[7] = z
    out[8] = 2 * ndtr(-np.abs(z))
    return out


def _mk_kernel(
    x: np.ndarray,
    t: np.ndarray,
    variance: str = "original",
    alpha: float = 0.05,
    min_count: int = MIN_TREND_YEARS,
    lag: int | None = 1,
    step: float = 1.0,
    slope_only: bool = False,
) -> tuple[np.ndarray, ...] | np.ndarray:
    """Mann-Kendall/Sen over the last axis of ``x`` (any leading shape); one array per field
    (only the slope array when ``slope_only``)."""
    lead = x.shape[:-1]
    n = x.shape[-1]
    flat = np.asarray(x, dtype=np.float64).reshape(-1, n)
    t = np.asarray(t, dtype=np.float64)
    dt = _pair_steps(t)
    res = np.empty((len(_MK_FIELDS), flat.shape[0]))
    npairs = max(1, n * (n - 1) // 2)
    block = max(1, min(flat.shape[0], _PAIR_BUDGET // npairs))
    if variance == "hamed_rao":  # ranks compare all pairs of values: (P, n, n)
        block = max(1, min(block, (_PAIR_BUDGET // 2) // max(1, n * n)))
    for a in range(0, flat.shape[0], block):
        res[:, a : a + block] = _mk_rows(
            flat[a : a + block],
            t,
            dt,
            variance=variance,
            alpha=alpha,
            min_count=min_count,
            lag=lag,
            step=step,
            slope_only=slope_only,
        )
    res = res.reshape((len(_MK_FIELDS),) + lead)
    if slope_only:
        return res[0]
    return tuple(res[i] for i in range(len(_MK_FIELDS)))


def _bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over all non-NaN entries (NaN stays NaN)."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    out = np.full(flat.shape, np.nan)
    ok = ~np.isnan(flat)
    q = flat[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        ranked = q[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(ranked[::-1])[::-1]
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out[ok] = res
    return out.reshape(np.shape(p))


# --------------------------------------------------------------------------------------
# helpers of the wrappers


def _coord_values(da: xr.DataArray, dim: str) -> np.ndarray:
    if dim not in da.dims:
        raise ValidationError(f"dimension {dim!r} not found; the data has dims {da.dims}")
    if dim not in da.coords:
        raise ValidationError(
            f"dimension {dim!r} has no coordinate; assign one (e.g. years) so that slopes have a unit"
        )
    c = da[dim].values
    if np.issubdtype(c.dtype, np.datetime64) or c.dtype == object:
        raise ValidationError(
            f"coordinate {dim!r} holds dates; slopes are per unit of the coordinate, so give it numbers "
            f"(e.g. da.groupby('time.year').mean() gives a 'year' coordinate)"
        )
    t = c.astype(np.float64)
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValidationError(f"coordinate {dim!r} must be strictly increasing")
    return t


def _coord_unit(da: xr.DataArray, dim: str) -> str:
    return str(da[dim].attrs.get("units", dim))


def _slope_units(da: xr.DataArray, dim: str) -> str:
    u = da.attrs.get("units")
    return f"{u} {_coord_unit(da, dim)}-1" if u not in (None, "", "1") else f"{_coord_unit(da, dim)}-1"


def _core_chunked(da: xr.DataArray, dim: str) -> xr.DataArray:
    return da.chunk({dim: -1}) if da.chunks is not None else da


def _check_lag(lag, who: str) -> int | None:
    """``lag`` as an int >= 1 or None (all lags); anything else is an error naming ``who``."""
    if lag is None:
        return None
    if isinstance(lag, (bool, np.bool_)) or not isinstance(lag, (int, np.integer)) or int(lag) < 1:
        raise ValidationError(f"{who}: lag must be an integer >= 1 (coordinate steps) or None (all lags), got {lag!r}")
    return int(lag)


def _check_min_count(min_count: int) -> int:
    if int(min_count) < 2:
        raise ValidationError(f"min_count must be >= 2 (a slope needs two values), got {min_count}")
    return int(min_count)


# --------------------------------------------------------------------------------------
# public API


def frozen_days(ft: xr.DataArray, dim: str = "time", min_valid: float = 0.9, scale: bool = True) -> xr.DataArray:
    """Number of frozen days per calendar year and pixel.

    Parameters
    ----------
    ft : xarray.DataArray
        Daily FT codes along ``dim`` (uint8 0 thawed, 1 frozen, anything else missing, e.g. 255;
        or float 1 frozen / 0 thawed / NaN missing). One value per date; other dims (``pass``,
        ``y``, ``x``) are kept.
    dim : str
        The time dimension (datetime64 coordinate).
    min_valid : float
        Minimum fraction of the calendar year's days (365 or 366) that must hold a valid
        (frozen or thawed) value; years below it are NaN. Days outside the series' span count
        as missing, so a partial first/last year is NaN unless it is nearly complete.
    scale : bool
        Scale the frozen count to the full year (see Notes). ``False`` reports the raw count.

    Returns
    -------
    xarray.DataArray
        ``frozen_days`` (year, ...) float64 [days], ``cell_methods = "time: sum"``; lazy when
        ``ft`` is dask-backed.

    Notes
    -----
    Missing-day rule. With ``N_F`` frozen days, ``N_V`` valid days and ``D`` days in the year:

    .. math:: FD = N_F \\cdot D / N_V \\quad \\text{if } N_V / D \\ge \\text{min\\_valid},
              \\text{ else NaN}

    i.e. missing days are assumed to be frozen as often as the valid days of the same year. This
    is unbiased when the gaps fall at random; gaps concentrated in one season bias it, which is
    why ``min_valid`` defaults to 0.9.

    Examples
    --------
    >>> fd = frozen_days(ds["ft"].sel({"pass": "AM"}))  # doctest: +SKIP
    """
    if dim not in ft.dims:
        raise ValidationError(f"frozen_days: dimension {dim!r} not found; dims are {ft.dims}")
    if not 0 < min_valid <= 1:
        raise ValidationError(f"frozen_days: min_valid is a fraction in (0, 1], got {min_valid}")
    times = pd.DatetimeIndex(ft[dim].values)
    days = times.normalize()
    if days.has_duplicates:
        raise ValidationError(
            f"frozen_days: {dim!r} holds more than one value per date (first duplicate "
            f"{days[days.duplicated()][0]:%Y-%m-%d}); aggregate to daily FT first (e.g. ft_from_temperature)"
        )
    frozen, valid = ft == 1, (ft == 0) | (ft == 1)  # uint8 codes or floats (NaN compares False)
    year = xr.DataArray(times.year.values, dims=dim, name="year")
    n_f = frozen.groupby(year).sum(dim)
    n_v = valid.groupby(year).sum(dim)
    years = n_f["year"].values
    ndays = xr.DataArray(
        np.where(pd.to_datetime([f"{y}-01-01" for y in years]).is_leap_year, 366, 365),
        dims="year",
        coords={"year": years},
    )
    ok = n_v >= min_valid * ndays
    with np.errstate(invalid="ignore", divide="ignore"):
        val = n_f * ndays / n_v if scale else n_f.astype(np.float64)
    out = val.where(ok).astype(np.float64)
    out.name = "frozen_days"
    out["year"].attrs = {"long_name": "calendar year"}
    out.attrs = {
        "long_name": "number of frozen days per calendar year",
        "units": "days",
        "cell_methods": "time: sum",
        "missing_day_rule": (
            f"frozen_days = frozen_count * days_in_year / valid_days if valid_days >= "
            f"{min_valid} * days_in_year, else NaN"
            if scale
            else f"frozen_days = frozen_count if valid_days >= {min_valid} * days_in_year, else NaN"
        ),
        "history": history_stamp("frozen_days"),
    }
    return out


def sen_slope(da: xr.DataArray, dim: str = "year", min_count: int = MIN_TREND_YEARS) -> xr.DataArray:
    """Theil-Sen slope per pixel: the exact median of all pairwise slopes.

    Parameters
    ----------
    da : xarray.DataArray
        Series along ``dim`` (numeric, strictly increasing coordinate). NaNs are dropped per pixel.
    dim : str
        Dimension of the series.
    min_count : int
        Minimum number of valid values; pixels with fewer are NaN.

    Returns
    -------
    xarray.DataArray
        ``sen_slope`` [units of ``da`` per unit of the ``dim`` coordinate, e.g. "days year-1"];
        lazy for dask input.

    Notes
    -----
    .. math:: \\beta = \\operatorname{median}_{i<j} \\frac{x_j - x_i}{t_j - t_i}

    over the pairs where both values are valid, with ``t`` the coordinate of ``dim``; for an even
    number of pairs the mean of the two middle slopes.

    Examples
    --------
    >>> sen_slope(frozen_days(ft))  # doctest: +SKIP
    """
    t = _coord_values(da, dim)
    min_count = _check_min_count(min_count)
    res = xr.apply_ufunc(
        _mk_kernel,
        _core_chunked(da, dim),
        input_core_dims=[[dim]],
        output_core_dims=[[]],
        kwargs={"t": t, "min_count": min_count, "slope_only": True},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    res.name = "sen_slope"
    res.attrs = {
        "long_name": f"Theil-Sen slope of {da.attrs.get('long_name', da.name or 'the series')}",
        "units": _slope_units(da, dim),
        "cell_methods": f"{dim}: median (of pairwise slopes)",
        "min_count": min_count,
        "history": history_stamp("sen_slope"),
    }
    return res


def mann_kendall(
    da: xr.DataArray,
    dim: str = "year",
    variance: str = "original",
    alpha: float = 0.05,
    min_count: int = MIN_TREND_YEARS,
    lag: int | None = 1,
) -> xr.Dataset:
    """Per-pixel Mann-Kendall trend test with Sen slope and its confidence interval.

    Parameters
    ----------
    da : xarray.DataArray
        Series along ``dim``; NaNs are dropped per pixel.
    dim : str
        Dimension of the series (numeric, strictly increasing coordinate).
    variance : {"original", "hamed_rao", "yue_wang"}
        var(S): the tie-corrected original, or the autocorrelation corrections of Hamed & Rao
        (1998) or Yue & Wang (2004) as pymannkendall implements them (see Notes). The corrected
        variants need a regularly spaced coordinate (gaps as NaN).
    alpha : float
        Significance level: of the two-sided test (``significant``), of the slope confidence
        interval (1 - alpha) and of Hamed-Rao's screening of the rank autocorrelations.
    min_count : int
        Minimum number of valid values per pixel (else NaN; the normal approximation of S is
        usually trusted from about 10 values). Hamed-Rao needs at least 3.
    lag : int or None
        Highest autocorrelation lag of the corrected variants, in steps of the coordinate
        (default 1; clipped to m - 1); ``None`` uses all lags 1..m - 1, pymannkendall's default.
        Ignored by ``variance="original"``. See Notes for why the default is 1.

    Returns
    -------
    xarray.Dataset
        ``slope``, ``slope_low``, ``slope_high``, ``intercept`` (Conover), ``s``, ``var_s``, ``tau``,
        ``z``, ``p`` (two-sided), ``significant`` (bool, see Notes) and ``n`` (valid values); the
        slopes in units of ``da`` per unit of the coordinate. Lazy for dask input.

    Notes
    -----
    With the m valid values x_k at coordinates t_k:

    .. math::
        S = \\sum_{i<j} \\operatorname{sgn}(x_j - x_i),\\quad
        \\tau = S / (m(m-1)/2),\\quad
        \\operatorname{var}(S) = \\frac{m(m-1)(2m+5) - \\sum_g t_g(t_g-1)(2t_g+5)}{18}

    (t_g: sizes of the groups of tied values), ``z = (S - sgn S) / sqrt(var S)`` (0 when S = 0),
    ``p = 2 (1 - Phi(|z|))``; ``significant`` is ``|z| > Phi^-1(1 - alpha/2)``.
    Hamed-Rao multiplies var(S) by ``1 + 2/(m(m-1)(m-2)) sum_i (m-i)(m-i-1)(m-i-2) r_i`` over the
    lags whose rank autocorrelation r_i (of the series detrended with the Sen slope) lies outside
    ``+-Phi^-1(1-alpha/2)/sqrt(m)``; Yue-Wang by ``1 + 2 sum_i (1 - i/m) r_i`` with r_i the
    autocorrelation of the detrended values; i runs over 1..L, L = ``lag`` (at most m - 1).
    The series is detrended at its positions k = 1..n on the (regular) axis,
    ``x_k - k * slope * step``, and with y the detrended values (Hamed-Rao: their ranks among the
    valid values) minus their mean over the valid values,

    .. math:: r_i = \\frac{\\sum_{k,\\ k+i\\ \\mathrm{valid}} y_k\\, y_{k+i}}{\\sum_{k\\ \\mathrm{valid}} y_k^2}

    sums over the pairs of valid values i coordinate steps apart: a missing year does not make
    its neighbours adjacent. For a complete series this is exactly pymannkendall's estimator;
    pymannkendall itself drops the NaNs first and so would treat values around a gap as one
    step apart (a deliberate difference).

    Default lag. With all lags (``lag=None``, pymannkendall's default) the corrections are far
    too liberal at the record length of Table 2. False-positive rates at alpha = 0.05, n = 41,
    20 000 series each (``python -m pytest -q -s tests/unit/test_trends.py -k false_positive`` prints
    the default-lag row; the original test: 0.048, 0.138, 0.237):

    ============  ==========================  ==========================
    lag           Hamed-Rao: white, AR 0.3,   Yue-Wang: white, AR 0.3,
                  AR 0.5                      AR 0.5
    ============  ==========================  ==========================
    1 (default)   0.058, 0.117, 0.153         0.079, 0.084, 0.119
    2             0.065, 0.122, 0.150         0.111, 0.099, 0.112
    3             0.070, 0.128, 0.155         0.134, 0.127, 0.131
    all (None)    0.083, 0.158, 0.199         0.460, 0.487, 0.508
    ============  ==========================  ==========================

    (AR 0.3, AR 0.5: AR(1) noise with phi = 0.3, 0.5.) Each sample autocorrelation of 41 values
    has a standard error of ~1/sqrt(41) = 0.16 and is biased low after detrending; summing many
    of them shrinks var(S) as often as it inflates it, and a shrunk var(S) adds more rejections
    than an inflated one removes. Lag 1 is the best or within 0.01 of the best in every column
    and the closest to alpha on white noise, so both corrections default to it. For
    Hamed-Rao this departs from its all-lags definition (pymannkendall notes that Hamed & Rao
    also proposed the first 3 lags); its screening at +-1.96/sqrt(m) drops most estimated
    autocorrelations of short series, which is why it corrects less than Yue-Wang.

    The slope interval follows Sen (1968, eq. 2.6) with
    C = Phi^-1(1-alpha/2) sqrt(var S) and the order statistics ``round((N -+ C)/2)`` of the N
    pair slopes (scipy.stats.theilslopes' rounding), using the same var(S) as the test.
    Intercept (Conover 1980): ``median(x) - median(t) * slope``.

    Examples
    --------
    >>> res = mann_kendall(frozen_days(ft), variance="hamed_rao")  # doctest: +SKIP
    >>> res.slope.where(fdr(res.p))  # doctest: +SKIP
    """
    if variance not in VARIANCE_METHODS:
        raise ValidationError(f"mann_kendall: variance must be one of {VARIANCE_METHODS}, got {variance!r}")
    if not 0 < alpha < 1:
        raise ValidationError(f"mann_kendall: alpha must lie in (0, 1), got {alpha}")
    lag = _check_lag(lag, "mann_kendall")
    min_count = _check_min_count(min_count)
    if variance == "hamed_rao":
        min_count = max(min_count, 3)
    t = _coord_values(da, dim)
    step = 1.0
    if variance != "original" and t.size > 1:
        dts = np.diff(t)
        if not np.allclose(dts, dts[0], rtol=1e-9, atol=0):
            raise ValidationError(
                f"mann_kendall: variance={variance!r} corrects for autocorrelation at fixed lags and needs a "
                f"regularly spaced {dim!r} coordinate; got steps from {dts.min()} to {dts.max()}. "
                f"Use variance='original' or reindex to a regular axis (NaN for the gaps)."
            )
        step = float(dts[0])
    dtypes = [np.float64] * len(_MK_FIELDS)
    res = xr.apply_ufunc(
        _mk_kernel,
        _core_chunked(da, dim),
        input_core_dims=[[dim]],
        output_core_dims=[[]] * len(_MK_FIELDS),
        kwargs={"t": t, "variance": variance, "alpha": float(alpha), "min_count": min_count, "lag": lag, "step": step},
        dask="parallelized",
        output_dtypes=dtypes,
    )
    v = dict(zip(_MK_FIELDS, res))
    units = da.attrs.get("units")
    su = _slope_units(da, dim)
    what = da.attrs.get("long_name", da.name or "the series")
    ds = xr.Dataset(coords={k: c for k, c in da.coords.items() if dim not in c.dims})
    ds["slope"] = v["slope"].assign_attrs(
        long_name=f"Theil-Sen slope of {what}", units=su, cell_methods=f"{dim}: median (of pairwise slopes)"
    )
    ds["slope_low"] = v["slope_low"].assign_attrs(
        long_name=f"lower bound of the {1 - alpha:.0%} confidence interval of the slope", units=su
    )
    ds["slope_high"] = v["slope_high"].assign_attrs(
        long_name=f"upper bound of the {1 - alpha:.0%} confidence interval of the slope", units=su
    )
    ds["intercept"] = v["intercept"].assign_attrs(
        long_name=f"intercept of the Kendall-Theil line at {dim} = 0 (Conover)", **({"units": units} if units else {})
    )
    ds["s"] = v["s"].assign_attrs(long_name="Mann-Kendall score S", units="1")
    ds["var_s"] = v["var_s"].assign_attrs(long_name=f"variance of S ({variance})", units="1")
    ds["tau"] = v["tau"].assign_attrs(long_name="Kendall's tau", units="1")
    ds["z"] = v["z"].assign_attrs(long_name="standardised Mann-Kendall statistic (continuity-corrected)", units="1")
    ds["p"] = v["p"].assign_attrs(long_name="two-sided p-value of the Mann-Kendall test", units="1")
    ds["significant"] = (np.abs(v["z"]) > ndtri(1 - alpha / 2)).assign_attrs(
        long_name=(
            f"trend significant at alpha = {alpha} (two-sided, per pixel; see ftcloud.science.trends.fdr for field "
            "significance)"
        )
    )
    ds["n"] = v["n"].astype(np.int32).assign_attrs(long_name=f"number of valid values along {dim}", units="1")
    ds.attrs = {
        "variance": variance,
        "alpha": alpha,
        "min_count": min_count,
        "lag": "all" if lag is None else int(lag),
        "history": history_stamp(f"mann_kendall(variance={variance!r})"),
    }
    return ds


def fdr(pvalues: xr.DataArray, q: float = 0.05, dims: Sequence[Hashable] | None = None) -> xr.DataArray:
    """Benjamini-Hochberg false-discovery-rate control over a field of p-values.

    Parameters
    ----------
    pvalues : xarray.DataArray
        Per-pixel p-values (NaN = no test, ignored and never significant).
    q : float
        The false discovery rate to control (Wilks 2016 suggests q = 2 alpha_global for field
        significance of correlated fields).
    dims : sequence of str, optional
        Dimensions forming one family of tests (default: all); the others (e.g. ``pass``) are
        handled separately.

    Returns
    -------
    xarray.DataArray
        ``significant_fdr`` bool, lazy for dask input (one task over ``dims``).

    Notes
    -----
    With the m non-NaN p-values sorted ascending, p_(1) <= ... <= p_(m), reject the hypotheses
    of p_(1) .. p_(k) where k is the largest index with

    .. math:: p_{(k)} \\le \\frac{k}{m} q ,

    equivalently the BH-adjusted p-values ``min_{j>=k} m p_(j) / j`` are <= q.

    Examples
    --------
    >>> res = mann_kendall(fd)  # doctest: +SKIP
    >>> res.slope.where(fdr(res.p, q=0.10))  # doctest: +SKIP
    """
    if not 0 < q < 1:
        raise ValidationError(f"fdr: q must lie in (0, 1), got {q}")
    dims = list(pvalues.dims) if dims is None else list(dims)
    missing = [d for d in dims if d not in pvalues.dims]
    if missing:
        raise ValidationError(f"fdr: dims {missing} not in the p-values' dims {pvalues.dims}")
    p = pvalues.chunk({d: -1 for d in dims}) if pvalues.chunks is not None else pvalues
    adj = xr.apply_ufunc(
        lambda a: _bh_adjust_last(a, len(dims)),
        p,
        input_core_dims=[dims],
        output_core_dims=[dims],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    out = (adj <= q).transpose(*pvalues.dims)
    out.name = "significant_fdr"
    out.attrs = {
        "long_name": f"significant after Benjamini-Hochberg FDR control at q = {q}",
        "q": q,
        "method": "Benjamini-Hochberg (1995)",
        "history": history_stamp("fdr"),
    }
    return out


def _bh_adjust_last(a: np.ndarray, ncore: int) -> np.ndarray:
    """BH adjustment over the last ``ncore`` axes, separately for each leading index."""
    lead = a.shape[: a.ndim - ncore]
    flat = a.reshape((-1,) + a.shape[a.ndim - ncore :])
    out = np.stack([_bh_adjust(f) for f in flat]) if flat.shape[0] else flat.astype(np.float64)
    return out.reshape(lead + a.shape[a.ndim - ncore :])


def stratum_masks(
    region: xr.DataArray,
    stability: xr.DataArray | None = None,
    *,
    stability_region: Hashable = "qinghai_tibet",
    names: Mapping | None = None,
    stability_names: Mapping | None = None,
    skip: Sequence[Hashable] = ("none", 0),
) -> list[tuple[str, str, np.ndarray]]:
    """The strata of Table 2 as ``(group, name, mask)``, in the table's order.

    One row per region (``group = "region"``), all regions pooled (``"all"``), and one per
    permafrost class inside ``stability_region`` (``"stability"``); labels in ``skip`` (codes or
    names, e.g. sea) are left out. Names come from ``names`` / ``stability_names`` or the CF flags
    (:func:`ftcloud.core.metadata.flag_names`).
    """
    reg = region.load()
    rnames = dict(names) if names is not None else flag_names(reg)
    groups: list[tuple[str, str, np.ndarray]] = []
    skipset = set(skip)
    rvals = pd.unique(np.asarray(reg.values).ravel())
    rvals = [v for v in rvals if not (isinstance(v, float) and np.isnan(v))]
    chosen = []
    for v in sorted(rvals, key=lambda v: (str(type(v)), v)):
        name = rnames.get(v.item() if hasattr(v, "item") else v, str(v))
        if v in skipset or name in skipset:
            continue
        chosen.append(v)
        groups.append(("region", name, (reg.values == v)))
    if chosen:
        groups.append(("all", "all regions", np.isin(reg.values, chosen)))
    if stability is not None:
        st = stability.load()
        snames = dict(stability_names) if stability_names is not None else flag_names(st)
        code = [k for k, nm in rnames.items() if nm == stability_region]
        in_region = reg.values == (code[0] if code else stability_region)
        if not in_region.any():
            raise ValidationError(
                f"regional_table: no pixel of region {stability_region!r}; "
                f"regions: {sorted(map(str, rnames.values())) or rvals}"
            )
        svals = pd.unique(np.asarray(st.values)[in_region])
        for v in sorted(svals):
            name = snames.get(v.item() if hasattr(v, "item") else v, str(v))
            if v in skipset or name in skipset:
                continue
            groups.append(("stability", name, in_region & (st.values == v)))
    return groups


def regional_series(
    frozen_days: xr.DataArray, masks: Sequence[tuple[str, str, np.ndarray]], dim: str = "year"
) -> xr.DataArray:
    """Stratum-mean series ``(stratum, dim)``: per year, the mean over the stratum's pixels valid that year.

    ``FD_R(y) = sum_p m_p FD(y, p) / sum_p m_p [FD(y, p) valid]`` (an area mean: EASE-Grid 2.0
    cells are equal-area). Lazy when ``frozen_days`` is dask-backed; coordinates ``stratum``
    (names) and ``group``.
    """
    spatial = [d for d in frozen_days.dims if d != dim]
    m = xr.DataArray(np.stack([mk for _, _, mk in masks]).astype(np.float64), dims=("stratum", *spatial))
    fd = frozen_days.transpose(dim, *spatial)
    sums = xr.dot(fd.fillna(0.0), m, dim=spatial)
    counts = xr.dot(fd.notnull().astype(np.float64), m, dim=spatial)
    series = (sums / counts.where(counts > 0)).transpose("stratum", dim)
    return series.assign_coords(stratum=[n for _, n, _ in masks], group=("stratum", [g for g, _, _ in masks]))


def regional_table(
    frozen_days: xr.DataArray,
    region: xr.DataArray,
    stability: xr.DataArray | None = None,
    *,
    stability_region: Hashable = "qinghai_tibet",
    names: Mapping | None = None,
    stability_names: Mapping | None = None,
    skip: Sequence[Hashable] = ("none", 0),
    dim: str = "year",
    alpha: float = 0.05,
    min_count: int = MIN_TREND_YEARS,
    variance: str = "original",
    lag: int | None = 1,
) -> pd.DataFrame:
    """The paper's Table 2: per region (and permafrost class) mean frozen days and regional trend.

    Parameters
    ----------
    frozen_days : xarray.DataArray
        Frozen days (year, y, x), e.g. from :func:`frozen_days` (average the passes first).
    region : xarray.DataArray
        Region label per pixel on the spatial dims (codes with CF ``flag_values`` /
        ``flag_meanings``, or strings).
    stability : xarray.DataArray, optional
        Permafrost thermal-stability class per pixel; summarised within ``stability_region`` only.
    stability_region : hashable
        The region (name or code) inside which the stability classes are summarised.
    names, stability_names : mapping, optional
        Code -> display name (default: from ``flag_meanings``).
    skip : sequence
        Labels (codes or names) left out, e.g. sea/outside.
    dim, alpha, min_count, variance, lag
        Passed to :func:`mann_kendall` of the regional mean series (``lag`` only matters for the
        corrected variances; default 1, see :func:`mann_kendall`).

    Returns
    -------
    pandas.DataFrame
        One row per region (``group = "region"``), one for all regions pooled (``"all"``) and
        one per stability class (``"stability"``), with ``n_pixels``, ``mean_frozen_days`` [days],
        ``sen_slope``, ``slope_low``, ``slope_high`` [days per unit of ``dim``], ``tau``, ``p``,
        ``significant``.

    Notes
    -----
    The regional series is the mean over the stratum's pixels with a valid value in each year,
    ``FD_R(y) = mean_{pixels} FD(y, pixel)`` (an area mean: EASE-Grid 2.0 cells are equal-area);
    ``mean_frozen_days`` is its mean over the years, and the trend is the Sen slope + Mann-Kendall
    test of ``FD_R`` (not a mean of pixel slopes).

    Examples
    --------
    >>> aux = xr.open_zarr(store + "/statics")  # doctest: +SKIP
    >>> regional_table(frozen_days(ds.ft).mean("pass"), aux.region, aux.permafrost_stability)  # doctest: +SKIP
    """
    spatial = list(region.dims)
    for d in spatial:
        if d not in frozen_days.dims:
            raise ValidationError(f"regional_table: region dim {d!r} not in frozen_days dims {frozen_days.dims}")
    extra = [d for d in frozen_days.dims if d not in spatial and d != dim]
    if extra:
        raise ValidationError(
            f"regional_table: frozen_days has extra dims {extra}; average or select them first (e.g. .mean('pass'))"
        )
    if variance not in VARIANCE_METHODS:
        raise ValidationError(f"regional_table: variance must be one of {VARIANCE_METHODS}, got {variance!r}")
    lag = _check_lag(lag, "regional_table")
    groups = stratum_masks(
        region, stability, stability_region=stability_region, names=names, stability_names=stability_names, skip=skip
    )
    if not groups:
        raise ValidationError("regional_table: no region left after skipping " + repr(list(skip)))
    series = regional_series(frozen_days, groups, dim=dim).drop_vars(["stratum", "group"]).compute()
    series.attrs = dict(frozen_days.attrs)
    mk = mann_kendall(
        series.assign_coords(stratum=np.arange(len(groups))),
        dim=dim,
        alpha=alpha,
        min_count=min_count,
        variance=variance,
        lag=lag,
    ).compute()
    rows = []
    for i, (grp, name, mask) in enumerate(groups):
        rows.append(
            {
                "group": grp,
                "name": name,
                "n_pixels": int(mask.sum()),
                "mean_frozen_days": float(series.isel(stratum=i).mean(skipna=True)),
                "sen_slope": float(mk.slope[i]),
                "slope_low": float(mk.slope_low[i]),
                "slope_high": float(mk.slope_high[i]),
                "tau": float(mk.tau[i]),
                "p": float(mk.p[i]),
                "significant": bool(mk.significant[i]),
            }
        )
    df = pd.DataFrame(rows)
    df.attrs = {
        "slope_units": mk.slope.attrs.get("units"),
        "frozen_days_units": frozen_days.attrs.get("units", "days"),
        "variance": variance,
        "lag": mk.attrs["lag"],
    }
    return df


# --------------------------------------------------------------------------------------
# the paper's Table 2


def stability_in(
    region: xr.DataArray, stability: xr.DataArray | None, stability_region: str = "qinghai_tibet"
) -> xr.DataArray | None:
    """``stability`` if the window holds a pixel of ``stability_region`` (Table 2's permafrost rows), else None."""
    if stability is None:
        return None
    code = [k for k, nm in flag_names(region).items() if nm == stability_region]
    return stability if bool(np.isin(np.asarray(region.values), code or [stability_region]).any()) else None


def table2(
    fd: xr.DataArray,
    region: xr.DataArray,
    stability: xr.DataArray | None,
    alpha: float = 0.05,
    truth_fd: xr.DataArray | None = None,
    planted: xr.DataArray | None = None,
    variance: str = "original",
    lag: int | None = 1,
) -> pd.DataFrame:
    """The paper's Table 2 of ``fd`` (year, y, x), with the truth's Table 2 and the planted slopes beside it."""
    stab = stability_in(region, stability)
    df = regional_table(fd, region, stab, alpha=alpha, variance=variance, lag=lag)
    if truth_fd is not None:
        tdf = regional_table(truth_fd, region, stab, alpha=alpha, variance=variance, lag=lag)
        tdf = tdf[["group", "name", "mean_frozen_days", "sen_slope", "slope_low", "slope_high", "p"]].add_prefix(
            "truth_"
        )
        df = df.merge(tdf, left_on=["group", "name"], right_on=["truth_group", "truth_name"], how="left").drop(
            columns=["truth_group", "truth_name"]
        )
    if planted is not None:
        masks = {(g, n): m for g, n, m in stratum_masks(region, stab)}
        pv = np.asarray(planted.values, dtype=np.float64)
        pl, npl = [], []
        for g, n in zip(df["group"], df["name"]):
            m = masks.get((g, n))
            sel = pv[m] if m is not None else np.array([])
            ok = np.isfinite(sel)
            pl.append(float(sel[ok].mean()) if ok.any() else np.nan)
            npl.append(int(ok.sum()))
        df["planted_slope"] = pl
        df["planted_n_pixels"] = npl
        df["planted_in_ci"] = (df["planted_slope"] >= df["slope_low"]) & (df["planted_slope"] <= df["slope_high"])
        if "truth_slope_low" in df:
            df["planted_in_truth_ci"] = (df["planted_slope"] >= df["truth_slope_low"]) & (
                df["planted_slope"] <= df["truth_slope_high"]
            )
    return df
