"""What every retrieval family shares: the interface and the FT coding of its output."""

from __future__ import annotations

import threading

import numpy as np
import xarray as xr

from ftcloud.core.metadata import FT_ENCODING, FT_FROZEN, FT_MISSING, FT_THAWED, ft_attrs

__all__ = ["Retrieval", "as_ft", "forget", "load_verified", "remember"]


def as_ft(frozen: xr.DataArray, valid: xr.DataArray, name: str, source: str) -> xr.DataArray:
    """ftcloud FT codes (1 frozen, 0 thawed, 255 where ``valid`` is False) with CF flags; lazy if the inputs are.

    >>> f = xr.DataArray([True, False, True]); v = xr.DataArray([True, True, False])
    >>> as_ft(f, v, "x", "test").values.tolist()
    [1, 0, 255]
    """
    out = xr.where(valid, xr.where(frozen, FT_FROZEN, FT_THAWED), FT_MISSING).astype(np.uint8)
    out.attrs = ft_attrs(f"soil freeze/thaw state retrieved by {name}", source, gridded="x" in out.dims)
    out.encoding = dict(FT_ENCODING)
    return out.rename(name)


class Retrieval:
    """One FT retrieval family: ``fit`` where it learns, ``predict`` an FT DataArray on the input's grid."""

    #: short name (``--method``) and the product name in tables
    method: str = ""
    product: str = ""
    #: input variables ``predict`` needs in its Dataset
    inputs: tuple[str, ...] = ()

    def _check(self, ds: xr.Dataset) -> None:
        from ftcloud.errors import MissingVariableError

        missing = [v for v in self.inputs if v not in ds]
        if missing:
            raise MissingVariableError(
                f"{self.method}: the input has no {', '.join(missing)} (it needs {', '.join(self.inputs)})"
            )

    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None) -> Retrieval:
        return self

    def predict(self, ds: xr.Dataset) -> xr.DataArray:  # pragma: no cover - each family defines it
        raise NotImplementedError


_LOADED: dict = {}
_LOCK = threading.Lock()


def load_verified(url: str, sha256: str, loader, storage_options: dict | None = None, *, fresh: bool = False):
    """``loader(bytes)`` of the file at ``url`` (any fsspec URL: the workers of a remote cluster read the
    product's ``model/`` folder on the object store), once per process, and only after the bytes' SHA-256
    matched ``sha256`` (the card's); every dask task of one product shares the loaded model. ``fresh``: read
    and check the file again even where this process holds it (a model opened from a folder)."""
    import hashlib

    key = (url, sha256)
    with _LOCK:
        if fresh or key not in _LOADED:
            from ftcloud.errors import ValidationError
            from ftcloud.io.stores import filesystem

            fs, path = filesystem(url, storage_options)
            with fs.open(path, "rb") as f:
                data = f.read()
            got = hashlib.sha256(data).hexdigest()
            if got != sha256:
                raise ValidationError(
                    f"{url}: SHA-256 {got[:16]}... does not match the card's {sha256[:16]}...; refusing to load it"
                )
            _LOADED[key] = loader(data)
        return _LOADED[key]


def remember(url: str, sha256: str, obj) -> None:
    """Hand the object whose exported bytes at ``url`` hash to ``sha256`` (it was just written from it) to the
    tasks of this process, so that a threaded predict does not load a second copy; a worker process of a
    cluster still reads and verifies the file."""
    with _LOCK:
        _LOADED[(url, sha256)] = obj


def forget(url: str, sha256: str) -> None:
    """Drop this process's copy of the model at ``url`` (after the product that needed it is written)."""
    with _LOCK:
        _LOADED.pop((url, sha256), None)
