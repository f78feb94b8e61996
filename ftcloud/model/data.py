"""Assemble model inputs and targets from an ftcloud store (no torch here).

Channels, in order: the four dynamic predictors (stl1 K, swvl1 m3 m-3, sde m, pr mm h-1) at
each of the three steps, then the four static layers (tci m, aow 1, lat deg, lon deg)
repeated at every step: ``X[day, step, channel, y, x]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import UnitsError, ValidationError
from ftcloud.io.stores import open_group
from ftcloud.core.metadata import FT_MISSING
from ftcloud.sources.packing import decode
from ftcloud.core.timeutil import check_pass
from ftcloud import layout

DYNAMIC_VARS = {"stl1": "K", "swvl1": "m3 m-3", "sde": "m", "pr": "mm h-1"}
STATIC_VARS = {"tci": "m", "aow": "1", "lat": "degrees_north", "lon": "degrees_east"}
CHANNELS = tuple(DYNAMIC_VARS) + tuple(STATIC_VARS)
UNITS = {**DYNAMIC_VARS, **STATIC_VARS}


def check_units(ds: xr.Dataset, names, where: str) -> None:
    for v in names:
        if v not in ds.variables:
            raise ValidationError(f"{where}: variable {v!r} not found; it has {', '.join(map(str, ds.variables))}")
        u = ds[v].attrs.get("units")
        if u != UNITS[v]:
            raise UnitsError(f"{where}: variable {v!r} has units {u!r}, expected {UNITS[v]!r}")


def open_inputs(store: str, pass_: str, storage_options=None) -> tuple[xr.Dataset, xr.Dataset]:
    """Lazy predictors (time, step, y, x) for one pass, and the static layers (y, x)."""
    check_pass(pass_)
    pred = open_group(store, layout.ERA5LAND, storage_options).sel({"pass": pass_})
    statics = open_group(store, layout.STATICS, storage_options)
    check_units(pred, DYNAMIC_VARS, f"{store}/predictors/era5land")
    statics = statics.assign(lat=statics["lat"], lon=statics["lon"])
    check_units(statics, STATIC_VARS, f"{store}/statics")
    return pred, statics


def stack_inputs(pred: xr.Dataset, statics: xr.Dataset) -> np.ndarray:
    """numpy (time, step, 8, y, x) float32 from loaded/lazy predictor and static datasets."""
    dyn = np.stack([np.asarray(pred[v].values, "f4") for v in DYNAMIC_VARS], axis=2)  # (t, step, 4, y, x)
    st = np.stack([np.asarray(statics[v].values, "f4") for v in STATIC_VARS], axis=0)  # (4, y, x)
    st = np.broadcast_to(st[None, None], (dyn.shape[0], dyn.shape[1], *st.shape))
    return np.concatenate([dyn, st], axis=2)


class _ChunkCache:
    """Decoded zarr chunks by key, least recently used first out, at most ``max_bytes`` held
    (always at least the newest chunk)."""

    def __init__(self, max_bytes: int):
        from collections import OrderedDict

        self._items: OrderedDict = OrderedDict()
        self.max_bytes = int(max_bytes)
        self.held = 0

    def get(self, key, load) -> np.ndarray:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        block = load()
        self._items[key] = block
        self.held += block.nbytes
        while self.held > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.held -= old.nbytes
        return block


class StoreInputs:
    """The model inputs ``(day, step, channel, y, x)`` float32, read from the store on demand.

    Packed predictors (``ftcloud.sources.packing``) are decoded exactly as xarray decodes them.

    Nothing is loaded up front. ``read(days, rows, cols)`` (and ``inputs[days]``) read only the
    zarr chunks that hold those days and that patch, decoded once and kept in a least-recently
    used cache of at most ``cache_bytes`` (default 1 GiB): memory is bounded by the cache and a
    batch, never by the target period. (A small store fits the cache whole, so an epoch after
    the first reads nothing again.) The static layers are small (y, x) arrays kept in memory.
    ``np.asarray(inputs)`` materialises everything (small stores and tests only).
    """

    def __init__(
        self,
        pred: xr.Dataset,
        statics: xr.Dataset,
        times: pd.DatetimeIndex,
        arrays: dict,
        pass_index: int,
        cache_bytes: int = 1 << 30,
    ):
        self.times = pd.DatetimeIndex(times)
        pos = pd.DatetimeIndex(pred["time"].values).get_indexer(self.times)
        if (pos < 0).any():
            raise ValidationError(f"predictors: {int((pos < 0).sum())} target days have no predictor day")
        self._pos = pos
        self._arrays = [arrays[v] for v in DYNAMIC_VARS]  # zarr arrays (time, pass, step, y, x)
        for v, a in zip(DYNAMIC_VARS, self._arrays):
            dims = a.attrs.get("_ARRAY_DIMENSIONS")
            packed = any(k in a.attrs for k in ("scale_factor", "add_offset"))
            if dims != ["time", "pass", "step", "y", "x"] or not (
                a.dtype == np.float32 or packed and a.dtype.kind in "iu"
            ):
                raise ValidationError(
                    f"predictors/era5land/{v}: stored as {a.dtype} {dims}; expected float32 or CF-packed "
                    "integers with dims (time, pass, step, y, x), as ftcloud ingest writes them"
                )
        self._pass = int(pass_index)
        self._static = np.stack([np.asarray(statics[v].values, "f4") for v in STATIC_VARS], axis=0)  # (4, y, x)
        a0 = self._arrays[0]
        self._chunks = a0.chunks
        self.shape = (len(self.times), a0.shape[2], len(CHANNELS), *self._static.shape[1:])
        self.ndim = 5
        self.dtype = np.dtype("f4")
        self._cache = _ChunkCache(cache_bytes)

    def __len__(self) -> int:
        return self.shape[0]

    def _chunk(self, v: int, kt: int, ky: int, kx: int) -> np.ndarray:
        def load():
            ct, _, _, cy, cx = self._chunks
            a = self._arrays[v]
            raw = a[kt * ct : (kt + 1) * ct, self._pass, :, ky * cy : (ky + 1) * cy, kx * cx : (kx + 1) * cx]
            return decode(raw, a.attrs, a.fill_value)  # CF packing decoded as xarray does

        return self._cache.get((v, kt, ky, kx), load)

    def read(self, days, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """Inputs of the day positions ``days`` (ints, a slice or a boolean mask) over a patch."""
        idx = np.atleast_1d(np.arange(self.shape[0])[days])
        src = self._pos[idx]
        ny, nx = self.shape[3:]
        r0, r1, _ = rows.indices(ny)
        c0, c1, _ = cols.indices(nx)
        ct, _, nstep, cy, cx = self._chunks
        out = np.empty((len(idx), nstep, len(CHANNELS), r1 - r0, c1 - c0), "f4")
        kts = src // ct
        for kt in np.unique(kts):
            sel = np.flatnonzero(kts == kt)
            local = src[sel] - kt * ct
            for ky in range(r0 // cy, (r1 - 1) // cy + 1):
                ya, yb = max(r0, ky * cy), min(r1, (ky + 1) * cy)
                for kx in range(c0 // cx, (c1 - 1) // cx + 1):
                    xa, xb = max(c0, kx * cx), min(c1, (kx + 1) * cx)
                    for v in range(len(self._arrays)):
                        blk = self._chunk(v, int(kt), ky, kx)
                        out[sel, :, v, ya - r0 : yb - r0, xa - c0 : xb - c0] = blk[local][
                            :, :, ya - ky * cy : yb - ky * cy, xa - kx * cx : xb - kx * cx
                        ]
        out[:, :, len(self._arrays) :] = self._static[None, None, :, r0:r1, c0:c1]
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):
            days, *rest = key
            out = self.read(days)
            return out[(slice(None), *rest)]
        return self.read(key)

    def __array__(self, dtype=None, copy=None):
        out = self.read(slice(None))
        return out.astype(dtype) if dtype is not None else out


class StoreTarget:
    """One FT target (or the twin's truth) ``(day, y, x)`` uint8 for one pass, read on demand.

    ``read(days, rows, cols)`` reads only the zarr chunks of those days and that patch (cached,
    least recently used first out, at most ``cache_bytes``); ``np.asarray(target)`` reads all.
    """

    def __init__(self, array, positions: np.ndarray, pass_index: int, cache_bytes: int = 256 << 20):
        self._a = array  # zarr array (time, pass, y, x) uint8
        self._pos = np.asarray(positions, np.int64)
        self._pass = int(pass_index)
        self._chunks = array.chunks
        self.shape = (len(self._pos), *array.shape[2:])
        self.ndim = 3
        self.dtype = np.dtype("u1")
        self._cache = _ChunkCache(cache_bytes)

    def __len__(self) -> int:
        return self.shape[0]

    def _chunk(self, kt: int, ky: int, kx: int) -> np.ndarray:
        def load():
            ct, _, cy, cx = self._chunks
            return np.asarray(
                self._a[kt * ct : (kt + 1) * ct, self._pass, ky * cy : (ky + 1) * cy, kx * cx : (kx + 1) * cx], "u1"
            )

        return self._cache.get((kt, ky, kx), load)

    def read(self, days, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        idx = np.atleast_1d(np.arange(self.shape[0])[days])
        src = self._pos[idx]
        ny, nx = self.shape[1:]
        r0, r1, _ = rows.indices(ny)
        c0, c1, _ = cols.indices(nx)
        ct, _, cy, cx = self._chunks
        out = np.empty((len(idx), r1 - r0, c1 - c0), "u1")
        kts = src // ct
        for kt in np.unique(kts):
            sel = np.flatnonzero(kts == kt)
            local = src[sel] - kt * ct
            for ky in range(r0 // cy, (r1 - 1) // cy + 1):
                ya, yb = max(r0, ky * cy), min(r1, (ky + 1) * cy)
                for kx in range(c0 // cx, (c1 - 1) // cx + 1):
                    xa, xb = max(c0, kx * cx), min(c1, (kx + 1) * cx)
                    blk = self._chunk(int(kt), ky, kx)
                    out[sel, ya - r0 : yb - r0, xa - c0 : xb - c0] = blk[local][
                        :, ya - ky * cy : yb - ky * cy, xa - kx * cx : xb - kx * cx
                    ]
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):
            days, *rest = key
            return self.read(days)[(slice(None), *rest)]
        return self.read(key)

    def __array__(self, dtype=None, copy=None):
        out = self.read(slice(None))
        return out.astype(dtype) if dtype is not None else out


class FileTruth:
    """The twin's hidden truth ``(day, y, x)`` uint8 for one pass, read from its NetCDF file on
    demand (days not in the file read as missing)."""

    def __init__(self, path: str, pass_: str, times):
        self._path = path
        with xr.open_dataset(path) as ds:
            ftimes = pd.DatetimeIndex(ds["time"].values)
            self._pass = list(ds["pass"].values).index(pass_)
            ny, nx = ds["ft"].shape[-2:]
            self._dims = ds["ft"].dims
        self._pos = ftimes.get_indexer(pd.DatetimeIndex(times))
        self.shape = (len(self._pos), ny, nx)
        self.ndim = 3
        self.dtype = np.dtype("u1")

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, days, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        idx = np.atleast_1d(np.arange(self.shape[0])[days])
        src = self._pos[idx]
        ny, nx = self.shape[1:]
        r0, r1, _ = rows.indices(ny)
        c0, c1, _ = cols.indices(nx)
        out = np.full((len(idx), r1 - r0, c1 - c0), FT_MISSING, "u1")
        have = src >= 0
        if have.any():
            with xr.open_dataset(self._path) as ds:
                ft = ds["ft"].isel({"pass": self._pass}).transpose("time", ...)
                arr = np.asarray(ft.isel(time=src[have], y=slice(r0, r1), x=slice(c0, c1)).values)
            arr = (
                np.where(np.isfinite(arr), arr, FT_MISSING).astype("u1") if arr.dtype.kind == "f" else arr.astype("u1")
            )
            out[have] = arr
        return out

    __getitem__ = StoreTarget.__getitem__
    __array__ = StoreTarget.__array__


@dataclass
class TargetData:
    times: pd.DatetimeIndex
    X: np.ndarray | StoreInputs  # (t, 3, 8, y, x) float32; from a store: read on demand
    smap: np.ndarray | StoreTarget  # (t, y, x) uint8 0/1/255; from a store: read on demand
    esdr: np.ndarray | StoreTarget
    truth: np.ndarray | FileTruth | None  # (t, y, x) uint8 or None


def read_days(arr, days, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """``arr[days][..., rows, cols]`` for numpy arrays and the on-demand readers alike."""
    if hasattr(arr, "read"):
        return arr.read(days, rows, cols)
    return np.asarray(arr[days])[..., rows, cols]


def truth_for(store: str, pass_: str, times, storage_options=None) -> FileTruth | None:
    """The twin's hidden truth for these days (read on demand), when the store was ingested
    from a twin folder on this file system."""
    attrs = open_group(store, layout.ERA5LAND, storage_options).attrs
    src = attrs.get("ftcloud_source")
    if not src or "://" in src and not src.startswith("file://"):
        return None
    path = os.path.join(src.replace("file://", ""), "truth", "truth_ft_9km.nc")
    if not os.path.exists(path):
        return None
    return FileTruth(path, pass_, times)


def load_target_period(store: str, pass_: str, storage_options=None) -> TargetData:
    """Inputs (:class:`StoreInputs`), both targets (:class:`StoreTarget`) and, on the twin, the
    truth (:class:`FileTruth`) for every day that has both targets (2015-04-01 ..), all read on
    demand: nothing of the period is loaded up front."""
    pred, statics = open_inputs(store, pass_, storage_options)
    smap = open_group(store, layout.SMAP_E_FT, storage_options)["smap_e_ft"].sel({"pass": pass_})
    esdr = open_group(store, layout.ESDR_FT, storage_options)["esdr_ft"].sel({"pass": pass_})
    times = pd.DatetimeIndex(
        np.intersect1d(np.intersect1d(smap["time"].values, esdr["time"].values), pred["time"].values)
    )
    if len(times) == 0:
        raise ValidationError(f"{store}: predictors and targets share no days")
    import zarr

    from ftcloud.io.stores import get_mapper, join

    group = zarr.open_group(get_mapper(join(store, layout.ERA5LAND), storage_options), mode="r")
    pass_index = list(open_group(store, layout.ERA5LAND, storage_options)["pass"].values).index(pass_)
    X = StoreInputs(pred, statics.load(), times, {v: group[v] for v in DYNAMIC_VARS}, pass_index)
    targets = {}
    for name, da_ in (("smap_e_ft", smap), ("esdr_ft", esdr)):
        tg = zarr.open_group(get_mapper(join(store, f"targets/{name}"), storage_options), mode="r")
        arr = tg[name]
        if arr.attrs.get("_ARRAY_DIMENSIONS") != ["time", "pass", "y", "x"] or arr.dtype != np.uint8:
            raise ValidationError(
                f"{store}/targets/{name}/{name}: stored as {arr.dtype} {arr.attrs.get('_ARRAY_DIMENSIONS')}; "
                "expected uint8 (time, pass, y, x), as ftcloud ingest writes it"
            )
        tpass = list(open_group(store, f"targets/{name}", storage_options)["pass"].values).index(pass_)
        targets[name] = StoreTarget(arr, pd.DatetimeIndex(da_["time"].values).get_indexer(times), tpass)
    return TargetData(
        times=times,
        X=X,
        smap=targets["smap_e_ft"],
        esdr=targets["esdr_ft"],
        truth=truth_for(store, pass_, times, storage_options),
    )
