"""The static layers: land/water fraction and elevation from the SMAP ancillary, terrain complexity, regions,
permafrost."""

from __future__ import annotations

import numpy as np
import xarray as xr
from ftcloud.core.grid import GridWindow
from ftcloud.core.metadata import STATICS
from ftcloud.sources.common import (
    open_xarray_file,
    require_variables,
)
from ftcloud.sources.targets import SMAP_WHAT, _window_slice, open_smap


def statics_from_sources(
    smap_url: str, aux_url: str, window: GridWindow, storage_options: dict | None = None, rows: slice = slice(None)
) -> xr.Dataset:
    """TCI, open-water fraction, lat, lon (from a SMAP granule) plus the auxiliary class maps.

    ``rows`` selects a block of the window's rows (the recipe writes statics in row blocks).
    """
    smap = open_smap(smap_url, storage_options=storage_options)
    require_variables(smap, ["terrain_complexity_index", "open_water_body_fraction", "x", "y"], smap_url, SMAP_WHAT)
    frows, fcols = _window_slice(smap["x"].values, smap["y"].values, window, smap_url, SMAP_WHAT)
    out = xr.Dataset(coords=window.coords())

    def am(name):
        da = smap[name]
        fill = da.attrs.get("_FillValue", -9999.0)
        v = np.asarray(da.values, "f4")[0, frows, fcols]
        return np.where(np.isclose(v, np.float32(np.asarray(fill).ravel()[0])), np.nan, v)

    out["tci"] = (("y", "x"), am("terrain_complexity_index"), {"units": "m", "long_name": STATICS["tci"][0]})
    out["aow"] = (("y", "x"), am("open_water_body_fraction"), {"units": "1", "long_name": STATICS["aow"][0]})
    aux = open_xarray_file(aux_url, storage_options=storage_options, what="auxiliary map file")
    require_variables(
        aux,
        ["x", "y", "elevation", "land_cover", "koppen", "region", "permafrost_stability"],
        aux_url,
        "auxiliary map file",
    )
    window.check_coords(aux["x"].values, aux["y"].values, f"auxiliary map file {aux_url}")
    for v in ("elevation", "land_cover", "koppen", "region", "permafrost_stability"):
        da = aux[v]
        attrs = {k: a for k, a in da.attrs.items() if k not in ("_FillValue", "grid_mapping", "coordinates")}
        out[v] = (("y", "x"), np.asarray(da.values), attrs)
    for v in out.data_vars:
        out[v].attrs.update(grid_mapping="crs", coordinates="lat lon")
    out["crs"] = window.template()["crs"]
    return out.set_coords("crs").isel(y=rows)
