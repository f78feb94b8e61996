"""EASE-Grid 2.0 target grids, named regions and regridding onto them.

ftcloud works on the global EASE-Grid 2.0 (EPSG:6933, cylindrical equal area, standard
parallel 30 degrees, WGS84). Two resolutions matter:

* 9 km (3856 x 1624 cells of 9008.055210146 m): the SMAP enhanced FT grid, ftcloud's target.
* 25 km (1388 x 584 cells of 25025.26 m): the grid the ESDR FT record is delivered on.

Both grids share the same extent, so a cell (row, col) has its centre at
``x = x_min + (col + 0.5) * cell`` and ``y = y_max - (row + 0.5) * cell``.

Regridding uses pyproj only for the projection (target cell centres -> lon/lat); the
source grids are regular in their own coordinates (0.1 degree lat/lon, or the 25 km EASE2
grid), so the fractional source index of every target cell is plain arithmetic and the
bilinear / nearest weights are computed once per (source grid, target window) pair and
reused for every time step. That keeps the regridder a small picklable object that Beam
and dask workers can carry, and makes its behaviour easy to check by hand (see
``tests/unit/test_grid.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ftcloud.errors import GridMismatchError, ValidationError

EPSG = 6933
_A = 6378137.0
_INV_F = 298.257223563

__all__ = [
    "EASE2Grid",
    "EASE2_9KM",
    "EASE2_25KM",
    "Region",
    "REGIONS",
    "get_region",
    "parse_bbox",
    "GridWindow",
    "region_window",
    "grid_mapping_attrs",
    "LatLonRegridder",
    "EASE2Regridder",
]


@dataclass(frozen=True)
class EASE2Grid:
    """One global EASE-Grid 2.0 (EPSG:6933) at a given cell size."""

    name: str
    cell_size: float  # metres
    ncols: int
    nrows: int

    @property
    def x_min(self) -> float:
        return -self.ncols * self.cell_size / 2.0

    @property
    def y_max(self) -> float:
        return self.nrows * self.cell_size / 2.0

    def x(self, cols) -> np.ndarray:
        """Cell-centre x (m) of the given column indices."""
        return self.x_min + (np.asarray(cols, dtype="f8") + 0.5) * self.cell_size

    def y(self, rows) -> np.ndarray:
        """Cell-centre y (m) of the given row indices."""
        return self.y_max - (np.asarray(rows, dtype="f8") + 0.5) * self.cell_size

    def col_of(self, x) -> np.ndarray:
        """Fractional column index of projected x (cell centres are integers)."""
        return (np.asarray(x, dtype="f8") - self.x_min) / self.cell_size - 0.5

    def row_of(self, y) -> np.ndarray:
        """Fractional row index of projected y (cell centres are integers)."""
        return (self.y_max - np.asarray(y, dtype="f8")) / self.cell_size - 0.5


EASE2_9KM = EASE2Grid("EASE2_G9km", 9008.055210146, 3856, 1624)
EASE2_25KM = EASE2Grid("EASE2_G25km", 25025.26, 1388, 584)


@dataclass(frozen=True)
class Region:
    """A named lon/lat box; its grid window is the set of cells whose centres fall inside."""

    name: str
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    description: str = ""


REGIONS: dict[str, Region] = {
    r.name: r
    for r in (
        Region("china", 73.6, 134.95, 18.0, 53.6, "mainland China bounding box (~657 x 404 cells at 9 km)"),
        Region("qtp", 73.0, 105.0, 26.0, 40.0, "Qinghai-Tibet Plateau bounding box"),
        Region(
            "demo",
            99.0,
            103.5,
            33.0,
            36.0,
            "NE Qinghai-Tibet Plateau around the Maqu network: permafrost on the high massifs, "
            "seasonally frozen ground in the valleys (49 x 35 cells)",
        ),
        Region("tiny", 101.0, 102.2, 33.5, 34.3, "a 13 x 10-cell window around Maqu for tests"),
    )
}


def _transformer(inverse: bool):
    from pyproj import Transformer

    if inverse:
        return Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    return Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True)


def lonlat_to_xy(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Project lon/lat (degrees) to EASE2 x/y (m)."""
    x, y = _transformer(False).transform(np.asarray(lon, "f8"), np.asarray(lat, "f8"))
    return np.asarray(x), np.asarray(y)


def xy_to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Unproject EASE2 x/y (m) to lon/lat (degrees)."""
    lon, lat = _transformer(True).transform(np.asarray(x, "f8"), np.asarray(y, "f8"))
    return np.asarray(lon), np.asarray(lat)


@dataclass(frozen=True)
class GridWindow:
    """A rectangular block of rows/cols of an EASE2 grid (half-open ranges)."""

    grid: EASE2Grid
    row0: int
    row1: int
    col0: int
    col1: int
    name: str = ""

    def __post_init__(self):
        if not (0 <= self.row0 < self.row1 <= self.grid.nrows and 0 <= self.col0 < self.col1 <= self.grid.ncols):
            raise GridMismatchError(
                f"window rows [{self.row0}, {self.row1}) cols [{self.col0}, {self.col1}) is outside "
                f"{self.grid.name} ({self.grid.nrows} rows x {self.grid.ncols} cols)"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def x(self) -> np.ndarray:
        return self.grid.x(np.arange(self.col0, self.col1))

    @property
    def y(self) -> np.ndarray:
        return self.grid.y(np.arange(self.row0, self.row1))

    @functools.cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D (y, x) longitude and latitude of cell centres, degrees."""
        xx, yy = np.meshgrid(self.x, self.y)
        return xy_to_lonlat(xx, yy)

    def sub(self, rows: slice, cols: slice) -> "GridWindow":
        """A sub-window, with rows/cols relative to this window."""
        r = range(self.row0, self.row1)[rows]
        c = range(self.col0, self.col1)[cols]
        return GridWindow(self.grid, r.start, r.stop, c.start, c.stop, self.name)

    def coords(self) -> dict:
        """xarray coordinates: 1-D x/y (m) and 2-D lat/lon, with CF attributes."""
        lon, lat = self.lonlat
        return {
            "y": (
                "y",
                self.y,
                {
                    "standard_name": "projection_y_coordinate",
                    "long_name": "y coordinate of projection",
                    "units": "m",
                    "axis": "Y",
                },
            ),
            "x": (
                "x",
                self.x,
                {
                    "standard_name": "projection_x_coordinate",
                    "long_name": "x coordinate of projection",
                    "units": "m",
                    "axis": "X",
                },
            ),
            "lat": (
                ("y", "x"),
                lat.astype("f8"),
                {"standard_name": "latitude", "long_name": "latitude of cell centre", "units": "degrees_north"},
            ),
            "lon": (
                ("y", "x"),
                lon.astype("f8"),
                {"standard_name": "longitude", "long_name": "longitude of cell centre", "units": "degrees_east"},
            ),
        }

    def template(self) -> xr.Dataset:
        """An empty dataset holding this window's coordinates and grid mapping variable."""
        ds = xr.Dataset(coords=self.coords())
        ds["crs"] = xr.DataArray(np.int32(0), attrs=grid_mapping_attrs())
        return ds.set_coords("crs")

    def to_attrs(self) -> dict:
        return {
            "ease2_grid": self.grid.name,
            "ease2_window_rows": f"{self.row0}:{self.row1}",
            "ease2_window_cols": f"{self.col0}:{self.col1}",
            "region": self.name,
        }

    def check_coords(self, x, y, what: str) -> None:
        """Raise GridMismatchError unless ``x``/``y`` are exactly this window's cell centres."""
        x = np.asarray(x, "f8")
        y = np.asarray(y, "f8")
        tol = self.grid.cell_size * 1e-3
        if x.shape != self.x.shape or y.shape != self.y.shape:
            raise GridMismatchError(
                f"{what}: grid is {y.size} rows x {x.size} cols, expected {self.shape[0]} x {self.shape[1]} "
                f"({self.grid.name} window {self.name!r} rows {self.row0}:{self.row1}, cols {self.col0}:{self.col1})"
            )
        if np.abs(x - self.x).max() > tol or np.abs(y - self.y).max() > tol:
            raise GridMismatchError(
                f"{what}: x/y coordinates do not match the {self.grid.name} window {self.name!r} "
                f"(x starts {x[0]:.1f} m, expected {self.x[0]:.1f} m; y starts {y[0]:.1f} m, expected {self.y[0]:.1f} "
                "m)"
            )


#: the smallest window a run can use (the ConvLSTM's 3 x 3 kernels need neighbours on both sides)
MIN_WINDOW_CELLS = 3
#: EASE-Grid 2.0 global covers about 86.7 S to 86.7 N
_EASE2_MAX_LAT = 86.0


def parse_bbox(text: str) -> Region:
    """A lon/lat box ``LON0,LON1,LAT0,LAT1`` (degrees east/north) as a :class:`Region` whose name is the box
    itself, so a twin, a store and a run config record it and read it back.

    >>> parse_bbox("101,102.2,33.5,34.3")
    Region(name='101,102.2,33.5,34.3', lon_min=101.0, lon_max=102.2, lat_min=33.5, lat_max=34.3, description='...')
    """
    expect = "expected LON0,LON1,LAT0,LAT1 in degrees, such as 101.0,102.2,33.5,34.3"
    parts = str(text).split(",")
    try:
        lon0, lon1, lat0, lat1 = (float(p) for p in parts)
    except ValueError:
        raise ValidationError(f"bbox {text!r}: {expect}") from None
    if not all(np.isfinite([lon0, lon1, lat0, lat1])):
        raise ValidationError(f"bbox {text!r}: {expect}")
    if not -180 <= lon0 < lon1 <= 180:
        raise ValidationError(f"bbox {text!r}: longitudes {lon0:g}, {lon1:g} must satisfy -180 <= LON0 < LON1 <= 180")
    if not -_EASE2_MAX_LAT <= lat0 < lat1 <= _EASE2_MAX_LAT:
        raise ValidationError(
            f"bbox {text!r}: latitudes {lat0:g}, {lat1:g} must satisfy -{_EASE2_MAX_LAT:g} <= LAT0 < LAT1 <= "
            f"{_EASE2_MAX_LAT:g} (EASE-Grid 2.0 global)"
        )
    name = ",".join(format(v, ".10g") for v in (lon0, lon1, lat0, lat1))  # exact enough to give the same window
    return Region(name, lon0, lon1, lat0, lat1, "a lon/lat box given as --bbox")


def get_region(name: str) -> Region:
    """A known region by name (:data:`REGIONS`), or a box ``LON0,LON1,LAT0,LAT1`` (:func:`parse_bbox`)."""
    if name in REGIONS:
        return REGIONS[name]
    if "," in str(name):
        return parse_bbox(name)
    raise ValidationError(
        f"unknown region {name!r}; known regions: {', '.join(sorted(REGIONS))}, or a box LON0,LON1,LAT0,LAT1"
    )


def region_window(region: str | Region | GridWindow, grid: EASE2Grid = EASE2_9KM) -> GridWindow:
    """The window of ``grid`` holding every cell whose centre lies in the region's box."""
    if isinstance(region, GridWindow):
        return region
    if isinstance(region, str):
        region = get_region(region)
    # In EPSG:6933 x depends on lon only and y on lat only, so the box maps to a box.
    (x0, x1), (y0, y1) = lonlat_to_xy([region.lon_min, region.lon_max], [region.lat_min, region.lat_max])
    col0 = int(np.ceil(grid.col_of(x0)))
    col1 = int(np.floor(grid.col_of(x1))) + 1
    row0 = int(np.ceil(grid.row_of(y1)))
    row1 = int(np.floor(grid.row_of(y0))) + 1
    if min(row1 - row0, col1 - col0) < MIN_WINDOW_CELLS:
        raise ValidationError(
            f"region {region.name!r} holds {max(row1 - row0, 0)} x {max(col1 - col0, 0)} cell centres of the "
            f"{grid.name} grid; at least {MIN_WINDOW_CELLS} x {MIN_WINDOW_CELLS} are needed (widen the box)"
        )
    return GridWindow(grid, row0, row1, col0, col1, region.name)


def covering_window(window: GridWindow, grid: EASE2Grid, margin: int = 1) -> GridWindow:
    """The window of another EASE2 ``grid`` that covers ``window`` plus ``margin`` cells."""
    r = grid.row_of(window.y)
    c = grid.col_of(window.x)
    return GridWindow(
        grid,
        max(int(np.floor(r.min())) - margin, 0),
        min(int(np.ceil(r.max())) + margin + 1, grid.nrows),
        max(int(np.floor(c.min())) - margin, 0),
        min(int(np.ceil(c.max())) + margin + 1, grid.ncols),
        window.name,
    )


def latlon_source_box(window: GridWindow, res: float = 0.1, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A regular lat/lon grid (latitude descending, as the CDS delivers it) covering ``window``.

    Points lie on multiples of ``res`` and the box extends ``margin`` points beyond the
    window's cell centres so that bilinear interpolation never reaches outside it.
    """
    lon, lat = window.lonlat
    n = int(round(1 / res))
    lo = np.floor(lon.min() / res) - margin
    hi = np.ceil(lon.max() / res) + margin
    la = np.floor(lat.min() / res) - margin
    ha = np.ceil(lat.max() / res) + margin
    lons = np.round(np.arange(lo, hi + 1) / n, 6)
    lats = np.round(np.arange(ha, la - 1, -1) / n, 6)
    return lats, lons


def grid_mapping_attrs() -> dict:
    """CF grid-mapping attributes for EASE-Grid 2.0 global (EPSG:6933) (a fresh dict each call)."""
    return dict(_grid_mapping_attrs())


@functools.lru_cache(maxsize=1)
def _grid_mapping_attrs() -> dict:
    from pyproj import CRS

    wkt = CRS.from_epsg(EPSG).to_wkt()
    return {
        "grid_mapping_name": "lambert_cylindrical_equal_area",
        "standard_parallel": 30.0,
        "longitude_of_central_meridian": 0.0,
        "false_easting": 0.0,
        "false_northing": 0.0,
        "semi_major_axis": _A,
        "inverse_flattening": _INV_F,
        "epsg_code": f"EPSG:{EPSG}",
        "crs_wkt": wkt,
        "spatial_ref": wkt,
        "long_name": "EASE-Grid 2.0 global",
    }


# --------------------------------------------------------------------------------------
# Regridding


def _bilinear_indices(fi: np.ndarray, n: int, what: str):
    """Floor index and weight along one axis; raise if a target falls outside the source."""
    if np.any(fi < -1e-9) or np.any(fi > n - 1 + 1e-9):
        raise GridMismatchError(
            f"{what}: the source grid does not cover the target window "
            f"(fractional index range {fi.min():.2f}..{fi.max():.2f}, source has {n} points)"
        )
    fi = np.clip(fi, 0, n - 1)
    i0 = np.minimum(np.floor(fi).astype("i8"), max(n - 2, 0))
    w = fi - i0
    return i0, w


@dataclass(frozen=True, eq=False)
class _Weights:
    """Source flat indices (k, ny, nx) and weights (k, ny, nx) for k neighbours."""

    index: np.ndarray
    weight: np.ndarray
    src_shape: tuple[int, int]
    method: str

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Regrid the last two axes of ``values`` (a numpy array; NaN = missing)."""
        values = np.asarray(values)
        if values.shape[-2:] != self.src_shape:
            raise GridMismatchError(
                f"source array has spatial shape {values.shape[-2:]}, regridder expects {self.src_shape}"
            )
        lead = values.shape[:-2]
        flat = values.reshape(lead + (-1,))
        if self.method == "nearest":
            return np.take(flat, self.index[0], axis=-1)
        vals = np.take(flat, self.index, axis=-1).astype("f8")  # lead + (k, ny, nx)
        w = np.broadcast_to(self.weight, vals.shape)
        ok = np.isfinite(vals)
        wsum = np.where(ok, w, 0.0).sum(axis=-3)
        num = np.where(ok, vals * w, 0.0).sum(axis=-3)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(wsum > 1e-12, num / np.where(wsum > 1e-12, wsum, 1.0), np.nan)
        return out.astype(np.result_type(values.dtype, np.float32)) if values.dtype.kind == "f" else out


def crop_weights(w: "_Weights") -> tuple[slice, slice, "_Weights"]:
    """The source rows/cols that ``w`` reads (their bounding box) and the same weights indexed
    into that box: regridding ``values[..., rows, cols]`` with them gives bit-identical results
    while reading only the box (a tile of a large region needs only its own neighbourhood)."""
    ny, nx = w.src_shape
    r, c = np.divmod(w.index, nx)
    r0, r1, c0, c1 = int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1
    index = (r - r0) * (c1 - c0) + (c - c0)
    return slice(r0, r1), slice(c0, c1), _Weights(index, w.weight, (r1 - r0, c1 - c0), w.method)


def _make_weights(fr: np.ndarray, fc: np.ndarray, src_shape: tuple[int, int], method: str, what: str) -> _Weights:
    ny, nx = src_shape
    if method == "nearest":
        if np.any(fr < -0.5) or np.any(fr > ny - 0.5) or np.any(fc < -0.5) or np.any(fc > nx - 0.5):
            raise GridMismatchError(f"{what}: the source grid does not cover the target window")
        # round half away from the origin consistently: floor(f + 0.5)
        r = np.clip(np.floor(fr + 0.5).astype("i8"), 0, ny - 1)
        c = np.clip(np.floor(fc + 0.5).astype("i8"), 0, nx - 1)
        return _Weights((r * nx + c)[None], np.ones((1,) + r.shape), src_shape, method)
    if method != "bilinear":
        raise ValidationError(f"unknown regridding method {method!r}; use 'bilinear' or 'nearest'")
    r0, wr = _bilinear_indices(fr, ny, what)
    c0, wc = _bilinear_indices(fc, nx, what)
    r1 = np.minimum(r0 + 1, ny - 1)
    c1 = np.minimum(c0 + 1, nx - 1)
    index = np.stack([r0 * nx + c0, r0 * nx + c1, r1 * nx + c0, r1 * nx + c1])
    weight = np.stack([(1 - wr) * (1 - wc), (1 - wr) * wc, wr * (1 - wc), wr * wc])
    return _Weights(index, weight, src_shape, method)


@dataclass(frozen=True, eq=False)
class LatLonRegridder:
    """Regular lat/lon (e.g. ERA5-Land or IMERG 0.1 degree) -> EASE2 window.

    ``lat`` and ``lon`` are the 1-D source coordinates; latitude may be ascending or
    descending, spacing must be uniform. Bilinear weights are renormalised over the valid
    (finite) neighbours so that a coastline does not turn into NaN one cell early.
    """

    lat: np.ndarray
    lon: np.ndarray
    window: GridWindow
    method: str = "bilinear"
    weights: _Weights = field(init=False, repr=False)

    def __post_init__(self):
        lat = np.asarray(self.lat, "f8")
        lon = np.asarray(self.lon, "f8")
        for name, v in (("latitude", lat), ("longitude", lon)):
            d = np.diff(v)
            if v.size < 2 or not np.allclose(d, d[0], rtol=1e-4, atol=1e-6) or d[0] == 0:
                raise GridMismatchError(f"source {name} is not a uniformly spaced 1-D axis")
        tlon, tlat = self.window.lonlat
        fr = (tlat - lat[0]) / (lat[1] - lat[0])
        fc = (tlon - lon[0]) / (lon[1] - lon[0])
        object.__setattr__(self, "weights", _make_weights(fr, fc, (lat.size, lon.size), self.method, "lat/lon source"))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.weights.apply(values)


@dataclass(frozen=True, eq=False)
class EASE2Regridder:
    """EASE2 window at one resolution (e.g. 25 km) -> EASE2 window at another (9 km)."""

    source: GridWindow
    window: GridWindow
    method: str = "nearest"
    weights: _Weights = field(init=False, repr=False)

    def __post_init__(self):
        fr = self.source.grid.row_of(self.window.y) - self.source.row0
        fc = self.source.grid.col_of(self.window.x) - self.source.col0
        fr2, fc2 = np.meshgrid(fr, fc, indexing="ij")
        object.__setattr__(
            self, "weights", _make_weights(fr2, fc2, self.source.shape, self.method, f"{self.source.grid.name} source")
        )

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.weights.apply(values)
