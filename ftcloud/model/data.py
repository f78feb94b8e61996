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
from ftcloud.metadata import FT_MISSING
from ftcloud.timeutil import check_pass

DYNAMIC_VARS = {"stl1": "K", "swvl1": "m3 m-3", "sde": "m", "pr": "mm h-1"}
STATIC_VARS = {"tci": "m", "aow": "1", "lat": "degrees_north", "lon": "degrees_east"}
CHANNELS = tuple(DYNAMIC_VARS) + tuple(STATIC_VARS)
UNITS = {**DYNAMIC_VARS, **STATIC_VARS}

# SPEC section 3: the paper's splits (inclusive date ranges)
SPLITS = {
    "train": (("2015-04-01", "2016-03-31"), ("2016-11-01", "2017-03-31")),
    "val": (("2016-04-01", "2016-10-31"), ("2017-11-01", "2018-03-31")),
    "test": (("2018-04-01", "2020-12-31"),),
}
# SPEC section 5: seasons by month
SEASONS = {"frozen": (12, 1), "transition": (2, 3, 4, 10, 11), "thawed": (5, 6, 7, 8, 9)}


def split_mask(times, split: str, splits: dict | None = None) -> np.ndarray:
    """Days of ``times`` in ``split`` ("train", "val", "test") of ``splits`` (default: the paper's)."""
    t = pd.DatetimeIndex(times)
    m = np.zeros(len(t), bool)
    for a, b in (splits or SPLITS)[split]:
        m |= (t >= pd.Timestamp(a)) & (t <= pd.Timestamp(b))
    return m


def season_of(times) -> np.ndarray:
    months = pd.DatetimeIndex(times).month
    out = np.empty(len(months), object)
    for name, ms in SEASONS.items():
        out[np.isin(months, ms)] = name
    return out


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
    pred = open_group(store, "predictors/era5land", storage_options).sel({"pass": pass_})
    statics = open_group(store, "statics", storage_options)
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


class StoreInputs:
    """The model inputs ``(day, step, channel, y, x)`` float32, read from the store on demand.

    Nothing is loaded up front: ``read(days, rows, cols)`` (and ``inputs[days]``) read only the
    zarr chunks that hold those days and that patch, so training memory is bounded by a batch,
    not by the target period. The static layers are small (y, x) arrays kept in memory.
    ``np.asarray(inputs)`` materialises everything (small stores and tests only).
    """

    def __init__(self, pred: xr.Dataset, statics: xr.Dataset, times: pd.DatetimeIndex):
        import zarr  # noqa: F401 - the store's arrays are zarr-backed dask arrays

        self.times = pd.DatetimeIndex(times)
        pos = pd.DatetimeIndex(pred["time"].values).get_indexer(self.times)
        if (pos < 0).any():
            raise ValidationError(f"predictors: {int((pos < 0).sum())} target days have no predictor day")
        self._pos = pos
        self._dyn = [pred[v].transpose("time", "step", "y", "x").data for v in DYNAMIC_VARS]  # lazy dask arrays
        self._static = np.stack([np.asarray(statics[v].values, "f4") for v in STATIC_VARS], axis=0)  # (4, y, x)
        nstep = pred.sizes["step"]
        self.shape = (len(self.times), nstep, len(CHANNELS), *self._static.shape[1:])
        self.ndim = 5
        self.dtype = np.dtype("f4")

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, days, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """Inputs of the day positions ``days`` (ints, a slice or a boolean mask) over a patch."""
        idx = np.arange(self.shape[0])[days]
        idx = np.atleast_1d(idx)
        src = self._pos[idx]
        import dask

        # one read per contiguous run of days keeps the chunk reads few; threads read the 4 arrays together
        parts = [a[src][:, :, rows, cols] for a in self._dyn]
        dyn = np.stack(dask.compute(*parts, scheduler="threads"), axis=2).astype("f4", copy=False)  # (n, step, 4, h, w)
        st = self._static[:, rows, cols]
        st = np.broadcast_to(st[None, None], (dyn.shape[0], dyn.shape[1], *st.shape))
        return np.concatenate([dyn, st], axis=2)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            days, *rest = key
            out = self.read(days)
            return out[(slice(None), *rest)]
        return self.read(key)

    def __array__(self, dtype=None, copy=None):
        out = self.read(slice(None))
        return out.astype(dtype) if dtype is not None else out


@dataclass
class TargetData:
    times: pd.DatetimeIndex
    X: np.ndarray | StoreInputs  # (t, 3, 8, y, x) float32; from a store: read on demand
    smap: np.ndarray  # (t, y, x) uint8 0/1/255
    esdr: np.ndarray
    truth: np.ndarray | None  # (t, y, x) uint8 or None


def truth_for(store: str, pass_: str, times, storage_options=None) -> np.ndarray | None:
    """The twin's hidden truth for these days, when the store was ingested from a twin folder."""
    attrs = open_group(store, "predictors/era5land", storage_options).attrs
    src = attrs.get("ftcloud_source")
    if not src or "://" in src and not src.startswith("file://"):
        return None
    path = os.path.join(src.replace("file://", ""), "truth", "truth_ft_9km.nc")
    if not os.path.exists(path):
        return None
    with xr.open_dataset(path) as ds:
        ft = ds["ft"].sel({"pass": pass_}).reindex(time=pd.DatetimeIndex(times))
        arr = np.asarray(ft.values)
    arr = np.where(np.isfinite(arr), arr, FT_MISSING).astype("u1") if arr.dtype.kind == "f" else arr.astype("u1")
    return arr


def load_target_period(store: str, pass_: str, storage_options=None) -> TargetData:
    """Inputs (read on demand, :class:`StoreInputs`) and both targets for every day that has
    both targets (2015-04-01 ..). The targets are uint8 and held in memory (1/32 of the inputs'
    size); the inputs are not."""
    pred, statics = open_inputs(store, pass_, storage_options)
    smap = open_group(store, "targets/smap_e_ft", storage_options)["smap_e_ft"].sel({"pass": pass_})
    esdr = open_group(store, "targets/esdr_ft", storage_options)["esdr_ft"].sel({"pass": pass_})
    times = pd.DatetimeIndex(np.intersect1d(np.intersect1d(smap["time"].values, esdr["time"].values), pred["time"].values))
    if len(times) == 0:
        raise ValidationError(f"{store}: predictors and targets share no days")
    X = StoreInputs(pred, statics.load(), times)
    return TargetData(
        times=times,
        X=X,
        smap=np.asarray(smap.sel(time=times).values, "u1"),
        esdr=np.asarray(esdr.sel(time=times).values, "u1"),
        truth=truth_for(store, pass_, times, storage_options),
    )
