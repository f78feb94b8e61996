"""Orchestration: month-by-month simulation of the hidden soil and of every observer."""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftcloud.study import SEASON_MONTHS, TARGETS_START
from ftcloud.core.grid import (
    EASE2_9KM,
    EASE2_25KM,
    GridWindow,
    covering_window,
    latlon_source_box,
    region_window,
    xy_to_lonlat,
)
from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth import _writers as W
from ftcloud.synth.params import (
    PARAMETER_SOURCES,
    KOPPEN_CLASSES,
    LAND_COVER_CLASSES,
    NETWORKS,
    REGION_CODES,
    STABILITY_CLASSES,
    TwinParameters,
)
from ftcloud.errors import ValidationError
from ftcloud.core.timeutil import PASSES, check_period, parse_date, request_hours, step_offsets

log = logging.getLogger(__name__)

TWIN_VERSION = "2.0"
IMERG_FIRST_DAY = np.datetime64("2000-06-01", "D")
SMAP_FIRST_DAY = np.datetime64(TARGETS_START, "D")
TRANSITION_MONTHS = SEASON_MONTHS["transition"]
TWIN_FIRST_DAY = np.datetime64("1951-01-01", "D")


def check_twin_period(start, end, what: str = "synth", names=("start", "end")):
    """The twin's inclusive period as ``datetime64[D]``; a ValidationError unless start <= end, from 1951 on."""
    s, e = check_period(start, end, what, names=names)
    prefix = f"{what}: " if what else ""
    if s is None or e is None:
        raise ValidationError(f"{prefix}the twin needs both {names[0]} and {names[1]} (YYYY-MM-DD)")
    if s < TWIN_FIRST_DAY:
        raise ValidationError(f"{prefix}{names[0]} {s} is before {TWIN_FIRST_DAY}: the twin starts in 1951")
    return s, e


def _d(x) -> np.datetime64:
    return np.datetime64(str(x)[:10], "D")


def _month_start(d: np.datetime64) -> np.datetime64:
    return d.astype("datetime64[M]").astype("datetime64[D]")


def _month_end(d: np.datetime64) -> np.datetime64:
    return (d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1


def _year(d) -> int:
    return int(str(np.datetime64(d, "D"))[:4])


def _months(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[M]").astype(int) % 12 + 1


def koppen(ps: PH.PointSet, params: TwinParameters) -> np.ndarray:
    """Main Koppen group from the truth climate (air = soil + air offset)."""
    air = ps.M0 + params.climate.air_offset_K
    amp = ps.A * 1.1
    warm, cold = air + amp, air - amp
    k = np.select(
        [warm < 10.0, ps.p_ann < 20.0 * (air + 7.0), cold >= 18.0, cold > -3.0],
        [5, 2, 1, 3],
        4,
    )
    return np.where(ps.sea, 0, k).astype("u1")


def _work_window(w25: GridWindow) -> GridWindow:
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
class _Stations:
    lon: np.ndarray
    lat: np.ndarray
    network: list  # per station: network name or "CMA"
    name: list
    net_index: np.ndarray  # index into NETWORKS or -1
    depth: np.ndarray
    number: np.ndarray  # station number inside its network (CMA: running index)


class _Generator:
    def __init__(self, region, start, end, out, seed, imerg_start, imerg_end, targets_start, insitu, progress, params):
        self.t_wall = time.perf_counter()
        self.params = params or TwinParameters()
        self.window = region_window(region)
        if isinstance(region, str):
            self.region_name = region
        else:
            self.region_name = getattr(region, "name", "") or "custom"
        self.start, self.end = check_twin_period(start, end)
        self.seed = int(seed)
        self.out = Path(out)
        self.insitu = bool(insitu)
        self.progress = progress
        self.targets_start = parse_date(targets_start, "targets_start", "synth: ")
        self.smap_start = max(self.start, SMAP_FIRST_DAY, self.targets_start or self.start)
        self.esdr_start = max(self.start, self.targets_start or self.start)
        if imerg_start is None:
            self.imerg = None
        else:
            i0, i1 = check_period(imerg_start, imerg_end, "synth", names=("imerg_start", "imerg_end"))
            a = max(i0, self.start, IMERG_FIRST_DAY)
            b = min(i1 if i1 is not None else self.end, self.end)
            self.imerg = (a, b) if a <= b else None
        # simulation starts on the last July 1 at least spinup_days before start - 1
        ref = self.start - np.timedelta64(self.params.truth.spinup_days + 2, "D")
        jul = np.datetime64(f"{_year(ref)}-07-01")
        self.sim_start = jul if jul <= ref else np.datetime64(f"{_year(ref) - 1}-07-01")
        self.files: dict[str, list[Path]] = {
            k: [] for k in ("era5land", "imerg", "smap_e_ft", "esdr_ft", "auxiliary", "insitu", "truth")
        }

    # ---------------------------------------------------------------------------------
    def setup(self):
        p = self.params
        win = self.window
        self.w25 = covering_window(win, EASE2_25KM, margin=1)
        self.work = _work_window(self.w25)
        wk = self.work
        if not (wk.row0 <= win.row0 and win.row1 <= wk.row1 and wk.col0 <= win.col0 and win.col1 <= wk.col1):
            raise RuntimeError("internal: work window does not contain the region window")
        self.crop = (slice(win.row0 - wk.row0, win.row1 - wk.row0), slice(win.col0 - wk.col0, win.col1 - wk.col0))
        last_day = PH.day_number(self.end) + 5
        self.twin = PH.Twin(self.seed, p, last_day)
        # 9 km work cells (truth)
        lon9, lat9 = wk.lonlat
        rows, cols = np.meshgrid(np.arange(wk.row0, wk.row1), np.arange(wk.col0, wk.col1), indexing="ij")
        self.p9 = PH.PointSet(self.twin, lon9, lat9, rows, cols, "truth9")
        ny, nx = wk.shape
        self.crop_idx = np.arange(ny * nx).reshape(ny, nx)[self.crop].ravel()
        # 25 km cell of every work cell
        g25 = EASE2_25KM
        r25 = np.floor((g25.y_max - wk.y) / g25.cell_size).astype(int) - self.w25.row0
        c25 = np.floor((wk.x - g25.x_min) / g25.cell_size).astype(int) - self.w25.col0
        rr, cc = np.meshgrid(r25, c25, indexing="ij")
        n25 = self.w25.shape[0] * self.w25.shape[1]
        self.cell25 = (rr * self.w25.shape[1] + cc).ravel()
        self.n25 = n25
        self.count25 = np.bincount(self.cell25, minlength=n25).astype("f8")
        if (self.count25 == 0).any():
            raise RuntimeError("internal: a 25 km cell holds no 9 km cell")
        owf25 = np.bincount(self.cell25, weights=self.p9.owf, minlength=n25) / self.count25
        self.water25 = owf25 > p.smap.water_fill_fraction
        # site terms of ESDR's error model on the 25 km cell (terrain, open water, vegetation)
        self.owf25 = owf25
        self.tci25 = np.clip(np.bincount(self.cell25, weights=self.p9.tci, minlength=n25) / self.count25 / 400.0, 0, 1)
        veg9 = np.vectorize(lambda k: p.esdr.vegetation.get(int(k), 0.0))(self.p9.land_cover).astype("f8")
        self.veg25 = np.bincount(self.cell25, weights=veg9, minlength=n25) / self.count25
        self.sea25 = np.bincount(self.cell25, weights=self.p9.sea.astype("f8"), minlength=n25) / self.count25 > 0.5
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
        if self.imerg is not None:
            loi, lai = np.meshgrid(self.im_lons, self.im_lats)
            self.pi = PH.PointSet(self.twin, loi, lai, np.floor((lai + 90) * 10), np.floor((loi + 180) * 10), "imerg")
            offs = set()
            for ps_ in PASSES:
                offs.update(int(o) for o in np.unique(step_offsets(self.era_lons, ps_)))
            mins = set()
            for o in offs:
                mins.update({(o - 1) * 60, (o - 1) * 60 + 30})
            self.imerg_minutes = np.array(sorted(mins), np.int64)
        # stations
        self.st = self._make_stations() if self.insitu else None
        self.ps = None
        if self.st is not None and len(self.st.lon):
            self.ps = PH.PointSet(
                self.twin, self.st.lon, self.st.lat, 1000 + self.st.net_index, self.st.number, "stations"
            )
            self.ps.add_station_variants()
        # daily buffers
        first = PH.day_number(self.sim_start) - 2
        self.d9 = PH.Daily(self.p9, first)
        self.de = PH.Daily(self.pe, first, era5=True)
        self.dS = PH.Daily(self.ps, first) if self.ps is not None else None
        self.dI = PH.Daily(self.pi, first, stateful=False) if self.pi is not None else None
        # carried states
        self.ft_state = None
        self.smap_z = np.zeros((2, self.crop_idx.size))
        self.esdr_g = None
        self.esdr_z = np.zeros((2, n25))
        # smap static layers on the region window
        ci = self.crop_idx
        shp = win.shape
        self.smap_static = {
            "latitude": self.p9.lat[ci].reshape(shp),
            "longitude": self.p9.lon[ci].reshape(shp),
            "open_water_body_fraction": np.where(self.p9.sea[ci], 1.0, self.p9.owf[ci]).reshape(shp),
            "terrain_complexity_index": self.p9.tci[ci].reshape(shp),
            "altitude_dem": self.p9.elev[ci].reshape(shp),
        }
        xx, yy = np.meshgrid(win.x, win.y)
        self.smap_xy = (xx.ravel() / 1000.0, yy.ravel() / 1000.0)
        # outputs kept in memory
        years = np.arange(_year(self.start), _year(self.end) + 1)
        self.years = years
        self.fd = np.zeros((years.size, 2, ci.size), np.int32)
        self.fd_days = np.zeros(years.size, np.int32)
        self.history = (
            f"ftcloud synth {TWIN_VERSION} (digital twin, seed={self.seed}, region={self.region_name}); "
            "synthetic data, not an observation"
        )

    # ---------------------------------------------------------------------------------
    def _make_stations(self) -> _Stations:
        p = self.params
        win = self.window
        seed = self.seed
        lons, lats, nets, names, idx, depth, num = [], [], [], [], [], [], []

        def inside(lon, lat):
            from ftcloud.core.grid import lonlat_to_xy

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
        return _Stations(
            np.array(lons, "f8"),
            np.array(lats, "f8"),
            nets,
            names,
            np.array(idx, np.int64),
            np.array(depth),
            np.array(num, np.int64),
        )

    # ---------------------------------------------------------------------------------
    def run(self) -> dict:
        from tqdm.auto import tqdm

        self.setup()
        win = self.window
        log.info(
            "ftcloud synth: region %s %s, %s..%s, seed %d -> %s",
            self.region_name,
            win.shape,
            self.start,
            self.end,
            self.seed,
            self.out,
        )
        dates_all = np.arange(self.start, self.end + 1)
        self.truth_file = W.TruthFile(self.out / "truth" / "truth_ft_9km.nc", win, dates_all, self.history)
        self.esdr_open: W.EsdrYear | None = None
        self._init_insitu_buffers()
        months = np.arange(self.sim_start.astype("datetime64[M]"), self.end.astype("datetime64[M]") + 1)
        try:
            bar = tqdm(months, desc="ftcloud synth", unit="month", disable=not self.progress, file=sys.stderr)
            for m in bar:
                bar.set_postfix_str(str(m), refresh=False)
                d0 = max(m.astype("datetime64[D]"), self.sim_start)
                d1 = min((m + 1).astype("datetime64[D]") - 1, self.end)
                self._chunk(d0, d1)
            bar.close()
            self.truth_file.commit()
            self.files["truth"].append(self.truth_file.path)
            if self.esdr_open is not None:
                self.esdr_open.commit()
                self.files["esdr_ft"].append(self.esdr_open.path)
                self.esdr_open = None
        except BaseException:
            self.truth_file.abort()
            if self.esdr_open is not None:
                self.esdr_open.abort()
            raise
        self._write_aux()
        if self.st is not None:
            self._write_insitu()
        realised = self._write_truth_summary()
        self._write_parameters(realised)
        return self._finish()

    # ---------------------------------------------------------------------------------
    def _chunk(self, d0: np.datetime64, d1: np.datetime64):
        n0, n1 = PH.day_number(d0), PH.day_number(d1)
        for d in (self.d9, self.de, self.dS):
            if d is not None:
                d.trim(n0 - 2)
                d.extend(n1 + 3)
        days = np.arange(n0, n1 + 1)
        dates = np.arange(d0, d1 + 1)
        truth = self._truth(days)
        self._write_truth(dates, truth)
        self._smap(dates, days, truth)
        self._esdr(dates, days, truth)
        m_first = _month_start(d0)
        if self.start.astype("datetime64[M]") <= d0.astype("datetime64[M]") and d1 >= self.start:
            self._era5(m_first, d1)
        if self.imerg is not None:
            self._imerg(dates)
        if self.st is not None:
            self._insitu(dates, days)

    # --- truth ------------------------------------------------------------------------
    def _truth(self, days):
        p = self.params
        ps = self.p9
        H = np.array(p.truth.overpass_hours)
        t = days[:, None, None] + (H[None, :, None] - ps.lon[None, None, :] / 15.0) / 24.0
        nd = days.size
        Tc, ex = PH.temperature_blocked(self.d9, "truth", t.reshape(nd * 2, ps.n), extras=True)
        if self.ft_state is None:
            self.ft_state = (Tc[0] < 0).astype(np.uint8)
        ft, self.ft_state = PH.hysteresis(Tc, self.ft_state, p.truth.hysteresis_K)
        ft = np.where(ps.sea[None, :], 254, ft).astype(np.uint8)
        return {
            "ft": ft.reshape(nd, 2, ps.n),
            "T": Tc.reshape(nd, 2, ps.n),
            "sd": ex["sd"].reshape(nd, 2, ps.n),
            "Tfree": ex["Tfree"].reshape(nd, 2, ps.n),
        }

    def _write_truth(self, dates, truth):
        sel = (dates >= self.start) & (dates <= self.end)
        if not sel.any():
            return
        ny, nx = self.window.shape
        ft = truth["ft"][sel][:, :, self.crop_idx]  # (nd, 2, npix)
        nd = ft.shape[0]
        self.truth_file.write(dates[sel], np.transpose(ft, (1, 0, 2)).reshape(2, nd, ny, nx))
        yrs = np.array([_year(d) for d in dates[sel]])
        for y in np.unique(yrs):
            k = int(y - self.years[0])
            m = yrs == y
            self.fd[k] += (ft[m] == 1).sum(axis=0)
            self.fd_days[k] += int(m.sum())

    # --- SMAP ---------------------------------------------------------------------------
    def _smap(self, dates, days, truth):
        ci = self.crop_idx
        step = max(1, 1_000_000 // (2 * ci.size))
        for a in range(0, days.size, step):
            sl = slice(a, a + step)
            obs = self._smap_obs(dates[sl], days[sl], {k: v[sl][:, :, ci] for k, v in truth.items()})
            sel = np.nonzero((dates[sl] >= self.smap_start) & (dates[sl] <= self.end))[0]
            shp = self.window.shape
            for i in sel:
                d = dates[sl][i]
                path = self.out / "smap_e_ft" / str(d)[:4] / W.smap_name(d)
                W.write_smap_day(path, self.window, obs[i].reshape((2,) + shp), self.smap_static)
                self.files["smap_e_ft"].append(path)

    def _smap_obs(self, dates, days, truth):
        """SMAP_E_FT (nd, 2, npix) on the region window from the truth (see docs/twin.md)."""
        p = self.params.smap
        seed = self.seed
        ci = self.crop_idx
        ps = self.p9
        k1, k2 = ps.k1[ci], ps.k2[ci]
        ft = truth["ft"].astype(np.int16)
        T = truth["T"]
        wet = (truth["sd"] > 0.01) & (truth["Tfree"] > 0.0)
        months = _months(dates)
        trans = np.isin(months, TRANSITION_MONTHS)[:, None, None]
        near0 = np.exp(-np.abs(T) / p.near_zero_scale_K)
        tci = np.clip(ps.tci[ci] / 400.0, 0, 1)[None, None, :]
        owf = ps.owf[ci][None, None, :]
        years = np.array([_year(d) for d in dates])
        pix = np.stack([p.pixel_year_sd * F.hash_normal(seed, F.S_SMAP_PIXYEAR, k1, k2, y) for y in years])[:, None, :]
        veg = np.vectorize(lambda k: p.vegetation.get(int(k), 0.0))(ps.land_cover[ci]).astype("f8")
        veg = (
            veg[None, None, :]
            * np.array([p.vegetation_pass_factor["AM"], p.vegetation_pass_factor["PM"]])[None, :, None]
        )
        p_f = (
            p.frozen_as_thawed
            + p.near_zero_frozen * near0
            + p.wet_snow * wet
            + p.transition_season * trans
            + p.tci_per_400m * tci
            + p.open_water * owf
            + veg
            + pix
        )
        p_t = (
            p.thawed_as_frozen
            + p.near_zero_thawed * near0
            + 0.5 * p.transition_season * trans
            + 0.5 * p.tci_per_400m * tci
            + 0.5 * p.open_water * owf
            + 0.5 * veg
            + pix
        )
        perr = np.clip(np.where(ft == 1, p_f, p_t), 0.0, 0.6)
        del p_f, p_t, near0
        rho = p.error_ar1
        z = np.empty(perr.shape)
        zs = self.smap_z
        for i, n in enumerate(days):
            e = F.hash_normal(seed, F.S_SMAP_ERR, k1[None, :], k2[None, :], n, np.arange(2)[:, None])
            zs = rho * zs + np.sqrt(1 - rho * rho) * e
            z[i] = zs
        self.smap_z = zs
        err = PH.ndtr(z) < perr
        obs = np.where(err, 1 - ft, ft)
        # missing: swaths, whole days, outages, water, sea
        xk, yk = self.smap_xy
        miss = np.zeros(obs.shape, bool)
        for j, pname in enumerate(("AM", "PM")):
            ang = np.deg2rad(p.swath_angle_deg[pname])
            u = xk * np.cos(ang) + yk * np.sin(ang)
            off = ((days * p.swath_daily_shift) % 1.0 + 0.5 * j)[:, None] * p.swath_period_km
            miss[:, j, :] = (
                np.mod(u[None, :] + off, p.swath_period_km) < p.swath_gap_fraction[pname] * p.swath_period_km
            )
        dmiss = F.hash_uniform(seed, F.S_SMAP_DAY, days[:, None], np.arange(2)[None, :]) < p.day_missing_probability
        miss |= dmiss[:, :, None]
        for a, b in p.outages:
            out = (dates >= _d(a)) & (dates <= _d(b))
            miss |= out[:, None, None]
        miss |= (owf > p.water_fill_fraction) | ps.sea[ci][None, None, :]
        return np.where(miss | (ft > 1), 254, obs).astype(np.uint8)

    # --- ESDR ---------------------------------------------------------------------------
    def _esdr(self, dates, days, truth):
        p = self.params.esdr
        seed = self.seed
        n25 = self.n25
        nd = days.size
        ft = truth["ft"]
        land = ft <= 1
        frac = (
            np.stack(
                [
                    np.stack(
                        [
                            np.bincount(self.cell25, weights=(ft[i, j] == 1).astype("f8"), minlength=n25)
                            for j in range(2)
                        ]
                    )
                    for i in range(nd)
                ]
            )
            / self.count25
        )
        Tm = (
            np.stack(
                [
                    np.stack(
                        [
                            np.bincount(self.cell25, weights=np.where(land[i, j], truth["T"][i, j], 0.0), minlength=n25)
                            for j in range(2)
                        ]
                    )
                    for i in range(nd)
                ]
            )
            / self.count25
        )
        if self.esdr_g is None:
            self.esdr_g = frac[0].copy()
        a = p.smoothing_weight_today
        g = np.empty_like(frac)
        gs = self.esdr_g
        for i in range(nd):
            gs = a * frac[i] + (1 - a) * gs
            g[i] = gs
        self.esdr_g = gs
        state = (g >= 0.5).astype(np.int16)
        months = _months(dates)
        trans = np.isin(months, TRANSITION_MONTHS)[:, None, None]
        near0 = np.exp(-np.abs(Tm) / 1.5)
        cold = np.where(Tm > 0, np.exp(-np.maximum(Tm, 0) / p.cold_thawed_scale_K), 0.0)
        site = p.tci_per_400m * self.tci25 + p.open_water * self.owf25 + self.veg25
        p_f = p.frozen_as_thawed + p.near_zero_frozen * near0 + site
        p_t = p.thawed_as_frozen + p.cold_thawed * cold + p.transition_season * trans + site
        perr = np.clip(np.where(state == 1, p_f, p_t), 0, 0.6)
        k1, k2 = self.key25
        z = np.empty(perr.shape)
        zs = self.esdr_z
        rho = p.error_ar1
        for i, n in enumerate(days):
            e = F.hash_normal(seed, F.S_ESDR_ERR, k1[None, :], k2[None, :], n, np.arange(2)[:, None])
            zs = rho * zs + np.sqrt(1 - rho * rho) * e
            z[i] = zs
        self.esdr_z = zs
        obs = np.where(PH.ndtr(z) < perr, 1 - state, state)  # 1 frozen
        miss = F.hash_uniform(seed, F.S_ESDR_DAY, days[:, None], np.arange(2)[None, :]) < p.day_missing_probability
        miss = miss[:, :, None] | self.water25[None, None, :] | self.sea25[None, None, :]
        am, pm = obs[:, 0], obs[:, 1]
        code = np.select([(am == 1) & (pm == 1), (am == 0) & (pm == 0), (am == 1) & (pm == 0)], [0, 1, 2], 3)
        code = np.where(miss.any(axis=1), 254, code).astype(np.uint8)
        sel = (dates >= self.esdr_start) & (dates <= self.end)
        if not sel.any():
            return
        ny, nx = self.w25.shape
        ds_, cs_ = dates[sel], code[sel]
        yrs = np.array([_year(d) for d in ds_])
        for y in np.unique(yrs):
            m = yrs == y
            if self.esdr_open is not None and self.esdr_open.year != y:
                self.esdr_open.commit()
                self.files["esdr_ft"].append(self.esdr_open.path)
                self.esdr_open = None
            if self.esdr_open is None:
                a_ = max(np.datetime64(f"{y}-01-01"), self.esdr_start)
                b_ = min(np.datetime64(f"{y}-12-31"), self.end)
                path = self.out / "esdr_ft" / f"ESDR_FT_25km_{y}.nc"
                self.esdr_open = W.EsdrYear(path, self.w25, np.arange(a_, b_ + 1), self.history)
                self.esdr_open.year = y
            self.esdr_open.write(ds_[m], cs_[m].reshape(-1, ny, nx))

    # --- ERA5-Land ----------------------------------------------------------------------
    def _era5(self, m_first: np.datetime64, d1: np.datetime64):
        p = self.params
        a = max(m_first - 1, self.start - 1)
        b = min(_month_end(m_first), self.end)
        if d1 < b:
            raise RuntimeError("internal: ERA5 month requested before its chunk is complete")
        utc_dates = np.arange(a, b + 1)
        hours = np.array(self.era_hours, np.int64)
        times = (utc_dates.astype("datetime64[h]")[:, None] + hours[None, :].astype("timedelta64[h]")).ravel()
        t = PH.day_number(a) + np.repeat(np.arange(utc_dates.size), hours.size) + np.tile(hours, utc_dates.size) / 24.0
        ps, de = self.pe, self.de
        e = p.era5
        sw = p.soil_water
        pf = 1.0 + e.precip_factor_plateau * ps.plat
        P = de.a["P"] * pf[None, :]
        c = de.a["c"] + e.precip_timing_shift_h
        w = de.a["wd"] * e.precip_width_factor
        hh_all = np.tile(hours, utc_dates.size).astype("f8")
        res = {k: np.empty((t.size, ps.n), "f4") for k in ("stl1", "swvl1", "sde", "tp")}
        step = max(1, 2_000_000 // ps.n)
        for a0 in range(0, t.size, step):
            tb = np.broadcast_to(t[a0 : a0 + step, None], (min(step, t.size - a0), ps.n))
            T = PH.temperature(de, "era5", tb)
            n = np.floor(tb).astype(np.int64)
            fr = tb - n
            i = n - de.lo
            sd = PH._interp_daily(de, "swe_e", i, fr) / 1000.0 / (p.snow.density * e.snow_density_factor)
            theta = PH._interp_daily(de, "theta", i, fr)
            liq = sw.frozen_liquid_residual + (1 - sw.frozen_liquid_residual) * F.sig((T + 0.5) / 0.4)
            # precipitation accumulated since 00 UTC (00 UTC holds the previous day's total)
            hh = np.broadcast_to(hh_all[a0 : a0 + step, None], tb.shape)
            frac = PH.storm_cdf(hh, PH._take(c, i), PH._take(w, i))
            acc = PH._take(P, i) * frac
            prev = PH._take(P, np.maximum(i - 1, 0))
            sl = slice(a0, a0 + step)
            res["stl1"][sl] = T + 273.15
            res["swvl1"][sl] = theta * liq
            res["sde"][sl] = sd
            res["tp"][sl] = np.where(hh == 0, prev, acc) / 1000.0
        nlat, nlon = self.era_lats.size, self.era_lons.size

        for v in res.values():
            v[:, ps.sea] = np.nan
        data = {k: v.reshape(t.size, nlat, nlon) for k, v in res.items()}
        del res
        path = self.out / "era5land" / f"era5land_{str(m_first)[:4]}{str(m_first)[5:7]}.nc"
        W.write_era5_month(path, self.era_lats, self.era_lons, times, data, self.history)
        self.files["era5land"].append(path)

    # --- IMERG --------------------------------------------------------------------------
    def _imerg(self, dates):
        a, b = self.imerg
        sel = dates[(dates >= a) & (dates <= b)]
        if sel.size == 0:
            return
        p = self.params.imerg
        seed = self.seed
        starts = np.unique(
            (np.array([PH.day_number(d) for d in sel])[:, None] * 1440 + self.imerg_minutes[None, :]).ravel()
        )
        udays = np.unique(starts // 1440)
        st = self.dI.stateless(udays, "truth")
        ps = self.pi
        nlat, nlon = self.im_lats.size, self.im_lons.size
        for s in starts:
            k = int(np.searchsorted(udays, s // 1440))
            h0 = (s % 1440) / 60.0
            c, w = st["c"][k], st["wd"][k]
            rate = st["P"][k] * (PH.storm_cdf(h0 + 0.5, c, w) - PH.storm_cdf(h0, c, w)) / 0.5
            half = int(s // 30)
            rate = rate * np.exp(
                p.lognormal_sigma * F.hash_normal(seed, F.S_IMERG, ps.k1, ps.k2, half) - 0.5 * p.lognormal_sigma**2
            )
            miss = (rate < p.detection_threshold_mm_h) & (
                F.hash_uniform(seed, F.S_IMERG_DET, ps.k1, ps.k2, half) < p.miss_probability
            )
            rate = np.where(miss, 0.0, rate)
            rate = np.where(st["fs"][k] > 0.5, rate * p.snow_factor, rate)
            rate = np.round(rate, 4)
            start = PH.EPOCH.astype("datetime64[m]") + np.timedelta64(int(s), "m")
            day = str(start.astype("datetime64[D]"))
            path = self.out / "imerg" / day[:4] / day[5:7] / day[8:10] / W.imerg_name(start)
            W.write_imerg_granule(path, self.im_lats, self.im_lons, start, rate.reshape(nlat, nlon).T)
            self.files["imerg"].append(path)

    # --- in situ ------------------------------------------------------------------------
    def _init_insitu_buffers(self):
        self.net_series = {}
        self.cma = None
        if self.st is None:
            return
        sp = self.params.stations
        ia, ib = _d(sp.insitu_period[0]), _d(sp.insitu_period[1])
        for k, (name, *_rest) in enumerate(NETWORKS):
            cols = np.nonzero(self.st.net_index == k)[0]
            if cols.size == 0:
                continue
            na, nb = _d(NETWORKS[k][6]), _d(NETWORKS[k][7])
            a = max(ia, na, self.start)
            b = min(ib, nb, self.end)
            if a > b:
                continue
            nslots = int((b - a).astype(int) + 1) * 48
            self.net_series[name] = {
                "cols": cols,
                "first": a,
                "last": b,
                "data": np.full((nslots, cols.size), np.nan, "f4"),
            }
        cma_cols = np.nonzero(self.st.net_index < 0)[0]
        nd = int((self.end - self.start).astype(int) + 1)
        self.cma = {
            "cols": cma_cols,
            "min": np.full((nd, cma_cols.size), np.nan, "f4"),
            "max": np.full((nd, cma_cols.size), np.nan, "f4"),
        }

    def _insitu(self, dates, days):
        sp = self.params.stations
        seed = self.seed
        ps = self.ps
        for name, s in self.net_series.items():
            sel = (dates >= s["first"]) & (dates <= s["last"])
            if not sel.any():
                continue
            dd = days[sel]
            t = (dd[:, None] + np.arange(48)[None, :] / 48.0).ravel()
            T = PH.temperature_blocked(self.dS, "probe", np.broadcast_to(t[:, None], (t.size, ps.n)))[:, s["cols"]]
            cols = s["cols"]
            k1, k2 = ps.k1[cols], ps.k2[cols]
            off = sp.offset_5cm_K * F.hash_normal(seed, F.S_ST_NOISE, k1, k2, -1)
            slot = np.round(t * 48).astype(np.int64)
            noise = sp.noise_5cm_K * F.hash_normal(seed, F.S_ST_NOISE, k1[None, :], k2[None, :], slot[:, None])
            i0 = int((dates[sel][0] - s["first"]).astype(int)) * 48
            s["data"][i0 : i0 + t.size] = (T + off[None, :] + noise).astype("f4")
        if self.cma is not None and self.cma["cols"].size:
            sel = (dates >= self.start) & (dates <= self.end)
            if not sel.any():
                return
            cols = self.cma["cols"]
            dd = days[sel]
            lon = ps.lon[None, None, :]
            t = dd[:, None, None] + (np.arange(24)[None, :, None] - lon / 15.0) / 24.0
            nd = dd.size
            T0 = PH.temperature_blocked(self.dS, "surface", t.reshape(nd * 24, ps.n)).reshape(nd, 24, ps.n)[:, :, cols]
            k1, k2 = ps.k1[cols][None, :], ps.k2[cols][None, :]
            nmin = F.hash_normal(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 0)
            nmax = F.hash_normal(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 1)
            tmin = T0.min(axis=1) + sp.surface_noise_K * nmin
            tmax = np.maximum(T0.max(axis=1) + sp.surface_noise_K * nmax, tmin)
            miss = F.hash_uniform(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 2) < sp.cma_missing_probability
            i0 = int((dates[sel][0] - self.start).astype(int))
            self.cma["min"][i0 : i0 + nd] = np.where(miss, np.nan, tmin)
            self.cma["max"][i0 : i0 + nd] = np.where(miss, np.nan, tmax)

    def _write_insitu(self):
        sp = self.params.stations
        seed = self.seed
        st = self.st
        base = self.out / "insitu"
        rows = ["network,station,lat,lon,elevation_m,depth_cm"]
        for name, s in self.net_series.items():
            a, b = s["first"], s["last"]
            ts = np.arange(a.astype("datetime64[m]"), (b + 1).astype("datetime64[m]"), np.timedelta64(30, "m"))
            tstr = np.datetime_as_string(ts, unit="m")
            nslots = ts.size
            years = nslots / (48 * 365.25)
            for j, col in enumerate(s["cols"]):
                v = s["data"][:, j].copy()
                key = (int(self.ps.k1[col]), int(self.ps.k2[col]))
                gap = F.hash_uniform(seed, F.S_ST_GAP, *key, np.arange(nslots)) < sp.single_gap_probability
                v[gap] = np.nan
                n_out = int(
                    np.floor(sp.outages_per_station_year * years + F.hash_uniform(seed, F.S_ST_OUTAGE, *key, -1))
                )
                for k in range(n_out):
                    s0 = int(F.hash_uniform(seed, F.S_ST_OUTAGE, *key, k, 0) * nslots)
                    lo, hi = sp.outage_days
                    ln = int((lo + (hi - lo) * F.hash_uniform(seed, F.S_ST_OUTAGE, *key, k, 1)) * 48)
                    v[s0 : s0 + ln] = np.nan
                vs = np.char.mod("%.2f", np.where(np.isnan(v), 0, v))
                vs = np.where(np.isnan(v), "", vs)
                body = np.char.add(np.char.add(tstr, ","), vs)
                text = "timestamp_utc,tsoil_degC\n" + "\n".join(body.tolist()) + "\n"
                path = base / "networks" / name / f"{st.name[col]}.csv"
                W.write_text(path, text)
                self.files["insitu"].append(path)
                rows.append(
                    f"{name},{st.name[col]},{st.lat[col]:.5f},{st.lon[col]:.5f},{self.ps.elev[col]:.1f},{st.depth[col]}"
                )
        path = base / "networks" / "stations.csv"
        W.write_text(path, "\n".join(rows) + "\n")
        self.files["insitu"].append(path)
        cols = self.cma["cols"]
        rows = ["station,lat,lon,elevation_m"]
        for col in cols:
            rows.append(f"{st.name[col]},{st.lat[col]:.5f},{st.lon[col]:.5f},{self.ps.elev[col]:.1f}")
        path = base / "cma" / "stations.csv"
        W.write_text(path, "\n".join(rows) + "\n")
        self.files["insitu"].append(path)
        dstr = np.datetime_as_string(np.arange(self.start, self.end + 1), unit="D")
        lines = ["station,date,t0_min_degC,t0_max_degC"]
        for j, col in enumerate(cols):
            mn, mx = self.cma["min"][:, j], self.cma["max"][:, j]
            smn = np.where(np.isnan(mn), "", np.char.mod("%.1f", np.where(np.isnan(mn), 0, mn)))
            smx = np.where(np.isnan(mx), "", np.char.mod("%.1f", np.where(np.isnan(mx), 0, mx)))
            pre = st.name[col] + ","
            body = np.char.add(np.char.add(np.char.add(np.char.add(pre, dstr), ","), smn), np.char.add(",", smx))
            lines.extend(body.tolist())
        path = base / "cma" / "t0cm_daily.csv"
        W.write_text(path, "\n".join(lines) + "\n")
        self.files["insitu"].append(path)

    # --- static outputs -------------------------------------------------------------------
    def _crop(self, arr):
        return np.asarray(arr)[self.crop_idx].reshape(self.window.shape)

    def _write_aux(self):
        ps = self.p9
        kop = koppen(ps, self.params)
        variables = {
            "elevation": (
                (),
                self._crop(ps.elev).astype("f4"),
                {"units": "m", "long_name": "surface elevation", "standard_name": "surface_altitude"},
            ),
            "land_cover": (
                (),
                self._crop(ps.land_cover),
                W.flag_attrs(LAND_COVER_CLASSES, "land cover class (CLCD legend)"),
            ),
            "koppen": (
                (),
                self._crop(kop),
                W.flag_attrs({k: v for k, v in KOPPEN_CLASSES.items()}, "Koppen-Geiger main climate group"),
            ),
            "region": ((), self._crop(ps.region), W.flag_attrs(REGION_CODES, "geographic region of China")),
            "permafrost_stability": (
                (),
                self._crop(ps.stability),
                W.flag_attrs(STABILITY_CLASSES, "permafrost thermal stability (Qinghai-Tibet)"),
            ),
            "terrain_complexity_index": (
                (),
                self._crop(ps.tci).astype("f4"),
                {"units": "m", "long_name": "terrain complexity index (std. dev. of elevation in the cell)"},
            ),
            "open_water_body_fraction": (
                (),
                self._crop(ps.owf).astype("f4"),
                {"units": "1", "long_name": "fraction of the cell covered by open water"},
            ),
        }
        path = self.out / "auxiliary" / "auxiliary_9km.nc"
        W.write_grid_file(
            path,
            self.window,
            variables,
            {"Conventions": "CF-1.8", "title": "ftcloud digital twin: auxiliary maps", "history": self.history},
        )
        self.files["auxiliary"].append(path)

    def _write_truth_summary(self) -> dict:
        ps = self.p9
        years = self.years
        complete = self.fd_days >= 365
        variables = {
            "magt_1980": (
                (),
                self._crop(ps.magt).astype("f4"),
                {"units": "degC", "long_name": "truth mean annual ground temperature (0-7 cm) of 1980, climatological"},
            ),
            "warming_rate": (
                (),
                self._crop(ps.warming).astype("f4"),
                {"units": "K year-1", "long_name": "planted warming rate of the hidden soil"},
            ),
            "target_slope": (
                (),
                self._crop(ps.target_slope).astype("f4"),
                {
                    "units": "days year-1",
                    "long_name": "planted frozen-day slope (Table 2 of Cui et al. 2024); NaN where the default warming applies",
                    "_FillValue": np.float32(np.nan),
                },
            ),
            "sensitivity": (
                (),
                self._crop(ps.sensitivity).astype("f4"),
                {"units": "days K-1", "long_name": "analytic dFD/dT = 365/(pi sqrt(A^2 - M^2)), mean of AM and PM"},
            ),
            "mean_temperature_1980": (
                (),
                self._crop(ps.M0).astype("f4"),
                {"units": "degC", "long_name": "mean M of the uncompressed 0-7 cm soil temperature in 1980"},
            ),
            "annual_amplitude": (
                (),
                self._crop(ps.A).astype("f4"),
                {"units": "K", "long_name": "annual half-amplitude A of the daily mean 0-7 cm soil temperature"},
            ),
            "permafrost_stability": (
                (),
                self._crop(ps.stability),
                W.flag_attrs(STABILITY_CLASSES, "permafrost thermal stability (Qinghai-Tibet)"),
            ),
            "region": ((), self._crop(ps.region), W.flag_attrs(REGION_CODES, "geographic region of China")),
            "frozen_days": (
                ("year", "pass"),
                self.fd.reshape((years.size, 2) + self.window.shape).astype("i2"),
                {
                    "units": "1",
                    "long_name": "number of truth frozen days per calendar year (only days inside the period)",
                    "cell_methods": "time: sum",
                },
            ),
        }
        path = self.out / "truth" / "truth_summary_9km.nc"
        W.write_grid_file(
            path,
            self.window,
            variables,
            {"Conventions": "CF-1.8", "title": "ftcloud digital twin: truth summary", "history": self.history},
            extra_dims={"year": years.astype("i4"), "pass": np.array(["AM", "PM"])},
            extra_vars={
                "days_in_period": (
                    ("year",),
                    self.fd_days.astype("i4"),
                    {"units": "1", "long_name": "number of days of the year inside the period"},
                )
            },
        )
        self.files["truth"].append(path)
        # realised truth slopes per class / region over complete years
        realised = {}
        if complete.sum() >= 5:
            yrs = years[complete].astype("f8")
            fdm = self.fd[complete].mean(axis=1)  # (nyear, npix), mean of AM and PM
            stab = ps.stability[self.crop_idx]
            reg = ps.region[self.crop_idx]
            groups = {f"qt_{STABILITY_CLASSES[k]}": (reg == 1) & (stab == k) for k in range(0, 7)}
            groups.update({f"region_{REGION_CODES[r]}": reg == r for r in (1, 2, 3, 4)})
            tgt = ps.target_slope[self.crop_idx]
            for gname, m in groups.items():
                if m.sum() == 0:
                    continue
                series = fdm[:, m].mean(axis=1)
                slope = float(np.polyfit(yrs, series, 1)[0])
                realised[gname] = {
                    "n_pixels": int(m.sum()),
                    "planted_slope_days_per_year": None
                    if np.all(np.isnan(tgt[m]))
                    else round(float(np.nanmean(tgt[m])), 4),
                    "realised_slope_days_per_year": round(slope, 4),
                    "mean_frozen_days": round(float(series.mean()), 2),
                    "warming_K_per_year_mean": round(float(ps.warming[self.crop_idx][m].mean()), 5),
                }
        return realised

    def _write_parameters(self, realised: dict):
        import h5py
        import netCDF4
        import scipy

        ps = self.p9
        ci = self.crop_idx
        planted = {}
        stab, reg = ps.stability[ci], ps.region[ci]
        for k, s in self.params.trend.qt_class_slopes.items():
            m = (reg == 1) & (stab == int(k))
            planted[f"qt_{STABILITY_CLASSES[int(k)]}"] = self._rate_stats(s, m)
        for r, s in self.params.trend.region_slopes.items():
            m = (reg == int(r)) & ps.freezes[ci]
            planted[f"region_{REGION_CODES[int(r)]}"] = self._rate_stats(s, m)
        try:
            from importlib.metadata import version

            ftv = version("ftcloud")
        except Exception:
            ftv = "unknown"
        doc = {
            "twin_version": TWIN_VERSION,
            "seed": self.seed,
            "region": {
                "name": self.region_name,
                "window_9km": self.window.to_attrs(),
                "shape_9km": list(self.window.shape),
                "window_25km": self.w25.to_attrs(),
                "shape_25km": list(self.w25.shape),
                "era5_box": {
                    "lat": [float(self.era_lats[0]), float(self.era_lats[-1])],
                    "lon": [float(self.era_lons[0]), float(self.era_lons[-1])],
                    "shape": [int(self.era_lats.size), int(self.era_lons.size)],
                    "utc_hours": list(self.era_hours),
                },
            },
            "period": {
                "start": str(self.start),
                "end": str(self.end),
                "simulation_start": str(self.sim_start),
                "targets_start": None if self.targets_start is None else str(self.targets_start),
                "smap_start": str(self.smap_start),
                "esdr_start": str(self.esdr_start),
                "imerg": None if self.imerg is None else [str(self.imerg[0]), str(self.imerg[1])],
            },
            "parameters": self.params.to_dict(),
            "parameter_sources": PARAMETER_SOURCES,
            "planted_warming": planted,
            "truth_frozen_day_slopes": realised,
            "frozen_day_definition": "days frozen at the overpass, mean of AM and PM, per calendar year",
            "software": {
                "ftcloud": ftv,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "netCDF4": netCDF4.__version__,
                "netcdf_c": netCDF4.__netcdf4libversion__,
                "hdf5": netCDF4.__hdf5libversion__,
                "h5py": h5py.__version__,
            },
        }
        path = self.out / "truth" / "parameters.json"
        W.write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
        self.files["truth"].append(path)

    def _rate_stats(self, slope, m):
        w = self.p9.warming[self.crop_idx][m]
        out = {"target_slope_days_per_year": slope, "n_pixels": int(m.sum())}
        if m.any():
            out.update(
                {
                    "warming_K_per_year_mean": round(float(w.mean()), 5),
                    "warming_K_per_year_min": round(float(w.min()), 5),
                    "warming_K_per_year_max": round(float(w.max()), 5),
                }
            )
        return out

    def _finish(self) -> dict:
        counts = {k: len(v) for k, v in self.files.items()}
        nbytes = int(sum(p.stat().st_size for v in self.files.values() for p in v))
        success = {
            "parameters": {
                "region": self.region_name,
                "start": str(self.start),
                "end": str(self.end),
                "seed": self.seed,
                "imerg_start": None if self.imerg is None else str(self.imerg[0]),
                "imerg_end": None if self.imerg is None else str(self.imerg[1]),
                "targets_start": None if self.targets_start is None else str(self.targets_start),
                "insitu": self.insitu,
                "twin_version": TWIN_VERSION,
            },
            "files": counts,
            "bytes": nbytes,
        }
        W.write_text(self.out / "_SUCCESS", json.dumps(success, indent=2) + "\n")
        seconds = time.perf_counter() - self.t_wall
        log.info("ftcloud synth: wrote %d files (%.1f MB) in %.1f s", sum(counts.values()), nbytes / 1e6, seconds)
        return {
            "out": str(self.out),
            "region": self.region_name,
            "start": str(self.start),
            "end": str(self.end),
            "seed": self.seed,
            "files": counts,
            "n_files": int(sum(counts.values())),
            "bytes": nbytes,
            "seconds": round(seconds, 2),
            "paths": {
                k: str(self.out / k)
                for k in ("era5land", "imerg", "smap_e_ft", "esdr_ft", "auxiliary", "insitu", "truth")
            },
        }


MARKER = ".ftcloud-synth"
_OUTPUT_PATTERNS = (
    "era5land/era5land_*.nc",
    "imerg/**/3B-HHR.MS.MRG.3IMERG.*.HDF5",
    "smap_e_ft/**/SMAP_L3_FT_P_E_*.h5",
    "esdr_ft/ESDR_FT_25km_*.nc",
    "auxiliary/auxiliary_9km.nc",
    "insitu/networks/**/*.csv",
    "insitu/cma/*.csv",
    "truth/*",
)


def _clean(out: Path):
    """Prepare ``out`` for a (re)run.

    Removes the success marker and any temporary file a killed run left behind; in a folder
    that an earlier twin run wrote (it holds the ``.ftcloud-synth`` marker) also removes that
    run's outputs, so the folder always reflects exactly one run.
    """
    (out / "_SUCCESS").unlink(missing_ok=True)
    for p in out.rglob(f".*{W.TMP_SUFFIX}"):
        if p.is_file():
            p.unlink()
    if (out / MARKER).exists():
        for pattern in _OUTPUT_PATTERNS:
            for p in out.glob(pattern):
                if p.is_file():
                    p.unlink()
    (out / MARKER).write_text(json.dumps({"writer": "ftcloud.synth", "twin_version": TWIN_VERSION}) + "\n")


def generate(
    region,
    start,
    end,
    out,
    *,
    seed: int = 0,
    imerg_start=None,
    imerg_end=None,
    targets_start=TARGETS_START,
    insitu: bool = True,
    progress: bool = True,
    params: TwinParameters | None = None,
) -> dict:
    """Write the digital twin's native source files and hidden truth into ``out``.

    Parameters
    ----------
    region : str or GridWindow
        A name in :data:`ftcloud.core.grid.REGIONS` ("demo", "tiny", "qtp", "china") or a 9 km window.
    start, end : str or datetime64
        Inclusive local dates ("YYYY-MM-DD").
    out : path
        Local output folder (created; an earlier run's files are overwritten).
    seed : int
        The twin's seed; the same seed and arguments give byte-identical files.
    imerg_start, imerg_end : str, optional
        Window of local dates for which IMERG half-hourly granules are written (clipped to
        ``[max(start, 2000-06-01), end]``); none are written when ``imerg_start`` is None.
    targets_start : str or None
        First date of the target products: ESDR from ``max(start, targets_start)``, SMAP
        from ``max(start, targets_start, 2015-04-01)``.
    insitu : bool
        Write the in-situ networks and CMA stations.
    progress : bool
        Show a per-month progress bar on stderr.
    params : TwinParameters, optional
        Override the twin's parameters (default :class:`TwinParameters()`).

    Returns
    -------
    dict
        ``out``, ``region``, ``start``, ``end``, ``seed``, ``files`` (count per source),
        ``n_files``, ``bytes``, ``seconds`` and ``paths`` (folder per source).
    """
    # bad arguments are refused before the folder (and an earlier run's files in it) is touched
    region_window(region)
    check_twin_period(start, end)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"synth: out {out} is not a folder (a file of that name exists)")
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    gen = _Generator(region, start, end, out, seed, imerg_start, imerg_end, targets_start, insitu, progress, params)
    return gen.run()
