"""The paper's reference FT rules: in-situ networks, CMA meteorology and ERA5_FT (SPEC sections 5-6).

* **in-situ FT** of the networks: the 5 cm probes around the local solar overpass hour (:func:`network_ft`).
* **Meteorology_FT**: CMA 0 cm surface temperature, AM frozen when the day's maximum
  ``t0_max < 0 degC``, PM frozen when the day's minimum ``t0_min < 0 degC``
  (:func:`meteorology_ft`; why: docs/science.md).
* **ERA5_FT**: ERA5-Land ``stl1`` at the last hourly step before the overpass (``step`` 2 =
  05 h / 17 h local solar time) below 273.15 K (:func:`era5_ft`).

All return uint8 FT codes (0 thawed, 1 frozen, 255 missing) with ``pass`` AM/PM, lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
import numpy as np

from ftcloud.study import OVERPASS_HOURS
import pandas as pd
import xarray as xr
from ftcloud.errors import (
    MissingVariableError,
    ValidationError,
)
from ftcloud.core.metadata import history_stamp
from ftcloud.science.validation import (
    ft_from_temperature,
)

log = logging.getLogger(__name__)


def network_ft(
    tsoil: xr.DataArray,
    lon: xr.DataArray | Sequence[float] | None = None,
    half_window_h: float = 1.0,
    min_samples: int = 3,
) -> xr.DataArray:
    """Daily in-situ FT per pass from the networks' sub-daily 5 cm soil temperature.

    Rule: the overpass is 06:00 (AM) / 18:00 (PM) **local solar time**. Each station's UTC
    series is moved to local solar time (``UTC + lon/15 h``, rounded to the sampling step,
    i.e. within 15 min at 30 min sampling); the samples within ``+-half_window_h`` of the
    overpass hour (05:00-07:00 and 17:00-19:00: 5 readings at 30 min) are averaged and the
    pass is frozen when that mean is below 0 degC (:func:`ftcloud.science.validation.ft_from_temperature`,
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
        a = xr.DataArray(
            np.where(sel[None, :], local, np.nan),
            dims=("station", "time"),
            coords={"station": tsoil["station"].values, "time": tsoil["time"].values},
            attrs={"units": tsoil.attrs.get("units")},
        )
        outs.append(ft_from_temperature(a, how="mean", min_samples=min_samples))
    out = xr.concat(outs, dim=pd.Index(list(OVERPASS_HOURS), name="pass"), combine_attrs="override")
    out = out.assign_coords({k: v for k, v in tsoil.coords.items() if v.dims == ("station",) and k != "station"})
    out.attrs.update(
        {
            "long_name": "in-situ FT at the overpass (local solar time)",
            "rule": (
                f"mean of the readings within +-{half_window_h:g} h of {OVERPASS_HOURS['AM']:g}:00 (AM) / "
                f"{OVERPASS_HOURS['PM']:g}:00 (PM) local solar time (UTC + lon/15 h) < 0 degC; "
                f">= {min_samples} valid readings"
            ),
            "history": history_stamp("network_ft"),
        }
    )
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
    out.attrs["rule"] = (
        "AM: t0_max < 0 degC; PM: t0_min < 0 degC (CMA daily 0 cm surface temperature, "
        "local dates; Cui et al. 2024 section 4.3, docs/science.md)"
    )
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

        compared in the input's precision (:func:`ftcloud.science.validation.ft_from_temperature`).

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
                f"time) needs {int(step) + 1} or more (predictors/era5land holds 3: 03, 04, 05 h / 15, 16, 17 h)"
            )
        sel = stl1.isel(step=int(step))
    elif "step" in stl1.coords and stl1["step"].ndim == 0:
        got = stl1["step"].values.item()
        if got != int(step):
            raise ValidationError(
                f"era5_ft: {name} was reduced to step {got!r}; expected step {step} (05 h AM / 17 h PM local solar "
                "time)"
            )
        sel = stl1
    else:
        raise ValidationError(
            f"era5_ft: {name} has no 'step' axis (dims {stl1.dims}); expected the (time, pass, step, y, x) layout "
            f"of predictors/era5land with step {step} = 05 h AM / 17 h PM local solar time, or a selection keeping "
            "its scalar 'step' coordinate"
        )
    attrs = sel["step"].attrs if "step" in sel.coords else {}
    hours = {p: str(attrs.get(f"local_hours_{p}", "")).split() for p in ("AM", "PM")}
    at = ", ".join(f"{h[int(step)]} h {p}" for p, h in hours.items() if len(h) > int(step)) or "05 h AM / 17 h PM"
    out = ft_from_temperature(sel)
    out.attrs["rule"] = (
        f"ERA5-Land stl1 at step {step} ({at} local solar time: the nearest stored hour before the "
        "06:00 / 18:00 overpass) < 273.15 K"
    )
    return out
