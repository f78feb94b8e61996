"""Fake-data factories and assertions, importable by users' own tests too.

``write_era5land_file`` writes a file in the CDS layout of docs/source-formats.md from
arrays the caller chooses, so a test can plant analytic fields (linear in lon/lat, known
hourly accumulations) and check the recipe's output against hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ERA5_ATTRS = {
    "stl1": ("K", "Soil temperature level 1"),
    "swvl1": ("m**3 m**-3", "Volumetric soil water layer 1"),
    "sde": ("m", "Snow depth"),
    "tp": ("m", "Total precipitation"),
}


def pack_int16(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """CDS-style int16 packing: (packed, scale_factor, add_offset); NaN -> -32767."""
    v = np.asarray(values, "f8")
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scale = (hi - lo) / (2**16 - 4) if hi > lo else 1.0
    offset = lo + 32766 * scale  # int16 -32766 .. 32766 covers [lo, hi]; -32767 stays the fill
    packed = np.where(np.isfinite(v), np.round((v - offset) / scale), -32767).astype("i2")
    return packed, scale, offset


def write_era5land_file(path, times, lats, lons, fields: dict, *, units: dict | None = None) -> None:
    """Write one ERA5-Land NetCDF4 file (int16 packed, time in hours since 1900-01-01).

    ``fields`` maps variable name -> float array (time, lat, lon); NaN becomes the fill.
    ``units`` overrides the units attribute of a variable (to test the units check).
    """
    import netCDF4

    times = pd.DatetimeIndex(times)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.6"
        nc.history = "written by ftcloud.testing"
        nc.createDimension("longitude", len(lons))
        nc.createDimension("latitude", len(lats))
        nc.createDimension("time", None)
        lo = nc.createVariable("longitude", "f4", ("longitude",))
        lo.units, lo.long_name = "degrees_east", "longitude"
        lo[:] = lons
        la = nc.createVariable("latitude", "f4", ("latitude",))
        la.units, la.long_name = "degrees_north", "latitude"
        la[:] = lats
        t = nc.createVariable("time", "i4", ("time",))
        t.units, t.long_name, t.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        t[:] = ((times - pd.Timestamp("1900-01-01")) // pd.Timedelta(hours=1)).to_numpy("i4")
        for name, arr in fields.items():
            packed, scale, offset = pack_int16(arr)
            v = nc.createVariable(name, "i2", ("time", "latitude", "longitude"), fill_value=np.int16(-32767), zlib=True, complevel=1)
            v.set_auto_maskandscale(False)
            v.scale_factor = scale
            v.add_offset = offset
            v.missing_value = np.int16(-32767)
            u, ln = ERA5_ATTRS.get(name, ("1", name))
            v.units = (units or {}).get(name, u)
            v.long_name = ln
            v[:] = packed


def assert_lazy(obj) -> None:
    """Fail if any variable of a Dataset/DataArray is already in memory (not dask-backed)."""
    import xarray as xr

    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for v in variables:
        if v.chunks is None:
            raise AssertionError(f"{v.name!r} is computed (numpy-backed), expected a lazy dask array")
