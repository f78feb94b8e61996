"""The twin's loop: month by month, the hidden truth, then every observer, then the files.

Per chunk of days the order is fixed: truth -> SMAP -> ESDR -> ERA5-Land -> IMERG -> in situ
(the observers' noise is hashed from the seed and the cell, so the order only matters for the
state they carry). The observers (:mod:`ftcloud.synth.observers`) return arrays; this module
decides which days go into which file and writes them with :mod:`ftcloud.synth.writers`.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ftcloud.core.grid import region_window
from ftcloud.core.timeutil import check_period, parse_date
from ftcloud.errors import ValidationError
from ftcloud.study import TARGETS_START
from ftcloud.synth import _physics as PH
from ftcloud.synth import writers as W
from ftcloud.synth.domain import Domain
from ftcloud.synth.observers import Era5Observer, EsdrObserver, ImergObserver, InsituObserver, SmapObserver
from ftcloud.synth.observers.smap import MISSING as SMAP_MISSING
from ftcloud.synth.observers.tb import MultiFreqTbObserver, SmapTbObserver
from ftcloud.synth.params import (
    KOPPEN_CLASSES,
    LAND_COVER_CLASSES,
    PARAMETER_SOURCES,
    REGION_CODES,
    STABILITY_CLASSES,
    TwinParameters,
)
from ftcloud.synth.truth import FrozenDays, Truth, year_of

__all__ = ["generate", "check_twin_period", "koppen", "TWIN_VERSION"]

log = logging.getLogger(__name__)

TWIN_VERSION = "2.0"
IMERG_FIRST_DAY = np.datetime64("2000-06-01", "D")
SMAP_FIRST_DAY = np.datetime64(TARGETS_START, "D")
TWIN_FIRST_DAY = np.datetime64("1951-01-01", "D")
SOURCES = ("era5land", "imerg", "smap_e_ft", "esdr_ft", "auxiliary", "insitu", "truth")
#: the multi-frequency TB record's folder (written with ``tb=True`` only)
TB_MULTIFREQ = "tb_multifreq"


def check_twin_period(start, end, what: str = "synth", names=("start", "end")):
    """The twin's inclusive period as ``datetime64[D]``; a ValidationError unless start <= end, from 1951 on."""
    s, e = check_period(start, end, what, names=names)
    prefix = f"{what}: " if what else ""
    if s is None or e is None:
        raise ValidationError(f"{prefix}the twin needs both {names[0]} and {names[1]} (YYYY-MM-DD)")
    if s < TWIN_FIRST_DAY:
        raise ValidationError(f"{prefix}{names[0]} {s} is before {TWIN_FIRST_DAY}: the twin starts in 1951")
    return s, e


def _month_start(d: np.datetime64) -> np.datetime64:
    return d.astype("datetime64[M]").astype("datetime64[D]")


def _month_end(d: np.datetime64) -> np.datetime64:
    return (d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1


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


class _Run:
    """One call of :func:`generate`: the period logic, the loop over months and the files."""

    def __init__(
        self, region, start, end, out, seed, imerg_start, imerg_end, targets_start, insitu, progress, params, tb=False
    ):
        self.t_wall = time.perf_counter()
        self.tb = bool(tb)
        self.region = region
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
        jul = np.datetime64(f"{year_of(ref)}-07-01")
        self.sim_start = jul if jul <= ref else np.datetime64(f"{year_of(ref) - 1}-07-01")
        self.files: dict[str, list[Path]] = {k: [] for k in SOURCES}
        if self.tb:
            self.files[TB_MULTIFREQ] = []
        self.history = (
            f"ftcloud synth {TWIN_VERSION} (digital twin, seed={self.seed}, region={self.region_name}); "
            "synthetic data, not an observation"
        )

    # ---------------------------------------------------------------------------------
    def run(self) -> dict:
        from tqdm.auto import tqdm

        p = self.params
        dom = self.dom = Domain(
            self.region,
            p,
            self.seed,
            first_day=PH.day_number(self.sim_start) - 2,
            last_day=PH.day_number(self.end) + 5,
            imerg=self.imerg is not None,
            insitu=self.insitu,
            tb=self.tb,
        )
        self.truth = Truth(dom, p)
        self.frozen_days = FrozenDays(dom, self.start, self.end)
        self.smap = SmapObserver(dom, p.smap, self.seed)
        self.esdr = EsdrObserver(dom, p.esdr, self.seed)
        self.smap_tb = SmapTbObserver(dom, p, self.seed) if self.tb else None
        self.multi_tb = MultiFreqTbObserver(dom, p, self.seed) if self.tb else None
        self.tb_open: dict = {}  # (channel, pass) -> the open CetbYear of the current year
        self.era5 = Era5Observer(dom, p)
        self.imerg_obs = ImergObserver(dom, p.imerg, self.seed, self.imerg) if self.imerg is not None else None
        self.insitu_obs = (
            InsituObserver(dom, p.stations, self.seed, self.start, self.end) if dom.st is not None else None
        )
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
            self._commit_tb()
        except BaseException:
            self.truth_file.abort()
            if self.esdr_open is not None:
                self.esdr_open.abort()
            for f in self.tb_open.values():
                f.abort()
            raise
        self._write_aux()
        if self.insitu_obs is not None:
            self._write_insitu()
        realised = self._write_truth_summary()
        self._write_parameters(realised)
        return self._finish()

    def _chunk(self, d0: np.datetime64, d1: np.datetime64):
        n0, n1 = PH.day_number(d0), PH.day_number(d1)
        self.dom.advance(n0, n1)
        days = np.arange(n0, n1 + 1)
        dates = np.arange(d0, d1 + 1)
        truth = self.truth.step(days)
        self._write_truth(dates, truth)
        self._smap(dates, days, truth)
        self._esdr(dates, days, truth)
        if self.multi_tb is not None:
            self._tb_multifreq(dates, days, truth)
        m_first = _month_start(d0)
        if self.start.astype("datetime64[M]") <= d0.astype("datetime64[M]") and d1 >= self.start:
            self._era5(m_first, d1)
        if self.imerg_obs is not None:
            self._imerg(dates)
        if self.insitu_obs is not None:
            self.insitu_obs.observe(dates, days)

    # --- per chunk: which days go into which file ------------------------------------------
    def _write_truth(self, dates, truth):
        sel = (dates >= self.start) & (dates <= self.end)
        if not sel.any():
            return
        ny, nx = self.window.shape
        ft = truth["ft"][sel][:, :, self.dom.crop_idx]  # (nd, 2, npix)
        nd = ft.shape[0]
        self.truth_file.write(dates[sel], np.transpose(ft, (1, 0, 2)).reshape(2, nd, ny, nx))
        self.frozen_days.add(dates[sel], ft)

    def _smap(self, dates, days, truth):
        ci = self.dom.crop_idx
        step = max(1, 1_000_000 // (2 * ci.size))  # days per observer call (memory)
        shp = self.window.shape
        for a in range(0, days.size, step):
            sl = slice(a, a + step)
            obs = self.smap.observe(dates[sl], days[sl], {k: v[sl][:, :, ci] for k, v in truth.items()})
            sel = np.nonzero((dates[sl] >= self.smap_start) & (dates[sl] <= self.end))[0]
            tb = None
            if self.smap_tb is not None and sel.size:
                tb = self.smap_tb.observe(dates[sl], days[sl], {k: v[sl] for k, v in truth.items()})
                gone = obs == SMAP_MISSING  # swath gaps, missing days, water: no TB either
                tb = {k: np.where(gone, np.nan, v) for k, v in tb.items()}
                tb["ref_f"], tb["ref_t"] = self.smap_tb.references(dates[sl], tb["npr"])
            for i in sel:
                d = dates[sl][i]
                path = self.out / "smap_e_ft" / str(d)[:4] / W.smap_name(d)
                day_tb = None if tb is None else {k: v[i].reshape((2,) + shp) for k, v in tb.items()}
                W.write_smap_day(path, self.window, obs[i].reshape((2,) + shp), self.smap.static, tb=day_tb)
                self.files["smap_e_ft"].append(path)

    def _tb_multifreq(self, dates, days, truth):
        """The multi-frequency TB record over the ESDR period: one CETB-like file per year, channel and pass."""
        sel = (dates >= self.esdr_start) & (dates <= self.end)
        if not sel.any():
            return
        tb = self.multi_tb.observe(dates[sel], days[sel], {k: v[sel] for k, v in truth.items()})
        w25 = self.dom.w25
        ny, nx = w25.shape
        ds_ = dates[sel]
        yrs = np.array([year_of(d) for d in ds_])
        for y in np.unique(yrs):
            m = yrs == y
            if self.tb_open and next(iter(self.tb_open.values())).year != y:
                self._commit_tb()
            for name, arr in tb.items():
                channel = name[2:]  # "36.5V"
                for j, pass_ in enumerate(("AM", "PM")):
                    f = self.tb_open.get((channel, pass_))
                    if f is None:
                        a_ = max(np.datetime64(f"{y}-01-01"), self.esdr_start)
                        b_ = min(np.datetime64(f"{y}-12-31"), self.end)
                        path = self.out / TB_MULTIFREQ / str(y) / W.cetb_name(y, channel, pass_)
                        f = W.CetbYear(path, w25, np.arange(a_, b_ + 1), channel, pass_, self.history)
                        f.year = y
                        self.tb_open[(channel, pass_)] = f
                    data = arr[m, j].reshape(-1, ny, nx)
                    water = (self.dom.water25 | self.dom.sea25).reshape(ny, nx)
                    f.write(ds_[m], np.where(water[None], np.nan, data))

    def _commit_tb(self):
        for f in self.tb_open.values():
            f.commit()
            self.files[TB_MULTIFREQ].append(f.path)
        self.tb_open = {}

    def _esdr(self, dates, days, truth):
        code = self.esdr.observe(dates, days, truth)
        sel = (dates >= self.esdr_start) & (dates <= self.end)
        if not sel.any():
            return
        w25 = self.dom.w25
        ny, nx = w25.shape
        ds_, cs_ = dates[sel], code[sel]
        yrs = np.array([year_of(d) for d in ds_])
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
                self.esdr_open = W.EsdrYear(path, w25, np.arange(a_, b_ + 1), self.history)
                self.esdr_open.year = y
            self.esdr_open.write(ds_[m], cs_[m].reshape(-1, ny, nx))

    def _era5(self, m_first: np.datetime64, d1: np.datetime64):
        # the month's file holds UTC dates from the day before the month (or the period) starts
        a = max(m_first - 1, self.start - 1)
        b = min(_month_end(m_first), self.end)
        if d1 < b:
            raise RuntimeError("internal: ERA5 month requested before its chunk is complete")
        data = self.era5.observe(a, b)
        path = self.out / "era5land" / f"era5land_{str(m_first)[:4]}{str(m_first)[5:7]}.nc"
        W.write_era5_month(path, self.dom.era_lats, self.dom.era_lons, self.era5.hours(a, b), data, self.history)
        self.files["era5land"].append(path)

    def _imerg(self, dates):
        dom = self.dom
        for start, rate in self.imerg_obs.observe(dates):
            day = str(start.astype("datetime64[D]"))
            path = self.out / "imerg" / day[:4] / day[5:7] / day[8:10] / W.imerg_name(start)
            W.write_imerg_granule(path, dom.im_lats, dom.im_lons, start, rate)
            self.files["imerg"].append(path)

    # --- after the loop ------------------------------------------------------------------
    def _write_insitu(self):
        obs = self.insitu_obs
        ps = self.dom.ps
        elevation = ps.elev if ps is not None else np.zeros(0)
        cols, mn, mx = obs.cma_daily()
        self.files["insitu"].extend(
            W.write_insitu(
                self.out / "insitu",
                self.dom.st,
                elevation,
                obs.network_records(),
                cols,
                mn,
                mx,
                np.arange(self.start, self.end + 1),
            )
        )

    def _write_aux(self):
        ps = self.dom.p9
        kop = koppen(ps, self.params)
        variables = {
            "elevation": (
                (),
                self.dom.crop(ps.elev).astype("f4"),
                {"units": "m", "long_name": "surface elevation", "standard_name": "surface_altitude"},
            ),
            "land_cover": (
                (),
                self.dom.crop(ps.land_cover),
                W.flag_attrs(LAND_COVER_CLASSES, "land cover class (CLCD legend)"),
            ),
            "koppen": (
                (),
                self.dom.crop(kop),
                W.flag_attrs({k: v for k, v in KOPPEN_CLASSES.items()}, "Koppen-Geiger main climate group"),
            ),
            "region": ((), self.dom.crop(ps.region), W.flag_attrs(REGION_CODES, "geographic region of China")),
            "permafrost_stability": (
                (),
                self.dom.crop(ps.stability),
                W.flag_attrs(STABILITY_CLASSES, "permafrost thermal stability (Qinghai-Tibet)"),
            ),
            "terrain_complexity_index": (
                (),
                self.dom.crop(ps.tci).astype("f4"),
                {"units": "m", "long_name": "terrain complexity index (std. dev. of elevation in the cell)"},
            ),
            "open_water_body_fraction": (
                (),
                self.dom.crop(ps.owf).astype("f4"),
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
        """Write truth/truth_summary_9km.nc; return the realised frozen-day slopes."""
        ps = self.dom.p9
        fdc = self.frozen_days
        years = fdc.years
        variables = {
            "magt_1980": (
                (),
                self.dom.crop(ps.magt).astype("f4"),
                {"units": "degC", "long_name": "truth mean annual ground temperature (0-7 cm) of 1980, climatological"},
            ),
            "warming_rate": (
                (),
                self.dom.crop(ps.warming).astype("f4"),
                {"units": "K year-1", "long_name": "planted warming rate of the hidden soil"},
            ),
            "target_slope": (
                (),
                self.dom.crop(ps.target_slope).astype("f4"),
                {
                    "units": "days year-1",
                    "long_name": (
                        "planted frozen-day slope (Table 2 of Cui et al. 2024); NaN where the default warming applies"
                    ),
                    "_FillValue": np.float32(np.nan),
                },
            ),
            "sensitivity": (
                (),
                self.dom.crop(ps.sensitivity).astype("f4"),
                {"units": "days K-1", "long_name": "analytic dFD/dT = 365/(pi sqrt(A^2 - M^2)), mean of AM and PM"},
            ),
            "mean_temperature_1980": (
                (),
                self.dom.crop(ps.M0).astype("f4"),
                {"units": "degC", "long_name": "mean M of the uncompressed 0-7 cm soil temperature in 1980"},
            ),
            "annual_amplitude": (
                (),
                self.dom.crop(ps.A).astype("f4"),
                {"units": "K", "long_name": "annual half-amplitude A of the daily mean 0-7 cm soil temperature"},
            ),
            "permafrost_stability": (
                (),
                self.dom.crop(ps.stability),
                W.flag_attrs(STABILITY_CLASSES, "permafrost thermal stability (Qinghai-Tibet)"),
            ),
            "region": ((), self.dom.crop(ps.region), W.flag_attrs(REGION_CODES, "geographic region of China")),
            "frozen_days": (
                ("year", "pass"),
                fdc.fd.reshape((years.size, 2) + self.window.shape).astype("i2"),
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
                    fdc.days.astype("i4"),
                    {"units": "1", "long_name": "number of days of the year inside the period"},
                )
            },
        )
        self.files["truth"].append(path)
        return fdc.realised_slopes()

    def _write_parameters(self, realised: dict):
        import h5py
        import netCDF4
        import scipy

        ps = self.dom.p9
        ci = self.dom.crop_idx
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
                "window_25km": self.dom.w25.to_attrs(),
                "shape_25km": list(self.dom.w25.shape),
                "era5_box": {
                    "lat": [float(self.dom.era_lats[0]), float(self.dom.era_lats[-1])],
                    "lon": [float(self.dom.era_lons[0]), float(self.dom.era_lons[-1])],
                    "shape": [int(self.dom.era_lats.size), int(self.dom.era_lons.size)],
                    "utc_hours": list(self.dom.era_hours),
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
        w = self.dom.p9.warming[self.dom.crop_idx][m]
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
                **({"tb": True} if self.tb else {}),
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
    "tb_multifreq/**/NSIDC0630-*.nc",
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
    tb: bool = False,
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
    tb : bool
        Also write brightness temperatures (:mod:`ftcloud.synth.observers.tb`): SMAP L-band TB H/V and NPR
        in the SMAP granules, and the multi-frequency record (6.9-89 GHz, H and V, AM and PM) on the
        25 km grid over the ESDR period in ``tb_multifreq/`` (docs/source-formats.md).

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
    gen = _Run(region, start, end, out, seed, imerg_start, imerg_end, targets_start, insitu, progress, params, tb)
    return gen.run()
