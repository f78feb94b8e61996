"""CF attributes, FT class flags, provenance stamps and the registry of expected inputs."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

FT_THAWED = np.uint8(0)
FT_FROZEN = np.uint8(1)
FT_MISSING = np.uint8(255)


def ft_valid(x) -> np.ndarray:
    """Where ``x`` holds a valid FT state (0 thawed or 1 frozen): the one definition of "missing" (anything else).

    >>> ft_valid(np.array([0, 1, 255, 7], "u1")).tolist()
    [True, True, False, False]
    """
    return (x == FT_THAWED) | (x == FT_FROZEN)


FT_FLAG_ATTRS = {
    "flag_values": np.array([0, 1], dtype="u1"),
    "flag_meanings": "thawed frozen",
    "_note": "255 = missing (no retrieval, outside swath, or masked)",
}


#: how every FT class variable is encoded: 255 is its CF ``_FillValue``, so xarray masks it and GDAL/rioxarray
#: report it as nodata. ftcloud's own readers keep the codes (:func:`keep_codes`): uint8, no float NaN.
FT_ENCODING = {"_FillValue": FT_MISSING}


def keep_codes(attrs_by_name: dict) -> dict:
    """``mask_and_scale`` per variable for xarray's readers: False for every categorical variable (an integer
    with CF ``flag_values``: FT classes, regions, stability), so its codes stay codes (255, not NaN in a float);
    other variables (packed predictors) are decoded as usual.

    >>> keep_codes({"ft": ("uint8", {"flag_values": [0, 1]}), "stl1": ("int16", {"scale_factor": 0.01})})
    {'ft': False, 'stl1': True}
    """
    return {
        name: not (np.dtype(dtype).kind in "ui" and "flag_values" in attrs)
        for name, (dtype, attrs) in attrs_by_name.items()
    }


def flag_names(da) -> dict:
    """Code -> name of a categorical variable, from its CF ``flag_values`` / ``flag_meanings`` ({} without them).

    The one parser of CF flags in ftcloud (regions, stability classes, land cover, Koppen).

    >>> import xarray as xr
    >>> flag_names(xr.DataArray([1], attrs={"flag_values": [1, 2], "flag_meanings": "north south"}))
    {1: 'north', 2: 'south'}
    """
    fv, fm = da.attrs.get("flag_values"), da.attrs.get("flag_meanings")
    if fv is None or fm is None:
        return {}
    return {np.asarray(v).item(): m for v, m in zip(np.atleast_1d(fv), str(fm).split())}


def ft_attrs(long_name: str, source: str | None = None, *, gridded: bool = True, **extra) -> dict:
    """CF attributes of an FT class variable (0 thawed, 1 frozen, 255 missing).

    ``gridded`` adds the EASE2 ``grid_mapping``/``coordinates`` references; station series leave it off.
    """
    attrs = {
        "long_name": long_name,
        "flag_values": FT_FLAG_ATTRS["flag_values"],
        "flag_meanings": FT_FLAG_ATTRS["flag_meanings"],
        "valid_range": np.array([0, 1], dtype="u1"),
        "comment": "0 = thawed, 1 = frozen, 255 = missing (_FillValue)",
    }
    if source is not None:
        attrs["source"] = source
    if gridded:
        attrs.update(grid_mapping="crs", coordinates="lat lon")
    attrs.update(extra)
    return attrs


@dataclass(frozen=True)
class VariableSpec:
    """What an input variable must look like at the door, and how it is written out."""

    name: str
    accepted_units: tuple[str, ...]
    out_units: str
    standard_name: str
    long_name: str
    valid_range: tuple[float, float]


# What the predictors must look like (the xclim habit: check units at the door).
PREDICTORS: dict[str, VariableSpec] = {
    "stl1": VariableSpec(
        "stl1", ("K",), "K", "soil_temperature", "soil temperature 0-7 cm (ERA5-Land level 1)", (180.0, 350.0)
    ),
    "swvl1": VariableSpec(
        "swvl1",
        ("m**3 m**-3", "m3 m-3", "m3/m3", "m^3 m^-3"),
        "m3 m-3",
        "volume_fraction_of_condensed_water_in_soil",
        "volumetric soil water 0-7 cm (ERA5-Land level 1)",
        (0.0, 1.0),
    ),
    "sde": VariableSpec(
        "sde", ("m",), "m", "surface_snow_thickness", "snow depth (physical, ERA5-Land sde)", (0.0, 50.0)
    ),
    "tp": VariableSpec(
        "tp",
        ("m",),
        "mm h-1",
        "lwe_precipitation_rate",
        "precipitation rate over the hour ending at the step (ERA5-Land tp, de-accumulated)",
        (0.0, 1.0),
    ),
    "precipitation": VariableSpec(
        "precipitation",
        ("mm/hr", "mm h-1", "mm/h"),
        "mm h-1",
        "lwe_precipitation_rate",
        "precipitation rate over the hour ending at the step (GPM IMERG V07)",
        (0.0, 500.0),
    ),
}

# Output names in the analysis-ready store.
OUTPUT_NAMES = {"stl1": "stl1", "swvl1": "swvl1", "sde": "sde", "tp": "pr", "precipitation": "pr_imerg"}

STATICS = {
    "tci": ("terrain complexity index (std. dev. of elevation in the cell)", "m"),
    "aow": ("area fraction of open water", "1"),
    "elevation": ("surface elevation", "m"),
}


def history_stamp(action: str) -> str:
    """One history line: UTC time, ftcloud version, action."""
    from ftcloud import __version__

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now} ftcloud {__version__}: {action}"


def software_versions(extra: tuple = ()) -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("ftcloud", "xarray", "zarr", "dask", "numpy", "pangeo-forge-recipes", "apache-beam", "pyproj", *extra):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


# -- CF-1.8 / ACDD-1.3 ----------------------------------------------------------------------
#: what every output cites (ACDD ``references``)
REFERENCES = (
    "Cui, H.; Chai, L.; Li, H.; Zhao, S.; Li, X.; Liu, S. A Spatiotemporal Enhanced SMAP Freeze/Thaw Product "
    "(1980-2020) over China and Its Preliminary Analyses. Remote Sens. 2024, 16, 950, "
    "https://doi.org/10.3390/rs16060950"
)
#: the licence of what ftcloud writes from the twin; data derived from real archives keep their licences
LICENSE = "BSD-3-Clause (ftcloud); outputs derived from real archives are subject to those archives' terms"
CONVENTIONS = "CF-1.8, ACDD-1.3"
#: attributes of the dimension coordinates ftcloud's outputs use (applied where a coordinate has none)
COORDINATE_ATTRS = {
    "time": {"standard_name": "time", "long_name": "local solar date", "axis": "T"},
    "pass": {"long_name": "satellite overpass: AM 06:00, PM 18:00 local solar time (mean: their mean)"},
    "y": {"standard_name": "projection_y_coordinate", "long_name": "EASE-Grid 2.0 y", "units": "m", "axis": "Y"},
    "x": {"standard_name": "projection_x_coordinate", "long_name": "EASE-Grid 2.0 x", "units": "m", "axis": "X"},
    "year": {"long_name": "calendar year"},
    "station": {"long_name": "station identifier", "cf_role": "timeseries_id"},
    "cell": {"long_name": "station pixel (index of a CMA station's grid cell)"},
    "season": {"long_name": "season (all days, frozen Dec-Jan, transition Feb-Apr and Oct-Nov, thawed May-Sep)"},
    "product": {"long_name": "FT product"},
    "reference": {"long_name": "reference FT the products are scored against"},
    "network": {"long_name": "in-situ network (all: every station)"},
    "stratum": {"long_name": "stratum of the regional series (region, permafrost class)"},
}


def cf_globals(title: str, **extra) -> dict:
    """The global attributes every ftcloud output carries (CF-1.8 + ACDD-1.3)."""
    return {"Conventions": CONVENTIONS, "title": title, "references": REFERENCES, "license": LICENSE, **extra}


def describe_coordinates(ds):
    """``ds`` with :data:`COORDINATE_ATTRS` on every dimension coordinate that has no
    units/standard_name/long_name (coordinates in degrees keep theirs)."""
    for name in ds.dims:
        if name in ds.coords and name in COORDINATE_ATTRS:
            have = ds[name].attrs
            if not any(k in have for k in ("units", "standard_name", "long_name")):
                ds[name].attrs = {**COORDINATE_ATTRS[name], **have}
    return ds
