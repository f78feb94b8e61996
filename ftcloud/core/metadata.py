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
        "comment": "0 = thawed, 1 = frozen, 255 = missing",
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
