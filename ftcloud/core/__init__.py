"""The base layer: the EASE-Grid 2.0 grids and windows, time rules, FT coding and CF metadata.

* :mod:`ftcloud.core.grid`: EASE-Grid 2.0 (9 and 25 km), named regions, windows, lat/lon regridding.
* :mod:`ftcloud.core.timeutil`: passes, the local-solar-time -> UTC rule of the predictor steps,
  dates and periods, seasons and splits of :mod:`ftcloud.study`.
* :mod:`ftcloud.core.metadata`: FT codes (0 thawed, 1 frozen, 255 missing; :func:`~ftcloud.core.metadata.ft_valid`),
  CF attributes, the one CF flag parser (:func:`~ftcloud.core.metadata.flag_names`), provenance stamps.

Imports nothing of ftcloud but :mod:`ftcloud.errors` and :mod:`ftcloud.study`.
"""

from ftcloud.core import grid, metadata, timeutil

__all__ = ["grid", "metadata", "timeutil"]
