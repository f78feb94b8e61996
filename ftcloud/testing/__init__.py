"""Test support, importable by users' own tests too: fake-data factories, laziness assertions, local servers.

* :mod:`ftcloud.testing.factories`: native files with planted fields (``write_era5land_file``),
  a small public-style product (``publish_demo``).
* :mod:`ftcloud.testing.assertions`: ``no_compute`` (a scheduler callback that refuses any
  compute while a graph is built) and ``assert_lazy``.
* :mod:`ftcloud.testing.servers`: a real dask-gateway on 127.0.0.1 (``local_gateway``), an HTTP
  folder (``serve_folder``), ``free_port``.
"""

from __future__ import annotations

from ftcloud.testing.assertions import ComputedWhileBuildingError, assert_lazy, cf_problems, no_compute
from ftcloud.testing.factories import publish_demo, write_era5land_file
from ftcloud.testing.servers import GATEWAY_INHERITED_ENV, free_port, gateway_options_file, local_gateway, serve_folder

__all__ = [
    "GATEWAY_INHERITED_ENV",
    "ComputedWhileBuildingError",
    "assert_lazy",
    "cf_problems",
    "free_port",
    "gateway_options_file",
    "local_gateway",
    "no_compute",
    "publish_demo",
    "serve_folder",
    "write_era5land_file",
]
