"""Categorical triple collocation (CTC): accuracies of three binary FT products without a reference.

SPEC section 6. Three products X1, X2, X3 (+1 frozen, -1 thawed) with errors independent given
the true state Y; per pixel, over time, their first three moments identify each product's
sensitivity (frozen detected as frozen), specificity (thawed detected as thawed) and the class
balance ``b = E[Y]``.

Layout (STYLE habits 1 and 6): for binary data the 2 x 2 x 2 contingency table of the three
products (8 counts per pixel) holds everything, so the data are read in ONE pass:
:func:`_moment_sums` turns a block of the three series into 8 integer sums per pixel, dask sums
those over the time chunks (a tree reduction; nothing else is kept), and :func:`_ctc_from_moments`
turns the 8 numbers of each pixel into the statistics. Both kernels work on numpy arrays and
know nothing about attributes; :func:`triple_collocation` wires them lazily and stamps CF
metadata.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import GridMismatchError, UndefinedStatisticWarning, ValidationError
from ftcloud.core.metadata import flag_names, history_stamp
from ftcloud.study import (
    CTC_NAMES,
    CTC_OUT_OF_RANGE,
    CTC_PERIOD,
    CTC_REASONS,
    CTC_SEASONS,
    SEASON_MONTHS,
    TCI_BINS,
    TCI_LABELS,
)
import logging
from collections.abc import Mapping
from ftcloud.science.validation import (
    MIN_TABLE_COUNT,
    sample_at_stations,
)
from ftcloud.core.metadata import ft_valid
from ftcloud.science.reference import era5_ft, meteorology_ft

log = logging.getLogger(__name__)

__all__ = [
    "triple_collocation",
    "select_season",
    "summarise_by",
    "REASONS",
    "OUT_OF_RANGE",
    "TCI_BINS",
    "TCI_LABELS",
    "CELLS",
]

#: reason codes of the ``reason`` variable (0 = statistics defined)
REASONS = CTC_REASONS
#: the reason code of pixels whose model fit is fine but whose estimated psi or eta is outside [0, 1]
OUT_OF_RANGE = CTC_OUT_OF_RANGE
_REASON_TEXT = {
    1: "fewer than min_count times with all three products valid",
    2: "a product has zero variance (constant over the valid times, e.g. all thawed in summer)",
    3: "a covariance Q_ij <= 0",
    4: "|b| >= max_abs_b or alpha not finite",
    5: "a non-finite estimate",
    6: (
        "an estimated sensitivity or specificity outside [0, 1] (sampling noise where a class is rare; raw values "
        "in psi_raw, eta_raw)"
    ),
}
#: contingency cells, in the order of the ``cell`` dimension: letter i = state of product i
CELLS = tuple("".join("F" if (code >> (2 - i)) & 1 else "T" for i in range(3)) for code in range(8))

# moment sums accumulated per pixel: valid count, frozen counts and their products
_MOMENTS = ("n", "s1", "s2", "s3", "s12", "s13", "s23", "s123")
_ROW_TARGET = 1 << 18  # elements per accumulator row (R time steps x P pixels); 256 KiB rows keep the GIL churn low


# --------------------------------------------------------------------------------------
# numpy kernels


def _as_codes(x: np.ndarray) -> np.ndarray:
    """uint8 FT codes (0 thawed, 1 frozen, >= 2 missing) from uint8 codes or floats.

    Floats: 1 frozen, 0 or -1 thawed, anything else (NaN) missing.
    """
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.bool_):
        return x.astype(np.uint8)
    out = np.full(x.shape, 255, np.uint8)
    out[x == 1] = 1
    out[(x == 0) | (x == -1)] = 0
    return out


def _moment_sums(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, axis: int = 0) -> np.ndarray:
    """The 8 integer moment sums of three FT series along ``axis``, over the times all are valid.

    Returns int64 ``(8,) + shape`` with ``axis`` kept at length 1: n, sum f1, sum f2, sum f3,
    sum f1 f2, sum f1 f3, sum f2 f3, sum f1 f2 f3 (f = 1 frozen, 0 thawed).

    One pass: each time step costs a dozen uint8 vector operations; counts are kept in uint8
    accumulators and flushed to int64 every 255 steps. Small pixel blocks are processed R time
    steps at a time (rows of R x P elements) to keep numpy's per-call overhead low.
    """
    shape = x1.shape
    out_shape = (8,) + shape[:axis] + (1,) + shape[axis + 1 :]
    if not (x1.shape == x2.shape == x3.shape):
        raise GridMismatchError(
            f"triple collocation: the three products' shapes differ ({x1.shape}, {x2.shape}, "
            f"{x3.shape}); align them on the same cells and days first (xarray.align)"
        )
    t = shape[axis]
    p = int(np.prod(shape[:axis] + shape[axis + 1 :], dtype=np.int64))  # explicit: reshape(0, -1) is ambiguous
    xs = [np.ascontiguousarray(np.moveaxis(_as_codes(np.asarray(x)), axis, 0)).reshape(t, p) for x in (x1, x2, x3)]
    out = np.zeros((8, p), np.int64)
    if t == 0 or p == 0:
        return out.reshape(out_shape)
    r = max(1, min(t, -(-_ROW_TARGET // p)))  # time steps per accumulator row
    w = r * p
    acc = np.zeros((8, w), np.uint8)
    v = np.empty(w, np.uint8)
    vb = v.view(np.bool_)
    f = np.empty((3, w), np.uint8)
    g = np.empty(w, np.uint8)
    flat = [x.reshape(-1) for x in xs]
    since_flush = 0

    def flush():
        out[:] += acc.reshape(8, r, p).sum(axis=1, dtype=np.int64)
        acc[:] = 0

    for start in range(0, t, r):
        k = min(r, t - start) * p
        a, b, c = (fl[start * p : start * p + k] for fl in flat)
        vv, ff, gg, aa = v[:k], f[:, :k], g[:k], acc[:, :k]
        np.bitwise_or(a, b, out=vv)
        np.bitwise_or(vv, c, out=vv)
        np.less(vv, 2, out=vb[:k])  # all three valid (codes 0/1); bool written in place as 0/1
        np.bitwise_and(a, vv, out=ff[0])
        np.bitwise_and(b, vv, out=ff[1])
        np.bitwise_and(c, vv, out=ff[2])
        aa[0] += vv
        aa[1:4] += ff
        np.bitwise_and(ff[0], ff[1], out=gg)
        aa[4] += gg
        np.bitwise_and(gg, ff[2], out=gg)
        aa[7] += gg
        np.bitwise_and(ff[0], ff[2], out=gg)
        aa[5] += gg
        np.bitwise_and(ff[1], ff[2], out=gg)
        aa[6] += gg
        since_flush += 1
        if since_flush == 255:
            flush()
            since_flush = 0
    if since_flush:
        flush()
    return out.reshape(out_shape)


def _cells_from_moments(m: np.ndarray) -> np.ndarray:
    """Contingency counts (..., 8) in :data:`CELLS` order from the moment sums (..., 8)."""
    n, s1, s2, s3, s12, s13, s23, s123 = (m[..., i] for i in range(8))
    c = np.empty(m.shape, np.int64)
    c[..., 7] = s123  # FFF
    c[..., 6] = s12 - s123  # FFT
    c[..., 5] = s13 - s123  # FTF
    c[..., 3] = s23 - s123  # TFF
    c[..., 4] = s1 - s12 - s13 + s123  # FTT
    c[..., 2] = s2 - s12 - s23 + s123  # TFT
    c[..., 1] = s3 - s13 - s23 + s123  # TTF
    c[..., 0] = n - s1 - s2 - s3 + s12 + s13 + s23 - s123  # TTT
    return c


def _ctc_from_moments(m: np.ndarray, min_count: int = 30, max_abs_b: float = 1.0, warn_scope: str = "") -> tuple:
    """CTC statistics of each pixel from its 8 moment sums (last axis).

    Returns (n, cells(...,8), mean(...,3), Q12, Q13, Q23, T123, alpha, b, v(...,3), psi(...,3),
    eta(...,3), pi(...,3), psi_raw(...,3), eta_raw(...,3), reason). See :func:`triple_collocation`
    for the equations and the reason codes.
    """
    m = np.asarray(m, dtype=np.int64)
    lead = m.shape[:-1]
    n = m[..., 0]
    cells = _cells_from_moments(m)
    nf = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = [m[..., i] / nf for i in (1, 2, 3)]
        p12, p13, p23, p123 = (m[..., i] / nf for i in (4, 5, 6, 7))
        q12 = 4 * (p12 - p[0] * p[1])
        q13 = 4 * (p13 - p[0] * p[2])
        q23 = 4 * (p23 - p[1] * p[2])
        t123 = 8 * (p123 - p[0] * p23 - p[1] * p13 - p[2] * p12 + 2 * p[0] * p[1] * p[2])
        mean = np.stack([2 * pi - 1 for pi in p], axis=-1)
        v = np.stack([np.sqrt(q12 * q13 / q23), np.sqrt(q12 * q23 / q13), np.sqrt(q13 * q23 / q12)], axis=-1)
        alpha = t123 / (v[..., 0] * v[..., 1] * v[..., 2])
        b = -alpha / np.sqrt(4 + alpha * alpha)
        r_fb = np.sqrt((1 - b) / (1 + b))[..., None]
        psi = 0.5 * (1 + mean + v * r_fb)
        eta = 0.5 * (1 - mean + v / r_fb)
        pi_ = 0.5 * (psi + eta)
    # 0-d arithmetic gives numpy scalars; arrays (0-d included) take the masked assignments below
    q12, q13, q23, t123, alpha, b = (np.array(a, dtype=np.float64) for a in (q12, q13, q23, t123, alpha, b))
    reason = np.zeros(lead, np.uint8)
    few = n < max(min_count, 1)
    zero_var = np.zeros(lead, bool)
    for i in range(3):
        si = m[..., 1 + i]
        zero_var |= (si == 0) | (si == n)
    nonpos = (q12 <= 0) | (q13 <= 0) | (q23 <= 0)
    b_bad = ~np.isfinite(alpha) | ~(np.abs(b) < max_abs_b)
    finite = np.isfinite(v).all(-1) & np.isfinite(psi).all(-1) & np.isfinite(eta).all(-1)
    with np.errstate(invalid="ignore"):
        outside = ((psi < 0) | (psi > 1) | (eta < 0) | (eta > 1)).any(-1)
    reason[outside] = OUT_OF_RANGE  # lowest priority: only where the fit itself is defined
    reason[~finite] = 5
    reason[b_bad] = 4
    reason[nonpos] = 3
    reason[zero_var] = 2
    reason[few] = 1
    bad = reason > 0
    fit_bad = bad & (reason != OUT_OF_RANGE)  # out of range: alpha, b, v are estimates; psi, eta are not probabilities
    psi_raw, eta_raw = psi.copy(), eta.copy()
    for arr in (psi_raw, eta_raw):
        arr[fit_bad] = np.nan
    for arr in (psi, eta, pi_):
        arr[bad] = np.nan
    for arr in (v, alpha, b):
        arr[fit_bad] = np.nan
    for arr in (q12, q13, q23, t123):
        arr[few] = np.nan
    mean[few] = np.nan
    if bad.any():
        counts = {k: int((reason == k).sum()) for k in sorted(_REASON_TEXT) if (reason == k).any()}
        detail = "; ".join(f"{c} with reason {k} ({_REASON_TEXT[k]})" for k, c in counts.items())
        warnings.warn(
            f"triple_collocation: statistics undefined for {int(bad.sum())} of {reason.size} pixels{warn_scope}: "
            f"{detail}. Their psi, eta and pi are NaN; the `reason` variable says why per pixel.",
            UndefinedStatisticWarning,
            stacklevel=2,
        )
    return n, cells, mean, q12, q13, q23, t123, alpha, b, v, psi, eta, pi_, psi_raw, eta_raw, reason


# --------------------------------------------------------------------------------------
# wrappers


def _check_codes(x: xr.DataArray, name: str) -> None:
    if not (
        x.dtype == np.uint8
        or np.issubdtype(x.dtype, np.floating)
        or np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.bool_)
    ):
        raise ValidationError(
            f"triple_collocation: {name} has dtype {x.dtype}; expected uint8 FT codes (0 thawed, 1 frozen, 255 "
            "missing) "
            "or floats (1 frozen, 0 or -1 thawed, NaN missing)"
        )


def _lazy_moments(arrs: list, axis: int) -> da.Array:
    ndim = arrs[0].ndim
    ind = tuple(range(ndim))
    blocks = da.blockwise(
        _moment_sums,
        (ndim,) + ind,
        arrs[0],
        ind,
        arrs[1],
        ind,
        arrs[2],
        ind,
        new_axes={ndim: 8},
        adjust_chunks={axis: 1},
        dtype=np.int64,
        axis=axis,
        meta=np.empty((0,) * (ndim + 1), np.int64),
    )
    return blocks.sum(axis=axis + 1)  # tree reduction over the time chunks


def triple_collocation(
    x1: xr.DataArray,
    x2: xr.DataArray,
    x3: xr.DataArray,
    dim: str = "time",
    min_count: int = 30,
    names: Sequence[str] | None = None,
    max_abs_b: float = 1.0,
) -> xr.Dataset:
    """Categorical triple collocation of three binary FT products, per pixel over ``dim``.

    Parameters
    ----------
    x1, x2, x3 : xarray.DataArray
        The three products on the same grid: uint8 FT codes (0 thawed, 1 frozen, anything else
        e.g. 255 missing) or floats (1 frozen, 0 or -1 thawed, NaN missing). Coordinates must
        match exactly; dims missing from one are broadcast (e.g. a product without ``pass``).
        Only the times where all three are valid are used.
    dim : str
        Dimension to collocate over (time). Other dims (``pass``, ``y``, ``x``) are kept.
    min_count : int
        Minimum number of common valid times; fewer -> reason 1.
    names : sequence of 3 str, optional
        Labels of the ``product`` coordinate (default: the inputs' names, else x1, x2, x3).
    max_abs_b : float
        Pixels with ``|b| >= max_abs_b`` are undefined (reason 4); 1.0 only excludes the
        degenerate limits.

    Returns
    -------
    xarray.Dataset
        Dims ``product`` (3), ``cell`` (8) and the kept dims. ``n`` and ``counts`` (the 2x2x2
        contingency table, :data:`CELLS`) [1]; ``mean`` (product), ``Q12``, ``Q13``, ``Q23``,
        ``T123``, ``alpha``, ``b`` [1]; ``v``, ``psi`` (sensitivity), ``eta`` (specificity),
        ``pi`` (balanced accuracy) per product [1]; ``psi_raw``, ``eta_raw`` (the estimates
        before the [0, 1] check) [1]; ``reason`` (uint8, :data:`REASONS`). Lazy when any input
        is dask-backed (the data are then read once, chunk by chunk, at compute).

    Warns
    -----
    UndefinedStatisticWarning
        When pixels are undefined, with the number per reason (for dask input: per block of the
        result, at compute time).

    Notes
    -----
    With f_i = 1 frozen / 0 thawed, p_i = mean(f_i), p_ij = mean(f_i f_j), p_123 = mean(f_1 f_2 f_3)
    over the n common valid times, and X_i = 2 f_i - 1 (population moments, ddof = 0):

    .. math::
        \\mu_i = 2p_i - 1,\\quad Q_{ij} = \\operatorname{cov}(X_i, X_j) = 4(p_{ij} - p_i p_j),\\quad
        T_{123} = E\\left[\\prod_i (X_i - \\mu_i)\\right]
                = 8(p_{123} - p_1 p_{23} - p_2 p_{13} - p_3 p_{12} + 2 p_1 p_2 p_3)

    The model (errors independent given the truth Y in {+1 frozen, -1 thawed}, b = E[Y], so
    P(frozen) = (1 + b)/2) gives Q_ij = v_i v_j, v_i = sqrt(1 - b^2)(2 pi_i - 1), and
    T_123 = alpha(b) v_1 v_2 v_3 with alpha(b) = -2b / sqrt(1 - b^2). Hence

    .. math::
        v_1 = \\sqrt{Q_{12} Q_{13} / Q_{23}}\\ (\\text{etc.}),\\quad
        \\alpha = T_{123} / (v_1 v_2 v_3),\\quad b = -\\alpha / \\sqrt{4 + \\alpha^2}

    .. math::
        \\psi_i = \\tfrac12\\left(1 + \\mu_i + v_i\\sqrt{\\tfrac{1-b}{1+b}}\\right),\\quad
        \\eta_i = \\tfrac12\\left(1 - \\mu_i + v_i\\sqrt{\\tfrac{1+b}{1-b}}\\right),\\quad
        \\pi_i = \\tfrac12(\\psi_i + \\eta_i)

    where psi_i = P(X_i frozen | Y frozen) and eta_i = P(X_i thawed | Y thawed); the positive
    root of v_i assumes every product is better than chance (pi_i > 1/2).

    Reasons (:data:`REASONS`, in order of precedence): 1 ``too_few_samples`` (n < min_count),
    2 ``zero_variance``, 3 ``nonpositive_covariance``, 4 ``class_balance_out_of_range``,
    5 ``nonfinite_estimate``, 6 ``estimate_out_of_range``. Reasons 1-5 mean the model cannot be
    fitted: alpha, b, v, psi, eta, pi, psi_raw and eta_raw are NaN; mean, Q and T stay (they
    are plain moments) except with too few samples. Reason 6: the fit exists but some product's

    .. math:: \\hat\\psi_i \\notin [0, 1] \\ \\text{or}\\ \\hat\\eta_i \\notin [0, 1]

    which sampling noise produces where one class is rare: the standard error of
    :math:`\\hat\\eta_i` scales like 1/sqrt(n_T), n_T = n(1 - b)/2 the number of thawed days.
    With 95 % frozen days and n = 1,000 (n_T = 50) and specificities 0.85-0.92, 10-22 % of the
    pixels have an eta above 1 per product and 34-42 % for one of the three (three seeds of
    tests/unit/test_ctc.py). Such estimates are not probabilities: psi, eta and pi are NaN for all
    three products, so means over pixels (:func:`summarise_by`) leave them out; alpha, b and v
    are kept, and the unchecked estimates are in ``psi_raw`` / ``eta_raw`` (NaN only for reasons
    1-5). Leaving these pixels out biases a stratum mean low where the true accuracy is near 1
    (the estimates above 1 are the upper tail of the sampling scatter around it): in the
    simulation above (1,600 pixels, seed 1) the mean of the specificities kept is 0.815 / 0.900 /
    0.857 for true 0.85 / 0.92 / 0.88, the median of ``eta_raw`` over all fitted pixels 0.851 /
    0.925 / 0.880. :func:`summarise_by` reports the median and the number of pixels left out
    beside the mean; ``summarise_by(res, strata, variables=("psi_raw", "eta_raw"))`` gives the
    raw estimates' mean and median.

    Examples
    --------
    >>> # ft (pass, time, y, x): one result per pass
    >>> res = triple_collocation(ft, era5_ft, station_ft)  # doctest: +SKIP
    >>> seasonal = (select_season(x, "frozen") for x in (ft, era5_ft, station_ft))  # doctest: +SKIP
    >>> frozen = triple_collocation(*seasonal)  # doctest: +SKIP
    >>> summarise_by(frozen, strata=statics.tci, bins="tci")  # doctest: +SKIP
    """
    xs = []
    for i, x in enumerate((x1, x2, x3), 1):
        if not isinstance(x, xr.DataArray):
            raise ValidationError(f"triple_collocation: x{i} must be an xarray.DataArray, got {type(x).__name__}")
        if dim not in x.dims:
            raise ValidationError(f"triple_collocation: x{i} has no dimension {dim!r}; dims are {x.dims}")
        _check_codes(x, f"x{i}")
        xs.append(x)
    if names is None:
        nm = [x.name for x in xs]
        names = nm if all(isinstance(s, str) for s in nm) and len(set(nm)) == 3 else ["x1", "x2", "x3"]
    if len(names) != 3:
        raise ValidationError(f"triple_collocation: names must hold 3 labels, got {names!r}")
    if int(min_count) < 1:
        raise ValidationError(f"triple_collocation: min_count must be >= 1, got {min_count}")
    try:
        xs = list(xr.align(*xs, join="exact"))
    except ValueError as e:
        raise ValidationError(
            f"triple_collocation: the three products are not on the same grid/time axis ({e}). "
            "Regrid to the exact EASE2 coordinates and select the common period first (e.g. .sel(time=slice(a, b)))."
        ) from e
    extra = {k: c for x in reversed(xs) for k, c in x.coords.items() if k not in x.dims and dim not in c.dims}
    xs = [x.drop_vars([c for c in x.coords if c not in x.dims]) for x in xs]
    xs = list(xr.broadcast(*xs))
    order = list(xs[0].dims)
    xs = [x.transpose(*order) for x in xs]
    axis = order.index(dim)
    kept = [d for d in order if d != dim]
    lazy = any(x.chunks is not None for x in xs)
    if lazy:
        xs = list(xr.unify_chunks(*[x.chunk() if x.chunks is None else x for x in xs]))
        mom = _lazy_moments([x.data for x in xs], axis)
    else:
        mom = _moment_sums(*[x.values for x in xs], axis=axis)
        mom = np.squeeze(mom, axis=axis + 1)
    mom = xr.DataArray(mom, dims=("moment",) + tuple(kept), coords={d: xs[0][d] for d in kept if d in xs[0].coords})
    out = xr.apply_ufunc(
        _ctc_from_moments,
        mom,
        input_core_dims=[["moment"]],
        output_core_dims=[
            [],
            ["cell"],
            ["product"],
            [],
            [],
            [],
            [],
            [],
            [],
            ["product"],
            ["product"],
            ["product"],
            ["product"],
            ["product"],
            ["product"],
            [],
        ],
        kwargs={
            "min_count": int(min_count),
            "max_abs_b": float(max_abs_b),
            "warn_scope": " (in one block of the result)" if lazy else "",
        },
        dask="parallelized",
        output_dtypes=[np.int64, np.int64] + [np.float64] * 13 + [np.uint8],
        dask_gufunc_kwargs={"output_sizes": {"cell": 8, "product": 3}},
    )
    (n, cells, mean, q12, q13, q23, t123, alpha, b, v, psi, eta, pi_, psi_raw, eta_raw, reason) = out
    ds = xr.Dataset(coords={"product": ("product", list(names)), "cell": ("cell", list(CELLS))})
    for k in kept:
        if k in xs[0].coords:
            ds = ds.assign_coords({k: xs[0][k]})
    ds = ds.assign_coords({k: c for k, c in extra.items() if set(c.dims) <= set(kept)})  # e.g. lat/lon of x1
    one = "1"
    ds["n"] = n.assign_attrs(long_name=f"number of {dim} steps with all three products valid", units=one)
    ds["counts"] = cells.assign_attrs(
        long_name=(
            "2x2x2 contingency table of the three products (cell letter i = state of product i: F frozen, T thawed)"
        ),
        units=one,
    )
    ds["mean"] = mean.assign_attrs(long_name="mean of X_i (+1 frozen, -1 thawed)", units=one)
    ds["Q12"] = q12.assign_attrs(long_name="covariance of X_1 and X_2 (ddof 0)", units=one)
    ds["Q13"] = q13.assign_attrs(long_name="covariance of X_1 and X_3 (ddof 0)", units=one)
    ds["Q23"] = q23.assign_attrs(long_name="covariance of X_2 and X_3 (ddof 0)", units=one)
    ds["T123"] = t123.assign_attrs(long_name="third-order central moment E[(X_1-mu_1)(X_2-mu_2)(X_3-mu_3)]", units=one)
    ds["alpha"] = alpha.assign_attrs(long_name="alpha(b) = T123 / (v1 v2 v3)", units=one)
    ds["b"] = b.assign_attrs(long_name="class imbalance b = E[Y] = 2 P(frozen) - 1", units=one)
    ds["v"] = v.assign_attrs(long_name="v_i = sqrt(1 - b^2)(2 pi_i - 1)", units=one)
    ds["psi"] = psi.assign_attrs(long_name="sensitivity: P(product frozen | truth frozen)", units=one)
    ds["eta"] = eta.assign_attrs(long_name="specificity: P(product thawed | truth thawed)", units=one)
    ds["pi"] = pi_.assign_attrs(long_name="balanced accuracy (psi + eta) / 2", units=one)
    ds["psi_raw"] = psi_raw.assign_attrs(
        long_name="sensitivity estimate before the [0, 1] check (defined also where reason = estimate_out_of_range)",
        units=one,
    )
    ds["eta_raw"] = eta_raw.assign_attrs(
        long_name="specificity estimate before the [0, 1] check (defined also where reason = estimate_out_of_range)",
        units=one,
    )
    ds["reason"] = reason.assign_attrs(
        long_name="why the CTC statistics are undefined (0 = defined)",
        flag_values=np.array(sorted(REASONS), np.uint8),
        flag_meanings=" ".join(REASONS[k] for k in sorted(REASONS)),
    )
    for k in ("mean", "v", "psi", "eta", "pi", "psi_raw", "eta_raw", "counts"):
        ds[k] = ds[k].transpose(*(("product",) if k != "counts" else ("cell",)), *kept)
    ds.attrs = {
        "title": "categorical triple collocation (McColl et al. 2016, as applied by Cui et al. 2024)",
        "products": " ".join(names),
        "collocation_dim": dim,
        "min_count": int(min_count),
        "coding": "X = +1 frozen, -1 thawed; moments with ddof = 0",
        "history": history_stamp("triple_collocation"),
    }
    return ds


def select_season(obj, season: str | Sequence[str], dim: str = "time"):
    """The time steps of ``obj`` in a season of :data:`ftcloud.study.SEASON_MONTHS`.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Anything with a datetime coordinate ``dim``.
    season : str or sequence of str
        ``"frozen"`` (Dec, Jan), ``"transition"`` (Feb-Apr, Oct-Nov), ``"thawed"`` (May-Sep), a
        list of them, or ``"all"``.
    dim : str
        The time dimension.

    Returns
    -------
    same type as ``obj``
        ``obj.isel({dim: months in the season})`` (lazy).

    Notes
    -----
    Seasons by calendar month of the time stamps (SPEC section 5), shared with
    :func:`ftcloud.science.validation.classification_accuracy`.

    Examples
    --------
    >>> triple_collocation(*(select_season(x, "transition") for x in (ft, era5_ft, station_ft)))  # doctest: +SKIP
    """
    if season == "all":
        return obj
    seasons = [season] if isinstance(season, str) else list(season)
    unknown = [s for s in seasons if s not in SEASON_MONTHS]
    if unknown:
        raise ValidationError(f"select_season: unknown season(s) {unknown}; choose from {list(SEASON_MONTHS)} or 'all'")
    months = [mo for s in seasons for mo in SEASON_MONTHS[s]]
    keep = np.isin(pd.DatetimeIndex(obj[dim].values).month, months)
    return obj.isel({dim: np.flatnonzero(keep)})


def _stratum_labels(strata: xr.DataArray, bins) -> tuple[np.ndarray, list, list]:
    """(index map with -1 = none, labels, keys) of a categorical or binned stratum map."""
    vals = np.asarray(strata.values)
    if bins is not None:
        if isinstance(bins, str):
            if bins != "tci":
                raise ValidationError(f"summarise_by: bins must be a sequence of edges or 'tci', got {bins!r}")
            edges, labels = TCI_BINS, list(TCI_LABELS)
        else:
            edges = tuple(float(e) for e in bins)
            labels = [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])]
        idx = np.searchsorted(np.asarray(edges), vals.astype(np.float64), side="right") - 1  # [a, b)
        idx = np.where(np.isfinite(vals.astype(np.float64)) & (idx >= 0) & (idx < len(labels)), idx, -1)
        return idx, labels, labels
    flat = vals.ravel()
    if np.issubdtype(flat.dtype, np.floating):
        keys = sorted(pd.unique(flat[~np.isnan(flat)]))
    else:
        keys = sorted(pd.unique(flat))
    names = flag_names(strata)
    labels = [names.get(np.asarray(k).item(), str(k)) for k in keys]
    lookup = {k: i for i, k in enumerate(keys)}
    idx = np.array([lookup.get(v, -1) for v in flat], dtype=np.intp).reshape(vals.shape)
    return idx, labels, keys


def _stratum_medians(a: np.ndarray, idx: np.ndarray, nlab: int, ncore: int) -> np.ndarray:
    """Median over the last ``ncore`` axes of ``a`` of the pixels of each stratum (NaN ignored).

    ``idx`` holds the stratum index (0..nlab-1, -1 none) of each pixel, shaped like those axes.
    Returns ``a.shape[:-ncore] + (nlab,)``, NaN where a stratum has no defined value.
    """
    lead = a.shape[: a.ndim - ncore]
    flat = a.reshape(lead + (-1,))
    lab = np.asarray(idx).reshape(-1)
    out = np.full(lead + (nlab,), np.nan)
    for k in range(nlab):
        sel = flat[..., lab == k]
        if sel.shape[-1]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN strata: NaN by design
                out[..., k] = np.nanmedian(sel, axis=-1)
    return out


def summarise_by(
    result: xr.Dataset | xr.DataArray,
    strata: xr.DataArray,
    bins=None,
    variables: Sequence[Hashable] | None = ("pi", "psi", "eta"),
) -> xr.Dataset:
    """Mean and median of per-pixel accuracies per stratum (land cover, Koppen class, TCI class), with counts.

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        Per-pixel statistics, e.g. from :func:`triple_collocation` (NaN = undefined, ignored).
        A Dataset's ``reason`` (:data:`REASONS`) and ``n`` (samples per pixel), when present,
        give the counts ``n_out_of_range`` and ``n_samples``.
    strata : xarray.DataArray
        Stratum map on (a subset of) the result's dims, e.g. (y, x): class codes (names from
        CF ``flag_values``/``flag_meanings``) or a continuous field with ``bins``. Loaded into
        memory (a static map); ``result`` stays lazy.
    bins : sequence of float or "tci", optional
        Bin edges, intervals [a, b); ``"tci"`` gives the paper's TCI classes (:data:`TCI_BINS`:
        < 50, 50-150, 150-250, 250-350, >= 350 m).
    variables : sequence of str, optional
        Variables of a Dataset to summarise (default the accuracies pi, psi, eta; None = all
        floating-point variables on the strata dims).

    Returns
    -------
    xarray.Dataset
        Dim ``stratum`` (labels) plus the result's other dims (e.g. ``product``, ``pass``). Per
        variable ``k``: ``k`` the mean and ``k_median`` the median over the pixels where it is
        defined. Counts [1]: ``n_pixels`` (pixels where the first variable is defined: the
        pixels used), ``n_out_of_range`` (pixels with reason ``estimate_out_of_range``, left
        out; only with ``reason``), ``n_samples`` (sum of ``n`` over the pixels used, e.g. the
        pixel-days behind the statistics; only with ``n``) and the coordinate ``n_total`` (all
        pixels of the stratum).

    Notes
    -----
    .. math:: \\bar a_s = \\frac{1}{|P_s|}\\sum_{p \\in P_s} a_p,\\quad
              \\tilde a_s = \\operatorname{median}_{p \\in P_s} a_p,\\quad
              P_s = \\{p \\in s : a_p \\text{ defined}\\}

    unweighted (EASE-Grid 2.0 cells are equal-area). CTC pixels whose estimate is outside
    [0, 1] (reason 6) are NaN in psi/eta/pi and so not in P_s; that cuts the upper tail of a
    noisy estimate near 1, which pulls the mean (and, less, the median) down: read the means
    beside ``n_out_of_range``.

    Examples
    --------
    >>> summarise_by(res, statics.tci, bins="tci")  # doctest: +SKIP
    >>> summarise_by(res, aux.land_cover)  # names from flag_meanings  # doctest: +SKIP
    """
    ds = result.to_dataset(name=result.name or "value") if isinstance(result, xr.DataArray) else result
    sdims = list(strata.dims)
    missing = [d for d in sdims if d not in ds.dims]
    if missing:
        raise ValidationError(f"summarise_by: strata dims {missing} not in the result's dims {tuple(ds.dims)}")
    if isinstance(result, xr.DataArray):
        names = list(ds.data_vars)
    elif variables is None:
        names = [
            k for k, v in ds.data_vars.items() if np.issubdtype(v.dtype, np.floating) and set(sdims) <= set(v.dims)
        ]
    else:
        names = [k for k in variables if k in ds.data_vars]
        if not names:
            raise ValidationError(f"summarise_by: none of {list(variables)} in the result; it has {list(ds.data_vars)}")
    strata = strata.load()
    idx, labels, _ = _stratum_labels(strata, bins)
    onehot = (idx[..., None] == np.arange(len(labels))).astype(np.float64)
    oh = xr.DataArray(onehot, dims=tuple(sdims) + ("stratum",), coords={"stratum": labels})
    out = xr.Dataset(coords={"stratum": ("stratum", labels)})
    cm = f"{' '.join(f'{d}:' for d in sdims)}"
    used = None
    for i, k in enumerate(names):
        a = ds[k]
        ok = a.notnull()
        total = xr.dot(a.fillna(0.0), oh, dim=sdims)
        count = xr.dot(ok.astype(np.float64), oh, dim=sdims)
        keep = {kk: vv for kk, vv in a.attrs.items() if kk in ("long_name", "units")}
        out[k] = (total / count.where(count > 0)).assign_attrs(
            {**keep, "cell_methods": f"{cm} mean where defined (per stratum)"}
        )
        med = xr.apply_ufunc(
            _stratum_medians,
            a.astype(np.float64),
            input_core_dims=[sdims],
            output_core_dims=[["stratum"]],
            kwargs={"idx": idx, "nlab": len(labels), "ncore": len(sdims)},
            dask="parallelized",
            output_dtypes=[np.float64],
            dask_gufunc_kwargs={"output_sizes": {"stratum": len(labels)}, "allow_rechunk": True},
        )
        out[f"{k}_median"] = med.assign_coords(stratum=labels).assign_attrs(
            {**keep, "cell_methods": f"{cm} median where defined (per stratum)"}
        )
        if i == 0:
            used = ok
            out["n_pixels"] = (
                count.round().astype(np.int64).assign_attrs(long_name=f"pixels where {k} is defined (used)", units="1")
            )
    if isinstance(result, xr.Dataset) and "reason" in ds and set(sdims) <= set(ds["reason"].dims):
        flagged = (ds["reason"] == OUT_OF_RANGE).astype(np.float64)
        out["n_out_of_range"] = (
            xr.dot(flagged, oh, dim=sdims)
            .round()
            .astype(np.int64)
            .assign_attrs(
                long_name=f"pixels left out: reason {REASONS[OUT_OF_RANGE]} ({_REASON_TEXT[OUT_OF_RANGE]})", units="1"
            )
        )
    if isinstance(result, xr.Dataset) and "n" in ds and set(sdims) <= set(ds["n"].dims) and "n" not in names:
        ns = ds["n"].astype(np.float64).where(used, 0.0)
        out["n_samples"] = (
            xr.dot(ns, oh, dim=sdims)
            .round()
            .astype(np.int64)
            .assign_attrs(
                long_name=f"sum of n over the pixels where {names[0]} is defined (e.g. pixel-days)", units="1"
            )
        )
    out = out.assign_coords(
        n_total=xr.DataArray(
            onehot.reshape(-1, len(labels)).sum(0).astype(np.int64),
            dims="stratum",
            attrs={"long_name": "pixels in the stratum", "units": "1"},
        )
    )
    out = out.transpose("stratum", ...)
    out.attrs = {
        "strata": strata.name or "strata",
        "bins": "tci" if isinstance(bins, str) else (list(bins) if bins is not None else "categorical"),
        "history": history_stamp("summarise_by"),
    }
    return out


# --------------------------------------------------------------------------------------
# the study's xarray-level wrappers


def ctc_vs_truth(
    products: Mapping[str, xr.DataArray], truth: xr.DataArray | None = None, dim: str = "time", min_count: int = 30
) -> xr.Dataset:
    """Triple collocation of three FT products, with each product's actual accuracy against the truth.

    Parameters
    ----------
    products : mapping of 3 names -> DataArray
        FT codes on the same cells (they are intersected along every dim first).
    truth : xarray.DataArray, optional
        Truth FT (1/0/NaN or uint8) on the same cells.
    dim : str
        The collocation dim (time).
    min_count : int
        See :func:`ftcloud.science.ctc.triple_collocation`.

    Returns
    -------
    xarray.Dataset
        :func:`ftcloud.science.ctc.triple_collocation`'s result (computed) plus, with ``truth``,
        ``truth_psi`` (actual sensitivity P(product frozen | truth frozen)), ``truth_eta``
        (actual specificity), ``truth_pi`` (balanced accuracy) and ``truth_b`` (actual class
        balance 2 P(frozen) - 1), counted over the ``dim`` steps where all three products and
        the truth are valid.
    """
    names = list(products)
    if len(names) != 3:
        raise ValidationError(f"ctc_vs_truth: need 3 products, got {names}")
    arrs = [products[k] for k in names]
    if truth is not None:
        arrs.append(truth)
    arrs = [a.drop_vars([c for c in a.coords if c not in a.dims]) for a in arrs]
    arrs = list(xr.align(*arrs, join="inner"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedStatisticWarning)
        res = triple_collocation(*arrs[:3], dim=dim, min_count=min_count, names=names).compute()
    for w in caught:
        if issubclass(w.category, UndefinedStatisticWarning):
            log.info("%s", w.message)
    if truth is not None:
        t = arrs[3]
        valid = ft_valid(arrs[0]) & ft_valid(arrs[1]) & ft_valid(arrs[2]) & ft_valid(t)
        tf, tt = (t == 1) & valid, (t == 0) & valid
        nf, nt = tf.sum(dim), tt.sum(dim)
        psi, eta = [], []
        for a in arrs[:3]:
            psi.append(((a == 1) & tf).sum(dim) / nf.where(nf > 0))
            eta.append(((a == 0) & tt).sum(dim) / nt.where(nt > 0))
        idx = pd.Index(names, name="product")
        tp = xr.concat(psi, dim=idx).compute()
        te = xr.concat(eta, dim=idx).compute()
        res["truth_psi"] = tp.assign_attrs(long_name="actual sensitivity P(product frozen | truth frozen)", units="1")
        res["truth_eta"] = te.assign_attrs(long_name="actual specificity P(product thawed | truth thawed)", units="1")
        res["truth_pi"] = ((tp + te) / 2).assign_attrs(long_name="actual balanced accuracy", units="1")
        nv = nf + nt
        res["truth_b"] = (
            ((2 * nf / nv.where(nv > 0)) - 1).compute().assign_attrs(long_name="actual class balance E[Y]", units="1")
        )
        for k in ("truth_psi", "truth_eta", "truth_pi"):
            res[k] = res[k].transpose("product", ...)
    return res


def ctc_at_stations(
    conv: xr.DataArray,
    era5_stl1: xr.DataArray,
    cma: xr.Dataset,
    truth: xr.DataArray | None = None,
    period: tuple[str, str] = CTC_PERIOD,
    seasons: Sequence[str] = CTC_SEASONS,
    min_count: int = 30,
    step: int = 2,
) -> xr.Dataset:
    """The paper's CTC triplet at the CMA station pixels, per season, pass and station.

    Triplet: ConvLSTM_FT (``conv``, the product's ``ft``), ERA5_FT (:func:`era5_ft` of
    ``era5_stl1``) and Meteorology_FT (:func:`meteorology_ft` of ``cma``), each at the 9 km pixel
    of each station (:func:`ftcloud.science.validation.sample_at_stations`), over the days of ``period``
    all three share. Returns the CTC statistics (and the truth's, see :func:`ctc_vs_truth`) with
    dims (season, product, pass, station).
    """
    inside = (np.asarray(cma["pixel_row"].values) >= 0) & (np.asarray(cma["pixel_col"].values) >= 0)
    if not inside.any():
        raise ValidationError("CTC: no CMA station inside the product's window")
    cma = cma.isel(station=np.flatnonzero(inside)).load()
    rows, cols = cma["pixel_row"], cma["pixel_col"]
    x1 = sample_at_stations(conv.sel(time=slice(*period)), rows, cols).load()
    stl = era5_stl1.isel(step=step) if "step" in era5_stl1.dims else era5_stl1
    x2 = era5_ft(sample_at_stations(stl.sel(time=slice(*period)), rows, cols)).load()
    x3 = meteorology_ft(cma.sel(time=slice(*period))).load()
    tr = sample_at_stations(truth.sel(time=slice(*period)), rows, cols).load() if truth is not None else None
    parts = []
    for s in seasons:
        xs = {n: select_season(x, s) for n, x in zip(CTC_NAMES, (x1, x2, x3))}
        parts.append(ctc_vs_truth(xs, select_season(tr, s) if tr is not None else None, min_count=min_count))
    out = xr.concat(parts, dim=pd.Index(list(seasons), name="season"), combine_attrs="override")
    st_coords = {k: v for k, v in cma.coords.items() if v.dims == ("station",) and k != "station"}
    out = out.assign_coords(st_coords)
    out.attrs.update(
        {
            "title": "categorical triple collocation at the CMA station pixels (Cui et al. 2024)",
            "products": " ".join(CTC_NAMES),
            "period": f"{period[0]}/{period[1]}",
            "era5_ft_rule": f"stl1 at step {step} (05 h AM / 17 h PM local solar time) < 273.15 K",
            "meteorology_ft_rule": "AM: CMA t0_max < 0 degC; PM: t0_min < 0 degC (docs/science.md)",
            "history": history_stamp("ctc_at_stations"),
        }
    )
    return out


_CTC_VARS = ("psi", "eta", "pi")


_TRUTH_VARS = ("truth_psi", "truth_eta", "truth_pi")


def ctc_summaries(
    ctc: xr.Dataset, strata: Mapping[str, tuple[xr.DataArray, object]], min_count: int = MIN_TABLE_COUNT
) -> pd.DataFrame:
    """Mean and median CTC (and actual) accuracies over the stations where the CTC is defined, per stratum.

    Parameters
    ----------
    ctc : xarray.Dataset
        :func:`ctc_at_stations` (dims season, product, pass, station; ``n``, ``reason``, psi,
        eta, pi and, with the truth, truth_psi, truth_eta, truth_pi).
    strata : mapping
        name -> (map along ``station``, bins for :func:`ftcloud.science.ctc.summarise_by`). An ``"all"``
        stratum (every station) always comes first.
    min_count : int
        Fewest station-days (``n_days``) behind a row's statistics; fewer -> NaN.

    Returns
    -------
    pandas.DataFrame
        One row per stratum, season, pass and product: ``n_total`` (stations in the stratum),
        ``n_stations`` (stations used: reason ``ok``), ``n_out_of_range`` (stations left out
        because an estimated psi or eta fell outside [0, 1], reason ``estimate_out_of_range``),
        ``n_days`` (sum of the stations' ``n``: the station-days behind the statistics) and per
        accuracy ``v`` its mean ``v`` and median ``v_median`` over the stations used, and
        ``psi_raw_median`` / ``eta_raw_median``: the medians of the unchecked estimates over every
        fitted station (used + out of range), the least biased summary where a class is rare.
        Statistics of rows with ``n_days < min_count`` are NaN (the counts stay).
    """
    nst = ctc.sizes["station"]
    defined = ctc["reason"] == 0
    vars_ = [v for v in _CTC_VARS + _TRUTH_VARS if v in ctc]
    masked = xr.Dataset({v: ctc[v].where(defined) for v in vars_})
    masked["reason"], masked["n"] = ctc["reason"], ctc["n"]
    allmap = xr.DataArray(
        np.zeros(nst, np.uint8), dims="station", attrs={"flag_values": [0], "flag_meanings": "all_stations"}
    )
    raw_vars = [v for v in ("psi_raw", "eta_raw") if v in ctc]
    fitted = ctc["reason"].isin([0, OUT_OF_RANGE])
    raw = xr.Dataset({v: ctc[v].where(fitted) for v in raw_vars})
    frames = []
    for kind, (smap, bins) in {"all": (allmap, None), **dict(strata)}.items():
        s = summarise_by(masked, smap, bins=bins, variables=vars_)
        df = s.rename(n_pixels="n_stations", n_samples="n_days").to_dataframe().reset_index()
        if raw_vars:
            # medians of the unchecked estimates over every fitted station (reasons ok and out of
            # range): leaving the out-of-range ones out biases means AND medians low near 1
            r = summarise_by(raw, smap, bins=bins, variables=raw_vars).to_dataframe().reset_index()
            on = [c for c in ("stratum", "season", "pass", "product") if c in r.columns and c in df.columns]
            df = df.merge(r[on + [f"{v}_median" for v in raw_vars]], on=on, how="left")
        df.insert(0, "stratum_type", kind)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    stats = [c for v in vars_ for c in (v, f"{v}_median")] + [f"{v}_median" for v in raw_vars]
    df.loc[df["n_days"] < int(min_count), stats] = np.nan
    keep = [
        "stratum_type",
        "stratum",
        "n_total",
        "season",
        "pass",
        "product",
        "n_stations",
        "n_out_of_range",
        "n_days",
        *stats,
    ]
    return df[[c for c in keep if c in df.columns]]


def _ctc_station_table(ctc: xr.Dataset, strata: xr.Dataset | None, min_count: int = MIN_TABLE_COUNT) -> pd.DataFrame:
    """One row per season, product, pass and station: n, reason (name), b, the CTC and actual accuracies.

    ``psi_raw`` / ``eta_raw`` are the CTC estimates before the [0, 1] check (defined also for
    reason ``estimate_out_of_range``). Stations with ``n < min_count`` days have every accuracy
    NaN and reason ``too_few_samples``.
    """
    vars_ = ["n", "reason", "b", *[v for v in _CTC_VARS + ("psi_raw", "eta_raw") + _TRUTH_VARS if v in ctc]]
    sub = ctc[vars_]
    df = (
        sub.drop_vars([c for c in sub.coords if c not in ("season", "product", "pass", "station")])
        .to_dataframe()
        .reset_index()
    )
    sparse = df["n"] < int(min_count)
    df.loc[sparse, [v for v in vars_ if v not in ("n", "reason")]] = np.nan
    df.loc[sparse, "reason"] = 1
    df["reason"] = df["reason"].map(lambda r: REASONS.get(int(r), str(r)))
    st = pd.DataFrame({"station": ctc["station"].values})
    for c in ("lat", "lon", "pixel_row", "pixel_col"):
        if c in ctc.coords:
            st[c] = np.asarray(ctc[c].values)
    if strata is not None:
        for k, v in strata.data_vars.items():
            vals = np.asarray(v.values)
            names = flag_names(v)
            st[k] = [names.get(int(x), x) if names else x for x in vals]
    return df.merge(st, on="station", how="left")
