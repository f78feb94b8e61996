"""In-situ records: the 5 cm soil-temperature networks and the CMA stations' daily 0 cm surface temperature."""

from __future__ import annotations

import io
import numpy as np
import pandas as pd
import xarray as xr
from ftcloud.errors import MissingVariableError, SourceFileError, ValidationError
from ftcloud.core.grid import GridWindow
from ftcloud.sources.common import (
    TIME_ENCODING_30MIN,
    check_time_axis,
    open_bytes,
    set_time,
)


def read_network_station(url: str, times: pd.DatetimeIndex, storage_options: dict | None = None) -> np.ndarray:
    """5 cm soil temperature (degC) of one station on the regular 30-min axis ``times`` (NaN where absent)."""
    data = open_bytes(url, storage_options, "in-situ station file")
    try:
        df = pd.read_csv(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"in-situ station file {url} is not a readable CSV: {e}") from e
    for col in ("timestamp_utc", "tsoil_degC"):
        if col not in df.columns:
            raise MissingVariableError(
                f"in-situ station file {url}: column {col!r} not found; columns: {', '.join(df.columns)}"
            )
    t = pd.DatetimeIndex(pd.to_datetime(df["timestamp_utc"], format="%Y-%m-%dT%H:%M"))
    check_time_axis(t.values, url, "in-situ station file")
    s = pd.Series(pd.to_numeric(df["tsoil_degC"], errors="coerce").to_numpy("f4"), index=t)
    return s.reindex(times).to_numpy("f4")


def networks_dataset(meta: pd.DataFrame, series: np.ndarray, times: pd.DatetimeIndex, window: GridWindow) -> xr.Dataset:
    ds = xr.Dataset(
        {
            "tsoil": (
                ("station", "time"),
                series,
                {"units": "degC", "standard_name": "soil_temperature", "long_name": "in-situ soil temperature"},
            )
        },
        coords={
            "station": ("station", meta["station"].astype(str).to_numpy().astype("U32")),
            "time": ("time", times.values),
        },
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
        "pixel_row": (
            "station",
            np.where(inside, r, -1).astype("i4"),
            {"long_name": "row of the 9 km pixel within the store window, -1 outside"},
        ),
        "pixel_col": (
            "station",
            np.where(inside, c, -1).astype("i4"),
            {"long_name": "column of the 9 km pixel within the store window, -1 outside"},
        ),
    }
    for col in ("network", "elevation_m", "depth_cm"):
        if col in meta.columns:
            vals = meta[col].to_numpy()
            coords[col] = ("station", vals.astype(str).astype("U32") if vals.dtype == object else vals)
    return coords


def read_cma(
    url_stations: str, url_daily: str, days: pd.DatetimeIndex, window: GridWindow, storage_options: dict | None = None
) -> xr.Dataset:
    meta = pd.read_csv(io.BytesIO(open_bytes(url_stations, storage_options, "CMA station list")))
    df = pd.read_csv(io.BytesIO(open_bytes(url_daily, storage_options, "CMA daily 0 cm temperature file")))
    for col in ("station", "date", "t0_min_degC", "t0_max_degC"):
        if col not in df.columns:
            raise MissingVariableError(
                f"CMA daily file {url_daily}: column {col!r} not found; columns: {', '.join(df.columns)}"
            )
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d")
    if df.duplicated(["station", "date"]).any():
        d = df[df.duplicated(["station", "date"])].iloc[0]
        raise ValidationError(
            f"CMA daily file {url_daily}: duplicate record for station {d['station']} on {d['date']:%Y-%m-%d}"
        )
    meta = meta.sort_values("station").reset_index(drop=True)
    stations = meta["station"].astype(str).to_numpy().astype("U32")
    df["station"] = df["station"].astype(str)
    out = {}
    for v in ("t0_min_degC", "t0_max_degC"):
        wide = df.pivot(index="date", columns="station", values=v).reindex(index=days, columns=stations)
        out[v] = wide.to_numpy("f4").T
    ds = xr.Dataset(
        {
            "t0_min": (
                ("station", "time"),
                out["t0_min_degC"],
                {"units": "degC", "long_name": "daily minimum 0 cm land surface temperature"},
            ),
            "t0_max": (
                ("station", "time"),
                out["t0_max_degC"],
                {"units": "degC", "long_name": "daily maximum 0 cm land surface temperature"},
            ),
        },
        coords={"station": ("station", stations)},
    )
    ds = ds.assign_coords(station_pixel_coords(meta, window))
    return set_time(ds, days)
