"""FT targets: SMAP enhanced L3 FT (SPL3FTP_E, 9 km) and the ESDR FT record (NSIDC-0477, 25 km).

Both become uint8 ``(time, pass, y, x)`` on the EASE2 9 km window with ftcloud's coding
(0 thawed, 1 frozen, 255 missing).
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import GridMismatchError, MissingVariableError, SourceFileError, ValidationError
from ftcloud.core.grid import EASE2_25KM, EASE2Regridder, GridWindow, covering_window
from ftcloud.core.metadata import FT_ENCODING, FT_FROZEN, FT_MISSING, FT_THAWED, ft_attrs
from ftcloud.sources.common import (
    check_time_axis,
    daily_index,
    open_bytes,
    open_xarray_file,
    require_variables,
    set_time,
)
from ftcloud.core.timeutil import PASSES

log = logging.getLogger(__name__)

SMAP_GROUP = "Freeze_Thaw_Retrieval_Data_Global"
SMAP_WHAT = "SMAP enhanced FT granule"
ESDR_WHAT = "ESDR FT file"


def smap_url(root: str, day: pd.Timestamp) -> str:
    return f"{root.rstrip('/')}/smap_e_ft/{day:%Y}/SMAP_L3_FT_P_E_{day:%Y%m%d}_R18290_001.h5"


def esdr_url(root: str, year: int) -> str:
    return f"{root.rstrip('/')}/esdr_ft/ESDR_FT_25km_{year:04d}.nc"


def _window_slice(x: np.ndarray, y: np.ndarray, window: GridWindow, url: str, what: str) -> tuple[slice, slice]:
    """Rows/cols of the file that hold ``window``; raise GridMismatchError if it does not."""
    g = window.grid
    tol = g.cell_size * 1e-3
    cols = g.col_of(x)
    rows = g.row_of(y)
    if (
        np.abs(cols - np.round(cols)).max() * g.cell_size > tol
        or np.abs(rows - np.round(rows)).max() * g.cell_size > tol
    ):
        raise GridMismatchError(f"{what} {url}: x/y are not {g.name} cell centres")
    c0 = int(np.round(cols[0]))
    r0 = int(np.round(rows[0]))
    if not (np.all(np.diff(np.round(cols)) == 1) and np.all(np.diff(np.round(rows)) == 1)):
        raise GridMismatchError(f"{what} {url}: x/y are not contiguous {g.name} columns/rows")
    i0, j0 = window.row0 - r0, window.col0 - c0
    if i0 < 0 or j0 < 0 or i0 + window.shape[0] > rows.size or j0 + window.shape[1] > cols.size:
        raise GridMismatchError(
            f"{what} {url}: the file covers {g.name} rows {r0}:{r0 + rows.size}, cols {c0}:{c0 + cols.size}; "
            f"the target window needs rows {window.row0}:{window.row1}, cols {window.col0}:{window.col1}"
        )
    return slice(i0, i0 + window.shape[0]), slice(j0, j0 + window.shape[1])


_SMAP_DIMS = {1: None, 3: ("am_pm", "y", "x")}


def open_smap(url: str, *, storage_options: dict | None = None, variables=None) -> xr.Dataset:
    """The ``Freeze_Thaw_Retrieval_Data_Global`` group of an SPL3FTP(_E) granule, raw (codes and
    fill values as stored, ``_FillValue`` in attrs).

    Read with h5py: a daily granule is a few small arrays, and h5py reads one in under a
    millisecond where the netCDF layer takes ~60 ms (2,100 granules for the six target years).
    """
    import h5py

    data = open_bytes(url, storage_options, SMAP_WHAT)
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            if SMAP_GROUP not in f:
                raise MissingVariableError(
                    f"{SMAP_WHAT} {url}: group {SMAP_GROUP!r} not found; it has {', '.join(f.keys())}"
                )
            g = f[SMAP_GROUP]
            out = {}
            names = list(g.keys()) if variables is None else [n for n in (*variables, "x", "y", "am_pm") if n in g]
            for name in names:
                d = g[name]
                if not isinstance(d, h5py.Dataset) or d.ndim not in _SMAP_DIMS:
                    continue
                dims = _SMAP_DIMS[d.ndim] or (name,)
                attrs = {
                    k: (d.attrs[k].decode() if isinstance(d.attrs[k], bytes) else d.attrs[k])
                    for k in ("_FillValue", "units", "long_name", "flag_values", "flag_meanings")
                    if k in d.attrs
                }
                if "_FillValue" in attrs:
                    attrs["_FillValue"] = np.asarray(attrs["_FillValue"]).ravel()[0]
                out[name] = (dims, d[()], attrs)
    except (MissingVariableError, SourceFileError):
        raise
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"{SMAP_WHAT} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e
    coords = {k: out.pop(k) for k in ("x", "y", "am_pm") if k in out}
    return xr.Dataset(out, coords=coords)


def smap_to_ft(ds: xr.Dataset, window: GridWindow, day: pd.Timestamp, url: str = "<memory>") -> xr.Dataset:
    if "freeze_thaw" not in ds:
        # the real SPL3FTP v004 test granule has none: name what the file does have
        raise MissingVariableError(
            f"{SMAP_WHAT} {url}: variable 'freeze_thaw' not found; the group has: "
            f"{', '.join(sorted(map(str, ds.variables)))}"
        )
    require_variables(ds, ["x", "y"], url, SMAP_WHAT)
    ft = ds["freeze_thaw"]
    if ft.dims[0] != "am_pm" or ft.sizes["am_pm"] != 2:
        raise ValidationError(
            f"{SMAP_WHAT} {url}: freeze_thaw has dims {ft.dims}, expected ('am_pm', 'y', 'x') with am_pm = 2"
        )
    rows, cols = _window_slice(ds["x"].values, ds["y"].values, window, url, SMAP_WHAT)
    raw = np.asarray(ft.values)[:, rows, cols]
    fill = ft.attrs.get("_FillValue", ft.encoding.get("_FillValue", 254))
    out = np.full(raw.shape, FT_MISSING, "u1")
    out[raw == 0] = FT_THAWED
    out[raw == 1] = FT_FROZEN
    bad = ~np.isin(raw, [0, 1, fill])
    if bad.any():
        raise ValidationError(
            f"{SMAP_WHAT} {url}: freeze_thaw holds codes {np.unique(raw[bad])[:5].tolist()}, expected 0, 1 or fill "
            f"{fill}"
        )
    if (out == FT_MISSING).all():
        # a day without any retrieval over the window is normal for a target (safe mode, swath gaps):
        # it is ingested as missing, not an error (an all-fill *predictor* file is an error)
        log.info("%s %s: freeze_thaw is all fill in the target window; ingested as missing", SMAP_WHAT, url)
    res = xr.Dataset(
        {"smap_e_ft": (("time", "pass", "y", "x"), out[None])},
        coords={**window.coords(), "pass": ("pass", list(PASSES))},
    )
    res["smap_e_ft"].attrs = ft_attrs("SMAP enhanced L3 landscape freeze/thaw state", "SPL3FTP_E (NSIDC), 9 km EASE2")
    res["smap_e_ft"].encoding = dict(FT_ENCODING)
    res["crs"] = window.template()["crs"]
    return set_time(res.set_coords("crs"), pd.DatetimeIndex([day]))


def preprocess_smap(url: str, day: pd.Timestamp, window: GridWindow, storage_options: dict | None = None) -> xr.Dataset:
    return smap_to_ft(open_smap(url, storage_options=storage_options, variables=("freeze_thaw",)), window, day, url)


# ESDR combined daily code -> (AM, PM) in ftcloud coding
_ESDR_AM = {0: FT_FROZEN, 1: FT_THAWED, 2: FT_FROZEN, 3: FT_THAWED}
_ESDR_PM = {0: FT_FROZEN, 1: FT_THAWED, 2: FT_THAWED, 3: FT_FROZEN}


def esdr_to_ft(ds: xr.Dataset, window: GridWindow, days: pd.DatetimeIndex, url: str = "<memory>") -> xr.Dataset:
    require_variables(ds, ["ft_status", "x", "y", "time"], url, ESDR_WHAT)
    times = check_time_axis(ds["time"].values, url, ESDR_WHAT, expected=days)
    src = covering_window(window, EASE2_25KM, margin=1)
    rows, cols = _window_slice(ds["x"].values, ds["y"].values, src, url, ESDR_WHAT)
    raw = np.asarray(ds["ft_status"].values)[:, rows, cols]
    raw = raw[times.get_indexer(days)]
    known = np.isin(raw, [0, 1, 2, 3])
    fill = ds["ft_status"].attrs.get("_FillValue", ds["ft_status"].encoding.get("_FillValue", 254))
    bad = ~known & (raw != fill)
    if bad.any():
        raise ValidationError(
            f"{ESDR_WHAT} {url}: ft_status holds codes {np.unique(raw[bad])[:5].tolist()}, expected 0-3 or fill {fill}"
        )
    if not known.any():
        # a whole year without data is not a gap but a wrong or empty file
        raise SourceFileError(f"{ESDR_WHAT} {url}: variable 'ft_status' holds only fill values in the target window")
    am = np.full(raw.shape, FT_MISSING, "u1")
    pm = np.full(raw.shape, FT_MISSING, "u1")
    for code in range(4):
        am[raw == code] = _ESDR_AM[code]
        pm[raw == code] = _ESDR_PM[code]
    regrid = EASE2Regridder(src, window, "nearest")
    both = regrid(np.stack([am, pm], axis=1))  # (time, pass, y, x)
    res = xr.Dataset(
        {"esdr_ft": (("time", "pass", "y", "x"), both.astype("u1"))},
        coords={**window.coords(), "pass": ("pass", list(PASSES))},
    )
    res["esdr_ft"].attrs = ft_attrs(
        "ESDR landscape freeze/thaw state (MEaSUREs NSIDC-0477), 25 km resampled to 9 km by nearest neighbour",
        "NSIDC-0477 (SSMIS), 25 km EASE2",
    )
    res["esdr_ft"].encoding = dict(FT_ENCODING)
    res["crs"] = window.template()["crs"]
    return set_time(res.set_coords("crs"), days)


def preprocess_esdr(
    url: str, year: int, window: GridWindow, start, end, storage_options: dict | None = None
) -> xr.Dataset:
    ds = open_xarray_file(url, storage_options=storage_options, what=ESDR_WHAT, mask_and_scale=False)
    days = daily_index(
        max(pd.Timestamp(year, 1, 1), pd.Timestamp(start)), min(pd.Timestamp(year, 12, 31), pd.Timestamp(end))
    )
    return esdr_to_ft(ds, window, days, url)
