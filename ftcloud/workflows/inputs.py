"""Opening what the workflows read: the FT product, the store's groups on the product's grid, the twin's truth.

* **ConvLSTM_FT**: the fused product, ``ft (pass, time, y, x)`` of ``ftcloud predict`` (:func:`open_product`).
* **truth**: on the digital twin, the hidden truth ``truth/truth_ft_9km.nc`` (float 1/0/NaN),
  found from the store's ``ftcloud_source`` attribute (:func:`find_truth`) or given.
"""

from __future__ import annotations

import logging
import os
import numpy as np
import xarray as xr
from ftcloud.errors import (
    FTCloudError,
    GridMismatchError,
    MissingVariableError,
    ValidationError,
)
from ftcloud.io.stores import open_group
from ftcloud import layout

log = logging.getLogger(__name__)


def open_product(url: str, storage_options: dict | None = None) -> xr.Dataset:
    """The fused product written by ``ftcloud predict`` (a complete zarr group at ``url``)."""
    url = str(url).rstrip("/")
    if "/" not in url:
        url = "./" + url
    parent, name = url.rsplit("/", 1)
    ds = open_group(parent, name, storage_options)
    if "ft" not in ds:
        raise MissingVariableError(f"{url}: no variable 'ft' (pass, time, y, x); is this an ftcloud product?")
    return ds


def find_truth(store: str | None = None, truth: str | None = None, storage_options: dict | None = None) -> str | None:
    """Folder of the twin's hidden truth, or None when there is none.

    ``truth`` (a folder holding ``truth_ft_9km.nc`` / ``truth_summary_9km.nc``) wins; otherwise
    the store's groups are asked for their ``ftcloud_source`` attribute (the twin folder they
    were ingested from) and ``<source>/truth`` is used when it exists (local folders only).
    """
    if truth:
        if not os.path.isdir(truth):
            raise ValidationError(f"--truth {truth}: no such folder")
        if not any(os.path.exists(os.path.join(truth, f)) for f in ("truth_ft_9km.nc", "truth_summary_9km.nc")):
            raise ValidationError(f"--truth {truth}: holds neither truth_ft_9km.nc nor truth_summary_9km.nc")
        return truth
    if not store:
        return None
    for group in (layout.STATICS, layout.ERA5LAND, layout.SMAP_E_FT):
        try:
            src = open_group(store, group, storage_options).attrs.get("ftcloud_source")
        except (FTCloudError, OSError):
            continue
        if not src or ("://" in src and not src.startswith("file://")):
            continue
        path = os.path.join(src.replace("file://", ""), "truth")
        if os.path.isdir(path):
            log.info("twin truth found at %s (from the store's ftcloud_source)", path)
            return path
    return None


def _on_grid(obj, like, what: str):
    """``obj`` on the x/y cells of ``like`` (same EASE2 grid; nearest within 1 m)."""
    try:
        out = obj.sel(x=like["x"].values, y=like["y"].values, method="nearest", tolerance=1.0)
    except KeyError as e:
        raise GridMismatchError(f"{what} does not cover the product's grid cells ({e})") from e
    return out.assign_coords(x=like["x"].values, y=like["y"].values)


def open_truth_ft(truth_dir: str, like: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """The hidden truth FT (pass, time, y, x) as float 1 frozen / 0 thawed / NaN, on ``like``'s grid (lazy)."""
    path = os.path.join(truth_dir, "truth_ft_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path, chunks={})  # the file's own chunks, lazily
    ft = ds["ft"]
    ft = ft.where((ft == 0) | (ft == 1)).astype(np.float32)
    ft = _on_grid(ft.drop_vars([c for c in ("lat", "lon") if c in ft.coords]), like, f"truth {path}")
    ft.attrs = {"long_name": "hidden truth FT of the digital twin", "comment": "1 frozen, 0 thawed, NaN sea/missing"}
    return ft.transpose("pass", "time", "y", "x")


def open_truth_summary(truth_dir: str, like) -> xr.Dataset:
    path = os.path.join(truth_dir, "truth_summary_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path).load()
    ds = ds.drop_vars([c for c in ("lat", "lon", "crs") if c in ds.variables])
    return _on_grid(ds, like, f"truth summary {path}")
