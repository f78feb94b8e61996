"""GPM IMERG granules, static layers and in-situ records."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import MissingVariableError, SourceFileError, UnitsError, ValidationError
from ftcloud.core.grid import GridWindow, LatLonRegridder
from ftcloud.core.metadata import PREDICTORS, STATICS
from ftcloud.sources.common import (
    TIME_ENCODING_30MIN,
    check_time_axis,
    open_bytes,
    open_xarray_file,
    require_variables,
    set_time,
)
from ftcloud.sources.targets import SMAP_WHAT, _window_slice, open_smap
from ftcloud.core.timeutil import PASSES, step_offsets

IMERG_WHAT = "GPM IMERG granule"
IMERG_EPOCH = pd.Timestamp("1980-01-06")

# --------------------------------------------------------------------------------------
# IMERG


def imerg_url(root: str, start: pd.Timestamp) -> str:
    """URL of the half-hourly granule that starts at ``start`` (UTC)."""
    end = start + pd.Timedelta(minutes=29, seconds=59)
    minutes = start.hour * 60 + start.minute
    return (
        f"{root.rstrip('/')}/imerg/{start:%Y/%m/%d}/3B-HHR.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-"
        f"E{end:%H%M%S}.{minutes:04d}.V07B.HDF5"
    )


def read_imerg_granule(url: str, storage_options: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Timestamp]:
    """(precipitation[lat, lon] mm/hr with NaN fill, lat, lon, start time) of one granule."""
    import h5py

    data = open_bytes(url, storage_options, IMERG_WHAT)
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            if "Grid" not in f:
                raise MissingVariableError(f"{IMERG_WHAT} {url}: no 'Grid' group; groups: {', '.join(f.keys())}")
            g = f["Grid"]
            for name in ("precipitation", "lat", "lon", "time"):
                if name not in g:
                    raise MissingVariableError(
                        f"{IMERG_WHAT} {url}: variable 'Grid/{name}' not found; the group has: {', '.join(g.keys())}"
                    )
            pr = g["precipitation"]
            units = pr.attrs.get("units", b"")
            units = units.decode() if isinstance(units, bytes) else str(units)
            if units not in PREDICTORS["precipitation"].accepted_units:
                raise UnitsError(f"{IMERG_WHAT} {url}: variable 'precipitation' has units {units!r}, expected 'mm/hr'")
            fill = pr.attrs.get("_FillValue", -9999.9)
            arr = np.asarray(pr[0], dtype="f4")  # (lon, lat)
            lat = np.asarray(g["lat"][:], "f8")
            lon = np.asarray(g["lon"][:], "f8")
            t = int(np.asarray(g["time"][:]).ravel()[0])
    except (MissingVariableError, UnitsError):
        raise
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"{IMERG_WHAT} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e
    if arr.shape != (lon.size, lat.size):
        raise ValidationError(f"{IMERG_WHAT} {url}: precipitation has shape {arr.shape}, expected (lon, lat) = {(lon.size, lat.size)}")
    arr = np.where(np.isclose(arr, np.float32(np.asarray(fill).ravel()[0])) | (arr < 0), np.nan, arr).T
    if not np.isfinite(arr).any():
        raise SourceFileError(f"{IMERG_WHAT} {url}: variable 'precipitation' holds only fill values")
    return arr, lat, lon, IMERG_EPOCH + pd.Timedelta(seconds=t)


def imerg_source_lons(window: GridWindow) -> np.ndarray:
    """Source longitudes whose step hours decide which granules a day needs (0.1 deg grid over the window)."""
    lon, _ = window.lonlat
    return np.arange(np.floor(lon.min() * 10) - 2, np.ceil(lon.max() * 10) + 3) / 10.0


def imerg_day(root: str, day: pd.Timestamp, window: GridWindow, storage_options: dict | None = None) -> xr.Dataset:
    """Hourly IMERG rates for the six steps of local ``day``, regridded: ``pr_imerg`` (1, pass, step, y, x)."""
    cache: dict[pd.Timestamp, tuple] = {}

    def granule(start: pd.Timestamp):
        if start not in cache:
            url = imerg_url(root, start)
            arr, lat, lon, t = read_imerg_granule(url, storage_options)
            if t != start:
                raise ValidationError(f"{IMERG_WHAT} {url}: Grid/time says {t}, the file name says {start}")
            cache[start] = (arr, lat, lon)
        return cache[start]

    out = np.empty((1, 2, 3, *window.shape), "f4")
    regrid = None
    src_lon = None
    for p, pass_ in enumerate(PASSES):
        for k in range(3):
            # the rate at step hour h is the mean of the half hours starting h-1:00 and h-0:30
            lons = imerg_source_lons(window)
            offs = step_offsets(lons, pass_)[:, k]
            fields = []
            for h in np.unique(offs):
                t_end = day + pd.Timedelta(hours=int(h))
                a, lat, lon = granule(t_end - pd.Timedelta(hours=1))
                b, _, _ = granule(t_end - pd.Timedelta(minutes=30))
                fields.append((h, (a + b) / 2.0, lat, lon))
            _, f0, lat, lon = fields[0]
            if regrid is None:
                regrid = LatLonRegridder(lat, lon, window, "bilinear")
                src_lon = lon
            rate = np.array(f0)
            # per source longitude, take the field of that column's own step hour
            col_off = step_offsets(src_lon, pass_)[:, k]
            for h, f, _, _ in fields[1:]:
                rate[:, col_off == h] = f[:, col_off == h]
            out[0, p, k] = regrid(rate)
    ds = xr.Dataset({"pr_imerg": (("time", "pass", "step", "y", "x"), out)}, coords=window.coords())
    ds["pr_imerg"].attrs = {
        "units": "mm h-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": PREDICTORS["precipitation"].long_name,
        "grid_mapping": "crs",
        "coordinates": "lat lon",
    }
    ds = ds.assign_coords({"pass": ("pass", list(PASSES)), "step": ("step", np.arange(3, dtype="i1"))})
    ds["crs"] = window.template()["crs"]
    return set_time(ds.set_coords("crs"), pd.DatetimeIndex([day]))


# --------------------------------------------------------------------------------------
# Statics


def statics_from_sources(smap_url: str, aux_url: str, window: GridWindow, storage_options: dict | None = None,
                         rows: slice = slice(None)) -> xr.Dataset:
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
    require_variables(aux, ["x", "y", "elevation", "land_cover", "koppen", "region", "permafrost_stability"], aux_url, "auxiliary map file")
    window.check_coords(aux["x"].values, aux["y"].values, f"auxiliary map file {aux_url}")
    for v in ("elevation", "land_cover", "koppen", "region", "permafrost_stability"):
        da = aux[v]
        attrs = {k: a for k, a in da.attrs.items() if k not in ("_FillValue", "grid_mapping", "coordinates")}
        out[v] = (("y", "x"), np.asarray(da.values), attrs)
    for v in out.data_vars:
        out[v].attrs.update(grid_mapping="crs", coordinates="lat lon")
    out["crs"] = window.template()["crs"]
    return out.set_coords("crs").isel(y=rows)


# --------------------------------------------------------------------------------------
# In-situ


def read_network_station(url: str, times: pd.DatetimeIndex, storage_options: dict | None = None) -> np.ndarray:
    """5 cm soil temperature (degC) of one station on the regular 30-min axis ``times`` (NaN where absent)."""
    data = open_bytes(url, storage_options, "in-situ station file")
    try:
        df = pd.read_csv(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"in-situ station file {url} is not a readable CSV: {e}") from e
    for col in ("timestamp_utc", "tsoil_degC"):
        if col not in df.columns:
            raise MissingVariableError(f"in-situ station file {url}: column {col!r} not found; columns: {', '.join(df.columns)}")
    t = pd.DatetimeIndex(pd.to_datetime(df["timestamp_utc"], format="%Y-%m-%dT%H:%M"))
    check_time_axis(t.values, url, "in-situ station file")
    s = pd.Series(pd.to_numeric(df["tsoil_degC"], errors="coerce").to_numpy("f4"), index=t)
    return s.reindex(times).to_numpy("f4")


def networks_dataset(meta: pd.DataFrame, series: np.ndarray, times: pd.DatetimeIndex, window: GridWindow) -> xr.Dataset:
    ds = xr.Dataset(
        {"tsoil": (("station", "time"), series, {"units": "degC", "standard_name": "soil_temperature", "long_name": "in-situ soil temperature"})},
        coords={"station": ("station", meta["station"].astype(str).to_numpy().astype("U32")), "time": ("time", times.values)},
    )
    ds = ds.assign_coords(station_pixel_coords(meta, window))
    ds["time"].encoding = dict(TIME_ENCODING_30MIN)
    return ds


def station_pixel_coords(meta: pd.DataFrame, window: GridWindow) -> dict:
    """Station metadata plus the 9 km pixel (row, col within the window) each station falls in; -1 outside."""
    from ftcloud.core.grid import lonlat_to_xy

    x, y = lonlat_to_xy(meta["lon"].to_numpy(), meta["lat"].to_numpy())
    r = np.floor(window.grid.row_of(y) + 0.5).astype("i4") - window.row0
    c = np.floor(window.grid.col_of(x) + 0.5).astype("i4") - window.col0
    inside = (r >= 0) & (r < window.shape[0]) & (c >= 0) & (c < window.shape[1])
    coords = {
        "lat": ("station", meta["lat"].to_numpy("f8"), {"units": "degrees_north"}),
        "lon": ("station", meta["lon"].to_numpy("f8"), {"units": "degrees_east"}),
        "pixel_row": ("station", np.where(inside, r, -1).astype("i4"), {"long_name": "row of the 9 km pixel within the store window, -1 outside"}),
        "pixel_col": ("station", np.where(inside, c, -1).astype("i4"), {"long_name": "column of the 9 km pixel within the store window, -1 outside"}),
    }
    for col in ("network", "elevation_m", "depth_cm"):
        if col in meta.columns:
            vals = meta[col].to_numpy()
            coords[col] = ("station", vals.astype(str).astype("U32") if vals.dtype == object else vals)
    return coords


def read_cma(url_stations: str, url_daily: str, days: pd.DatetimeIndex, window: GridWindow, storage_options: dict | None = None) -> xr.Dataset:
    meta = pd.read_csv(io.BytesIO(open_bytes(url_stations, storage_options, "CMA station list")))
    df = pd.read_csv(io.BytesIO(open_bytes(url_daily, storage_options, "CMA daily 0 cm temperature file")))
    for col in ("station", "date", "t0_min_degC", "t0_max_degC"):
        if col not in df.columns:
            raise MissingVariableError(f"CMA daily file {url_daily}: column {col!r} not found; columns: {', '.join(df.columns)}")
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d")
    if df.duplicated(["station", "date"]).any():
        d = df[df.duplicated(["station", "date"])].iloc[0]
        raise ValidationError(f"CMA daily file {url_daily}: duplicate record for station {d['station']} on {d['date']:%Y-%m-%d}")
    meta = meta.sort_values("station").reset_index(drop=True)
    stations = meta["station"].astype(str).to_numpy().astype("U32")
    df["station"] = df["station"].astype(str)
    out = {}
    for v in ("t0_min_degC", "t0_max_degC"):
        wide = df.pivot(index="date", columns="station", values=v).reindex(index=days, columns=stations)
        out[v] = wide.to_numpy("f4").T
    ds = xr.Dataset(
        {
            "t0_min": (("station", "time"), out["t0_min_degC"], {"units": "degC", "long_name": "daily minimum 0 cm land surface temperature"}),
            "t0_max": (("station", "time"), out["t0_max_degC"], {"units": "degC", "long_name": "daily maximum 0 cm land surface temperature"}),
        },
        coords={"station": ("station", stations)},
    )
    ds = ds.assign_coords(station_pixel_coords(meta, window))
    return set_time(ds, days)
