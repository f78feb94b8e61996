"""Brightness temperatures (TB): SMAP L-band H/V from the SPL3FTP_E granules, and the multi-frequency
(6.9-89 GHz) CETB-like record on the 25 km grid, resampled to the 9 km store grid as ESDR is.

* ``predictors/tb_smap``: ``tbh``, ``tbv`` (time, pass, y, x) in K, from each granule's ``tbh_mean`` /
  ``tbv_mean`` (fill -9999 -> missing);
* ``predictors/tb_multifreq``: ``TB06.9H`` ... ``TB89.0V`` (time, pass, y, x) in K, from the files
  ``tb_multifreq/YYYY/NSIDC0630-EASE2_T25km-*-YYYY-<ch>-<M|E>-GRD-*.nc`` (``TB`` uint16 x 0.01 K, fill 0),
  nearest-neighbour from 25 km to 9 km (the ESDR recipe's resampling).

Both are optional sources: a source folder without TB is ingested without them. Values outside the
physical range of a brightness temperature are refused in one line naming the file, variable and value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.core.grid import EASE2_25KM, EASE2Regridder, GridWindow, covering_window
from ftcloud.errors import MissingVariableError, SourceFileError, ValidationError
from ftcloud.sources.common import check_time_axis, open_xarray_file, set_time
from ftcloud.sources.packing import Packing
from ftcloud.sources.targets import _window_slice, open_smap
from ftcloud.study import PASSES

__all__ = [
    "MULTIFREQ_CHANNELS",
    "TB_PACKING_MULTIFREQ",
    "TB_PACKING_SMAP",
    "TB_RANGE_K",
    "multifreq_url",
    "preprocess_multifreq_year",
    "preprocess_smap_tb",
    "smap_has_tb",
]

SMAP_TB_WHAT = "SMAP L-band TB (SPL3FTP_E tbh_mean/tbv_mean)"
MULTIFREQ_WHAT = "multi-frequency TB (CETB-like)"
#: what a brightness temperature can physically be (K)
TB_RANGE_K = (50.0, 350.0)
#: the channels of the multi-frequency record, as in its file names
MULTIFREQ_CHANNELS = tuple(f"{f}{p}" for f in ("06.9", "10.7", "18.7", "23.8", "36.5", "89.0") for p in "HV")
_PASS_LETTER = {"AM": "M", "PM": "E"}
#: TB packed as int16 hundredths of a kelvin around 200 K (-127.67 .. 527.67 K; 0.005 K, far below any NEDT)
_TB_PACK = Packing(0.01, 200.0, "K")
TB_PACKING_SMAP = {"tbh": _TB_PACK, "tbv": _TB_PACK}
TB_PACKING_MULTIFREQ = {f"TB{ch}": _TB_PACK for ch in MULTIFREQ_CHANNELS}


def multifreq_url(root: str, year: int, channel: str, pass_: str) -> str:
    return (
        f"{root.rstrip('/')}/tb_multifreq/{year:04d}/"
        f"NSIDC0630-EASE2_T25km-TWIN_AMSR-{year:04d}-{channel}-{_PASS_LETTER[pass_]}-GRD-v1.5.nc"
    )


def _tb_attrs(long_name: str) -> dict:
    return {
        "long_name": long_name,
        "standard_name": "brightness_temperature",
        "units": "K",
        "grid_mapping": "crs",
        "coordinates": "lat lon",
    }


def _check_range(values: np.ndarray, url: str, variable: str, what: str) -> None:
    lo, hi = TB_RANGE_K
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & ((values < lo) | (values > hi))
    if bad.any():
        raise ValidationError(
            f"{what} {url}: {variable} holds {float(values[bad][0]):g} K; a brightness temperature lies in "
            f"[{lo:g}, {hi:g}] K"
        )


def smap_has_tb(url: str, storage_options: dict | None = None) -> bool:
    """Whether the SMAP granule at ``url`` carries ``tbh_mean`` and ``tbv_mean``."""
    try:
        ds = open_smap(url, storage_options=storage_options, variables=("tbh_mean", "tbv_mean"))
    except (MissingVariableError, SourceFileError, FileNotFoundError, OSError):
        return False
    return "tbh_mean" in ds and "tbv_mean" in ds


def preprocess_smap_tb(url: str, day: pd.Timestamp, window: GridWindow, storage_options: dict | None = None):
    """One granule's TB H and V on the window: ``tbh``, ``tbv`` (time=1, pass, y, x) float32 K, NaN missing."""
    ds = open_smap(url, storage_options=storage_options, variables=("tbh_mean", "tbv_mean"))
    missing = [v for v in ("tbh_mean", "tbv_mean") if v not in ds]
    if missing:
        raise MissingVariableError(
            f"{SMAP_TB_WHAT} {url}: variable {missing[0]!r} not found; the group has: "
            f"{', '.join(sorted(map(str, ds.variables)))}"
        )
    rows, cols = _window_slice(ds["x"].values, ds["y"].values, window, url, SMAP_TB_WHAT)
    out = {}
    for src, name, pol in (("tbh_mean", "tbh", "horizontally"), ("tbv_mean", "tbv", "vertically")):
        raw = np.asarray(ds[src].values, "f4")[:, rows, cols]
        fill = ds[src].attrs.get("_FillValue", -9999.0)
        raw = np.where(raw == np.float32(fill), np.nan, raw)
        _check_range(raw, url, src, SMAP_TB_WHAT)
        out[name] = (("time", "pass", "y", "x"), raw[None], _tb_attrs(f"SMAP L-band {pol} polarised TB (1.41 GHz)"))
    res = xr.Dataset(out, coords={**window.coords(), "pass": ("pass", list(PASSES))})
    res["crs"] = window.template()["crs"]
    return set_time(res.set_coords("crs"), pd.DatetimeIndex([day]))


def preprocess_multifreq_year(
    root: str, year: int, window: GridWindow, start, end, storage_options: dict | None = None
) -> xr.Dataset:
    """The days of ``year`` within [start, end] of every channel and pass of the multi-frequency record on the
    9 km ``window`` (time, pass, y, x). Only those days and the 25 km cells covering ``window`` are read, so a
    work item (a chunk of days and a tile) holds its own share, never the year or the region."""
    days = pd.date_range(
        max(pd.Timestamp(f"{year}-01-01"), pd.Timestamp(start)),
        min(pd.Timestamp(f"{year}-12-31"), pd.Timestamp(end)),
        freq="D",
    )
    src = covering_window(window, EASE2_25KM, margin=1)
    regrid = EASE2Regridder(src, window, "nearest")
    out = {}
    for ch in MULTIFREQ_CHANNELS:
        per_pass = []
        for p in PASSES:
            url = multifreq_url(root, year, ch, p)
            # opened lazily: only the item's days (one contiguous run) and covering cells are read (byte ranges
            # on an object store), not the year's file
            ds = open_xarray_file(
                url, storage_options=storage_options, what=MULTIFREQ_WHAT, mask_and_scale=True, lazy=True
            )
            try:
                if "TB" not in ds:
                    raise MissingVariableError(
                        f"{MULTIFREQ_WHAT} {url}: variable 'TB' not found; it has {', '.join(map(str, ds.data_vars))}"
                    )
                times = check_time_axis(ds["time"].values, url, MULTIFREQ_WHAT, expected=days)
                r, c = _window_slice(ds["x"].values, ds["y"].values, src, url, MULTIFREQ_WHAT)
                pos = times.get_indexer(days)
                var = ds["TB"]
                part = var.isel(
                    {var.dims[0]: slice(int(pos.min()), int(pos.max()) + 1), var.dims[1]: r, var.dims[2]: c}
                )
                tb = np.asarray(part.values, "f4")[pos - pos.min()]
            finally:
                ds.close()
            _check_range(tb, url, "TB", MULTIFREQ_WHAT)
            per_pass.append(regrid(tb))
        arr = np.stack(per_pass, axis=1).astype("f4")  # (time, pass, y, x)
        pol = {"H": "horizontally", "V": "vertically"}[ch[-1]]
        out[f"TB{ch}"] = (("time", "pass", "y", "x"), arr, _tb_attrs(f"{ch[:-1]} GHz {pol} polarised TB (25 km GRD)"))
    res = xr.Dataset(out, coords={**window.coords(), "pass": ("pass", list(PASSES))})
    res["crs"] = window.template()["crs"]
    return set_time(res.set_coords("crs"), days)
