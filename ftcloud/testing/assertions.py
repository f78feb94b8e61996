"""Assertions for users' own tests: a graph is lazy, and building it computes nothing.

:func:`no_compute` is the callback-based check: while it is active every ``compute`` (explicit,
or implicit through ``.values``, ``np.asarray``, ``float(...)``, ``bool(...)`` of a dask-backed
array) reaches a scheduler that raises, whichever scheduler would have run it (threads,
processes or a ``distributed`` client). :func:`assert_lazy` checks the result: every variable is
still dask-backed.
"""

from __future__ import annotations

import contextlib
import traceback

import numpy as np

__all__ = ["ComputedWhileBuildingError", "assert_lazy", "cf_problems", "no_compute"]


class ComputedWhileBuildingError(AssertionError):
    """A dask graph was computed inside :func:`no_compute`."""


@contextlib.contextmanager
def no_compute(what: str = "building the graph"):
    """Fail on any dask compute inside the block; yields a list of the computes seen (empty when lazy).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> with no_compute():
    ...     y = (x + 1).sum()          # lazy: fine
    >>> with no_compute():              # doctest: +IGNORE_EXCEPTION_DETAIL
    ...     float(y)
    Traceback (most recent call last):
    ComputedWhileBuildingError: a dask compute happened while building the graph
    """
    import dask

    seen: list[str] = []

    def refuse(dsk, keys, **kwargs):
        where = "".join(traceback.format_stack(limit=8)[:-1])
        seen.append(where)
        raise ComputedWhileBuildingError(f"a dask compute happened while {what}:\n{where}")

    with dask.config.set(scheduler=refuse):
        yield seen


def assert_lazy(obj=None, *, what: str = "building the graph"):
    """Fail if any variable of a Dataset/DataArray is in memory (not dask-backed).

    Without ``obj``, a context manager: :func:`no_compute` over the block (``with assert_lazy(): ...``).
    """
    if obj is None:
        return no_compute(what)
    import xarray as xr

    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for v in variables:
        if v.chunks is None:
            raise AssertionError(f"{v.name!r} is computed (numpy-backed), expected a lazy dask array")
    return None


def cf_problems(ds, where: str = "dataset") -> list[str]:
    """What keeps ``ds`` (an xarray Dataset as opened) from the CF-1.8 / ACDD rules ftcloud holds its
    outputs to; an empty list where none.

    The rules (a subset of CF-1.8 sections 2.6, 3.5, 5.6 and ACDD 1.3 that a reader relies on; the
    full checkers need a netCDF file, not zarr):

    * global attributes ``Conventions`` (naming CF-1.8), ``title``, ``history``, ``references``,
      ``license`` (ACDD), no internal list-valued state;
    * every dimension coordinate has ``units``, ``standard_name`` or ``long_name``;
    * every variable on both ``y`` and ``x`` names a ``grid_mapping`` present in the dataset that
      has a ``grid_mapping_name``;
    * every ``flag_values`` has as many ``flag_meanings`` (CF 3.5);
    * every FT class variable (``flag_meanings`` naming ``frozen``) declares its missing code as
      ``_FillValue`` or ``missing_value`` (CF 2.5.1), outside its ``flag_values``, so readers mask it.
    """
    out = []
    g = ds.attrs
    if "CF-1.8" not in str(g.get("Conventions", "")):
        out.append(f"{where}: Conventions {g.get('Conventions')!r} does not name CF-1.8")
    for k in ("title", "history", "references", "license"):
        if not g.get(k):
            out.append(f"{where}: no global attribute {k!r}")
    for k, v in g.items():
        if isinstance(v, (list, tuple)) and len(v) > 8:
            out.append(f"{where}: global attribute {k!r} is a list of {len(v)} values (internal state?)")
    for name in ds.dims:
        if name in ds.coords and not any(a in ds[name].attrs for a in ("units", "standard_name", "long_name")):
            out.append(f"{where}: coordinate {name!r} has no units, standard_name or long_name")
    for name, v in ds.data_vars.items():
        if "y" in v.dims and "x" in v.dims:
            gm = v.attrs.get("grid_mapping") or v.encoding.get("grid_mapping")
            if not gm:
                out.append(f"{where}: {name} (on y, x) has no grid_mapping")
            elif gm not in ds.variables or "grid_mapping_name" not in ds[gm].attrs:
                out.append(f"{where}: {name}'s grid_mapping {gm!r} is not a grid-mapping variable of the dataset")
    for name, v in ds.variables.items():
        if "flag_values" in v.attrs:
            n = len(str(v.attrs.get("flag_meanings", "")).split())
            if n != len(list(np.atleast_1d(v.attrs["flag_values"]))):
                out.append(f"{where}: {name} has {len(v.attrs['flag_values'])} flag_values and {n} flag_meanings")
            if "frozen" in str(v.attrs.get("flag_meanings", "")).split():
                miss = [src[k] for src in (v.encoding, v.attrs) for k in ("_FillValue", "missing_value") if k in src]
                if not miss:
                    out.append(f"{where}: FT variable {name} declares no _FillValue or missing_value")
                elif any(np.isin(np.atleast_1d(m), np.atleast_1d(v.attrs["flag_values"])).any() for m in miss):
                    out.append(f"{where}: FT variable {name}'s missing code {miss} is one of its flag_values")
    return out
