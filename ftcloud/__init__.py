"""ftcloud: a cloud-native Dask/xarray engine for soil freeze/thaw science.

Layers, each importing only those above it in this list (tests/unit/test_architecture.py checks it):
``errors``, ``study`` (the paper as data), ``layout`` (where things live) -> ``core`` (grid, time,
FT coding) -> ``io`` (storage, transactions, leases, secrets) and ``config`` -> ``science``
(kernels), ``sources`` (recipes), ``synth`` (the twin), ``model`` -> ``inference``, ``cluster`` ->
``report`` -> ``workflows`` -> ``cli``. ``testing`` serves the tests.

Recipes turn native source files into analysis-ready EASE-Grid 2.0 zarr; later stages train
the ConvLSTM fusion model, run inference chunk-wise and compute validation and trends.
``import ftcloud`` never imports torch or apache_beam.
"""

import os as _os
import sys as _sys
from importlib.metadata import PackageNotFoundError, version

from ftcloud.errors import FTCloudError as _FTCloudError


class ProjLoadOrderError(_FTCloudError, ImportError):
    """pyproj was loaded after another libproj took over its symbols; only a fresh interpreter helps."""


def _global_libproj() -> bool:
    """Whether a libproj is already in the process's global symbol scope (before pyproj loads)."""
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "proj_context_create")
    except OSError:  # no dlopen(NULL) on this platform
        return False


def _init_pyproj():
    """Import pyproj so that it uses its own libproj whatever was imported before ftcloud.

    The eccodes wheels load eckitlib's bundled libproj and libsqlite3 with RTLD_GLOBAL (findlibs
    preloads every library of eckitlib/lib64). xarray imports cfgrib's backend, and so ecCodes, on
    the first ``open_dataset``/``open_zarr``. An extension module loaded after that resolves its
    ``proj_*`` symbols to eckit's libproj (a different PROJ version) instead of pyproj.libs' own:
    pyproj then fails with "no database context" and the interpreter aborts (double free). If such
    a library is already global, pyproj's extensions are loaded with RTLD_DEEPBIND, so they bind
    to their own libproj/libsqlite3 first (only then: DEEPBIND would bypass an LD_PRELOADed
    allocator). Importing pyproj here, before ecCodes, also keeps it bound to its own library for
    good: every pyproj extension module loads on ``import pyproj``, with RTLD_NOW.
    """
    if "pyproj" not in _sys.modules:
        deepbind = getattr(_os, "RTLD_DEEPBIND", 0)
        flags = _sys.getdlopenflags()
        if deepbind and _global_libproj():
            _sys.setdlopenflags(flags | deepbind)
        try:
            import pyproj
        finally:
            _sys.setdlopenflags(flags)
    import pyproj

    try:
        pyproj.CRS.from_epsg(6933)  # opens PROJ's database now, not in the middle of a computation
    except pyproj.exceptions.CRSError as e:
        raise ProjLoadOrderError(
            f"pyproj cannot open its database ({str(e).splitlines()[0]}): pyproj was imported after cfgrib/"
            "eccodes loaded another libproj; restart Python and import ftcloud (or pyproj) before cfgrib, "
            "eccodes or xarray's first open_dataset"
        ) from None
    return pyproj


_pyproj = _init_pyproj()

try:
    __version__ = version("ftcloud")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

from ftcloud import errors, layout, study  # noqa: E402
from ftcloud.config import get_options, load_config, set_options  # noqa: E402
from ftcloud.core.grid import EASE2_9KM, EASE2_25KM, REGIONS, region_window  # noqa: E402
from ftcloud import accessor  # noqa: E402, F401  (registers ds.ftcloud / da.ftcloud; science loads on first use)

__all__ = [
    "__version__",
    "accessor",
    "errors",
    "layout",
    "study",
    "ProjLoadOrderError",
    "get_options",
    "load_config",
    "set_options",
    "EASE2_9KM",
    "EASE2_25KM",
    "REGIONS",
    "region_window",
]
