"""The twin's domain: where things are, with no time in it.

:class:`Domain` holds the region's windows (9 km region and work windows, the covering
25 km window, the ERA5-Land and IMERG source boxes), the point sets the physics is
evaluated at (9 km cells, ERA5-Land grid points, IMERG cells, stations), the map from
9 km cells to 25 km cells with the site terms ESDR sees, and the daily state buffers of
the hidden soil. It is built once per run; the truth and every observer read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftcloud.core.grid import (
    EASE2_9KM,
    EASE2_25KM,
    GridWindow,
    covering_window,
    latlon_source_box,
    lonlat_to_xy,
    region_window,
    xy_to_lonlat,
)
from ftcloud.core.timeutil import PASSES, request_hours, step_offsets
from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.params import NETWORKS, TwinParameters

__all__ = ["Domain", "Stations", "place_stations", "work_window"]


def work_window(w25: GridWindow) -> GridWindow:
    """The 9 km cells whose centres lie inside the 25 km window."""
    g25, g9 = EASE2_25KM, EASE2_9KM
    y_top = g25.y_max - w25.row0 * g25.cell_size
    y_bot = g25.y_max - w25.row1 * g25.cell_size
    x_l = g25.x_min + w25.col0 * g25.cell_size
    x_r = g25.x_min + w25.col1 * g25.cell_size
    r0 = int(np.ceil(g9.row_of(y_top) + 1e-9))
    r1 = int(np.floor(g9.row_of(y_bot) - 1e-9)) + 1
    c0 = int(np.ceil(g9.col_of(x_l) + 1e-9))
    c1 = int(np.floor(g9.col_of(x_r) - 1e-9)) + 1
    return GridWindow(g9, max(r0, 0), min(r1, g9.nrows), max(c0, 0), min(c1, g9.ncols), w25.name)


@dataclass
class Stations:
    """In-situ stations inside the region window (networks of :data:`NETWORKS`, then CMA)."""

    lon: np.ndarray
    lat: np.ndarray
    network: list  # per station: network name or "CMA"
    name: list
    net_index: np.ndarray  # index into NETWORKS or -1
    depth: np.ndarray
    number: np.ndarray  # station number inside its network (CMA: running index)


def place_stations(win: GridWindow, params: TwinParameters, seed: int) -> Stations:
    """The stations of every network whose centre lies in ``win``, scattered within its radius,
    and CMA stations stratified over the window at ``params.stations.cma_density_km2``."""
    p = params
    lons, lats, nets, names, idx, depth, num = [], [], [], [], [], [], []

    def inside(lon, lat):
        x, y = lonlat_to_xy(lon, lat)
        r = EASE2_9KM.row_of(y)
        c = EASE2_9KM.col_of(x)
        return (r >= win.row0 - 0.5) & (r < win.row1 - 0.5) & (c >= win.col0 - 0.5) & (c < win.col1 - 0.5)

    for k, (name, lon0, lat0, n, dep, radius, _a, _b) in enumerate(NETWORKS):
        if not inside(np.array([lon0]), np.array([lat0]))[0]:
            continue
        i = np.arange(n)
        u1 = F.hash_uniform(seed, F.S_STATIONS, k, i, 0)
        u2 = F.hash_uniform(seed, F.S_STATIONS, k, i, 1)
        r = radius * np.sqrt(0.05 + 0.95 * u1)
        th = 2 * np.pi * u2
        lat = lat0 + r * np.sin(th) / 110.57
        lon = lon0 + r * np.cos(th) / (111.32 * np.cos(np.deg2rad(lat0)))
        ok = inside(lon, lat)
        for j in np.nonzero(ok)[0]:
            lons.append(lon[j])
            lats.append(lat[j])
            nets.append(name)
            names.append(f"{name}_{j + 1:02d}")
            idx.append(k)
            depth.append(dep)
            num.append(j)
    # CMA stations: stratified random over the window
    area = win.shape[0] * win.shape[1] * (EASE2_9KM.cell_size / 1000.0) ** 2
    n = max(p.stations.cma_min_stations, int(round(area / p.stations.cma_density_km2)))
    g = int(np.ceil(np.sqrt(n)))
    cells = np.arange(g * g)
    order = np.argsort(F.hash_uniform(seed, F.S_CMA, cells, 0), kind="stable")[:n]
    order = np.sort(order)
    gy, gx = np.divmod(order, g)
    uy = F.hash_uniform(seed, F.S_CMA, order, 1)
    ux = F.hash_uniform(seed, F.S_CMA, order, 2)
    ny, nx = win.shape
    rows = win.row0 - 0.5 + (gy + uy) / g * ny
    cols = win.col0 - 0.5 + (gx + ux) / g * nx
    x = EASE2_9KM.x_min + (cols + 0.5) * EASE2_9KM.cell_size
    y = EASE2_9KM.y_max - (rows + 0.5) * EASE2_9KM.cell_size
    lon, lat = xy_to_lonlat(x, y)
    sea = F.is_sea(lon, lat)
    sid = 50001
    for j in range(n):
        if sea[j]:
            continue
        lons.append(float(lon[j]))
        lats.append(float(lat[j]))
        nets.append("CMA")
        names.append(str(sid + j))
        idx.append(-1)
        depth.append(0)
        num.append(j)
    return Stations(
        np.array(lons, "f8"),
        np.array(lats, "f8"),
        nets,
        names,
        np.array(idx, np.int64),
        np.array(depth),
        np.array(num, np.int64),
    )


class Domain:
    """Windows, point sets, 25 km aggregation and daily state buffers of one twin run.

    Parameters
    ----------
    region : str or GridWindow
        The 9 km region window (a name of :data:`ftcloud.core.grid.REGIONS` or a window).
    params : TwinParameters
    seed : int
    first_day, last_day : int
        Day numbers (:func:`ftcloud.synth._physics.day_number`) the daily buffers and the
        weather series must cover.
    imerg : bool
        Build the IMERG cells (only when granules are written).
    insitu : bool
        Place the stations.
    tb : bool
        Carry the true layer-1 soil water (the brightness temperatures need it).
    """

    def __init__(
        self,
        region,
        params: TwinParameters,
        seed: int,
        first_day: int,
        last_day: int,
        imerg: bool,
        insitu: bool,
        tb: bool = False,
    ):
        p = params
        self.params = params
        self.seed = int(seed)
        win = self.window = region_window(region)
        self.w25 = covering_window(win, EASE2_25KM, margin=1)
        self.work = work_window(self.w25)
        wk = self.work
        if not (wk.row0 <= win.row0 and win.row1 <= wk.row1 and wk.col0 <= win.col0 and win.col1 <= wk.col1):
            raise RuntimeError("internal: work window does not contain the region window")
        crop = (slice(win.row0 - wk.row0, win.row1 - wk.row0), slice(win.col0 - wk.col0, win.col1 - wk.col0))
        self.twin = PH.Twin(self.seed, p, last_day)
        # 9 km work cells (truth)
        lon9, lat9 = wk.lonlat
        rows, cols = np.meshgrid(np.arange(wk.row0, wk.row1), np.arange(wk.col0, wk.col1), indexing="ij")
        self.p9 = PH.PointSet(self.twin, lon9, lat9, rows, cols, "truth9")
        ny, nx = wk.shape
        self.crop_idx = np.arange(ny * nx).reshape(ny, nx)[crop].ravel()  # region cells among the work cells
        # 25 km cell of every work cell
        g25 = EASE2_25KM
        r25 = np.floor((g25.y_max - wk.y) / g25.cell_size).astype(int) - self.w25.row0
        c25 = np.floor((wk.x - g25.x_min) / g25.cell_size).astype(int) - self.w25.col0
        rr, cc = np.meshgrid(r25, c25, indexing="ij")
        n25 = self.n25 = self.w25.shape[0] * self.w25.shape[1]
        self.cell25 = (rr * self.w25.shape[1] + cc).ravel()
        self.count25 = np.bincount(self.cell25, minlength=n25).astype("f8")
        if (self.count25 == 0).any():
            raise RuntimeError("internal: a 25 km cell holds no 9 km cell")
        # site terms of the 25 km cell (terrain, open water, vegetation, sea)
        self.owf25 = self.mean25(self.p9.owf)
        self.water25 = self.owf25 > p.smap.water_fill_fraction
        self.tci25 = np.clip(self.mean25(self.p9.tci) / 400.0, 0, 1)
        veg9 = np.vectorize(lambda k: p.esdr.vegetation.get(int(k), 0.0))(self.p9.land_cover).astype("f8")
        self.veg25 = self.mean25(veg9)
        self.sea25 = self.mean25(self.p9.sea.astype("f8")) > 0.5
        g25r, g25c = np.meshgrid(
            np.arange(self.w25.row0, self.w25.row1), np.arange(self.w25.col0, self.w25.col1), indexing="ij"
        )
        self.key25 = (g25r.ravel(), g25c.ravel())
        # ERA5-Land box
        self.era_lats, self.era_lons = latlon_source_box(win)
        lo2, la2 = np.meshgrid(self.era_lons, self.era_lats)
        self.pe = PH.PointSet(self.twin, lo2, la2, np.round(la2 * 10), np.round(lo2 * 10), "era5")
        self.pe.add_era5_variant()
        self.era_hours = request_hours(self.era_lons)
        # IMERG box (cell centres at .05)
        self.im_lons = np.round(np.arange(self.era_lons.min() - 0.05, self.era_lons.max() + 0.0501, 0.1), 2)
        self.im_lats = np.round(np.arange(self.era_lats.min() - 0.05, self.era_lats.max() + 0.0501, 0.1), 2)
        self.pi = None
        self.imerg_minutes = None
        if imerg:
            loi, lai = np.meshgrid(self.im_lons, self.im_lats)
            self.pi = PH.PointSet(self.twin, loi, lai, np.floor((lai + 90) * 10), np.floor((loi + 180) * 10), "imerg")
            offs = set()
            for ps_ in PASSES:
                offs.update(int(o) for o in np.unique(step_offsets(self.era_lons, ps_)))
            mins = set()
            for o in offs:
                mins.update({(o - 1) * 60, (o - 1) * 60 + 30})
            self.imerg_minutes = np.array(sorted(mins), np.int64)  # granule start minutes the passes read
        # stations
        self.st = place_stations(win, p, self.seed) if insitu else None
        self.ps = None
        if self.st is not None and len(self.st.lon):
            self.ps = PH.PointSet(
                self.twin, self.st.lon, self.st.lat, 1000 + self.st.net_index, self.st.number, "stations"
            )
            self.ps.add_station_variants()
        # daily state buffers of the hidden soil at each point set
        self.d9 = PH.Daily(self.p9, first_day, soil_water=tb)  # tb: the true soil water the radiometers see
        self.de = PH.Daily(self.pe, first_day, era5=True)
        self.dS = PH.Daily(self.ps, first_day) if self.ps is not None else None
        self.dI = PH.Daily(self.pi, first_day, stateful=False) if self.pi is not None else None

    def mean25(self, values: np.ndarray) -> np.ndarray:
        """Mean of a per-work-cell field over each 25 km cell."""
        return np.bincount(self.cell25, weights=values, minlength=self.n25) / self.count25

    def advance(self, n0: int, n1: int) -> None:
        """Make the stateful daily buffers cover days ``n0 - 2 .. n1 + 3`` (and drop older days)."""
        for d in (self.d9, self.de, self.dS):
            if d is not None:
                d.trim(n0 - 2)
                d.extend(n1 + 3)

    def crop(self, arr) -> np.ndarray:
        """A per-work-cell field on the region window, shape ``window.shape``."""
        return np.asarray(arr)[self.crop_idx].reshape(self.window.shape)
