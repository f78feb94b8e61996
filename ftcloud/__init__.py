"""ftcloud: a cloud-native Dask/xarray engine for soil freeze/thaw science.

Recipes turn native source files into analysis-ready EASE-Grid 2.0 zarr; later stages train
the ConvLSTM fusion model, run inference chunk-wise and compute validation and trends.
``import ftcloud`` never imports torch or apache_beam.
"""

from importlib.metadata import PackageNotFoundError, version

# PROJ must open its database before ecCodes is loaded: the eccodes wheels (via eckitlib) bundle
# their own libproj/libsqlite3, and if those load first pyproj crashes on its first CRS. xarray
# loads cfgrib's backend (and so ecCodes) on the first open_dataset, so ftcloud initialises PROJ
# at import time. Import ftcloud (or pyproj) before cfgrib/eccodes in your own scripts too.
import pyproj as _pyproj

_pyproj.CRS.from_epsg(6933)

try:
    __version__ = version("ftcloud")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

from ftcloud import errors  # noqa: E402
from ftcloud.config import get_options, load_config, set_options  # noqa: E402
from ftcloud.grid import EASE2_9KM, EASE2_25KM, REGIONS, region_window  # noqa: E402

__all__ = [
    "__version__",
    "errors",
    "get_options",
    "load_config",
    "set_options",
    "EASE2_9KM",
    "EASE2_25KM",
    "REGIONS",
    "region_window",
]
