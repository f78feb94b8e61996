"""URL -> fsspec store, zarr group layout and the "complete" marker.

A store root (a folder or ``s3://bucket/prefix``) holds zarr groups::

    ROOT/predictors/era5land   ROOT/predictors/imerg
    ROOT/targets/smap_e_ft     ROOT/targets/esdr_ft
    ROOT/statics               ROOT/insitu/networks   ROOT/insitu/cma

Every group is written with ``ftcloud_status = "incomplete"`` first and flipped to
``"complete"`` (with consolidated metadata) only after all of its chunks are written, so a
run killed half-way never leaves a group that :func:`open_group` accepts.

Credentials never pass through here: ``storage_options`` holds only non-secret options
(``anon``, ``endpoint_url``, ``client_kwargs``); s3fs finds keys in the environment or
its own config files.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import fsspec
import xarray as xr
import zarr

from ftcloud.errors import IncompleteStoreError, MissingVariableError

log = logging.getLogger(__name__)

STATUS_ATTR = "ftcloud_status"


def _split(url: str) -> tuple[str, str]:
    if "://" in url:
        proto, rest = url.split("://", 1)
        return proto, rest
    return "file", url


def filesystem(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and the protocol-less path for ``url``."""
    proto, path = _split(str(url))
    fs = fsspec.filesystem(proto, **(storage_options or {}))
    if proto == "file":
        path = fs._strip_protocol(path)
    elif proto in ("http", "https"):  # fsspec's HTTP filesystem works on whole URLs
        path = str(url)
    return fs, path.rstrip("/")


def join(url: str, *parts: str) -> str:
    url = str(url).rstrip("/")
    return "/".join([url, *[p.strip("/") for p in parts if p]])


def get_mapper(url: str, storage_options: dict | None = None) -> zarr.storage.FSStore:
    fs, path = filesystem(url, storage_options)
    return zarr.storage.FSStore(path, fs=fs)


def ensure_parent_groups(root: str, group: str, storage_options: dict | None = None) -> None:
    """Write ``.zgroup`` at the root and every intermediate level of ``group``."""
    fs, path = filesystem(root, storage_options)
    parts = [p for p in group.strip("/").split("/") if p][:-1]
    levels = [path] + [path + "/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
    for lvl in levels:
        key = lvl + "/.zgroup"
        if not fs.exists(key):
            fs.makedirs(lvl, exist_ok=True)
            with fs.open(key, "w") as f:
                f.write(json.dumps({"zarr_format": 2}))


def _set_status(url: str, status: str, storage_options: dict | None, extra: dict | None = None) -> None:
    g = zarr.open_group(get_mapper(url, storage_options), mode="r+")
    g.attrs[STATUS_ATTR] = status
    if extra:
        g.attrs.update(extra)
    if status == "complete":
        zarr.consolidate_metadata(g.store)
    else:
        # a stale .zmetadata would let readers see the old, complete-looking layout
        try:
            del g.store[".zmetadata"]
        except KeyError:
            pass


def mark_incomplete(url: str, storage_options: dict | None = None) -> None:
    _set_status(url, "incomplete", storage_options)


def mark_complete(url: str, storage_options: dict | None = None, extra: dict | None = None) -> None:
    _set_status(url, "complete", storage_options, extra)


def store_status(url: str, storage_options: dict | None = None) -> str | None:
    """``"complete"``, ``"incomplete"`` or None where no zarr group exists at ``url``."""
    fs, path = filesystem(url, storage_options)
    try:
        fs.cat(path + "/.zgroup")
    except FileNotFoundError:
        return None
    except PermissionError as e:
        anon = " anonymously" if (storage_options or {}).get("anon") else ""
        raise PermissionError(f"{url}: access denied reading{anon} ({e}); is the bucket public, or are credentials set?") from e
    try:
        g = zarr.open_group(get_mapper(url, storage_options), mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, KeyError):
        return None
    return g.attrs.get(STATUS_ATTR, "incomplete")


def open_group(
    root: str,
    group: str,
    storage_options: dict | None = None,
    *,
    chunks: Any = {},  # noqa: B006 - {} = dask arrays with the store's own chunks (None would load eagerly on .data)
    require_complete: bool = True,
) -> xr.Dataset:
    """Open one ftcloud group lazily (dask arrays on the zarr chunks); refuse a group a previous run did not finish."""
    url = join(root, group)
    status = store_status(url, storage_options)
    if status is None:
        raise MissingVariableError(f"{url}: no zarr group {group!r} under {root} (run `ftcloud ingest` first)")
    if require_complete and status != "complete":
        raise IncompleteStoreError(
            f"{url}: group {group!r} is marked {status!r}: the run that wrote it did not finish. "
            "Re-run `ftcloud ingest` (it overwrites the group) before using it."
        )
    return xr.open_zarr(get_mapper(url, storage_options), consolidated=status == "complete", chunks=chunks)
