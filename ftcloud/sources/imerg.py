"""GPM IMERG half-hourly granules -> precipitation at the predictor steps of each pass (mm/h, 9 km)."""

from __future__ import annotations

import io
import numpy as np
import pandas as pd
import xarray as xr
from ftcloud.errors import MissingVariableError, SourceFileError, UnitsError, ValidationError
from ftcloud.core.grid import GridWindow, LatLonRegridder
from ftcloud.core.metadata import PREDICTORS
from ftcloud.sources.common import (
    open_bytes,
    set_time,
)
from ftcloud.core.timeutil import PASSES, step_offsets


IMERG_WHAT = "GPM IMERG granule"


IMERG_EPOCH = pd.Timestamp("1980-01-06")


def imerg_url(root: str, start: pd.Timestamp) -> str:
    """URL of the half-hourly granule that starts at ``start`` (UTC)."""
    end = start + pd.Timedelta(minutes=29, seconds=59)
    minutes = start.hour * 60 + start.minute
    return (
        f"{root.rstrip('/')}/imerg/{start:%Y/%m/%d}/3B-HHR.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-"
        f"E{end:%H%M%S}.{minutes:04d}.V07B.HDF5"
    )


def read_imerg_granule(
    url: str, storage_options: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Timestamp]:
    """(precipitation[lat, lon] mm/hr with NaN fill, lat, lon, start time) of one granule."""
    import h5py

    data = open_bytes(url, storage_options, IMERG_WHAT)
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            if "Grid" not in f:
                raise MissingVariableError(f"{IMERG_WHAT} {url}: no 'Grid' group; groups: {', '.join(f.keys())}")
            g = f["Grid"]
            for name in ("precipitation", "lat", "lon", "time"):
                if name not in g:
                    raise MissingVariableError(
                        f"{IMERG_WHAT} {url}: variable 'Grid/{name}' not found; the group has: {', '.join(g.keys())}"
                    )
            pr = g["precipitation"]
            units = pr.attrs.get("units", b"")
            units = units.decode() if isinstance(units, bytes) else str(units)
            if units not in PREDICTORS["precipitation"].accepted_units:
                raise UnitsError(f"{IMERG_WHAT} {url}: variable 'precipitation' has units {units!r}, expected 'mm/hr'")
            fill = pr.attrs.get("_FillValue", -9999.9)
            arr = np.asarray(pr[0], dtype="f4")  # (lon, lat)
            lat = np.asarray(g["lat"][:], "f8")
            lon = np.asarray(g["lon"][:], "f8")
            t = int(np.asarray(g["time"][:]).ravel()[0])
    except (MissingVariableError, UnitsError):
        raise
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"{IMERG_WHAT} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e
    if arr.shape != (lon.size, lat.size):
        raise ValidationError(
            f"{IMERG_WHAT} {url}: precipitation has shape {arr.shape}, expected (lon, lat) = {(lon.size, lat.size)}"
        )
    arr = np.where(np.isclose(arr, np.float32(np.asarray(fill).ravel()[0])) | (arr < 0), np.nan, arr).T
    if not np.isfinite(arr).any():
        raise SourceFileError(f"{IMERG_WHAT} {url}: variable 'precipitation' holds only fill values")
    return arr, lat, lon, IMERG_EPOCH + pd.Timedelta(seconds=t)


def imerg_source_lons(window: GridWindow) -> np.ndarray:
    """Source longitudes whose step hours decide which granules a day needs (0.1 deg grid over the window)."""
    lon, _ = window.lonlat
    return np.arange(np.floor(lon.min() * 10) - 2, np.ceil(lon.max() * 10) + 3) / 10.0


def imerg_day(root: str, day: pd.Timestamp, window: GridWindow, storage_options: dict | None = None) -> xr.Dataset:
    """Hourly IMERG rates for the six steps of local ``day``, regridded: ``pr_imerg`` (1, pass, step, y, x)."""
    cache: dict[pd.Timestamp, tuple] = {}

    def granule(start: pd.Timestamp):
        if start not in cache:
            url = imerg_url(root, start)
            arr, lat, lon, t = read_imerg_granule(url, storage_options)
            if t != start:
                raise ValidationError(f"{IMERG_WHAT} {url}: Grid/time says {t}, the file name says {start}")
            cache[start] = (arr, lat, lon)
        return cache[start]

    out = np.empty((1, 2, 3, *window.shape), "f4")
    regrid = None
    src_lon = None
    for p, pass_ in enumerate(PASSES):
        for k in range(3):
            # the rate at step hour h is the mean of the half hours starting h-1:00 and h-0:30
            lons = imerg_source_lons(window)
            offs = step_offsets(lons, pass_)[:, k]
            fields = []
            for h in np.unique(offs):
                t_end = day + pd.Timedelta(hours=int(h))
                a, lat, lon = granule(t_end - pd.Timedelta(hours=1))
                b, _, _ = granule(t_end - pd.Timedelta(minutes=30))
                fields.append((h, (a + b) / 2.0, lat, lon))
            _, f0, lat, lon = fields[0]
            if regrid is None:
                regrid = LatLonRegridder(lat, lon, window, "bilinear")
                src_lon = lon
            rate = np.array(f0)
            # per source longitude, take the field of that column's own step hour
            col_off = step_offsets(src_lon, pass_)[:, k]
            for h, f, _, _ in fields[1:]:
                rate[:, col_off == h] = f[:, col_off == h]
            out[0, p, k] = regrid(rate)
    ds = xr.Dataset({"pr_imerg": (("time", "pass", "step", "y", "x"), out)}, coords=window.coords())
    ds["pr_imerg"].attrs = {
        "units": "mm h-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": PREDICTORS["precipitation"].long_name,
        "grid_mapping": "crs",
        "coordinates": "lat lon",
    }
    ds = ds.assign_coords({"pass": ("pass", list(PASSES)), "step": ("step", np.arange(3, dtype="i1"))})
    ds["crs"] = window.template()["crs"]
    return set_time(ds.set_coords("crs"), pd.DatetimeIndex([day]))
