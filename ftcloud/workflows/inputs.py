"""Opening what the workflows read: the FT product, the store's groups on the product's grid, the twin's truth.

* **ConvLSTM_FT**: the fused product, ``ft (pass, time, y, x)`` of ``ftcloud predict`` (:func:`open_product`).
* **truth**: on the digital twin, the hidden truth ``truth/truth_ft_9km.nc`` (float 1/0/NaN),
  found from the store's ``ftcloud_source`` attribute (:func:`find_truth`) or given.
"""

from __future__ import annotations

import logging
import os
import numpy as np
import xarray as xr
from ftcloud.errors import (
    FTCloudError,
    GridMismatchError,
    MissingVariableError,
    ValidationError,
)
from ftcloud.io.stores import open_group
from ftcloud import layout

log = logging.getLogger(__name__)


def open_product(
    url: str,
    storage_options: dict | None = None,
    *,
    variable: str | None = None,
    codes: dict | None = None,
) -> xr.Dataset:
    """An FT product as ftcloud's workflows read it: ``ft`` uint8 (0 thawed, 1 frozen, 255 missing)
    on ``(pass, time, y, x)`` (``pass`` where the product has one).

    A product written by ``ftcloud predict`` must be complete (its status record says so). Any other
    zarr is read as a CF FT dataset (bring your own product): the FT variable is ``variable``, else
    ``ft``, else the one whose ``flag_meanings`` name ``frozen``; its codes are mapped to ftcloud's
    by ``codes`` (``{"frozen": [1], "thawed": [2]}``, as in the TPDC FT datasets) or by its own
    ``flag_values``/``flag_meanings`` (``frozen``; ``thawed``, ``thaw`` or ``unfrozen``; anything
    else missing), or kept where it holds 0/1/255 only; ``lat``/``lon`` (or ``latitude``/``longitude``)
    dimensions become ``y``/``x`` (the degrees stay as ``lat``/``lon`` coordinates); a cftime
    calendar (noleap, 360_day, ...) is converted to the standard one (days it lacks are absent).
    """
    from ftcloud.io.stores import get_mapper, open_zarr_codes, store_status, written_by_ftcloud

    url = str(url).rstrip("/")
    if "/" not in url:
        url = "./" + url
    if store_status(url, storage_options) is None:
        raise MissingVariableError(f"{url}: no zarr group here (an FT product is a zarr group)")
    if written_by_ftcloud(url, storage_options):
        parent, name = url.rsplit("/", 1)
        ds = open_group(parent, name, storage_options)
        if "ft" not in ds:
            raise MissingVariableError(f"{url}: no variable 'ft' (pass, time, y, x); is this an ftcloud product?")
        if variable is None and codes is None:
            return ds
    else:
        ds = open_zarr_codes(get_mapper(url, storage_options), consolidated=None, chunks={})
    return normalise_product(ds, url, variable=variable, codes=codes)


_FROZEN_WORDS = ("frozen", "freeze")
_THAWED_WORDS = ("thawed", "thaw", "unfrozen", "non-frozen", "nonfrozen")


def _codes_from_flags(da: xr.DataArray) -> dict | None:
    """``{"frozen": [...], "thawed": [...]}`` from CF ``flag_values``/``flag_meanings``, or None."""
    values, meanings = da.attrs.get("flag_values"), da.attrs.get("flag_meanings")
    if values is None or not meanings:
        return None
    values = list(np.atleast_1d(np.asarray(values)).tolist())
    words = str(meanings).split()
    if len(words) != len(values):
        return None
    out: dict = {"frozen": [], "thawed": []}
    for v, w in zip(values, words):
        w = w.lower()
        if w in _FROZEN_WORDS:
            out["frozen"].append(v)
        elif w in _THAWED_WORDS:
            out["thawed"].append(v)
    return out if out["frozen"] and out["thawed"] else None


def normalise_product(
    ds: xr.Dataset, where: str = "product", *, variable: str | None = None, codes: dict | None = None
) -> xr.Dataset:
    """``ds`` with its FT variable as ftcloud's ``ft`` (see :func:`open_product`); lazy."""
    from ftcloud.core.metadata import FT_FROZEN, FT_MISSING, FT_THAWED, ft_attrs

    if variable is None:
        if "ft" in ds.data_vars:
            variable = "ft"
        else:
            flagged = [k for k, v in ds.data_vars.items() if _codes_from_flags(v) is not None]
            if len(flagged) != 1:
                raise MissingVariableError(
                    f"{where}: no single FT variable ({', '.join(map(str, ds.data_vars)) or 'none'}): name it "
                    "(--variable / variable=), or give it flag_values and flag_meanings with 'frozen' and 'thawed'"
                )
            variable = str(flagged[0])
    if variable not in ds.data_vars:
        raise MissingVariableError(f"{where}: no variable {variable!r}; it has {', '.join(map(str, ds.data_vars))}")
    da = ds[variable]
    # names: lat/lon dimensions -> y/x (degrees kept as coordinates)
    renames = {}
    for dim, new, units in (
        ("lat", "y", "degrees_north"),
        ("latitude", "y", "degrees_north"),
        ("lon", "x", "degrees_east"),
        ("longitude", "x", "degrees_east"),
    ):
        if dim in da.dims and new not in da.dims:
            renames[dim] = new
    if renames:
        da = da.rename(renames)
        for old, new in renames.items():
            deg = np.asarray(da[new].values)
            da = da.assign_coords(
                {
                    new: (new, deg, {"units": "degrees_east" if new == "x" else "degrees_north"}),
                    ("lon" if new == "x" else "lat"): (new, deg),
                }
            )
    if "time" not in da.dims or "y" not in da.dims or "x" not in da.dims:
        raise ValidationError(
            f"{where}: {variable} has dimensions {da.dims}; an FT product needs time and y/x (or lat/lon)"
        )
    # calendars: cftime (noleap, 360_day, ...) -> the standard calendar
    if not np.issubdtype(da["time"].dtype, np.datetime64):
        try:
            da = da.convert_calendar("standard", dim="time", align_on="date", use_cftime=False)
        except (ValueError, TypeError) as e:
            raise ValidationError(f"{where}: the time axis of {variable} cannot be read as dates ({e})") from None
    # codes -> 0 thawed, 1 frozen, 255 missing
    mapping = codes or _codes_from_flags(da)
    if mapping is None:
        if da.dtype.kind in "ui":
            step = max(1, da.sizes["time"] // 366)  # about a year of days spread over the whole series
            sample = np.unique(np.asarray(da.isel(time=slice(None, None, step)).values))
            if not set(sample.tolist()) <= {FT_THAWED, FT_FROZEN, FT_MISSING}:
                raise ValidationError(
                    f"{where}: {variable} holds codes {sample.tolist()[:8]} without flag_values/flag_meanings; "
                    "say which are frozen and thawed (--codes frozen=1,thawed=2 / codes=)"
                )
            out = da.astype("u1")
        else:
            out = xr.where(da == 1, FT_FROZEN, xr.where(da == 0, FT_THAWED, FT_MISSING)).astype("u1")
    else:
        frozen = da.isin(list(mapping.get("frozen", [])))
        thawed = da.isin(list(mapping.get("thawed", [])))
        out = xr.where(frozen, FT_FROZEN, xr.where(thawed, FT_THAWED, FT_MISSING)).astype("u1")
    out.attrs = ft_attrs(f"{variable} of {where}, as ftcloud FT codes", gridded=False)
    dims = ("pass", "time", "y", "x") if "pass" in out.dims else ("time", "y", "x")
    out = out.transpose(*dims, ...)
    for dim in ("x", "y"):  # the degrees of a lat/lon grid say so (xr.where drops coordinate attributes)
        if dim in renames.values():
            out[dim].attrs = {"units": "degrees_east" if dim == "x" else "degrees_north"}
    return xr.Dataset({"ft": out}, attrs=dict(ds.attrs))


def find_truth(store: str | None = None, truth: str | None = None, storage_options: dict | None = None) -> str | None:
    """Folder of the twin's hidden truth, or None when there is none.

    ``truth`` (a folder holding ``truth_ft_9km.nc`` / ``truth_summary_9km.nc``) wins; otherwise
    the store's groups are asked for their ``ftcloud_source`` attribute (the twin folder they
    were ingested from) and ``<source>/truth`` is used when it exists (local folders only).
    """
    if truth:
        if not os.path.isdir(truth):
            raise ValidationError(f"--truth {truth}: no such folder")
        if not any(os.path.exists(os.path.join(truth, f)) for f in ("truth_ft_9km.nc", "truth_summary_9km.nc")):
            raise ValidationError(f"--truth {truth}: holds neither truth_ft_9km.nc nor truth_summary_9km.nc")
        return truth
    if not store:
        return None
    for group in (layout.STATICS, layout.ERA5LAND, layout.SMAP_E_FT):
        try:
            src = open_group(store, group, storage_options).attrs.get("ftcloud_source")
        except (FTCloudError, OSError):
            continue
        if not src or ("://" in src and not src.startswith("file://")):
            continue
        path = os.path.join(src.replace("file://", ""), "truth")
        if os.path.isdir(path):
            log.info("twin truth found at %s (from the store's ftcloud_source)", path)
            return path
    return None


def _on_grid(obj, like, what: str):
    """``obj`` on the x/y cells of ``like`` (same EASE2 grid; nearest within 1 m)."""
    try:
        out = obj.sel(x=like["x"].values, y=like["y"].values, method="nearest", tolerance=1.0)
    except KeyError as e:
        raise GridMismatchError(f"{what} does not cover the product's grid cells ({e})") from e
    return out.assign_coords(x=like["x"].values, y=like["y"].values)


def open_truth_ft(truth_dir: str, like: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """The hidden truth FT (pass, time, y, x) as float 1 frozen / 0 thawed / NaN, on ``like``'s grid (lazy)."""
    path = os.path.join(truth_dir, "truth_ft_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path, chunks={})  # the file's own chunks, lazily
    ft = ds["ft"]
    ft = ft.where((ft == 0) | (ft == 1)).astype(np.float32)
    ft = _on_grid(ft.drop_vars([c for c in ("lat", "lon") if c in ft.coords]), like, f"truth {path}")
    ft.attrs = {"long_name": "hidden truth FT of the digital twin", "comment": "1 frozen, 0 thawed, NaN sea/missing"}
    return ft.transpose("pass", "time", "y", "x")


def open_truth_summary(truth_dir: str, like) -> xr.Dataset:
    path = os.path.join(truth_dir, "truth_summary_9km.nc")
    if not os.path.exists(path):
        raise MissingVariableError(f"{path}: not found")
    ds = xr.open_dataset(path).load()
    ds = ds.drop_vars([c for c in ("lat", "lon", "crs") if c in ds.variables])
    return _on_grid(ds, like, f"truth summary {path}")
