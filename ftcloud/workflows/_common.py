"""What the validate and trends workflows share: zarr writing with CF-safe units, a stage bar, period clipping."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)


_TIMEDELTA_UNITS = {"days": "day", "hours": "hour", "minutes": "minute", "seconds": "second"}


def _write_zarr(ds: xr.Dataset, path: str) -> None:
    """Write ``ds`` as a consolidated zarr group (overwriting).

    Counts of days keep the UDUNITS singular (``units = "day"``): xarray decodes a float variable
    whose ``units`` is exactly "days" into timedelta64 on reading, which a frozen-day count is not.
    """
    from ftcloud.core.grid import grid_mapping_attrs
    from ftcloud.core.metadata import cf_globals, describe_coordinates, history_stamp

    ds = describe_coordinates(ds.copy())
    # CF-1.8 + ACDD globals (the dataset's own title and history kept)
    ds.attrs = {
        **cf_globals(str(ds.attrs.get("title") or "ftcloud output")),
        **{k: v for k, v in ds.attrs.items() if k != "Conventions"},
    }
    ds.attrs.setdefault("history", history_stamp("write " + os.path.basename(str(path).rstrip("/"))))
    # every variable on the grid names its grid mapping (EASE2, or lat/lon for a product in degrees)
    gridded = [n for n, v in ds.data_vars.items() if "y" in v.dims and "x" in v.dims]
    if gridded and "crs" not in ds.variables:
        degrees = str(ds["x"].attrs.get("units", "")).startswith("degree")
        ds["crs"] = xr.DataArray(
            np.int32(0),
            attrs={"grid_mapping_name": "latitude_longitude"} if degrees else grid_mapping_attrs(),
        )
    for n in gridded:
        ds[n].attrs.setdefault("grid_mapping", "crs")
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
