"""Byte-layout writers for the native source formats (docs/source-formats.md).

Every file is written under a hidden temporary name in its final folder
(``.<name>.tmp``) and renamed into place when complete, so an interrupted run never
leaves a file that looks finished. No writer stores wall-clock times, so a seed and
its arguments always give byte-identical files.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ftcloud.core.grid import GridWindow, grid_mapping_attrs
from ftcloud.errors import require

# the twin writes HDF5 and netCDF files: h5py and netCDF4 come with the [ingest] extra
h5py = require("ingest", "h5py", feature="the twin (ftcloud synth)")
netCDF4 = require("ingest", "netCDF4", feature="the twin (ftcloud synth)")

TMP_SUFFIX = ".tmp"
ERA5_FILL = np.int16(-32767)
IMERG_FILL = np.float32(-9999.9)
IMERG_EPOCH = np.datetime64("1980-01-06T00:00:00", "s")
ERA5_EPOCH = np.datetime64("1900-01-01T00:00", "h")
ESDR_EPOCH = np.datetime64("1979-01-01", "D")
TRUTH_EPOCH = np.datetime64("1970-01-01", "D")


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


@contextlib.contextmanager
def atomic(path: Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    if tmp.exists():
        tmp.unlink()
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, path)


def _nc(path: Path) -> netCDF4.Dataset:
    return netCDF4.Dataset(path, "w", format="NETCDF4")


# --------------------------------------------------------------------------------------
# ERA5-Land


def pack_int16(values: np.ndarray):
    """CDS-like int16 packing: returns (packed, scale_factor, add_offset); NaN -> -32767.

    scale = (max - min) / (2**16 - 4) and offset = (max + min) / 2, so the data map to
    -32766..32766 and never onto the fill value -32767.
    """
    v = np.asarray(values)
    if v.dtype.kind != "f":
        v = v.astype("f8")
    if np.isfinite(v).any():
        vmin = float(np.nanmin(v))
        vmax = float(np.nanmax(v))
    else:
        vmin = vmax = 0.0
    scale = (vmax - vmin) / (2**16 - 4)
    if not scale > 0:
        scale = 1.0 if vmax == 0 else abs(vmax) * 1e-6
    offset = (vmax + vmin) / 2.0
    flat = v.reshape(-1)
    packed = np.empty(flat.shape, np.int16)
    step = 4_000_000
    for a in range(0, flat.size, step):  # bounded temporaries for large windows
        b = flat[a : a + step].astype("f8")
        ok = np.isfinite(b)
        q = np.clip(np.round((np.where(ok, b, offset) - offset) / scale), -32766, 32766)
        packed[a : a + step] = np.where(ok, q, ERA5_FILL)
    return packed.reshape(v.shape), np.float64(scale), np.float64(offset)


ERA5_VARS = {
    "stl1": ("K", "Soil temperature level 1"),
    "swvl1": ("m**3 m**-3", "Volumetric soil water layer 1"),
    "sde": ("m", "Snow depth"),
    "tp": ("m", "Total precipitation"),
}


def write_era5_month(
    path: Path,
    lats,
    lons,
    times: np.ndarray,
    data: dict,
    history: str,
    complevel: int = 1,
    variables: dict | None = None,
):
    """One monthly ERA5-Land file; ``times`` datetime64[h]; ``data[name]`` (time, lat, lon) float.

    ``variables`` (name -> (units, long_name)) defaults to the four ERA5-Land predictors; tests
    pass other names or units to produce deliberately wrong files.
    """
    nt = len(times)
    hours = ((times.astype("datetime64[h]") - ERA5_EPOCH).astype(np.int64)).astype(np.int32)
    per_day = max(1, int(np.sum(times.astype("datetime64[D]") == times[0].astype("datetime64[D]"))))
    with atomic(path) as tmp:
        ds = _nc(tmp)
        try:
            ds.set_auto_maskandscale(False)
            ds.createDimension("longitude", len(lons))
            ds.createDimension("latitude", len(lats))
            ds.createDimension("time", None)
            v = ds.createVariable("longitude", "f4", ("longitude",))
            v.units = "degrees_east"
            v.long_name = "longitude"
            v[:] = np.asarray(lons, "f4")
            v = ds.createVariable("latitude", "f4", ("latitude",))
            v.units = "degrees_north"
            v.long_name = "latitude"
            v[:] = np.asarray(lats, "f4")
            v = ds.createVariable("time", "i4", ("time",))
            v.units = "hours since 1900-01-01 00:00:00.0"
            v.long_name = "time"
            v.calendar = "gregorian"
            v[:] = hours
            for name, (units, long_name) in (variables or ERA5_VARS).items():
                packed, scale, offset = pack_int16(data.pop(name))
                var = ds.createVariable(
                    name,
                    "i2",
                    ("time", "latitude", "longitude"),
                    fill_value=ERA5_FILL,
                    zlib=True,
                    complevel=complevel,
                    shuffle=True,
                    chunksizes=(min(per_day, nt), len(lats), len(lons)),
                )
                var.set_auto_maskandscale(False)
                var.setncattr("scale_factor", scale)
                var.setncattr("add_offset", offset)
                var.setncattr("missing_value", ERA5_FILL)
                var.units = units
                var.long_name = long_name
                var[:] = packed
            ds.setncattr("Conventions", "CF-1.6")
            ds.setncattr("history", history)
        finally:
            ds.close()


# --------------------------------------------------------------------------------------
# IMERG


def imerg_name(start: np.datetime64) -> str:
    s = start.astype("datetime64[s]")
    day = str(s.astype("datetime64[D]")).replace("-", "")
    minutes = int((s - s.astype("datetime64[D]")).astype(np.int64) // 60)
    hh, mm = divmod(minutes, 60)
    e_min = minutes + 29
    eh, em = divmod(e_min, 60)
    return f"3B-HHR.MS.MRG.3IMERG.{day}-S{hh:02d}{mm:02d}00-E{eh:02d}{em:02d}59.{minutes:04d}.V07B.HDF5"


def write_imerg_granule(path: Path, lats, lons, start: np.datetime64, precip: np.ndarray):
    """One half-hourly granule; ``precip`` is (lon, lat) mm/hr."""
    secs = int((start.astype("datetime64[s]") - IMERG_EPOCH).astype(np.int64))
    with atomic(path) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("Grid")
            t = g.create_dataset("time", data=np.array([secs], "i4"), track_times=False)
            t.attrs["units"] = "seconds since 1980-01-06 00:00:00 UTC"
            t.attrs["standard_name"] = "time"
            t.attrs["calendar"] = "julian"
            t.make_scale("time")
            lo = g.create_dataset("lon", data=np.asarray(lons, "f4"), track_times=False)
            lo.attrs["units"] = "degrees_east"
            lo.attrs["standard_name"] = "longitude"
            lo.make_scale("lon")
            la = g.create_dataset("lat", data=np.asarray(lats, "f4"), track_times=False)
            la.attrs["units"] = "degrees_north"
            la.attrs["standard_name"] = "latitude"
            la.make_scale("lat")
            p = g.create_dataset(
                "precipitation",
                data=np.asarray(precip, "f4")[None],
                fillvalue=IMERG_FILL,
                compression="gzip",
                compression_opts=2,
                shuffle=True,
                track_times=False,
            )
            p.attrs["units"] = "mm/hr"
            p.attrs.create("_FillValue", np.array([IMERG_FILL], "f4"))
            p.attrs["DimensionNames"] = "time,lon,lat"
            p.attrs["Units"] = "mm/hr"
            p.attrs["CodeMissingValue"] = "-9999.9"
            p.attrs["LongName"] = "Complete merged microwave-infrared (gauge-adjusted) precipitation estimate"
            p.dims[0].attach_scale(t)
            p.dims[1].attach_scale(lo)
            p.dims[2].attach_scale(la)


# --------------------------------------------------------------------------------------
# SMAP enhanced FT

SMAP_GROUP = "Freeze_Thaw_Retrieval_Data_Global"


def smap_name(date: np.datetime64) -> str:
    d = str(np.datetime64(date, "D")).replace("-", "")
    return f"SMAP_L3_FT_P_E_{d}_R18290_001.h5"


def _ease2_container(ds, grid):
    ds.createDimension("string1", 1)
    v = ds.createVariable("EASE2_global_projection_9km", "S1", ("string1",), fill_value=False)
    v.grid_mapping_name = "lambert_cylindrical_equal_area"
    v.standard_parallel = np.float64(30.0)
    v.longitude_of_central_meridian = np.float64(0.0)
    v.false_easting = np.float64(0.0)
    v.false_northing = np.float64(0.0)
    v.horizontal_datum_name = "WGS84"
    v.inverse_flattening = np.float64(298.257223563)
    v.semi_major_axis = np.float64(6378137.0)
    v.semi_minor_axis = np.float64(6356752.314245)
    v.master_geotransform = np.array([grid.x_min, grid.cell_size, 0.0, grid.y_max, 0.0, -grid.cell_size], "f8")


_LONG = " The AM (dimension AMPM=0) and PM (AMPM=1) observations are stored separately in the array."


#: the SPL3FTP_E brightness-temperature fields the twin writes when asked for TB (name, units, long_name)
SMAP_TB_FIELDS = (
    ("tbh_mean", "K", "Mean horizontally polarized brightness temperature of the grid cell.", "tbh"),
    ("tbv_mean", "K", "Mean vertically polarized brightness temperature of the grid cell.", "tbv"),
    (
        "normalized_polarization_ratio",
        "1",
        "Normalized polarization ratio (TBv - TBh) / (TBv + TBh) of the grid cell.",
        "npr",
    ),
    (
        "freeze_reference",
        "1",
        "Reference normalized polarization ratio value used as a basis to indicate frozen conditions.",
        "ref_f",
    ),
    (
        "thaw_reference",
        "1",
        "Reference normalized polarization ratio value used as a basis to indicate thawed conditions.",
        "ref_t",
    ),
)


def write_smap_day(
    path: Path, window: GridWindow, ft: np.ndarray, static: dict, complevel: int = 4, tb: dict | None = None
):
    """One SPL3FTP_E-like daily granule; ``ft`` (2, y, x) uint8; ``static`` 2-D (y, x) layers; ``tb``: the
    brightness-temperature fields (``tbh``, ``tbv``, ``npr``: (2, y, x) float32, NaN where not observed)."""
    ny, nx = window.shape
    with atomic(path) as tmp:
        ds = _nc(tmp)
        try:
            _ease2_container(ds, window.grid)
            g = ds.createGroup(SMAP_GROUP)
            g.createDimension("am_pm", 2)
            v = g.createVariable("am_pm", "i8", ("am_pm",), fill_value=False)
            v.long_name = "AM-PM dimension of size 2, 0 => AM, 1=> PM"
            v[:] = np.array([0, 1])
            _xy(g, window, crs_dtype="S1")  # SMAP's crs is a scalar string variable
            dims = ("am_pm", "y", "x")
            chunks = (2, ny, nx)
            v = g.createVariable(
                "freeze_thaw", "u1", dims, fill_value=np.uint8(254), zlib=True, complevel=complevel, chunksizes=chunks
            )
            v.long_name = "Freeze/thaw state of the landscape: 0 thawed, 1 frozen." + _LONG
            v.flag_values = np.array([0, 1], "u1")
            v.flag_meanings = "thawed frozen"
            v.grid_mapping = "crs"
            v[:] = ft
            layers = (
                ("latitude", "degrees_north", "Latitude of the center of the Earth based grid cell."),
                ("longitude", "degrees_east", "Longitude of the center of the Earth based grid cell."),
                ("open_water_body_fraction", "1", "Fraction of the grid cell covered by open water."),
                ("terrain_complexity_index", "m", "Standard deviation of the elevation within the grid cell."),
                ("altitude_dem", "meters", "The Earth surface elevation within the grid cell."),
            )

            def layer(name, units, long_name, values):  # float32 (am_pm, y, x), fill -9999 as the real granule
                v = g.createVariable(
                    name,
                    "f4",
                    dims,
                    fill_value=np.float32(-9999.0),
                    zlib=True,
                    complevel=complevel,
                    shuffle=True,
                    chunksizes=chunks,
                )
                v.long_name = long_name + _LONG
                v.units = units
                v.grid_mapping = "crs"
                v[:] = values

            for name, units, long_name in layers:
                layer(name, units, long_name, np.broadcast_to(np.asarray(static[name], "f4"), (2, ny, nx)))
            for name, units, long_name, key in SMAP_TB_FIELDS if tb is not None else ():
                layer(name, units, long_name, np.where(np.isfinite(tb[key]), tb[key], np.float32(-9999.0)).astype("f4"))
        finally:
            ds.close()


# --------------------------------------------------------------------------------------
# EASE2 grids shared by ESDR / truth / auxiliary


def _xy(ds, window: GridWindow, latlon: bool = False, crs_dtype: str = "i4"):
    ny, nx = window.shape
    ds.createDimension("y", ny)
    ds.createDimension("x", nx)
    v = ds.createVariable("y", "f8", ("y",), fill_value=False)
    v.standard_name = "projection_y_coordinate"
    v.long_name = "y coordinate of projection"
    v.units = "m"
    v.axis = "Y"
    v[:] = window.y
    v = ds.createVariable("x", "f8", ("x",), fill_value=False)
    v.standard_name = "projection_x_coordinate"
    v.long_name = "x coordinate of projection"
    v.units = "m"
    v.axis = "X"
    v[:] = window.x
    crs = ds.createVariable("crs", crs_dtype, (), fill_value=False)
    for k, val in grid_mapping_attrs().items():
        crs.setncattr(k, val)
    if crs_dtype == "i4":
        crs[...] = 0
    if latlon:
        lon, lat = window.lonlat
        for name, arr, units, sn in (
            ("lat", lat, "degrees_north", "latitude"),
            ("lon", lon, "degrees_east", "longitude"),
        ):
            v = ds.createVariable(name, "f8", ("y", "x"), fill_value=False, zlib=True, complevel=4)
            v.standard_name = sn
            v.units = units
            v[:] = arr


def _window_attrs(ds, window: GridWindow):
    for k, v in window.to_attrs().items():
        ds.setncattr(k, str(v))


class YearFile:
    """A NetCDF file with a fixed time axis filled slice by slice; renamed into place on close."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_name(self.path)
        if self.tmp.exists():
            self.tmp.unlink()
        self.ds = _nc(self.tmp)

    def commit(self):
        self.ds.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        with contextlib.suppress(Exception):
            self.ds.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class EsdrYear(YearFile):
    def __init__(self, path: Path, window25: GridWindow, dates: np.ndarray, history: str):
        super().__init__(path)
        ds = self.ds
        self.first = dates[0]
        ny, nx = window25.shape
        ds.createDimension("time", len(dates))
        v = ds.createVariable("time", "i4", ("time",), fill_value=False)
        v.units = "days since 1979-01-01"
        v.calendar = "standard"
        v.long_name = "time"
        v.standard_name = "time"
        v[:] = (dates - ESDR_EPOCH).astype(np.int64).astype(np.int32)
        _xy(ds, window25)
        v = ds.createVariable(
            "ft_status",
            "u1",
            ("time", "y", "x"),
            fill_value=np.uint8(254),
            zlib=True,
            complevel=4,
            chunksizes=(min(len(dates), 32), ny, nx),
        )
        v.long_name = "combined daily freeze/thaw status (AM 06:20 and PM 18:33 overpasses)"
        v.flag_values = np.array([0, 1, 2, 3], "u1")
        v.flag_meanings = "frozen thawed transitional inverse_transitional"
        v.comment = "0 frozen AM and PM; 1 thawed AM and PM; 2 AM frozen PM thawed; 3 AM thawed PM frozen; 254 no data"
        v.grid_mapping = "crs"
        ds.setncattr("Conventions", "CF-1.6")
        ds.setncattr("title", "ESDR freeze/thaw (NSIDC-0477-like), EASE-Grid 2.0 25 km subset")
        ds.setncattr("history", history)
        _window_attrs(ds, window25)

    def write(self, dates: np.ndarray, codes: np.ndarray):
        i0 = int((dates[0] - self.first).astype(int))
        self.ds["ft_status"][i0 : i0 + len(dates)] = codes


def cetb_name(year: int, channel: str, pass_: str) -> str:
    """File name of one year of one channel and pass of the twin's multi-frequency TB record, after NSIDC-0630
    (CETB): ``NSIDC0630-EASE2_T25km-TWIN_AMSR-<year>-<channel>-<M|E>-GRD-v1.5.nc`` (CETB's files hold one day;
    the twin's hold a year, see docs/source-formats.md)."""
    return f"NSIDC0630-EASE2_T25km-TWIN_AMSR-{int(year)}-{channel}-{'M' if pass_ == 'AM' else 'E'}-GRD-v1.5.nc"


#: CETB's packing of TB: uint16 hundredths of a kelvin, 0 = no data
CETB_SCALE, CETB_FILL = 0.01, 0


class CetbYear(YearFile):
    """One year of one channel and pass on the 25 km EASE-Grid 2.0 (T) grid, in CETB's variables: ``TB``
    (time, y, x) uint16 x 0.01 K, ``TB_time``-free (the overpass is the pass), ``crs``, ``x``/``y`` in metres."""

    def __init__(self, path: Path, window25: GridWindow, dates: np.ndarray, channel: str, pass_: str, history: str):
        super().__init__(path)
        ds = self.ds
        self.first = dates[0]
        ny, nx = window25.shape
        ds.createDimension("time", len(dates))
        v = ds.createVariable("time", "f8", ("time",), fill_value=False)
        v.units = "days since 1972-01-01 00:00:00"
        v.calendar = "gregorian"
        v.standard_name = "time"
        v.long_name = "ease grid time"
        v[:] = (dates - np.datetime64("1972-01-01", "D")).astype(np.int64).astype("f8")
        _xy(ds, window25)
        v = ds.createVariable(
            "TB",
            "u2",
            ("time", "y", "x"),
            fill_value=np.uint16(CETB_FILL),
            zlib=True,
            complevel=4,
            chunksizes=(min(len(dates), 32), ny, nx),
        )
        v.standard_name = "brightness_temperature"
        v.long_name = "GRD TB"
        v.units = "K"
        v.scale_factor = np.float32(CETB_SCALE)
        v.add_offset = np.float32(0.0)
        v.valid_range = np.array([5000, 35000], "u2")
        v.grid_mapping = "crs"
        ds.setncattr("Conventions", "CF-1.6, ACDD-1.3")
        ds.setncattr("title", f"twin AMSR-like TB {channel} {'morning' if pass_ == 'AM' else 'evening'} pass, GRD")
        ds.setncattr("platform", "TWIN (AMSR-like conical scanner, 55 deg incidence)")
        ds.setncattr("frequency_and_polarization", channel)
        ds.setncattr("pass", pass_)
        ds.setncattr("history", history)
        _window_attrs(ds, window25)

    def write(self, dates: np.ndarray, tb: np.ndarray):
        """TB in K (ndays, y, x); NaN -> no data."""
        i0 = int((dates[0] - self.first).astype(int))
        raw = np.round(tb / CETB_SCALE)
        outside = np.isfinite(tb) & ((raw < 5000) | (raw > 35000))
        if outside.any():  # a TB CETB's valid_range cannot hold is a twin bug, not data: say so
            import warnings

            warnings.warn(
                f"{self.path}: {int(outside.sum())} TB outside 50-350 K clipped", RuntimeWarning, stacklevel=2
            )
        packed = np.where(np.isfinite(tb), np.clip(raw, 5000, 35000), CETB_FILL)
        self.ds["TB"].set_auto_scale(False)
        self.ds["TB"][i0 : i0 + len(dates)] = packed.astype("u2")


class TruthFile(YearFile):
    def __init__(self, path: Path, window: GridWindow, dates: np.ndarray, history: str):
        super().__init__(path)
        ds = self.ds
        self.first = dates[0]
        ny, nx = window.shape
        ds.createDimension("pass", 2)
        ds.createDimension("time", len(dates))
        v = ds.createVariable("pass", str, ("pass",))
        v.long_name = "overpass (local solar time 06:00 / 18:00)"
        v[0] = "AM"
        v[1] = "PM"
        v = ds.createVariable("time", "i4", ("time",), fill_value=False)
        v.units = "days since 1970-01-01"
        v.calendar = "standard"
        v.long_name = "local date"
        v.standard_name = "time"
        v[:] = (dates - TRUTH_EPOCH).astype(np.int64).astype(np.int32)
        _xy(ds, window, latlon=True)
        v = ds.createVariable(
            "ft",
            "u1",
            ("pass", "time", "y", "x"),
            fill_value=np.uint8(254),
            zlib=True,
            complevel=4,
            chunksizes=(1, min(len(dates), 32), ny, nx),
        )
        v.long_name = "true freeze/thaw state of the hidden soil at the overpass"
        v.flag_values = np.array([0, 1], "u1")
        v.flag_meanings = "thawed frozen"
        v.grid_mapping = "crs"
        v.coordinates = "lat lon"
        ds.setncattr("Conventions", "CF-1.8")
        ds.setncattr("title", "ftcloud digital twin: hidden truth")
        ds.setncattr("history", history)
        _window_attrs(ds, window)

    def write(self, dates: np.ndarray, ft: np.ndarray):
        """``ft`` (2, time, y, x)."""
        i0 = int((dates[0] - self.first).astype(int))
        self.ds["ft"][:, i0 : i0 + len(dates)] = ft


def write_grid_file(
    path: Path,
    window: GridWindow,
    variables: dict,
    attrs: dict,
    extra_dims: dict | None = None,
    extra_vars: dict | None = None,
):
    """A NetCDF file of 2-D (y, x) [or (dim, ..., y, x)] variables on an EASE2 window.

    ``variables[name] = (dims, array, var_attrs)`` with dims omitting y/x;
    ``extra_dims[name] = coordinate values``; ``extra_vars`` as variables but without y/x.
    """
    with atomic(path) as tmp:
        ds = _nc(tmp)
        try:
            _xy(ds, window, latlon=True)
            for dname, coord in (extra_dims or {}).items():
                coord = np.asarray(coord)
                ds.createDimension(dname, len(coord))
                if coord.dtype.kind == "U":
                    v = ds.createVariable(dname, str, (dname,))
                    for i, c in enumerate(coord):
                        v[i] = str(c)
                else:
                    v = ds.createVariable(dname, coord.dtype, (dname,), fill_value=False)
                    v[:] = coord
            for spatial, group in ((True, variables), (False, extra_vars or {})):
                for name, (dims, arr, vattrs) in group.items():
                    arr = np.asarray(arr)
                    vattrs = dict(vattrs)
                    fill = vattrs.pop("_FillValue", False)
                    vdims = tuple(dims) + (("y", "x") if spatial else ())
                    v = ds.createVariable(name, arr.dtype, vdims, fill_value=fill, zlib=True, complevel=4)
                    for k, val in vattrs.items():
                        v.setncattr(k, val)
                    if spatial:
                        v.grid_mapping = "crs"
                    v[:] = arr
            for k, val in attrs.items():
                ds.setncattr(k, val)
            _window_attrs(ds, window)
        finally:
            ds.close()


def write_text(path: Path, text: str):
    with atomic(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


def flag_attrs(classes: dict, long_name: str) -> dict:
    keys = sorted(classes)
    return {
        "long_name": long_name,
        "flag_values": np.array(keys, "u1"),
        "flag_meanings": " ".join(classes[k] for k in keys),
    }


__all__ = [
    "atomic",
    "pack_int16",
    "write_era5_month",
    "write_imerg_granule",
    "write_smap_day",
    "EsdrYear",
    "TruthFile",
    "write_grid_file",
    "write_text",
]


def write_insitu(base: Path, stations, elevation: np.ndarray, records, cma_cols, cma_min, cma_max, dates) -> list[Path]:
    """The in-situ CSVs under ``base`` (docs/source-formats.md, "In situ"); returns the paths written.

    ``records`` yields (network, station column, UTC half-hour times, values) per probe; CMA
    daily min/max are (nday, nstation) on ``dates``; ``elevation`` is per station column.
    """
    st = stations
    paths = []
    rows = ["network,station,lat,lon,elevation_m,depth_cm"]
    for name, col, ts, v in records:
        tstr = np.datetime_as_string(ts, unit="m")
        vs = np.char.mod("%.2f", np.where(np.isnan(v), 0, v))
        vs = np.where(np.isnan(v), "", vs)
        body = np.char.add(np.char.add(tstr, ","), vs)
        text = "timestamp_utc,tsoil_degC\n" + "\n".join(body.tolist()) + "\n"
        path = base / "networks" / name / f"{st.name[col]}.csv"
        write_text(path, text)
        paths.append(path)
        rows.append(f"{name},{st.name[col]},{st.lat[col]:.5f},{st.lon[col]:.5f},{elevation[col]:.1f},{st.depth[col]}")
    path = base / "networks" / "stations.csv"
    write_text(path, "\n".join(rows) + "\n")
    paths.append(path)
    rows = ["station,lat,lon,elevation_m"]
    for col in cma_cols:
        rows.append(f"{st.name[col]},{st.lat[col]:.5f},{st.lon[col]:.5f},{elevation[col]:.1f}")
    path = base / "cma" / "stations.csv"
    write_text(path, "\n".join(rows) + "\n")
    paths.append(path)
    dstr = np.datetime_as_string(dates, unit="D")
    lines = ["station,date,t0_min_degC,t0_max_degC"]
    for j, col in enumerate(cma_cols):
        mn, mx = cma_min[:, j], cma_max[:, j]
        smn = np.where(np.isnan(mn), "", np.char.mod("%.1f", np.where(np.isnan(mn), 0, mn)))
        smx = np.where(np.isnan(mx), "", np.char.mod("%.1f", np.where(np.isnan(mx), 0, mx)))
        pre = st.name[col] + ","
        body = np.char.add(np.char.add(np.char.add(np.char.add(pre, dstr), ","), smn), np.char.add(",", smx))
        lines.extend(body.tolist())
    path = base / "cma" / "t0cm_daily.csv"
    write_text(path, "\n".join(lines) + "\n")
    paths.append(path)
    return paths
