"""The science layer's orchestration: what ``ftcloud validate`` and ``ftcloud trends`` call.

The array-level statistics live in :mod:`ftcloud.validation` (direct validation),
:mod:`ftcloud.ctc` (categorical triple collocation) and :mod:`ftcloud.trends` (frozen days,
Sen/Mann-Kendall, Table 2). This module turns the store's groups into the products those
functions expect, runs them as the paper does (SPEC sections 5-7), and writes tables (CSV +
Markdown), zarr datasets and figures (:mod:`ftcloud.figures`).

Products and references built here (all uint8 FT codes: 0 thawed, 1 frozen, 255 missing):

* **ConvLSTM_FT**: the fused product, ``ft (pass, time, y, x)`` of ``ftcloud predict``.
* **SMAP_E_FT**, **ESDR_FT**: the targets of the store.
* **ERA5_FT**: ERA5-Land ``stl1`` at the last hourly step before the overpass (``step`` 2 =
  05 h / 17 h local solar time) below 273.15 K (:func:`era5_ft`).
* **Meteorology_FT**: CMA 0 cm surface temperature, AM frozen when the day's maximum
  ``t0_max < 0 degC``, PM frozen when the day's minimum ``t0_min < 0 degC``
  (:func:`meteorology_ft`; why: docs/science.md).
* **in-situ FT** of the networks: the 5 cm probes around the local solar overpass hour
  (:func:`network_ft`).
* **truth**: on the digital twin, the hidden truth ``truth/truth_ft_9km.nc`` (float 1/0/NaN),
  found from the store's ``ftcloud_source`` attribute (:func:`find_truth`) or given.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.ctc import OUT_OF_RANGE, REASONS, select_season, summarise_by, triple_collocation
from ftcloud.errors import (
    FTCloudError,
    GridMismatchError,
    MissingVariableError,
    UndefinedStatisticWarning,
    ValidationError,
)
from ftcloud.io.stores import open_group
from ftcloud.metadata import history_stamp
from ftcloud.trends import fdr, frozen_days, mann_kendall, regional_table
from ftcloud.validation import (
    CA_COUNTS,
    MIN_TABLE_COUNT,
    classification_accuracy,
    ft_from_temperature,
    mask_sparse_accuracies,
    sample_at_stations,
)

__all__ = [
    "CTC_PERIOD",
    "CTC_SEASONS",
    "OVERPASS_HOURS",
    "TEST_PERIOD",
    "ctc_at_stations",
    "ctc_summaries",
    "ctc_vs_truth",
    "direct_validation",
    "era5_ft",
    "find_truth",
    "meteorology_ft",
    "network_ft",
    "open_product",
    "open_truth_ft",
    "open_truth_summary",
    "regional_series",
    "stratum_masks",
    "table2",
    "to_markdown",
    "trends",
    "validate",
]

log = logging.getLogger(__name__)

#: the paper's test period (direct validation)
TEST_PERIOD = ("2018-04-01", "2020-12-31")
#: the CTC period (the whole product)
CTC_PERIOD = ("1980-01-01", "2020-12-31")
#: local solar hour of each overpass
OVERPASS_HOURS = {"AM": 6.0, "PM": 18.0}
#: seasons reported by the CTC (SPEC section 6); the direct validation adds "thawed"
CTC_SEASONS = ("all", "frozen", "transition")
SEASONS_ALL = ("all", "frozen", "transition", "thawed")
CTC_NAMES = ("ConvLSTM_FT", "ERA5_FT", "Meteorology_FT")
#: how a Markdown table shows a statistic masked for too few pixel-days (ftcloud.validation.MIN_TABLE_COUNT)
MASK_MARK = "–"


# --------------------------------------------------------------------------------------
# opening inputs


def open_product(url: str, storage_options: dict | None = None) -> xr.Dataset:
    """The fused product written by ``ftcloud predict`` (a complete zarr group at ``url``)."""
    url = str(url).rstrip("/")
    if "/" not in url:
        url = "./" + url
    parent, name = url.rsplit("/", 1)
    ds = open_group(parent, name, storage_options)
    if "ft" not in ds:
        raise MissingVariableError(f"{url}: no variable 'ft' (pass, time, y, x); is this an ftcloud product?")
    return ds


def find_truth(store: str | None = None, truth: str | None = None, storage_options: dict | None = None) -> str | None:
    """Folder of the twin's hidden truth, or None when there is none.

    ``truth`` (a folder holding ``truth_ft_9km.nc`` / ``truth_summary_9km.nc``) wins; otherwise
    the store's groups are asked for their ``ftcloud_source`` attribute (the twin folder they
    were ingested from) and ``<source>/truth`` is used when it exists (local folders only).
    """
    if truth:
        if not os.path.isdir(truth):
            raise ValidationError(f"--truth {truth}: no such folder")
        if not any(os.path.exists(os.path.join(truth, f)) for f in ("truth_ft_9km.nc", "truth_summary_9km.nc")):
            raise ValidationError(f"--truth {truth}: holds neither truth_ft_9km.nc nor truth_summary_9km.nc")
        return truth
    if not store:
        return None
    for group in ("statics", "predictors/era5land", "targets/smap_e_ft"):
        try:
            src = open_group(store, group, storage_options).attrs.get("ftcloud_source")
        except (FTCloudError, OSError):
            continue
        if not src or ("://" in src and not src.startswith("file://")):
            continue
        path = os.path.join(src.replace("file://", ""), "truth")
        if os.path.isdir(path):
            log.info("twin truth found at %s (from the store's ftcloud_source)", path)
            return path
    return None


def _on_grid(obj, like, what: str):
    """``obj`` on the x/y cells of ``like`` (same EASE2 grid; nearest within 1 m)."""
    try:
        out = obj.sel(x=like["x"].values, y=like["y"].values, method="nearest", tolerance=1.0)
    except KeyError as e:
        raise GridMismatchError(f"{what} does not cover the product's grid cells ({e})") from e
    return out.assign_coords(x=like["x"].values, y=like["y"].values)


def open_truth_ft(truth_dir: str, like: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """The hidden truth FT (pass, time, y, x) as float 1 frozen / 0 thawed / NaN, on ``like``'s grid (lazy)."""
    path = os.path.join(truth_dir, "truth_ft_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path, chunks={})  # the file's own chunks, lazily
    ft = ds["ft"]
    ft = ft.where((ft == 0) | (ft == 1)).astype(np.float32)
    ft = _on_grid(ft.drop_vars([c for c in ("lat", "lon") if c in ft.coords]), like, f"truth {path}")
    ft.attrs = {"long_name": "hidden truth FT of the digital twin", "comment": "1 frozen, 0 thawed, NaN sea/missing"}
    return ft.transpose("pass", "time", "y", "x")


def open_truth_summary(truth_dir: str, like) -> xr.Dataset:
    path = os.path.join(truth_dir, "truth_summary_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path).load()
    ds = ds.drop_vars([c for c in ("lat", "lon", "crs") if c in ds.variables])
    return _on_grid(ds, like, f"truth summary {path}")


def _parameters(truth_dir: str | None) -> dict:
    if not truth_dir:
        return {}
    try:
        with open(os.path.join(truth_dir, "parameters.json")) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}


# --------------------------------------------------------------------------------------
# FT of the references


def network_ft(tsoil: xr.DataArray, lon: xr.DataArray | Sequence[float] | None = None, half_window_h: float = 1.0,
               min_samples: int = 3) -> xr.DataArray:
    """Daily in-situ FT per pass from the networks' sub-daily 5 cm soil temperature.

    Rule: the overpass is 06:00 (AM) / 18:00 (PM) **local solar time**. Each station's UTC
    series is moved to local solar time (``UTC + lon/15 h``, rounded to the sampling step,
    i.e. within 15 min at 30 min sampling); the samples within ``+-half_window_h`` of the
    overpass hour (05:00-07:00 and 17:00-19:00: 5 readings at 30 min) are averaged and the
    pass is frozen when that mean is below 0 degC (:func:`ftcloud.validation.ft_from_temperature`,
    ``how="mean"``), missing (255) with fewer than ``min_samples`` valid readings.

    Why: the products (SMAP_E_FT, ConvLSTM_FT, the truth) describe the state *at the overpass*;
    the diurnal cycle of the top 5 cm is large (thawed afternoons over frozen nights in the
    transition seasons), so a daily mean or minimum would mix the AM and PM states. Averaging the
    +-1 h window keeps the state of the overpass while being robust to single missing or noisy
    readings; a window much wider than 1 h would smear in the morning warm-up (the 5 cm soil warms
    by ~1 K/h after 07:00 in spring).

    Parameters
    ----------
    tsoil : xarray.DataArray
        (station, time) soil temperature with ``units`` (degC or K), UTC time stamps on a regular
        sub-daily axis, coordinate ``lon`` (degrees east) unless ``lon`` is given.
    lon : array-like, optional
        Station longitudes (default ``tsoil["lon"]``).
    half_window_h : float
        Half width of the window around the overpass hour.
    min_samples : int
        Minimum valid readings in the window.

    Returns
    -------
    xarray.DataArray
        ``ft`` uint8 (pass, station, time): one value per local solar date, the station
        coordinates of ``tsoil`` kept.
    """
    if "station" not in tsoil.dims or "time" not in tsoil.dims:
        raise ValidationError(f"network_ft: tsoil must have dims (station, time), got {tsoil.dims}")
    lon = tsoil["lon"] if lon is None else lon
    lonv = np.asarray(getattr(lon, "values", lon), dtype=np.float64)
    t = pd.DatetimeIndex(tsoil["time"].values)
    if t.size < 2:
        raise ValidationError("network_ft: need a sub-daily series")
    step = pd.Series(t).diff().median()
    if step >= pd.Timedelta(days=1):
        raise ValidationError(f"network_ft: expected sub-daily readings, got a {step} step")
    arr = np.asarray(tsoil.transpose("station", "time").values, dtype=np.float64)
    n = arr.shape[1]
    shift = np.rint(lonv / 15.0 * pd.Timedelta(hours=1).value / step.value).astype(np.int64)
    local = np.full_like(arr, np.nan)
    for s, k in enumerate(shift):
        if abs(k) >= n:
            continue
        if k >= 0:
            local[s, k:] = arr[s, : n - k]
        else:
            local[s, :k] = arr[s, -k:]
    tod = np.asarray((t - t.normalize()) / pd.Timedelta(hours=1), dtype=np.float64)
    outs = []
    for h in OVERPASS_HOURS.values():
        sel = np.abs(tod - h) <= half_window_h + 1e-9
        a = xr.DataArray(np.where(sel[None, :], local, np.nan), dims=("station", "time"),
                         coords={"station": tsoil["station"].values, "time": tsoil["time"].values},
                         attrs={"units": tsoil.attrs.get("units")})
        outs.append(ft_from_temperature(a, how="mean", min_samples=min_samples))
    out = xr.concat(outs, dim=pd.Index(list(OVERPASS_HOURS), name="pass"), combine_attrs="override")
    out = out.assign_coords({k: v for k, v in tsoil.coords.items() if v.dims == ("station",) and k != "station"})
    out.attrs.update({
        "long_name": "in-situ FT at the overpass (local solar time)",
        "rule": (f"mean of the readings within +-{half_window_h:g} h of {OVERPASS_HOURS['AM']:g}:00 (AM) / "
                 f"{OVERPASS_HOURS['PM']:g}:00 (PM) local solar time (UTC + lon/15 h) < 0 degC; "
                 f">= {min_samples} valid readings"),
        "history": history_stamp("network_ft"),
    })
    return out


def meteorology_ft(cma: xr.Dataset) -> xr.DataArray:
    """Meteorology_FT (pass, station, time) from the CMA daily 0 cm surface temperature.

    AM frozen when the day's maximum ``t0_max < 0 degC``; PM frozen when the day's minimum
    ``t0_min < 0 degC`` (strictly below). Cui et al. 2024 (section 4.3) explain their CTC
    asymmetries by the 0 cm surface warming faster than the 0-7 cm soil in the morning (frozen
    soil read as thawed) and cooling faster in the afternoon (thawed soil read as frozen); with
    only the daily extremes, the warmed surface of the morning is bounded by ``t0_max`` and the
    cooled surface of the afternoon by ``t0_min``. On the twin this is the only one of the three
    candidate rules that reproduces all four of the paper's orderings; the overpass-timing rule
    (AM ``t0_min``, PM ``t0_max``) gives the reverse and the daily mean three of four
    (docs/science.md, "Meteorology_FT").
    """
    for v in ("t0_min", "t0_max"):
        if v not in cma:
            raise MissingVariableError(f"meteorology_ft: the CMA group has no {v!r}")
    am = ft_from_temperature(cma["t0_max"])
    pm = ft_from_temperature(cma["t0_min"])
    out = xr.concat([am, pm], dim=pd.Index(["AM", "PM"], name="pass"), combine_attrs="override")
    out.name = "ft"
    out.attrs["rule"] = ("AM: t0_max < 0 degC; PM: t0_min < 0 degC (CMA daily 0 cm surface temperature, "
                         "local dates; Cui et al. 2024 section 4.3, docs/science.md)")
    return out.transpose("pass", "station", "time")


def era5_ft(stl1: xr.DataArray, step: int = 2) -> xr.DataArray:
    """ERA5_FT: ERA5-Land ``stl1`` at the 05 h (AM) / 17 h (PM) local solar step below 273.15 K.

    Cui et al. 2024 define ERA5_FT as ERA5-Land ``stl1 < 0 degC`` without naming the hour. The
    products describe the state at the 06:00 / 18:00 overpass, but the store holds only the three
    predictor steps before it (``predictors/era5land``: ``step`` 0, 1, 2 = 03, 04, 05 h AM and
    15, 16, 17 h PM local solar time, SPEC section 2); the 06 h / 18 h value is not in it. The
    default ``step`` 2 is therefore the nearest available hour, one hour before the overpass
    (the hour the ConvLSTM sees last).

    Parameters
    ----------
    stl1 : xarray.DataArray
        ERA5-Land 0-7 cm soil temperature [K] (``units`` attribute) with dims (time, pass, step,
        y, x) in any order, as ``predictors/era5land`` stores it; or already reduced to one step
        (no ``step`` dim), in which case its scalar ``step`` coordinate must equal ``step``.
    step : int
        Position along ``step`` (2 = 05 h AM / 17 h PM).

    Returns
    -------
    xarray.DataArray
        ``ft`` uint8 (0 thawed, 1 frozen, 255 missing), the ``step`` dim dropped:

        .. math:: ERA5\\_FT = 1 \\text{ if } stl1[step] < 273.15\\,K \\text{ else } 0

        compared in the input's precision (:func:`ftcloud.validation.ft_from_temperature`).

    Raises
    ------
    ValidationError
        When ``stl1`` has no ``step`` axis (and no matching scalar ``step`` coordinate) or the
        axis is too short for ``step``.
    """
    name = stl1.name or "stl1"
    if "step" in stl1.dims:
        size = stl1.sizes["step"]
        if not 0 <= int(step) < size:
            raise ValidationError(
                f"era5_ft: {name} has {size} value(s) along 'step'; step {step} (05 h AM / 17 h PM local solar "
                f"time) needs {int(step) + 1} or more (predictors/era5land holds 3: 03, 04, 05 h / 15, 16, 17 h)")
        sel = stl1.isel(step=int(step))
    elif "step" in stl1.coords and stl1["step"].ndim == 0:
        got = stl1["step"].values.item()
        if got != int(step):
            raise ValidationError(
                f"era5_ft: {name} was reduced to step {got!r}; expected step {step} (05 h AM / 17 h PM local solar time)")
        sel = stl1
    else:
        raise ValidationError(
            f"era5_ft: {name} has no 'step' axis (dims {stl1.dims}); expected the (time, pass, step, y, x) layout "
            f"of predictors/era5land with step {step} = 05 h AM / 17 h PM local solar time, or a selection keeping "
            "its scalar 'step' coordinate")
    attrs = sel["step"].attrs if "step" in sel.coords else {}
    hours = {p: str(attrs.get(f"local_hours_{p}", "")).split() for p in ("AM", "PM")}
    at = ", ".join(f"{h[int(step)]} h {p}" for p, h in hours.items() if len(h) > int(step)) or "05 h AM / 17 h PM"
    out = ft_from_temperature(sel)
    out.attrs["rule"] = (f"ERA5-Land stl1 at step {step} ({at} local solar time: the nearest stored hour before the "
                         "06:00 / 18:00 overpass) < 273.15 K")
    return out


# --------------------------------------------------------------------------------------
# direct validation


def _frozen_indicator(x):
    return x == 1


def _valid(x):
    return (x == 0) | (x == 1)


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
    return out.reindex(season=list(SEASONS_ALL))


def direct_validation(products: Mapping[str, xr.DataArray], reference: xr.DataArray,
                      truth: xr.DataArray | None = None, period: tuple[str, str] = TEST_PERIOD) -> xr.Dataset:
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
            tref = t_al.where(_valid(r_al))  # the same station-days as the in-situ comparison
            by_ref["truth"].append(_ca_cube(p, tref))
    out = xr.concat([xr.concat(v, dim=pd.Index(names, name="product"), combine_attrs="override") for v in by_ref.values()],
                    dim=pd.Index(list(by_ref), name="reference"), combine_attrs="override")
    out = out.transpose("reference", "product", "season", "network", "pass")
    out.attrs.update({
        "title": "direct validation against in-situ networks (SPEC section 5)",
        "period": f"{period[0]}/{period[1]}",
        "insitu_rule": ref.attrs.get("rule", ""),
        "reference_truth": "the twin's hidden truth at the station pixels on the station-days with valid in-situ FT",
        "history": history_stamp("direct_validation"),
    })
    return out


def _direct_table(ds: xr.Dataset, min_count: int = MIN_TABLE_COUNT) -> pd.DataFrame:
    """The long direct-validation table; each CA is NaN where fewer than ``min_count`` station-days lie behind it.

    See :func:`ftcloud.validation.mask_sparse_accuracies` (CA_F needs N_FF + N_TF, CA_T needs
    N_TT + N_FT, CA_O needs n >= ``min_count``); the counts stay, so a masked cell can be told
    from an undefined one.
    """
    df = ds[["N_FF", "N_TF", "N_TT", "N_FT", "n", "CA_F", "CA_T", "CA_O"]].to_dataframe().reset_index()
    df = mask_sparse_accuracies(df, min_count)
    return df[["reference", "product", "network", "season", "pass", "n", "N_FF", "N_TF", "N_TT", "N_FT", "CA_F", "CA_T", "CA_O"]]


# --------------------------------------------------------------------------------------
# categorical triple collocation


def ctc_vs_truth(products: Mapping[str, xr.DataArray], truth: xr.DataArray | None = None, dim: str = "time",
                 min_count: int = 30) -> xr.Dataset:
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
        See :func:`ftcloud.ctc.triple_collocation`.

    Returns
    -------
    xarray.Dataset
        :func:`ftcloud.ctc.triple_collocation`'s result (computed) plus, with ``truth``,
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
        valid = _valid(arrs[0]) & _valid(arrs[1]) & _valid(arrs[2]) & _valid(t)
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
        nv = (nf + nt)
        res["truth_b"] = ((2 * nf / nv.where(nv > 0)) - 1).compute().assign_attrs(long_name="actual class balance E[Y]", units="1")
        for k in ("truth_psi", "truth_eta", "truth_pi"):
            res[k] = res[k].transpose("product", ...)
    return res


def ctc_at_stations(conv: xr.DataArray, era5_stl1: xr.DataArray, cma: xr.Dataset, truth: xr.DataArray | None = None,
                    period: tuple[str, str] = CTC_PERIOD, seasons: Sequence[str] = CTC_SEASONS,
                    min_count: int = 30, step: int = 2) -> xr.Dataset:
    """The paper's CTC triplet at the CMA station pixels, per season, pass and station.

    Triplet: ConvLSTM_FT (``conv``, the product's ``ft``), ERA5_FT (:func:`era5_ft` of
    ``era5_stl1``) and Meteorology_FT (:func:`meteorology_ft` of ``cma``), each at the 9 km pixel
    of each station (:func:`ftcloud.validation.sample_at_stations`), over the days of ``period``
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
    out.attrs.update({
        "title": "categorical triple collocation at the CMA station pixels (SPEC section 6)",
        "products": " ".join(CTC_NAMES),
        "period": f"{period[0]}/{period[1]}",
        "era5_ft_rule": f"stl1 at step {step} (05 h AM / 17 h PM local solar time) < 273.15 K",
        "meteorology_ft_rule": "AM: CMA t0_max < 0 degC; PM: t0_min < 0 degC (docs/science.md)",
        "history": history_stamp("ctc_at_stations"),
    })
    return out


_CTC_VARS = ("psi", "eta", "pi")
_TRUTH_VARS = ("truth_psi", "truth_eta", "truth_pi")


def ctc_summaries(ctc: xr.Dataset, strata: Mapping[str, tuple[xr.DataArray, object]],
                  min_count: int = MIN_TABLE_COUNT) -> pd.DataFrame:
    """Mean and median CTC (and actual) accuracies over the stations where the CTC is defined, per stratum.

    Parameters
    ----------
    ctc : xarray.Dataset
        :func:`ctc_at_stations` (dims season, product, pass, station; ``n``, ``reason``, psi,
        eta, pi and, with the truth, truth_psi, truth_eta, truth_pi).
    strata : mapping
        name -> (map along ``station``, bins for :func:`ftcloud.ctc.summarise_by`). An ``"all"``
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
    allmap = xr.DataArray(np.zeros(nst, np.uint8), dims="station", attrs={"flag_values": [0], "flag_meanings": "all_stations"})
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
    keep = ["stratum_type", "stratum", "n_total", "season", "pass", "product", "n_stations", "n_out_of_range", "n_days",
            *stats]
    return df[[c for c in keep if c in df.columns]]


def _ctc_station_table(ctc: xr.Dataset, strata: xr.Dataset | None, min_count: int = MIN_TABLE_COUNT) -> pd.DataFrame:
    """One row per season, product, pass and station: n, reason (name), b, the CTC and actual accuracies.

    ``psi_raw`` / ``eta_raw`` are the CTC estimates before the [0, 1] check (defined also for
    reason ``estimate_out_of_range``). Stations with ``n < min_count`` days have every accuracy
    NaN and reason ``too_few_samples``.
    """
    vars_ = ["n", "reason", "b", *[v for v in _CTC_VARS + ("psi_raw", "eta_raw") + _TRUTH_VARS if v in ctc]]
    sub = ctc[vars_]
    df = sub.drop_vars([c for c in sub.coords if c not in ("season", "product", "pass", "station")]).to_dataframe().reset_index()
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
            names = _flag_names(v)
            st[k] = [names.get(int(x), x) if names else x for x in vals]
    return df.merge(st, on="station", how="left")


def _flag_names(da: xr.DataArray) -> dict:
    fv, fm = da.attrs.get("flag_values"), da.attrs.get("flag_meanings")
    if fv is None or fm is None:
        return {}
    return {int(v): m for v, m in zip(np.atleast_1d(fv), str(fm).split())}


# --------------------------------------------------------------------------------------
# trends


def stratum_masks(region: xr.DataArray, stability: xr.DataArray | None = None, stability_region: str = "qinghai_tibet",
                  skip: Sequence = ("none", 0)) -> list[tuple[str, str, np.ndarray]]:
    """(group, name, mask) of each row of :func:`ftcloud.trends.regional_table`, in its order."""
    reg = np.asarray(region.values)
    rnames = _flag_names(region)
    out = []
    chosen = []
    for v in sorted(pd.unique(reg.ravel())):
        name = rnames.get(int(v), str(v))
        if v in skip or name in skip:
            continue
        chosen.append(v)
        out.append(("region", name, reg == v))
    if chosen:
        out.append(("all", "all regions", np.isin(reg, chosen)))
    if stability is not None:
        st = np.asarray(stability.values)
        snames = _flag_names(stability)
        code = [k for k, nm in rnames.items() if nm == stability_region]
        inreg = reg == (code[0] if code else stability_region)
        for v in sorted(pd.unique(st[inreg])):
            name = snames.get(int(v), str(v))
            if v in skip or name in skip:
                continue
            out.append(("stability", name, inreg & (st == v)))
    return out


def regional_series(fd: xr.DataArray, masks: list[tuple[str, str, np.ndarray]], dim: str = "year") -> xr.DataArray:
    """Stratum-mean series (stratum, year): the mean over the stratum's pixels valid in each year (as regional_table)."""
    spatial = [d for d in fd.dims if d != dim]
    m = xr.DataArray(np.stack([mk for _, _, mk in masks]).astype(np.float64), dims=("stratum", *spatial))
    fdt = fd.transpose(dim, *spatial)
    sums = xr.dot(fdt.fillna(0.0), m, dim=spatial)
    cnt = xr.dot(fdt.notnull().astype(np.float64), m, dim=spatial)
    s = (sums / cnt.where(cnt > 0)).transpose("stratum", dim)
    return s.assign_coords(stratum=[n for _, n, _ in masks], group=("stratum", [g for g, _, _ in masks])).compute()


def table2(fd: xr.DataArray, region: xr.DataArray, stability: xr.DataArray | None, alpha: float = 0.05,
           truth_fd: xr.DataArray | None = None, planted: xr.DataArray | None = None, variance: str = "original",
           lag: int | None = 1) -> pd.DataFrame:
    """The paper's Table 2 of ``fd`` (year, y, x), with the truth's Table 2 and the planted slopes beside it."""
    qt = [k for k, nm in _flag_names(region).items() if nm == "qinghai_tibet"]
    use_stab = stability is not None and bool(np.isin(np.asarray(region.values), qt).any())
    stab = stability if use_stab else None
    df = regional_table(fd, region, stab, alpha=alpha, variance=variance, lag=lag)
    if truth_fd is not None:
        tdf = regional_table(truth_fd, region, stab, alpha=alpha, variance=variance, lag=lag)
        tdf = tdf[["group", "name", "mean_frozen_days", "sen_slope", "slope_low", "slope_high", "p"]].add_prefix("truth_")
        df = df.merge(tdf, left_on=["group", "name"], right_on=["truth_group", "truth_name"], how="left").drop(columns=["truth_group", "truth_name"])
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
            df["planted_in_truth_ci"] = (df["planted_slope"] >= df["truth_slope_low"]) & (df["planted_slope"] <= df["truth_slope_high"])
    return df


# --------------------------------------------------------------------------------------
# Markdown


def _fmt(v, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def to_markdown(df: pd.DataFrame, digits: int | Mapping[str, int] = 3) -> str:
    """A pipe table of ``df`` (no dependency on tabulate); NaN as an empty cell."""
    cols = list(df.columns)
    dig = (lambda c: digits.get(c, 3)) if isinstance(digits, Mapping) else (lambda c: digits)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, dig(c)) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# writing


_TIMEDELTA_UNITS = {"days": "day", "hours": "hour", "minutes": "minute", "seconds": "second"}


def _write_zarr(ds: xr.Dataset, path: str) -> None:
    """Write ``ds`` as a consolidated zarr group (overwriting).

    Counts of days keep the UDUNITS singular (``units = "day"``): xarray decodes a float variable
    whose ``units`` is exactly "days" into timedelta64 on reading, which a frozen-day count is not.
    """
    ds = ds.copy()
    for v in list(ds.variables):
        ds[v].encoding = {}
        u = ds[v].attrs.get("units")
        if isinstance(u, str) and u in _TIMEDELTA_UNITS and ds[v].dtype.kind in "fiu":
            ds[v].attrs["units"] = _TIMEDELTA_UNITS[u]
        for k, a in list(ds[v].attrs.items()):
            if isinstance(a, (np.ndarray, list, tuple)) and k not in ("flag_values", "valid_range"):
                ds[v].attrs[k] = str(a)
    for v in ds.variables:
        if ds[v].dtype.kind == "U" or ds[v].dtype == object:
            ds[v] = ds[v].astype(str)
    ds.to_zarr(path, mode="w", consolidated=True)


class _Stages:
    """A tqdm bar over named stages on stderr, with their wall times."""

    def __init__(self, names: Sequence[str], desc: str, progress: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(names), desc=desc, unit="stage", disable=not progress, file=sys.stderr)
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def start(self, name: str) -> None:
        self.bar.set_postfix_str(name, refresh=True)
        self._t = time.perf_counter()
        log.info("%s ...", name)

    def done(self, name: str) -> None:
        self.times[name] = round(time.perf_counter() - self._t, 2)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _period_clip(times, period) -> tuple[str, str]:
    t = pd.DatetimeIndex(times)
    a, b = max(pd.Timestamp(period[0]), t[0]), min(pd.Timestamp(period[1]), t[-1])
    return f"{a:%Y-%m-%d}", f"{b:%Y-%m-%d}"


# --------------------------------------------------------------------------------------
# the two commands


BASELINE_PRODUCTS = ("ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")
COMPARE_SEASONS = {"all": None, "frozen": (12, 1), "transition": (2, 3, 4, 10, 11), "thawed": (5, 6, 7, 8, 9)}


def _codes(da: xr.DataArray) -> np.ndarray:
    """uint8 FT codes (1 frozen, 0 thawed, 255 missing) of an FT array (codes or float 1/0/NaN)."""
    v = np.asarray(da.values)
    if v.dtype.kind == "f":
        return np.where(np.isfinite(v), v, 255).astype("u1")
    return v.astype("u1")


def baseline_comparison(products: Mapping[str, xr.DataArray], truth: xr.DataArray | None, insitu: xr.DataArray | None,
                        period: tuple[str, str], n_boot: int = 1000) -> pd.DataFrame:
    """Every product on one common mask per (reference, pass, season), with 95 % intervals.

    ``products``: gridded FT (pass, time, y, x), the first one the target (ConvLSTM_FT).
    Against the truth: every pixel-day of ``period``; against in-situ: the network stations'
    pixels (``insitu`` from :func:`network_ft`). Blocks: 10 consecutive days of the whole window
    (or of all stations), which keeps the errors' spatial correlation (ftcloud.compare).
    Returns one row per (reference, pass, season, product) with CA_O/CA_F/CA_T, their
    intervals, n, and the target's gain over the product with its paired interval.
    """
    from ftcloud.compare import compare, time_blocks

    names = list(products)
    target = names[0]
    rows = []
    refs = {}
    if truth is not None:
        refs["truth"] = truth.sel(time=slice(*period)).transpose("pass", "time", "y", "x")
    if insitu is not None:
        refs["insitu"] = insitu.sel(time=slice(*period)).transpose("pass", "time", "station")
    for rname, ref in refs.items():
        times = pd.DatetimeIndex(ref["time"].values)
        sel = {k: products[k].sel(time=times).transpose("pass", "time", "y", "x") for k in names}
        if rname == "insitu":
            r_, c_ = ref["pixel_row"], ref["pixel_col"]
            sel = {k: sample_at_stations(v, r_, c_).transpose("pass", "time", "station") for k, v in sel.items()}
        for p in ref["pass"].values:
            rv = _codes(ref.sel({"pass": p}))
            pv = {k: _codes(v.sel({"pass": p})) for k, v in sel.items()}
            blocks, nb = time_blocks(times, rv.shape[1:])
            for season, months in COMPARE_SEASONS.items():
                m = np.ones(len(times), bool) if months is None else np.isin(times.month, months)
                if not m.any():
                    continue
                c = compare(pv, rv, blocks, nb, target=target, reference_name=rname,
                            mask=m.reshape((-1,) + (1,) * (rv.ndim - 1)), n_boot=n_boot, seed=0,
                            block="10-day blocks of the whole window" if rname == "truth" else "10-day blocks of all stations")
                for k, r in c.table.iterrows():
                    row = {"reference": rname, "pass": str(p), "season": season, "product": k, **r.to_dict()}
                    if k in c.gains.index:
                        row.update(c.gains.loc[k].to_dict())
                    rows.append(row)
    return pd.DataFrame(rows)


def _baselines_markdown(df: pd.DataFrame, period) -> str:
    from ftcloud.compare import gain_sentence

    lines = [f"# Every product on one common mask ({period[0]} .. {period[1]})", "",
             "CA_O in % with its 95 % block-bootstrap interval (blocks of 10 days of the whole window or of all "
             "stations, so neighbours' shared errors are not counted as independent evidence); gain = ConvLSTM_FT - product in points with its paired interval. ConvLSTM's "
             "heads alone are in the model cards (the product stores the fused output only).", "",
             "| reference | pass | season | product | CA_O | interval | CA_F | CA_T | gain | gain interval | n |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "–" if v is None or not np.isfinite(v) else f"{100 * v:.2f}"  # noqa: E731
    g = lambda v: "" if v is None or not np.isfinite(v) else f"{100 * v:+.2f}"  # noqa: E731
    words = []
    for _, r in df.iterrows():
        gi = "" if not np.isfinite(r.get("gain", np.nan)) else f"[{g(r['gain_lo'])}, {g(r['gain_hi'])}]"
        ca_f = f(r["CA_F"]) if r.get("n_F", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else MASK_MARK
        ca_t = f(r["CA_T"]) if r.get("n_T", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else MASK_MARK
        lines.append(f"| {r['reference']} | {r['pass']} | {r['season']} | {r['product']} | {f(r['CA_O'])} | "
                     f"[{f(r['CA_O_lo'])}, {f(r['CA_O_hi'])}] | {ca_f} | {ca_t} | {g(r.get('gain', np.nan))} | {gi} | "
                     f"{int(r['n'])} |")
        if np.isfinite(r.get("gain", np.nan)):
            ref = "the hidden truth" if r["reference"] == "truth" else "the in-situ networks"
            words.append(f"- {r['pass']}, {r['season']}: " + gain_sentence("ConvLSTM_FT", r["product"], r["gain"], r["gain_lo"],
                                                                            r["gain_hi"], int(r["n"]), ref))
    note = (f"{MASK_MARK}: CA_F / CA_T over fewer than {MIN_TABLE_COUNT} frozen / thawed reference days "
            "(n_F / n_T in baselines.csv), not reported.")
    return "\n".join(lines + ["", note, "", "In words:", ""] + words) + "\n"


def validate(store: str, product: str, out: str, *, truth: str | None = None, storage_options: dict | None = None,
             product_storage_options: dict | None = None, test_period: tuple[str, str] = TEST_PERIOD,
             ctc_period: tuple[str, str] = CTC_PERIOD, min_count: int = 30, half_window_h: float = 1.0,
             map_start: str = "2018-04-01", figures: bool = True, progress: bool = True) -> dict:
    """Direct validation against the networks, CTC at the CMA stations, figures; returns a summary.

    Writes into ``out``: ``direct_validation.{csv,md,zarr}``, ``ctc_stations.csv``,
    ``ctc_summary.{csv,md}``, ``ctc.zarr``, ``figures/fig03_ft_maps_{AM,PM}.png``,
    ``figures/fig04_accuracy_by_network.png``, ``figures/fig05_accuracy_by_season.png``,
    ``figures/fig06_ctc_AM.png``, ``figures/fig07_ctc_PM.png`` and ``validate-summary.json``.
    A part whose inputs are absent (no ``insitu/networks`` or ``insitu/cma`` group) is skipped
    with a log message and noted in the summary.
    """
    os.makedirs(out, exist_ok=True)
    figdir = os.path.join(out, "figures")
    stages = _Stages(["open", "direct", "baselines", "ctc", "figures", "write"], "validate", progress)
    summary: dict = {"store": store, "product": product, "out": os.path.abspath(out), "skipped": [], "files": []}
    t_all = time.perf_counter()

    stages.start("open")
    prod = open_product(product, product_storage_options)
    conv = prod["ft"].transpose("pass", "time", "y", "x")
    smap = open_group(store, "targets/smap_e_ft", storage_options)["smap_e_ft"].transpose("pass", "time", "y", "x")
    statics = _on_grid(open_group(store, "statics", storage_options), conv, "statics").load()
    tdir = find_truth(store, truth, storage_options)
    truth_ft = open_truth_ft(tdir, conv) if tdir and os.path.exists(os.path.join(tdir, "truth_ft_9km.nc")) else None
    summary["truth"] = tdir
    stages.done("open")

    # direct validation ------------------------------------------------------------------
    stages.start("direct")
    direct = None
    try:
        nets = open_group(store, "insitu/networks", storage_options).load()
    except MissingVariableError as e:
        nets = None
        log.warning("direct validation skipped: %s", e)
        summary["skipped"].append("direct validation (no insitu/networks group)")
    if nets is not None:
        ref = network_ft(nets["tsoil"], half_window_h=half_window_h)
        per = _period_clip(np.intersect1d(conv["time"].values, ref["time"].values), test_period)
        direct = direct_validation({"ConvLSTM_FT": conv, "SMAP_E_FT": smap}, ref, truth=truth_ft, period=per)
        ddf = _direct_table(direct)
        ddf.to_csv(os.path.join(out, "direct_validation.csv"), index=False)
        _write_zarr(direct, os.path.join(out, "direct_validation.zarr"))
        with open(os.path.join(out, "direct_validation.md"), "w") as f:
            f.write(_direct_markdown(ddf, per, ref.attrs.get("rule", "")))
        summary["direct"] = _direct_headline(ddf)
        summary["direct_period"] = list(per)
    stages.done("direct")

    # every product beside its baselines on one common mask ----------------------------------
    stages.start("baselines")
    try:
        esdr = open_group(store, "targets/esdr_ft", storage_options)["esdr_ft"].transpose("pass", "time", "y", "x")
        era_b = era5_ft(open_group(store, "predictors/era5land", storage_options)["stl1"]).transpose("pass", "time", "y", "x")
    except (MissingVariableError, KeyError) as e:
        esdr = era_b = None
        log.warning("baseline comparison skipped: %s", e)
        summary["skipped"].append(f"baseline comparison ({e})")
    ref_in = network_ft(nets["tsoil"], half_window_h=half_window_h) if nets is not None else None
    if esdr is not None and (truth_ft is not None or ref_in is not None):
        common_t = conv["time"].values
        for other in (smap, esdr, era_b):
            common_t = np.intersect1d(common_t, other["time"].values)
        per_b = _period_clip(common_t, test_period) if len(common_t) else None
        if per_b is None or pd.Timestamp(per_b[0]) > pd.Timestamp(per_b[1]):
            why = (f"the product, ERA5-Land and both targets share no day in {test_period[0]}..{test_period[1]}")
            log.warning("baseline comparison skipped: %s", why)
            summary["skipped"].append(f"baseline comparison ({why})")
        else:
            bprods = {"ConvLSTM_FT": conv, "ERA5_FT": era_b, "SMAP_E_FT": smap, "ESDR_FT": esdr}
            bdf = baseline_comparison(bprods, truth_ft, ref_in, per_b)
            if not bdf.empty:
                bdf.to_csv(os.path.join(out, "baselines.csv"), index=False)
                with open(os.path.join(out, "baselines.md"), "w") as f:
                    f.write(_baselines_markdown(bdf, per_b))
                summary["baselines_period"] = list(per_b)
    stages.done("baselines")

    # CTC ---------------------------------------------------------------------------------
    stages.start("ctc")
    ctc = None
    try:
        cma = open_group(store, "insitu/cma", storage_options)
    except MissingVariableError as e:
        cma = None
        log.warning("CTC skipped: %s", e)
        summary["skipped"].append("CTC (no insitu/cma group)")
    if cma is not None:
        era = open_group(store, "predictors/era5land", storage_options)["stl1"]
        per = _period_clip(np.intersect1d(np.intersect1d(conv["time"].values, era["time"].values), cma["time"].values), ctc_period)
        ctc = ctc_at_stations(conv, era, cma, truth=truth_ft, period=per, min_count=min_count)
        rows, cols = ctc["pixel_row"], ctc["pixel_col"]
        st_strata = sample_at_stations(statics[["land_cover", "koppen", "tci", "elevation"]], rows, cols).load()
        strata = {"land_cover": (st_strata["land_cover"], None), "koppen": (st_strata["koppen"], None), "tci": (st_strata["tci"], "tci")}
        sdf = ctc_summaries(ctc, strata)
        sdf.to_csv(os.path.join(out, "ctc_summary.csv"), index=False)
        stdf = _ctc_station_table(ctc, st_strata[["land_cover", "koppen", "tci"]])
        stdf.to_csv(os.path.join(out, "ctc_stations.csv"), index=False)
        _write_zarr(ctc, os.path.join(out, "ctc.zarr"))
        with open(os.path.join(out, "ctc_summary.md"), "w") as f:
            f.write(_ctc_markdown(sdf, per, ctc.sizes["station"]))
        summary["ctc"] = _ctc_headline(sdf)
        summary["ctc_period"] = list(per)
    stages.done("ctc")

    # figures -----------------------------------------------------------------------------
    stages.start("figures")
    if figures:
        from ftcloud import figures as F

        os.makedirs(figdir, exist_ok=True)
        dates = pd.date_range(map_start, periods=12, freq="MS")
        for p in conv["pass"].values:
            fp = os.path.join(figdir, f"fig03_ft_maps_{p}.png")
            F.ft_maps({"ConvLSTM_FT": conv.sel({"pass": p}), "SMAP_E_FT": smap.sel({"pass": p})}, dates, fp,
                      title=f"FT on the first day of each month, {p} pass")
            summary["files"].append(fp)
        if direct is not None:
            d = ddf[ddf["reference"] == "insitu"]
            d = d[d["product"] != "truth"]
            for by, name in (("network", "fig04_accuracy_by_network.png"), ("season", "fig05_accuracy_by_season.png")):
                fp = os.path.join(figdir, name)
                F.accuracy_bars(d, fp, by=by)
                summary["files"].append(fp)
        if ctc is not None:
            xs = statics["x"].values[np.asarray(ctc["pixel_col"].values)]
            ys = statics["y"].values[np.asarray(ctc["pixel_row"].values)]
            for p, name in (("AM", "fig06_ctc_AM.png"), ("PM", "fig07_ctc_PM.png")):
                if p not in ctc["pass"].values:
                    continue
                fp = os.path.join(figdir, name)
                F.ctc_bivariate(ctc.sel({"pass": p}), xs, ys, statics["elevation"], fp, title=f"CTC sensitivity / specificity at the CMA stations, {p} pass")
                summary["files"].append(fp)
    stages.done("figures")

    stages.start("write")
    for name in ("direct_validation.csv", "direct_validation.md", "direct_validation.zarr", "baselines.csv", "baselines.md",
                 "ctc_summary.csv", "ctc_summary.md", "ctc_stations.csv", "ctc.zarr"):
        if os.path.exists(os.path.join(out, name)):
            summary["files"].append(os.path.join(out, name))
    stages.done("write")
    stages.close()
    summary["stage_seconds"] = stages.times
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    with open(os.path.join(out, "validate-summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    return summary


def _masked_cells(df: pd.DataFrame, sparse: Mapping[str, pd.Series]) -> tuple[pd.DataFrame, int]:
    """``df`` with the cells of column c where ``sparse[c]`` is true replaced by MASK_MARK; and their number."""
    out = df.copy()
    k = 0
    for c, m in sparse.items():
        m = np.asarray(m, bool)
        if m.any():
            out[c] = out[c].astype(object)
            out.loc[m, c] = MASK_MARK
            k += int(m.sum())
    return out, k


def _mask_note(k: int, what: str, min_count: int) -> str:
    return (f"\n{MASK_MARK} : masked, fewer than {min_count} {what} behind the statistic "
            f"({k} cell{'s' if k != 1 else ''} in this table).\n" if k else "")


def _direct_markdown(ddf: pd.DataFrame, period, rule: str, min_count: int = MIN_TABLE_COUNT) -> str:
    lines = [f"# Direct validation against in-situ networks ({period[0]} .. {period[1]})\n",
             (f"\nIn-situ FT: {rule}. Products at the station's 9 km pixel; counts over station-days valid in both. "
              "CA_F = N[F/F]/(N[F/F]+N[T/F]), CA_T = N[T/T]/(N[T/T]+N[F/T]), CA_O = (N[F/F]+N[T/T])/N "
              "(product state / reference state), in %. Seasons: frozen Dec-Jan, transition Feb-Apr + Oct-Nov, "
              f"thawed May-Sep. An accuracy over fewer than {min_count} station-days (its own denominator: "
              f"N[F/F]+N[T/F] for CA_F, N[T/T]+N[F/T] for CA_T, N for CA_O) is not reported: {MASK_MARK} in the "
              "tables, empty in direct_validation.csv. Each product is counted on its own valid station-days "
              "(\"diff CA_O (own days)\" is therefore not a like-for-like gain); the fused product beside every "
              "baseline on ONE common mask, with intervals: baselines.md.\n")]
    for refname, title in (("insitu", "against the in-situ FT"), ("truth", "against the twin's truth at the same station-days")):
        d = ddf[ddf["reference"] == refname]
        if d.empty:
            continue
        prods = [p for p in ("ConvLSTM_FT", "SMAP_E_FT", "truth") if p in set(d["product"])]
        if refname == "truth":
            prods = [p for p in prods if p != "truth"]
        for p in sorted(set(d["pass"])):
            dp = d[d["pass"] == p]
            wide = None
            for prod in prods:
                x = dp[dp["product"] == prod][["network", "season", "n", "N_FF", "N_TF", "N_TT", "N_FT",
                                               "CA_F", "CA_T", "CA_O"]].copy()
                for c, cols in CA_COUNTS.items():
                    x[f"{c} sparse"] = sum(x[k] for k in cols) < min_count
                    x[c] = 100 * x[c]
                x = x.drop(columns=["N_FF", "N_TF", "N_TT", "N_FT"])
                x = x.rename(columns={c: f"{prod} {c}" for c in x.columns if c not in ("network", "season")})
                wide = x if wide is None else wide.merge(x, on=["network", "season"])
            sparse = {f"{prod} {c}": wide[f"{prod} {c} sparse"] for prod in prods for c in CA_COUNTS}
            if "ConvLSTM_FT CA_O" in wide and "SMAP_E_FT CA_O" in wide:
                wide["diff CA_O (own days)"] = wide["ConvLSTM_FT CA_O"] - wide["SMAP_E_FT CA_O"]
                sparse["diff CA_O (own days)"] = wide["ConvLSTM_FT CA_O sparse"] | wide["SMAP_E_FT CA_O sparse"]
            order = {s: i for i, s in enumerate(SEASONS_ALL)}
            wide = wide.sort_values(["network", "season"], key=lambda c: c.map(order) if c.name == "season" else c.map(lambda v: (v != "all", v)))
            sparse = {c: m.loc[wide.index] for c, m in sparse.items()}
            wide = wide[[c for c in wide.columns if not c.endswith(" sparse")]]
            shown, k = _masked_cells(wide, sparse)
            lines.append(f"\n## {p} pass, {title}\n\n")
            lines.append(to_markdown(shown, digits={c: (0 if c.endswith(" n") else 2) for c in wide.columns}))
            lines.append(_mask_note(k, "station-days", min_count))
    return "".join(lines)


def _direct_headline(ddf: pd.DataFrame) -> dict:
    out: dict = {}
    d = ddf[(ddf["season"].isin(["all", "frozen"]))]
    for r in d.to_dict("records"):
        out.setdefault(r["reference"], {}).setdefault(r["product"], {}).setdefault(r["network"], {}).setdefault(r["season"], {})[r["pass"]] = {
            "CA_F": _r(r["CA_F"]), "CA_T": _r(r["CA_T"]), "CA_O": _r(r["CA_O"]), "n": int(r["n"])}
    return out


def _r(v, n=4):
    return None if v is None or not np.isfinite(v) else round(float(v), n)


def _ctc_markdown(sdf: pd.DataFrame, period, nst: int, min_count: int = MIN_TABLE_COUNT) -> str:
    has_truth = "truth_pi" in sdf.columns
    lines = [f"# Categorical triple collocation ({period[0]} .. {period[1]}, {nst} CMA station pixels)\n\n",
             ("Triplet: ConvLSTM_FT, ERA5_FT (stl1 at 05 h / 17 h local solar time < 273.15 K), Meteorology_FT "
              "(CMA daily 0 cm surface temperature < 0 degC, rule in ctc.zarr and docs/science.md). psi = sensitivity "
              "(frozen detected), eta = specificity (thawed detected), pi = balanced accuracy; mean and median "
              "(`_median`) over the stations where the CTC is defined (n_stations). n_out_of_range: stations left out "
              "because an estimated psi or eta fell outside [0, 1] (sampling noise where a class is rare; their raw "
              "estimates are psi_raw / eta_raw in ctc_stations.csv), which pulls the means down where the accuracy is "
              f"near 1. n_days: station-days behind the row; statistics over fewer than {min_count} are not reported "
              f"({MASK_MARK} here, empty in ctc_summary.csv).\n")]
    if has_truth:
        lines.append("Columns `true ...`: each product's actual accuracy against the twin's hidden truth at the same "
                     "stations and days (the CTC assumes conditionally independent errors; ConvLSTM_FT is built from "
                     "ERA5-Land, so its errors are not independent of ERA5_FT's).\n")
    stat_cols = [c for c in sdf.columns if c.split("_median")[0] in _CTC_VARS + _TRUTH_VARS]
    a = sdf[sdf["stratum_type"] == "all"].copy()
    cols = ["season", "pass", "product", "n_stations", "n_out_of_range", "n_days",
            "psi", "psi_median", "eta", "eta_median", "pi", "pi_median"]
    if has_truth:
        a["true psi"], a["true eta"], a["true pi"] = a["truth_psi"], a["truth_eta"], a["truth_pi"]
        a["pi - true pi"] = a["pi"] - a["truth_pi"]
        cols += ["true psi", "true eta", "true pi", "pi - true pi"]
        stat_cols += ["true psi", "true eta", "true pi", "pi - true pi"]
    order = {s: i for i, s in enumerate(SEASONS_ALL)}
    a = a.sort_values(["season", "pass", "product"], key=lambda c: c.map(order) if c.name == "season" else c)
    cols = [c for c in cols if c in a.columns]
    sparse = a["n_days"] < min_count
    shown, k = _masked_cells(a[cols], {c: sparse for c in cols if c in stat_cols})
    lines.append("\n## All stations\n\n" + to_markdown(shown) + _mask_note(k, "station-days", min_count))
    for kind in ("land_cover", "koppen", "tci"):
        d = sdf[(sdf["stratum_type"] == kind) & (sdf["season"] == "all")]
        if d.empty:
            continue
        c2 = ["stratum", "n_total", "pass", "product", "n_stations", "n_out_of_range", "n_days",
              "psi", "psi_median", "eta", "eta_median", "pi", "pi_median"] + (["truth_pi"] if has_truth else [])
        c2 = [c for c in c2 if c in d.columns]
        shown, k = _masked_cells(d[c2], {c: d["n_days"] < min_count for c in c2 if c in stat_cols})
        lines.append(f"\n## By {kind} (all data)\n\n" + to_markdown(shown) + _mask_note(k, "station-days", min_count))
    return "".join(lines)


def _ctc_headline(sdf: pd.DataFrame) -> dict:
    a = sdf[sdf["stratum_type"] == "all"]
    out: dict = {}
    for r in a.to_dict("records"):
        e = {k: _r(r[k]) for k in ("psi", "eta", "pi", "truth_psi", "truth_eta", "truth_pi") if k in r}
        e["n_stations"] = int(r["n_stations"])
        out.setdefault(r["season"], {}).setdefault(r["pass"], {})[r["product"]] = e
    return out


def trends(product: str, store: str, out: str, *, truth: str | None = None, storage_options: dict | None = None,
           product_storage_options: dict | None = None, variance: str = "original", lag: int | None = 1,
           alpha: float = 0.05, q: float = 0.05,
           min_valid: float = 0.9, figures: bool = True, progress: bool = True) -> dict:
    """Frozen days per year, per-pixel Sen/Mann-Kendall with FDR, Table 2, figures; returns a summary.

    Writes into ``out``: ``trends.zarr`` (``frozen_days`` (pass, year, y, x) with pass AM, PM and
    their mean; per-pixel ``slope``, ``slope_low``, ``slope_high``, ``p``, ``significant``,
    ``significant_fdr`` (pass, y, x); the stratum series ``series`` (pass, stratum, year)),
    ``table2.{csv,md}``, ``regional_series.csv``, ``figures/fig11_regional_series.png``,
    ``figures/fig12_stability_series.png``, ``figures/slope_map.png`` and ``trends-summary.json``.
    With the twin's truth (found from the store or ``truth``) Table 2 also holds the truth's
    regional slopes and the planted ones.
    """
    os.makedirs(out, exist_ok=True)
    figdir = os.path.join(out, "figures")
    stages = _Stages(["frozen days", "per-pixel trends", "table 2", "figures", "write"], "trends", progress)
    t_all = time.perf_counter()
    summary: dict = {"product": product, "store": store, "out": os.path.abspath(out), "files": []}

    stages.start("frozen days")
    prod = open_product(product, product_storage_options)
    ft = prod["ft"]
    if "pass" not in ft.dims:
        ft = ft.expand_dims(pass_=["day"]).rename(pass_="pass")
    fd = frozen_days(ft, min_valid=min_valid).transpose("pass", "year", "y", "x")
    with warnings.catch_warnings():  # 0/0 of pixels without a valid day (water), NaN by design
        warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
        fd = fd.drop_vars([c for c in fd.coords if c not in fd.dims]).compute()
    fdm = fd.mean("pass", skipna=False).expand_dims({"pass": ["mean"]})
    fdm.attrs = dict(fd.attrs, cell_methods="time: sum pass: mean")
    fd_all = xr.concat([fd, fdm], dim="pass", combine_attrs="override")
    fd_all.attrs = dict(fd.attrs)
    fd_all["year"].attrs = {"long_name": "calendar year", "units": "year"}
    stages.done("frozen days")

    stages.start("per-pixel trends")
    mk = mann_kendall(fd_all, dim="year", variance=variance, lag=lag, alpha=alpha).compute()
    sig = fdr(mk["p"], q=q, dims=["y", "x"]).compute()
    stages.done("per-pixel trends")

    stages.start("table 2")
    statics = _on_grid(open_group(store, "statics", storage_options), fd, "statics").load()
    region, stab = statics["region"], statics.get("permafrost_stability")
    tdir = find_truth(store, truth, storage_options)
    summary["truth"] = tdir
    truth_fd = planted = None
    if tdir and os.path.exists(os.path.join(tdir, "truth_summary_9km.nc")):
        ts = open_truth_summary(tdir, fd)
        complete = ts["days_in_period"] >= 365
        tfd = ts["frozen_days"].where(complete).mean("pass").astype(np.float64)
        yrs = np.intersect1d(tfd["year"].values, fd["year"].values)
        truth_fd = tfd.sel(year=yrs).assign_attrs(units="days", long_name="truth frozen days per year (mean of AM and PM)")
        truth_fd["year"].attrs = {"units": "year"}
        planted = ts.get("target_slope")
    tables = []
    for p in fd_all["pass"].values:
        t = table2(fd_all.sel({"pass": p}, drop=True), region, stab, alpha=alpha,
                   truth_fd=truth_fd if p == "mean" else None, planted=planted if p == "mean" else None,
                   variance=variance, lag=lag)
        t.insert(0, "pass", p)
        tables.append(t)
    tab = pd.concat(tables, ignore_index=True)
    tab.to_csv(os.path.join(out, "table2.csv"), index=False)
    qt = [k for k, nm in _flag_names(region).items() if nm == "qinghai_tibet"]
    use_stab = stab is not None and bool(np.isin(np.asarray(region.values), qt).any())
    masks = stratum_masks(region, stab if use_stab else None)
    series = xr.concat([regional_series(fd_all.sel({"pass": p}, drop=True), masks) for p in fd_all["pass"].values],
                       dim=fd_all["pass"])
    tseries = regional_series(truth_fd, masks) if truth_fd is not None else None
    sdf = series.to_dataframe(name="frozen_days").reset_index()
    if tseries is not None:
        sdf = sdf.merge(tseries.to_dataframe(name="truth_frozen_days").reset_index()[["stratum", "year", "truth_frozen_days"]],
                        on=["stratum", "year"], how="left")
    sdf.to_csv(os.path.join(out, "regional_series.csv"), index=False)
    with open(os.path.join(out, "table2.md"), "w") as f:
        f.write(_table2_markdown(tab, fd_all, variance, alpha))
    stages.done("table 2")

    stages.start("figures")
    if figures:
        from ftcloud import figures as F

        os.makedirs(figdir, exist_ok=True)
        fits = mann_kendall(series.sel({"pass": "mean"}), dim="year", variance=variance, lag=lag, alpha=alpha).compute()
        for grp, name, title in ((("region", "all"), "fig11_regional_series.png", "Regional mean frozen days (mean of AM and PM)"),
                                 (("stability",), "fig12_stability_series.png", "Frozen days by permafrost thermal stability (Qinghai-Tibet)")):
            groups = list(series["group"].values)
            sel = [i for i, g in enumerate(groups) if g in grp]
            if groups.count("region") == 1:  # one region: "all regions" is the same series
                sel = [i for i in sel if groups[i] != "all"]
            if not sel:
                continue
            fp = os.path.join(figdir, name)
            F.regional_series(series.sel({"pass": "mean"}).isel(stratum=sel), fits.isel(stratum=sel), fp, title=title,
                              truth=tseries.isel(stratum=sel) if tseries is not None else None)
            summary["files"].append(fp)
        fp = os.path.join(figdir, "slope_map.png")
        F.slope_map(mk["slope"].sel({"pass": "mean"}), sig.sel({"pass": "mean"}), mk["significant"].sel({"pass": "mean"}), fp,
                    title=f"Sen slope of frozen days (mean of AM and PM), {int(fd['year'][0])}-{int(fd['year'][-1])}\n"
                          f"black dots: significant after FDR (q = {q:g}); grey dots: p < {alpha:g} per pixel only")
        summary["files"].append(fp)
    stages.done("figures")

    stages.start("write")
    res = xr.Dataset({"frozen_days": fd_all})
    for k in ("slope", "slope_low", "slope_high", "intercept", "tau", "p", "significant", "n"):
        res[k] = mk[k]
    res["significant_fdr"] = sig
    res["series"] = series.assign_attrs(long_name="stratum-mean frozen days (mean over the pixels valid in each year)", units="days")
    res = res.assign_coords(lat=prod["lat"], lon=prod["lon"]) if "lat" in prod.coords else res
    res.attrs = {"title": "ftcloud frozen-day trends (SPEC section 7)", "product": str(product), "variance": variance,
                 "lag": "all" if lag is None else int(lag), "alpha": alpha,
                 "fdr_q": q, "min_valid": min_valid, "history": history_stamp("ftcloud trends")}
    _write_zarr(res, os.path.join(out, "trends.zarr"))
    for name in ("trends.zarr", "table2.csv", "table2.md", "regional_series.csv"):
        summary["files"].append(os.path.join(out, name))
    stages.done("write")
    stages.close()
    m = tab[tab["pass"] == "mean"]
    summary["table2"] = [{k: (_r(v) if isinstance(v, float) else v) for k, v in r.items()} for r in m.to_dict("records")]
    summary["fdr_significant_fraction"] = {str(p): _r(float(sig.sel({"pass": p}).mean())) for p in sig["pass"].values}
    summary["stage_seconds"] = stages.times
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    with open(os.path.join(out, "trends-summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    return summary


def _table2_markdown(tab: pd.DataFrame, fd: xr.DataArray, variance: str, alpha: float) -> str:
    y0, y1 = int(fd["year"][0]), int(fd["year"][-1])
    m = tab[tab["pass"] == "mean"].copy()
    am = tab[tab["pass"] == "AM"].set_index(["group", "name"])["sen_slope"]
    pm = tab[tab["pass"] == "PM"].set_index(["group", "name"])["sen_slope"]
    m["AM slope"] = [am.get((g, n), np.nan) for g, n in zip(m["group"], m["name"])]
    m["PM slope"] = [pm.get((g, n), np.nan) for g, n in zip(m["group"], m["name"])]
    m["95% CI"] = [f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) and np.isfinite(b) else "" for a, b in zip(m["slope_low"], m["slope_high"])]
    cols = ["group", "name", "n_pixels", "mean_frozen_days", "sen_slope", "95% CI", "p", "significant", "AM slope", "PM slope"]
    if "truth_sen_slope" in m:
        m["truth 95% CI"] = [f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) and np.isfinite(b) else ""
                             for a, b in zip(m["truth_slope_low"], m["truth_slope_high"])]
        cols += ["truth_mean_frozen_days", "truth_sen_slope", "truth 95% CI"]
    if "planted_slope" in m:
        cols += ["planted_slope", "planted_in_ci"] + (["planted_in_truth_ci"] if "planted_in_truth_ci" in m else [])
    lines = [f"# Table 2: frozen days and their trend, {y0}-{y1}\n\n",
             ("Frozen days per calendar year (mean of AM and PM; a year needs 90 % valid days), averaged over the "
              "stratum's pixels; trend = Sen slope [days/year] of that regional series with its "
              f"{100 * (1 - alpha):.0f} % confidence interval and the two-sided Mann-Kendall p ({variance} variance). "
              "Permafrost classes inside Qinghai-Tibet only.\n")]
    if "truth_sen_slope" in m:
        lines.append("\n`truth_*`: the same table from the twin's hidden truth (truth/truth_summary_9km.nc, complete years); "
                     "`planted_slope`: the twin's planted per-pixel target slope averaged over the stratum (truth/parameters.json); "
                     "`planted_in_ci` / `planted_in_truth_ci`: planted slope inside the product's / the truth's confidence interval.\n")
    lines.append("\n" + to_markdown(m[cols], digits={"mean_frozen_days": 1, "truth_mean_frozen_days": 1, "p": 3}))
    return "".join(lines)
