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

__all__ = ["ComputedWhileBuildingError", "assert_lazy", "no_compute"]


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
