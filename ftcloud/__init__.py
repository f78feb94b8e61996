"""ftcloud: a cloud-native Dask/xarray engine for soil freeze/thaw science.

Recipes turn native source files into analysis-ready EASE-Grid 2.0 zarr; later stages train
the ConvLSTM fusion model, run inference chunk-wise and compute validation and trends.
``import ftcloud`` never imports torch or apache_beam.
"""

from importlib.metadata import PackageNotFoundError, version

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
