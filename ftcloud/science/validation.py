"""Direct validation against in-situ networks (SPEC section 5).

* :func:`ft_from_temperature` turns soil temperature (K or degC) into daily FT codes with a
  strict ``< 0 degC`` threshold and a documented daily aggregation.
* :func:`sample_at_stations` picks the product's pixel of each station (``pixel_row`` /
  ``pixel_col`` coordinates of ftcloud's in-situ store; -1 = outside the window).
* :func:`classification_accuracy` counts the confusion table N[product state / in-situ state]
  and derives CA_F, CA_T and CA_O, optionally by season, pass and network.

All of them stay lazy on dask-backed input; counts are exact integer reductions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import UnitsError, ValidationError
from ftcloud.core.metadata import FT_MISSING, ft_attrs, ft_valid, history_stamp
from ftcloud.study import SEASON_MONTHS, SEASONS, TEST_PERIOD
from ftcloud.core.timeutil import season_of
import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = [
    "ft_from_temperature",
    "sample_at_stations",
    "classification_accuracy",
    "mask_sparse_accuracies",
    "MIN_TABLE_COUNT",
    "CA_COUNTS",
    "KELVIN_UNITS",
    "CELSIUS_UNITS",
    "DAILY_AGGREGATIONS",
]

#: accepted spellings of the units attribute (compared case-sensitively for K, as UDUNITS does)
KELVIN_UNITS = ("K", "kelvin", "Kelvin")
CELSIUS_UNITS = (
    "degC",
    "°C",
    "celsius",
    "Celsius",
    "deg_C",
    "degree_Celsius",
    "degrees_Celsius",
    "degree_C",
    "degrees_C",
)
#: how sub-daily samples become one daily state
DAILY_AGGREGATIONS = ("mean", "min", "max", "any")
#: fewest pixel-days (station-days) behind an accuracy that a table reports; fewer -> masked.
#: The same number as the figures' cut (``ftcloud.report.figures.accuracy_bars(min_pairs=20)``).
MIN_TABLE_COUNT = 20
#: the counts whose sum is the denominator of each accuracy of :func:`classification_accuracy`
CA_COUNTS = {"CA_F": ("N_FF", "N_TF"), "CA_T": ("N_TT", "N_FT"), "CA_O": ("n",)}


def _threshold_in_units(da: xr.DataArray, threshold: float) -> tuple[xr.DataArray, float, str]:
    """(temperature as float64 in its own units, the threshold in those units, the units).

    The threshold ``threshold`` [degC] is moved into the input's units (K: ``threshold + 273.15``)
    and rounded to the input's floating-point precision before the comparison, so that a value
    equal to the threshold *as stored* is not below it: ``np.float32(273.15)`` is
    273.149993896484375, which a conversion to degC in float64 would turn into -6.1e-6 degC
    (frozen). Comparing ``T_K < float(dtype(T_0 + 273.15))`` keeps the rule strict in every
    precision; float32 -> float64 is exact, so the cast of the data changes no value.
    """
    u = da.attrs.get("units")
    if u is None:
        raise UnitsError(
            f"ft_from_temperature: {da.name or 'the temperature'} has no units attribute; set "
            f"da.attrs['units'] to 'K' or 'degC' (ftcloud never guesses units)"
        )
    u = str(u).strip()
    if u in KELVIN_UNITS:
        t0 = float(threshold) + 273.15
    elif u in CELSIUS_UNITS:
        t0 = float(threshold)
    else:
        raise UnitsError(
            f"ft_from_temperature: {da.name or 'the temperature'} has units {u!r}; expected one of "
            f"{KELVIN_UNITS + CELSIUS_UNITS} (convert it first)"
        )
    if np.issubdtype(da.dtype, np.floating):
        t0 = float(np.asarray(t0, dtype=da.dtype))  # the threshold as the input's precision stores it
    return da.astype(np.float64), t0, u


def ft_from_temperature(
    da: xr.DataArray, threshold: float = 0.0, how: str = "mean", dim: str = "time", min_samples: int | None = None
) -> xr.DataArray:
    """Daily FT codes from soil temperature with a strict 0 degC threshold.

    Parameters
    ----------
    da : xarray.DataArray
        Soil temperature with a ``units`` attribute "K" or "degC" (see :data:`KELVIN_UNITS`,
        :data:`CELSIUS_UNITS`; anything else raises :class:`~ftcloud.errors.UnitsError`), NaN
        for missing samples, datetime coordinate ``dim``.
    threshold : float
        Threshold in degC; a day is frozen when the aggregated temperature is strictly below it.
    how : {"mean", "min", "max", "any"}
        Daily aggregation of sub-daily samples: the daily mean, minimum or maximum is compared
        with the threshold; "any" (any valid sample below the threshold) is the same as "min".
        Ignored for daily input.
    dim : str
        Time dimension.
    min_samples : int, optional
        Minimum number of valid samples a day needs (else 255). Default: half the nominal
        samples per day (24 of 48 at 30 min), from the median sampling interval.

    Returns
    -------
    xarray.DataArray
        ``ft`` uint8 (0 thawed, 1 frozen, 255 missing) with one value per calendar day of the
        time stamps as given (shift them to local time first if the days must be local), the
        other dims kept; lazy for dask input.

    Notes
    -----
    .. math:: FT_d = \\begin{cases}1 & A_d(T) < T_0\\\\ 0 & A_d(T) \\ge T_0 \\\\
              255 & \\#\\{\\text{valid samples of day } d\\} < \\text{min\\_samples}\\end{cases}

    with ``A_d`` the aggregation ``how`` over day d's valid samples and T_0 = ``threshold``
    (0 degC = 273.15 K). Daily input (median interval >= 1 day) is thresholded sample by sample.

    The comparison is made in the input's own units, against T_0 rounded to the input's
    floating-point precision: ``T_K < fl(T_0 + 273.15)`` for kelvin, ``T_C < fl(T_0)`` for degC,
    where ``fl`` rounds to the input dtype (float32 input: ``fl(273.15) = np.float32(273.15)``
    = 273.149993896484375 K). A value stored exactly at the threshold is therefore thawed in any
    precision; converting float32 kelvin to degC in float64 first would give
    ``np.float32(273.15) - 273.15 = -6.1e-6`` degC and call it frozen. The threshold used is
    recorded in the ``threshold_in_source_units`` attribute.

    Examples
    --------
    >>> ref = ft_from_temperature(insitu["tsoil"])  # doctest: +SKIP
    """
    if how not in DAILY_AGGREGATIONS:
        raise ValidationError(f"ft_from_temperature: how must be one of {DAILY_AGGREGATIONS}, got {how!r}")
    if dim not in da.dims:
        raise ValidationError(f"ft_from_temperature: dimension {dim!r} not found; dims are {da.dims}")
    tc, t0, units = _threshold_in_units(da, threshold)  # tc: the temperature in its own units (K or degC)
    times = pd.DatetimeIndex(da[dim].values)
    if times.size > 1 and not times.is_monotonic_increasing:
        raise ValidationError(f"ft_from_temperature: {dim!r} must be increasing")
    step = pd.Series(times).diff().median() if times.size > 1 else pd.Timedelta(days=1)
    attrs_extra = {"threshold_degC": float(threshold), "source_units": units, "threshold_in_source_units": t0}
    if step >= pd.Timedelta(days=1):
        frozen = tc < t0
        out = xr.where(tc.notnull(), frozen.astype(np.uint8), FT_MISSING).astype(np.uint8)
        attrs_extra["cell_methods"] = "time: point"
    else:
        per_day = int(round(pd.Timedelta(days=1) / step))
        need = max(1, per_day // 2) if min_samples is None else int(min_samples)
        if need < 1:
            raise ValidationError(f"ft_from_temperature: min_samples must be >= 1, got {min_samples}")
        if times.has_duplicates:
            raise ValidationError(f"ft_from_temperature: duplicate time stamps, e.g. {times[times.duplicated()][0]}")
        full = pd.date_range(times.normalize()[0], times.normalize()[-1], freq="D")
        diffs = np.diff(times.asi8)
        regular = (pd.Timedelta(days=1) % step == pd.Timedelta(0)) and bool(np.all(diffs % step.value == 0))
        if regular:
            # pad to whole days on the regular axis and reshape: (days, samples per day); chunk-friendly
            axis_full = pd.date_range(full[0], full[-1] + pd.Timedelta(days=1) - step, freq=step)
            tcf = tc.reindex({dim: axis_full})
            c = tcf.coarsen({dim: per_day}, boundary="exact")
            agg = {"mean": c.mean, "min": c.min, "max": c.max, "any": c.min}[how](skipna=True)
            count = tcf.notnull().coarsen({dim: per_day}, boundary="exact").sum()
            agg = agg.assign_coords({dim: full})
            count = count.assign_coords({dim: full})
        else:
            # irregular stamps: one group per calendar day (missing days -> 255)
            day = xr.DataArray(times.normalize().values, dims=dim, name=dim)
            g = tc.groupby(day)
            agg = {"mean": g.mean, "min": g.min, "max": g.max, "any": g.min}[how](dim, skipna=True)
            count = tc.notnull().groupby(day).sum(dim)
            agg = agg.reindex({dim: full})
            count = count.reindex({dim: full}, fill_value=0)
        frozen = agg < t0
        out = xr.where(count >= need, frozen.astype(np.uint8), FT_MISSING).astype(np.uint8)
        attrs_extra.update(
            {
                "cell_methods": (
                    f"{dim}: {'minimum' if how in ('min', 'any') else 'maximum' if how == 'max' else 'mean'} within "
                    "days"
                ),
                "daily_aggregation": how,
                "min_samples_per_day": need,
                "nominal_samples_per_day": per_day,
            }
        )
    out.name = "ft"
    out.attrs = ft_attrs(f"freeze/thaw state from soil temperature < {threshold:g} degC", gridded=False, **attrs_extra)
    out.attrs["history"] = history_stamp(f"ft_from_temperature(how={how!r}, threshold={threshold})")
    return out


def sample_at_stations(
    product: xr.DataArray | xr.Dataset,
    station_rows,
    station_cols,
    y_dim: str = "y",
    x_dim: str = "x",
    station_dim: str = "station",
):
    """The product at each station's pixel (nearest 9 km cell), missing where the station is outside.

    Parameters
    ----------
    product : xarray.DataArray or xarray.Dataset
        Gridded product with dims ``y_dim`` and ``x_dim`` (e.g. ft (pass, time, y, x)).
    station_rows, station_cols : xarray.DataArray or array-like of int
        Row and column of each station's pixel within the product's window, -1 outside (the
        ``pixel_row`` / ``pixel_col`` coordinates of ftcloud's in-situ store). DataArrays lend
        their dim and coordinates (station ids, network, lat/lon) to the result.
    y_dim, x_dim, station_dim : str
        Names of the grid dims and of the station dim (for array-like indices).

    Returns
    -------
    same type as ``product``
        ``y_dim``/``x_dim`` replaced by the station dim; FT codes 255 (floats NaN) for stations
        outside the window. Lazy for dask input.

    Notes
    -----
    ``out[..., s] = product[..., row_s, col_s]`` if ``0 <= row_s < ny`` and ``0 <= col_s < nx``,
    else missing.

    Examples
    --------
    >>> insitu = xr.open_zarr(store + "/insitu/networks")  # doctest: +SKIP
    >>> sample_at_stations(ds.ft, insitu.pixel_row, insitu.pixel_col)  # doctest: +SKIP
    """
    rows = (
        station_rows
        if isinstance(station_rows, xr.DataArray)
        else xr.DataArray(np.asarray(station_rows), dims=station_dim)
    )
    cols = (
        station_cols
        if isinstance(station_cols, xr.DataArray)
        else xr.DataArray(np.asarray(station_cols), dims=station_dim)
    )
    if rows.ndim != 1 or cols.ndim != 1 or rows.dims != cols.dims or rows.size != cols.size:
        raise ValidationError(
            f"sample_at_stations: station_rows and station_cols must be 1-D on the same dim, got {rows.dims} "
            f"{cols.dims}"
        )
    for d in (y_dim, x_dim):
        if d not in product.dims:
            raise ValidationError(
                f"sample_at_stations: the product has no dimension {d!r}; dims are {tuple(product.dims)}"
            )
    ny, nx = product.sizes[y_dim], product.sizes[x_dim]
    r = np.asarray(rows.values).astype(np.int64)
    c = np.asarray(cols.values).astype(np.int64)
    inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
    sdim = rows.dims[0]
    coords = {k: v for k, v in rows.coords.items() if k not in (y_dim, x_dim)}
    ri = xr.DataArray(np.where(inside, r, 0), dims=sdim)
    ci = xr.DataArray(np.where(inside, c, 0), dims=sdim)
    inside_da = xr.DataArray(inside, dims=sdim)

    def one(v: xr.DataArray) -> xr.DataArray:
        if y_dim not in v.dims or x_dim not in v.dims:
            return v
        s = v.isel({y_dim: ri, x_dim: ci})
        fill = FT_MISSING if v.dtype == np.uint8 else np.nan
        s = s.where(inside_da, fill).astype(v.dtype if v.dtype == np.uint8 else np.result_type(v.dtype, np.float32))
        s.attrs = dict(v.attrs)
        s.attrs.pop("grid_mapping", None)
        return s

    if isinstance(product, xr.Dataset):
        out = product.map(one, keep_attrs=True)
    else:
        out = one(product)
    out = out.drop_vars([k for k in (y_dim, x_dim) if k in out.coords], errors="ignore")
    grid_coords = [k for k, v in out.coords.items() if sdim in v.dims and k not in coords and k != sdim]
    out = out.drop_vars(grid_coords)  # e.g. the grid's lat/lon at the pixel; the station's own come below
    return out.assign_coords(coords)


def _indicators(x: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """(frozen, thawed) booleans of FT codes (uint8 0/1, else missing) or floats (1/0, NaN)."""
    return x == 1, x == 0


def classification_accuracy(
    product: xr.DataArray,
    reference: xr.DataArray,
    dim: str | Sequence[str] = "time",
    by: str | Sequence[str] | None = None,
    time_dim: str = "time",
) -> xr.Dataset:
    """Frozen, thawed and overall classification accuracy of a product against a reference.

    Parameters
    ----------
    product, reference : xarray.DataArray
        FT codes (uint8 0 thawed / 1 frozen / other missing, or floats 1 / 0 / NaN), e.g. the
        product sampled at stations (:func:`sample_at_stations`) and the in-situ FT
        (:func:`ft_from_temperature`). They are aligned with an inner join on their shared
        coordinates (the common period) and broadcast.
    dim : str or sequence of str
        Dims to count over (e.g. ``("time", "station")``); the others (e.g. ``pass``) are kept.
    by : str or sequence of str, optional
        Group the counts: ``"season"`` (:data:`ftcloud.study.SEASON_MONTHS` from the time
        coordinate ``time_dim``: frozen Dec-Jan, transition Feb-Apr + Oct-Nov, thawed May-Sep),
        or the name of a coordinate along the counted dims (e.g. ``"network"`` along
        ``station``; ``"pass"`` when ``pass`` is counted over). A dim that is not counted over
        needs no grouping: it is kept as is.
    time_dim : str
        The time dimension used for the seasons.

    Returns
    -------
    xarray.Dataset
        ``N_FF``, ``N_TF``, ``N_TT``, ``N_FT`` (int64, N[product/reference]), ``n`` (pairs valid in
        both) and ``CA_F``, ``CA_T``, ``CA_O`` [1] (NaN where the denominator is 0), with one dim
        per ``by`` key plus the kept dims. Lazy for dask input.

    Notes
    -----
    Over the pairs valid in both:

    .. math::
        CA_F = \\frac{N_{F/F}}{N_{F/F} + N_{T/F}},\\quad
        CA_T = \\frac{N_{T/T}}{N_{T/T} + N_{F/T}},\\quad
        CA_O = \\frac{N_{F/F} + N_{T/T}}{N_{F/F} + N_{T/F} + N_{T/T} + N_{F/T}}

    N[a/b] counts product state a with reference state b.

    Examples
    --------
    >>> prod = sample_at_stations(ds.ft, insitu.pixel_row, insitu.pixel_col)  # doctest: +SKIP
    >>> classification_accuracy(prod, ft_from_temperature(insitu.tsoil), dim=("time", "station"),
    ...                         by=["season", "network"])  # doctest: +SKIP
    """
    dims = [dim] if isinstance(dim, str) else list(dim)
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    try:
        product, reference = xr.align(product, reference, join="inner")
    except ValueError as e:
        raise ValidationError(f"classification_accuracy: cannot align product and reference: {e}") from e
    for d in set(product.dims) & set(reference.dims):
        if product.sizes[d] == 0:
            raise ValidationError(f"classification_accuracy: product and reference share no {d!r} coordinate values")
    product, reference = xr.broadcast(product, reference)
    for d in dims:
        if d not in product.dims:
            raise ValidationError(f"classification_accuracy: dim {d!r} not in the data's dims {product.dims}")
    pf, pt = _indicators(product)
    rf, rt = _indicators(reference)
    cell = xr.DataArray(["N_FF", "N_TF", "N_TT", "N_FT"], dims="cell")
    ind = xr.concat([pf & rf, pt & rf, pt & rt, pf & rt], dim=cell).astype(np.int64)
    factors = []
    group_coords = {}
    for key in keys:
        if key == "season":
            if time_dim not in dims:
                raise ValidationError(
                    f"classification_accuracy: by='season' needs {time_dim!r} among the counted dims {dims}"
                )
            labels = season_of(product[time_dim].values)
            names = list(SEASON_MONTHS)
            along = time_dim
        elif key in product.dims and key not in dims:
            continue  # kept dim: already one result per value
        elif key in product.coords:
            c = product.coords[key]
            if c.ndim != 1 or c.dims[0] not in dims:
                raise ValidationError(
                    f"classification_accuracy: by={key!r} must be a 1-D coordinate along one of the counted dims "
                    f"{dims}; "
                    f"it lies along {c.dims}"
                )
            along = c.dims[0]
            labels = np.asarray(c.values)
            names = sorted(pd.unique(labels).tolist(), key=str)
        else:
            raise ValidationError(
                f"classification_accuracy: cannot group by {key!r}: not 'season' nor a coordinate "
                f"({', '.join(map(str, product.coords))})"
            )
        oh = np.stack([np.asarray(labels == nm) for nm in names], axis=-1).astype(np.int64)
        factors.append(xr.DataArray(oh, dims=(along, f"{key}__group")))  # renamed after the sum (key may equal along)
        group_coords[key] = names
    counts = xr.dot(ind, *factors, dim=dims) if factors else ind.sum(dims)
    counts = counts.drop_vars([c for c in counts.coords if any(d in dims for d in counts[c].dims)], errors="ignore")
    counts = counts.rename({f"{k}__group": k for k in group_coords})
    counts = counts.assign_coords({k: v for k, v in group_coords.items()})
    out = xr.Dataset()
    for k in ["N_FF", "N_TF", "N_TT", "N_FT"]:
        out[k] = counts.sel(cell=k, drop=True).astype(np.int64)
    ff, tf, tt, ft = out["N_FF"], out["N_TF"], out["N_TT"], out["N_FT"]
    out["n"] = ff + tf + tt + ft
    f64 = np.float64
    out["CA_F"] = (ff.astype(f64) / (ff + tf).where(ff + tf > 0)).astype(f64)
    out["CA_T"] = (tt.astype(f64) / (tt + ft).where(tt + ft > 0)).astype(f64)
    out["CA_O"] = ((ff + tt).astype(f64) / out["n"].where(out["n"] > 0)).astype(f64)
    meta = {
        "N_FF": "product frozen, reference frozen",
        "N_TF": "product thawed, reference frozen",
        "N_TT": "product thawed, reference thawed",
        "N_FT": "product frozen, reference thawed",
    }
    for k, ln in meta.items():
        out[k].attrs = {
            "long_name": f"number of pairs: {ln}",
            "units": "1",
            "cell_methods": f"{' '.join(d + ':' for d in dims)} sum",
        }
    out["n"].attrs = {"long_name": "number of pairs valid in both", "units": "1"}
    out["CA_F"].attrs = {"long_name": "frozen classification accuracy N[F/F] / (N[F/F] + N[T/F])", "units": "1"}
    out["CA_T"].attrs = {"long_name": "thawed classification accuracy N[T/T] / (N[T/T] + N[F/T])", "units": "1"}
    out["CA_O"].attrs = {"long_name": "overall classification accuracy (N[F/F] + N[T/T]) / N", "units": "1"}
    out.attrs = {
        "counted_over": " ".join(dims),
        "grouped_by": " ".join(keys) if keys else "none",
        "seasons": "; ".join(f"{k}: months {', '.join(map(str, v))}" for k, v in SEASON_MONTHS.items()),
        "history": history_stamp("classification_accuracy"),
    }
    return out


def mask_sparse_accuracies(table, min_count: int = MIN_TABLE_COUNT):
    """CA_F, CA_T and CA_O set to NaN where fewer than ``min_count`` pairs lie behind them.

    Parameters
    ----------
    table : pandas.DataFrame or xarray.Dataset
        The counts and accuracies of :func:`classification_accuracy` (``N_FF``, ``N_TF``,
        ``N_TT``, ``N_FT``, ``n``, ``CA_F``, ``CA_T``, ``CA_O``; as columns or variables).
    min_count : int
        Fewest pairs (station-days, pixel-days) an accuracy needs (default
        :data:`MIN_TABLE_COUNT`).

    Returns
    -------
    same type as ``table``
        A copy with each accuracy NaN where its denominator (:data:`CA_COUNTS`) is below
        ``min_count``; the counts are unchanged, so a reader can tell a masked cell (0 < count <
        ``min_count``) from an undefined one (count 0).

    Notes
    -----
    .. math:: CA_F \\text{ masked if } N_{F/F} + N_{T/F} < m,\\quad
              CA_T \\text{ if } N_{T/T} + N_{F/T} < m,\\quad CA_O \\text{ if } n < m

    An accuracy over a handful of pairs (e.g. CA_T in Dec-Jan, when the soil is almost never
    thawed) is a coin toss, not a statistic.
    """
    if int(min_count) < 0:
        raise ValidationError(f"mask_sparse_accuracies: min_count must be >= 0, got {min_count}")
    out = table.copy()
    for ca, cols in CA_COUNTS.items():
        missing = [c for c in (ca, *cols) if c not in table]
        if missing:
            raise ValidationError(
                f"mask_sparse_accuracies: the table has no {missing}; expected the output of classification_accuracy"
            )
        denom = sum(table[c] for c in cols)
        out[ca] = table[ca].where(denom >= int(min_count))
    return out


# --------------------------------------------------------------------------------------
# the study's xarray-level wrappers


def _ca_cube(product: xr.DataArray, reference: xr.DataArray) -> xr.Dataset:
    """classification_accuracy by season x network with "all" rows for both (dims season, network, pass)."""
    parts = []
    for seasonal in (False, True):
        row = []
        for by_net in (False, True):
            by = (["season"] if seasonal else []) + (["network"] if by_net else [])
            r = classification_accuracy(product, reference, dim=("time", "station"), by=by or None)
            if not seasonal:
                r = r.expand_dims(season=["all"])
            if not by_net:
                r = r.expand_dims(network=["all"])
            row.append(r)
        parts.append(xr.concat(row, dim="network", combine_attrs="override"))
    out = xr.concat(parts, dim="season", combine_attrs="override")
    return out.reindex(season=list(SEASONS))


def direct_validation(
    products: Mapping[str, xr.DataArray],
    reference: xr.DataArray,
    truth: xr.DataArray | None = None,
    period: tuple[str, str] = TEST_PERIOD,
) -> xr.Dataset:
    """CA_F, CA_T, CA_O of gridded FT products against in-situ FT, per network, season and pass.

    Parameters
    ----------
    products : mapping name -> DataArray
        Gridded FT codes with dims (pass, time, y, x) (any order).
    reference : xarray.DataArray
        In-situ FT (pass, station, time) with station coordinates ``pixel_row``, ``pixel_col``
        and ``network`` (:func:`network_ft` on the ``insitu/networks`` group).
    truth : xarray.DataArray, optional
        The twin's truth (pass, time, y, x); adds ``reference = "truth"``: the same products
        against the truth of the station pixels on the same station-days (where the in-situ FT
        is valid), and the truth itself against the in-situ FT (product ``"truth"``).
    period : (start, end)
        The days counted (default the paper's test period).

    Returns
    -------
    xarray.Dataset
        N_FF, N_TF, N_TT, N_FT, n, CA_F, CA_T, CA_O with dims (reference, product, season,
        network, pass); season and network include "all".
    """
    ref = reference.sel(time=slice(*period)).load()
    if ref.sizes["time"] == 0:
        raise ValidationError(f"direct validation: the in-situ FT has no day in {period[0]}..{period[1]}")
    rows, cols = ref["pixel_row"], ref["pixel_col"]
    prods = dict(products)
    truth_st = None
    if truth is not None:
        truth_st = sample_at_stations(truth.sel(time=slice(*period)), rows, cols)
        truth_st = truth_st.drop_vars([c for c in truth_st.coords if truth_st[c].ndim == 0]).load()
        prods["truth"] = truth
    by_ref: dict[str, list] = {"insitu": []}
    if truth_st is not None:
        by_ref["truth"] = []
    names = list(prods)
    for name in names:
        p = sample_at_stations(prods[name].sel(time=slice(*period)), rows, cols)
        p = p.drop_vars([c for c in p.coords if p[c].ndim == 0]).load()  # e.g. crs
        by_ref["insitu"].append(_ca_cube(p, ref))
        if truth_st is not None:
            t_al, r_al = xr.align(truth_st, ref, join="inner")
            tref = t_al.where(ft_valid(r_al))  # the same station-days as the in-situ comparison
            by_ref["truth"].append(_ca_cube(p, tref))
    out = xr.concat(
        [xr.concat(v, dim=pd.Index(names, name="product"), combine_attrs="override") for v in by_ref.values()],
        dim=pd.Index(list(by_ref), name="reference"),
        combine_attrs="override",
    )
    out = out.transpose("reference", "product", "season", "network", "pass")
    out.attrs.update(
        {
            "title": "direct validation against in-situ networks (Cui et al. 2024)",
            "period": f"{period[0]}/{period[1]}",
            "insitu_rule": ref.attrs.get("rule", ""),
            "reference_truth": (
                "the twin's hidden truth at the station pixels on the station-days with valid in-situ FT"
            ),
            "history": history_stamp("direct_validation"),
        }
    )
    return out


def _direct_table(ds: xr.Dataset, min_count: int = MIN_TABLE_COUNT) -> pd.DataFrame:
    """The long direct-validation table; each CA is NaN where fewer than ``min_count`` station-days lie behind it.

    See :func:`ftcloud.science.validation.mask_sparse_accuracies` (CA_F needs N_FF + N_TF, CA_T needs
    N_TT + N_FT, CA_O needs n >= ``min_count``); the counts stay, so a masked cell can be told
    from an undefined one.
    """
    df = ds[["N_FF", "N_TF", "N_TT", "N_FT", "n", "CA_F", "CA_T", "CA_O"]].to_dataframe().reset_index()
    df = mask_sparse_accuracies(df, min_count)
    return df[
        [
            "reference",
            "product",
            "network",
            "season",
            "pass",
            "n",
            "N_FF",
            "N_TF",
            "N_TT",
            "N_FT",
            "CA_F",
            "CA_T",
            "CA_O",
        ]
    ]
