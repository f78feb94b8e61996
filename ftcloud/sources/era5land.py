"""ERA5-Land: open the CDS NetCDF/GRIB files and turn hourly fields into (time, pass, step, y, x).

Per month file (see docs/source-formats.md):

1. open, check variables, units (stl1 K, swvl1 m3 m-3, sde m, tp m), time axis and fill;
2. for each local date of the month, each pass and each of the three steps, pick the UTC hour
   that local solar hour maps to at every source longitude (``ftcloud.core.timeutil``);
3. turn accumulated ``tp`` (m since 00 UTC) into the rate over the hour ending at the step
   (mm h-1);
4. regrid bilinearly onto the EASE2 9 km window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import GridMismatchError, SourceFileError, TimeAxisError, ValidationError
from ftcloud.core.grid import GridWindow, LatLonRegridder, crop_weights
from ftcloud.core.metadata import OUTPUT_NAMES, PREDICTORS
from ftcloud.sources.common import (
    check_time_axis,
    daily_index,
    open_xarray_file,
    require_not_all_fill,
    require_units,
    require_variables,
    set_time,
)
from ftcloud.core.timeutil import LOCAL_STEP_HOURS, PASSES, step_offsets

WHAT = "ERA5-Land file"
VARIABLES = ("stl1", "swvl1", "sde", "tp")


def era5_url(root: str, month: pd.Timestamp) -> str:
    return f"{root.rstrip('/')}/era5land/era5land_{month:%Y%m}.nc"


def open_era5(
    url: str, variables=VARIABLES, *, storage_options: dict | None = None, units: dict | None = None, lazy: bool = False
) -> xr.Dataset:
    """Open one ERA5 / ERA5-Land file (NetCDF, packed NetCDF or GRIB) and check it at the door.

    Returns a dataset with dims (time, latitude, longitude), packing undone and fill values
    as NaN; a scalar time (one-step files) is expanded to a length-1 dimension.
    """
    raw = open_xarray_file(url, storage_options=storage_options, what=WHAT, lazy=lazy)
    try:
        out = _checked_era5(raw, url, variables, units)
    except BaseException:
        raw.close()
        raise
    out.set_close(raw.close)  # closing the returned dataset closes the file (lazy opens)
    return out


def _checked_era5(ds: xr.Dataset, url: str, variables, units) -> xr.Dataset:
    # CDS's newer NetCDF converter says valid_time; cfgrib keeps both time and valid_time
    if "time" not in ds.dims and "valid_time" in ds.dims:
        ds = ds.rename({"valid_time": "time"})
    if "time" in ds.coords and "time" not in ds.dims:
        ds = ds.expand_dims("time")
    require_variables(ds, list(variables) + ["latitude", "longitude"], url, WHAT)
    for v in variables:
        accepted = (units or {}).get(v) or (PREDICTORS[v].accepted_units if v in PREDICTORS else None)
        if accepted is None:
            raise ValidationError(
                f"{url}: no expected units known for ERA5-Land variable {v!r}; pass "
                f"units={{'{v}': ('K',)}} (the units it may carry) to open_era5"
            )
        require_units(ds[v], (accepted,) if isinstance(accepted, str) else accepted, url, WHAT)
        require_not_all_fill(ds[v], url, WHAT)
    check_time_axis(ds["time"].values, url, WHAT)
    return ds[list(variables)]


def _previous_hour(times: pd.DatetimeIndex, idx: np.ndarray, url: str) -> tuple[np.ndarray, np.ndarray]:
    """For each selected stamp, the index of the stamp one hour earlier and whether tp restarts.

    ERA5-Land ``tp`` accumulates from 00 UTC: the rate over the hour ending at ``t`` is
    ``tp(t) - tp(t - 1 h)``, except at 01 UTC where ``tp(01)`` already is that hour's total.
    """
    prev_t = times[idx.ravel()] - pd.Timedelta(hours=1)
    prev_idx = pd.Index(times).get_indexer(prev_t)
    reset = np.asarray(prev_t.hour == 0)
    need = ~reset & (prev_idx < 0)
    if need.any():
        raise TimeAxisError(
            f"{WHAT} {url}: precipitation de-accumulation needs UTC {prev_t[need][0]:%Y-%m-%d %H:00}, "
            "which the file does not hold (request the hour before each first step)"
        )
    return prev_idx.reshape(idx.shape), reset.reshape(idx.shape)


def era5_to_steps(
    ds: xr.Dataset, window: GridWindow, days: pd.DatetimeIndex, url: str = "<memory>", block_days: int = 8
) -> xr.Dataset:
    """Select the step hours for ``days`` (local dates) and regrid onto ``window``.

    Returns float32 variables ``stl1`` (K), ``swvl1`` (m3 m-3), ``sde`` (m) and ``pr``
    (mm h-1) with dims (time, pass, step, y, x). Reads only the source box that the window's
    regridding weights touch, ``block_days`` days of hours at a time: memory is bounded by the
    window and the block, not by the file.
    """
    lat = ds["latitude"].values
    lon = ds["longitude"].values
    times = pd.DatetimeIndex(ds["time"].values)
    lookup = pd.Index(times)
    base = days.values.astype("datetime64[h]")
    out = {v: np.empty((len(days), 2, 3, *window.shape), "f4") for v in VARIABLES}
    try:
        regrid = LatLonRegridder(lat, lon, window, "bilinear")
    except GridMismatchError as e:
        raise GridMismatchError(f"{WHAT} {url}: {e}") from None
    # read only the source box the window's weights touch and only the hours the days need
    # (memory: the window and the days, not the file), with the same weights: identical values
    rows, cols, weights = crop_weights(regrid.weights)
    lon_c = lon[cols]
    offsets = [step_offsets(lon_c, pass_) for pass_ in PASSES]  # (nlon, 3) hours relative to local date 00 UTC
    jj = np.arange(cols.stop - cols.start)[None, None, :]
    ii = np.arange(rows.stop - rows.start)[None, :, None]
    for d0 in range(0, len(days), block_days):  # memory: block_days of the source box at a time
        d1 = min(len(days), d0 + block_days)
        plan = []
        for p, pass_ in enumerate(PASSES):
            for k in range(3):
                want = base[d0:d1, None] + offsets[p][None, :, k].astype("timedelta64[h]")  # (ndays, nlon)
                idx = lookup.get_indexer(want.ravel().astype("datetime64[ns]")).reshape(want.shape)
                if (idx < 0).any():
                    d, j = np.argwhere(idx < 0)[0]
                    raise TimeAxisError(
                        f"{WHAT} {url}: needs UTC {pd.Timestamp(want[d, j]):%Y-%m-%d %H:00} for local "
                        f"{LOCAL_STEP_HOURS[pass_][k]:02d} h of {days[d0 + d]:%Y-%m-%d} at longitude {lon_c[j]:.2f}, "
                        "which the file does not hold"
                    )
                prev_idx, reset = _previous_hour(times, idx, url)
                plan.append((p, k, idx, prev_idx, reset))
        hours = np.unique(
            np.concatenate([np.concatenate([i.ravel(), np.maximum(q, 0).ravel()]) for _, _, i, q, _ in plan])
        )
        # one contiguous read of the hours' range (fancy indexing reads hour by hour: slow)
        box = {"time": slice(int(hours[0]), int(hours[-1]) + 1), "latitude": rows, "longitude": cols}
        try:
            arrays = {v: np.asarray(ds[v].isel(box).values, dtype="f8") for v in VARIABLES}
        except Exception as e:  # noqa: BLE001 - a lazily opened file fails here when its data are damaged
            raise SourceFileError(f"{WHAT} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e
        h0 = int(hours[0])
        for p, k, idx, prev_idx, reset in plan:
            sel = (idx - h0)[:, None, :]
            for v in ("stl1", "swvl1", "sde"):
                out[v][d0:d1, p, k] = weights.apply(arrays[v][sel, ii, jj])
            cur = arrays["tp"][sel, ii, jj]
            prev = np.where(reset[:, None, :], 0.0, arrays["tp"][(np.maximum(prev_idx, h0) - h0)[:, None, :], ii, jj])
            rate_mm = np.clip((cur - prev) * 1000.0, 0.0, None)  # packing noise can make it slightly negative
            out["tp"][d0:d1, p, k] = weights.apply(rate_mm)
        del arrays
    result = xr.Dataset(
        {OUTPUT_NAMES[v]: (("time", "pass", "step", "y", "x"), out[v]) for v in VARIABLES},
        coords=window.coords(),
    )
    for v in VARIABLES:
        spec = PREDICTORS[v]
        result[OUTPUT_NAMES[v]].attrs = {
            "units": spec.out_units,
            "standard_name": spec.standard_name,
            "long_name": spec.long_name,
            "grid_mapping": "crs",
            "coordinates": "lat lon",
            "source": "ERA5-Land hourly (CDS), regridded bilinearly to EASE2 9 km",
        }
    result = result.assign_coords(
        {
            "pass": ("pass", list(PASSES), {"long_name": "overpass (local solar time 06:00 AM / 18:00 PM)"}),
            "step": (
                "step",
                np.arange(3, dtype="i1"),
                {
                    "long_name": "predictor step before the overpass",
                    "local_hours_AM": "3 4 5",
                    "local_hours_PM": "15 16 17",
                },
            ),
        }
    )
    result["crs"] = window.template()["crs"]
    result = result.set_coords("crs")
    return set_time(result, days)


def preprocess_month(
    url: str, month: pd.Timestamp, window: GridWindow, start, end, storage_options: dict | None = None
) -> xr.Dataset:
    """Open one monthly file and produce the month's days (clipped to [start, end]); the file
    is opened lazily, so only the window's source box and the days' hours are read."""
    ds = open_era5(url, storage_options=storage_options, lazy=True)
    m_end = month + pd.offsets.MonthEnd(0)
    days = daily_index(max(month, pd.Timestamp(start)), min(m_end, pd.Timestamp(end)))
    try:
        return era5_to_steps(ds, window, days, url)
    finally:
        ds.close()
