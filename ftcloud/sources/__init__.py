"""One module per native source: readers, checks and the pangeo-forge / Beam recipes that turn them into zarr.

* :mod:`ftcloud.sources.era5land`: ERA5-Land hourly NetCDF/GRIB -> the predictor steps of each pass.
* :mod:`ftcloud.sources.targets`: SMAP enhanced L3 FT and the ESDR FT record -> FT codes.
* :mod:`ftcloud.sources.others`: GPM IMERG granules, static layers, in-situ networks and CMA stations.
* :mod:`ftcloud.sources.packing`: scale/offset packing and the physical ranges checked at the door.
* :mod:`ftcloud.sources.pipelines`: the recipe of each source (the ``SOURCES`` registry).
* :mod:`ftcloud.sources.regions`: the zarr skeleton once, then region writes (the xarray-beam pattern).
* :mod:`ftcloud.sources.common`, :mod:`ftcloud.sources.sizing`: shared openers, chunk plans, dry runs.

Needs the ``[ingest]`` extra (Beam, pangeo-forge-recipes, kerchunk, cfgrib, h5py, netCDF4).
The feedstock in ``feedstock/`` only wires these together.
"""

__all__ = ["common", "era5land", "others", "packing", "pipelines", "regions", "sizing", "targets"]
