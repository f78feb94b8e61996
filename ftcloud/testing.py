"""Fake-data factories and assertions, importable by users' own tests too.

``write_era5land_file`` writes a file in the CDS layout of docs/source-formats.md (with the
twin's own writer) from arrays the caller chooses, so a test can plant analytic fields (linear in lon/lat, known
hourly accumulations) and check the recipe's output against hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

def write_era5land_file(path, times, lats, lons, fields: dict, *, units: dict | None = None) -> None:
    """Write one ERA5-Land NetCDF4 file (the twin's writer: int16 packed, hours since 1900-01-01).

    ``fields`` maps variable name -> float array (time, lat, lon); NaN becomes the fill.
    ``units`` overrides the units attribute of a variable (to test the units check); names
    other than the four predictors are written as given (to test a wrong variable name).
    """
    from pathlib import Path

    from ftcloud.synth._writers import ERA5_VARS, write_era5_month

    variables = {n: ((units or {}).get(n, ERA5_VARS.get(n, ("1", n))[0]), ERA5_VARS.get(n, ("1", n))[1]) for n in fields}
    times = pd.DatetimeIndex(times).values.astype("datetime64[h]")
    write_era5_month(Path(path), np.asarray(lats), np.asarray(lons), times, dict(fields), "written by ftcloud.testing",
                     variables=variables)


def assert_lazy(obj) -> None:
    """Fail if any variable of a Dataset/DataArray is already in memory (not dask-backed)."""
    import xarray as xr

    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for v in variables:
        if v.chunks is None:
            raise AssertionError(f"{v.name!r} is computed (numpy-backed), expected a lazy dask array")
