"""One module per native source: readers, checks and the pangeo-forge / Beam recipes that turn them into zarr.

* :mod:`ftcloud.sources.era5land`: ERA5-Land hourly NetCDF/GRIB -> the predictor steps of each pass.
* :mod:`ftcloud.sources.targets`: SMAP enhanced L3 FT and the ESDR FT record -> FT codes.
* :mod:`ftcloud.sources.imerg`: GPM IMERG granules -> precipitation at the predictor steps.
* :mod:`ftcloud.sources.statics`: the static layers (SMAP ancillary, terrain, regions, permafrost).
* :mod:`ftcloud.sources.insitu`: the 5 cm soil-temperature networks and the CMA stations.
* :mod:`ftcloud.sources.packing`: scale/offset packing and the physical ranges checked at the door.
* :mod:`ftcloud.sources.pipelines`: the recipe of each source (the ``SOURCES`` registry).
* :mod:`ftcloud.sources.regions`: the zarr skeleton once, then region writes (the xarray-beam pattern).
* :mod:`ftcloud.sources.common`: shared openers, time encodings, chunk plans.

Needs the ``[ingest]`` extra (Beam, pangeo-forge-recipes, kerchunk, cfgrib, h5py, netCDF4).
The feedstock in ``feedstock/`` only wires these together.
"""

__all__ = ["common", "era5land", "imerg", "insitu", "packing", "pipelines", "regions", "statics", "targets"]
