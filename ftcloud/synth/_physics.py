"""The hidden soil and the models that observe it (see docs/twin.md for the equations).

Time is a float ``t`` = days since 1950-01-01 00 UTC (:data:`EPOCH`). Daily quantities
are indexed by the integer UTC day number ``n = floor(t)``; instantaneous quantities are
evaluated at arbitrary ``t`` by interpolating the daily states linearly between 00 UTC
values. Points are flat 1-D sets (:class:`PointSet`): 9 km cells, 0.1 degree ERA5-Land
points, IMERG cells, station locations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ftcloud.synth import _fields as F

EPOCH = np.datetime64("1950-01-01", "D")
YEAR = 365.2425
_LAST_SERIES_DAY = int((np.datetime64("2036-01-01", "D") - EPOCH).astype(int))

# diurnal shape of 0-7 cm soil temperature vs local solar hour (peak at 14.5 h)
_KNOT_H = np.array([0, 2, 4, 6, 7, 8, 10, 12, 14.5, 16, 17, 18, 19, 20, 22, 24], "f8")
_KNOT_V = np.array(
    [-0.55, -0.70, -0.84, -0.97, -0.95, -0.75, -0.10, 0.60, 1.0, 0.90, 0.75, 0.52, 0.30, 0.12, -0.20, -0.55]
)


def _normalised_knots():
    h = np.linspace(0, 24, 24 * 60, endpoint=False)
    v = np.interp(h, _KNOT_H, _KNOT_V)
    mean = v.mean()
    return (_KNOT_V - mean) / (v.max() - mean)


_KNOT_VN = _normalised_knots()

LC_DIURNAL = {1: 0.9, 2: 0.6, 3: 1.05, 4: 1.0, 5: 0.4, 6: 0.5, 7: 1.2, 8: 1.1, 9: 0.6}


def diurnal_shape(lsh, peak: float) -> np.ndarray:
    """Zero-mean diurnal shape (max 1) at local solar hour ``lsh`` for a maximum at ``peak``."""
    h = np.mod(np.asarray(lsh, "f8") - (peak - 14.5), 24.0)
    return np.interp(h, _KNOT_H, _KNOT_VN)


def day_number(date) -> int:
    return int((np.datetime64(date, "D") - EPOCH).astype(int))


def day_to_date(n) -> np.datetime64:
    return EPOCH + np.timedelta64(int(n), "D")


def compress(T, strength: float, scale: float):
    """Latent-heat 'zero curtain': T - s c tanh(T / c) (slope 1 - s near 0 degC)."""
    if strength <= 0:
        return T
    return T - strength * scale * np.tanh(T / scale)


_ZGRID = np.linspace(-4.0, 5.0, 361)


def _excess_table(power: float) -> np.ndarray:
    z = np.linspace(-8, 8, 16001)
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    dz = z[1] - z[0]
    return np.array([np.sum(np.maximum(z - z0, 0.0) ** power * pdf) * dz for z0 in _ZGRID])


_JULY1 = 181.0  # 1950-07-01 in days since 1950-01-01
_VALUE_NOISE_SD = 0.980  # standard deviation of F.value_noise (measured: 10^6 random points, seeds 0-4)


def year_anomaly(seed: int, stream: int, lon: np.ndarray, lat: np.ndarray, t, spacing_deg: float = 1.0) -> np.ndarray:
    """A unit-variance anomaly per "FT year", smooth in space and time.

    For each FT year (keyed at 1 July) a spatially smooth field (value noise on a
    ``spacing_deg`` lattice, so neighbouring points share their anomaly) is drawn, normalised
    to unit variance, and interpolated linearly in time between years, rescaled by
    ``1 / sqrt((1-a)^2 + a^2)`` so that the variance is 1 at every instant. ``t`` is days since
    1950-01-01, shape (nt, npts) or (nt, 1).
    """
    t = np.asarray(t, "f8")
    x = (t - _JULY1) / YEAR
    y0 = np.floor(x).astype(np.int64)
    a = x - y0
    lo, hi = int(y0.min()), int(y0.max()) + 1
    table = np.stack(
        [F.value_noise(seed, stream * 100_000 + y, lon, lat, spacing_deg) / _VALUE_NOISE_SD for y in range(lo, hi + 1)]
    )  # (ny, npts)
    i = np.broadcast_to(y0 - lo, np.broadcast_shapes(y0.shape, (1, lon.size)))
    a = np.broadcast_to(a, i.shape)
    v0 = _take(table, i)
    v1 = _take(table, i + 1)
    return ((1 - a) * v0 + a * v1) / np.sqrt((1 - a) ** 2 + a**2)


class Twin:
    """Global, seed-dependent pieces: static world, Fourier modes and daily coefficient series."""

    def __init__(self, seed: int, params, last_day: int):
        self.seed = int(seed)
        self.p = params
        c, pr = params.climate, params.precip
        self.world = F.World(seed, params)
        self.modes_wl = F.FourierModes(seed, F.S_WEATHER_L, c.weather_n_large, 6.0, 30.0)
        self.modes_wm = F.FourierModes(seed, F.S_WEATHER_M, c.weather_n_meso, 1.5, 4.0)
        self.modes_slow = F.FourierModes(seed, F.S_SLOW, 6, 10.0, 40.0)
        self.modes_zl = F.FourierModes(seed, F.S_PLAT, pr.latent_n_large, 4.0, 20.0)
        self.modes_zs = F.FourierModes(seed, F.S_PLAT_S, pr.latent_n_small, 0.6, 2.5)
        self.modes_storm = F.FourierModes(seed, F.S_STORM, 4, 5.0, 15.0)
        e = params.era5
        self.modes_ee = F.FourierModes(seed, F.S_ERA_FIELD, e.error_field_modes, *e.error_field_wavelength_deg)
        nd = max(_LAST_SERIES_DAY, last_day + 40)
        self.ser_wl = F.ar1_series(seed, F.S_WEATHER_L, nd, c.weather_n_large, c.weather_ar1)
        self.ser_wm = F.ar1_series(seed, F.S_WEATHER_M, nd, c.weather_n_meso, c.weather_ar1)
        self.ser_slow = F.ar1_series(seed, F.S_SLOW, nd, 6, c.slow_ar1)
        self.ser_zl = F.ar1_series(seed, F.S_PLAT, nd, pr.latent_n_large, pr.latent_ar1)
        self.ser_zs = F.ar1_series(seed, F.S_PLAT_S, nd, pr.latent_n_small, 0.0)
        self.ser_ee = F.ar1_series(seed, F.S_ERA_FIELD, nd, e.error_field_modes, e.error_field_ar1)
        # ERA5-Land's own weather: same modes, independent coefficients (mixed with the truth's
        # weather at correlation e.weather_correlation)
        self.ser_wl_e = F.ar1_series(seed, F.S_ERA_WL, nd, c.weather_n_large, c.weather_ar1)
        self.ser_wm_e = F.ar1_series(seed, F.S_ERA_WM, nd, c.weather_n_meso, c.weather_ar1)
        days = np.arange(nd)
        self.storm_shift = F.hash_normal(seed, F.S_STORM, days, 0)
        self.storm_width = F.hash_uniform(seed, F.S_STORM, days, 1)
        self.excess = _excess_table(pr.intensity_power)


@dataclass
class Variant:
    """How one observer (truth, ERA5-Land, 5 cm probe, 0 cm thermometer) sees the soil."""

    name: str
    M0: np.ndarray
    A: np.ndarray
    D0: np.ndarray
    w: np.ndarray
    peak: float
    cs: float  # zero-curtain strength
    cc: float  # zero-curtain scale
    weather: float = 1.0
    snow: str = "truth"  # which snow pack insulates: truth / era5
    insulated: bool = True
    clip_on_snow: bool = False
    lead_days: float = 0.0  # phase lead of the annual cycle
    lead_sd_days: float = 0.0  # per point and year: timing error of the annual cycle (smooth in time)


class PointSet:
    """A flat set of points with every static field the twin needs there."""

    def __init__(self, twin: Twin, lon, lat, k1, k2, kind: str):
        p = twin.p
        c = p.climate
        self.twin = twin
        self.kind = kind
        self.lon = np.asarray(lon, "f8").ravel()
        self.lat = np.asarray(lat, "f8").ravel()
        self.k1 = np.asarray(k1, np.int64).ravel()
        self.k2 = np.asarray(k2, np.int64).ravel()
        self.n = self.lon.size
        w = twin.world
        lon, lat = self.lon, self.lat
        self.sea = F.is_sea(lon, lat)
        self.elev = w.elevation(lon, lat)
        self.tci = w.tci(lon, lat)
        self.owf = w.open_water(lon, lat)
        self.p_ann = w.annual_precip(lon, lat)
        self.plat = F.plateau(lon, lat)
        self.region = w.region(lon, lat)
        self.cont = w.continentality(lon, lat)
        self.land_cover = w.land_cover(lon, lat, self.elev, self.tci, self.owf, self.p_ann)
        self.local = c.local_anomaly_K * F.value_noise(twin.seed, F.S_LOCAL, lon, lat, c.local_anomaly_spacing_deg)
        zkm = self.elev / 1000.0
        m0, m1, m2 = c.sea_level_mean
        la = np.maximum(lat - 20.0, 0.0)
        self.m_sl = m0 + m1 * la + m2 * la * la
        self.M0 = self.m_sl - c.lapse_rate_K_per_km * zkm - c.tci_cooling_K_per_m * self.tci + self.local
        a0, a1, a2, a3 = c.amplitude
        self.A = a0 + a1 * (lat - 18.0) + a2 * self.cont + a3 * zkm
        lcf = np.vectorize(LC_DIURNAL.get)(self.land_cover).astype("f8")
        self.D0 = (c.diurnal[0] + c.diurnal[1] * zkm) * lcf
        # precipitation climatology
        self.wetness = np.clip((self.p_ann - 100.0) / 800.0, 0.0, 1.0)
        k0, k1 = p.precip.monsoon_kappa
        self.kappa = k0 + k1 * np.minimum(1.5 * self.wetness, 1.0)
        self.i0kappa = np.i0(self.kappa)
        # basis matrices
        bl = twin.modes_wl.basis(lon, lat)
        bm = c.weather_meso_weight * twin.modes_wm.basis(lon, lat)
        self.bw = np.concatenate([bl, bm], axis=1)
        self.bw /= np.sqrt((self.bw**2).sum(axis=1, keepdims=True))
        self.bslow = twin.modes_slow.basis(lon, lat)
        self.bslow /= np.sqrt((self.bslow**2).sum(axis=1, keepdims=True))
        zl = twin.modes_zl.basis(lon, lat)
        zs = p.precip.latent_small_weight * twin.modes_zs.basis(lon, lat)
        self.bz = np.concatenate([zl, zs], axis=1)
        self.bz /= np.sqrt((self.bz**2).sum(axis=1, keepdims=True))
        self.storm_local = 1.5 * twin.modes_storm.field(lon, lat)
        self._truth_statics()
        self.variants = {
            "truth": Variant(
                "truth",
                self.M0,
                self.A,
                self.D0,
                self.warming,
                c.diurnal_peak_hour,
                p.truth.zero_curtain_strength,
                p.truth.zero_curtain_scale_K,
            )
        }

    # --- climatology of the truth: MAGT, stability class, planted warming ----------------
    def _truth_statics(self):
        p = self.twin.p
        c, tr, td = p.climate, p.truth, p.trend
        doy = np.arange(0.5, 365.0, 5.0)
        hours = np.arange(0.0, 24.0, 2.0)
        seas = -np.cos(2 * np.pi * (doy - (c.coldest_doy - 1)) / YEAR)
        f = diurnal_shape(hours, c.diurnal_peak_hour)
        spring = np.exp(-(((doy - 125.0) / 45.0) ** 2))
        dmean = self.D0 * (1 + c.diurnal_spring_boost * spring.mean()) * (1 - c.cloud_damping * 0.3)
        total = np.zeros(self.n)
        tmin = np.full(self.n, np.inf)
        for s_ in seas:  # loop keeps memory at (hours, npts)
            T = self.M0[None, :] + self.A[None, :] * s_ + dmean[None, :] * f[:, None]
            Tc = compress(T, tr.zero_curtain_strength, tr.zero_curtain_scale_K)
            total += Tc.sum(axis=0)
            tmin = np.minimum(tmin, Tc.min(axis=0))
        self.magt = total / (seas.size * hours.size)
        self.freezes = tmin < -tr.hysteresis_K
        e = td.class_edges
        cls = np.select(
            [self.magt < e[0], self.magt < e[1], self.magt < e[2], self.magt < e[3], self.magt <= e[4], self.freezes],
            [1, 2, 3, 4, 5, 6],
            0,
        )
        self.stability = np.where((self.region == 1) & ~self.sea, cls, 0).astype("u1")
        # analytic sensitivity dFD/dT (days per K), mean of the two overpasses
        sens = np.zeros(self.n)
        for h in tr.overpass_hours:
            Mp = self.M0 + dmean * diurnal_shape(h, c.diurnal_peak_hour)
            root = np.sqrt(np.maximum(self.A**2 - Mp**2, (td.sensitivity_floor * self.A) ** 2))
            sens += np.where(np.abs(Mp) < self.A, YEAR / (np.pi * root), 0.0) / len(tr.overpass_hours)
        self.sensitivity = sens
        target = np.full(self.n, np.nan)
        for k, s in td.qt_class_slopes.items():
            target = np.where((self.region == 1) & (self.stability == int(k)), s, target)
        for r, s in td.region_slopes.items():
            target = np.where((self.region == int(r)) & self.freezes, s, target)
        self.target_slope = target
        ok = np.isfinite(target) & (sens > 0)
        self.warming = np.where(
            ok,
            np.abs(np.where(ok, target, 0.0)) * td.sensitivity_correction / np.where(ok, sens, 1.0),
            td.default_warming_K_per_yr,
        )

    # --- observers ---------------------------------------------------------------------
    def add_era5_variant(self):
        p = self.twin.p
        e, c = p.era5, p.climate
        d = e.smoothing_offset_deg
        zs = np.zeros(self.n)
        for dx in (-d, 0.0, d):
            for dy in (-d, 0.0, d):
                zs += self.twin.world.elevation(self.lon + dx, self.lat + dy) / 9.0
        self.elev_smooth = zs
        b = self.twin.modes_ee.basis(self.lon, self.lat)
        self.bee = b / np.sqrt((b**2).sum(axis=1, keepdims=True))
        lcb = np.vectorize(lambda k: e.land_cover_bias_K.get(int(k), 0.0))(self.land_cover).astype("f8")
        zk = zs / 1000.0
        M0 = (
            self.m_sl
            - c.lapse_rate_K_per_km * zk
            - e.lapse_error_K_per_km * (zk - 3.0)
            + lcb
            + e.tci_bias_K_per_m * self.tci
        )
        self.variants["era5"] = Variant(
            "era5",
            M0,
            self.A * e.amplitude_factor,
            self.D0 * e.diurnal_factor,
            self.warming,
            e.diurnal_peak_hour,
            e.zero_curtain_strength,
            e.zero_curtain_scale_K,
            snow="era5",
            lead_days=e.season_lead_days,
            lead_sd_days=e.season_lead_sd_days,
        )

    def add_station_variants(self):
        p = self.twin.p
        s, c, tr = p.stations, p.climate, p.truth
        self.variants["probe"] = Variant(
            "probe",
            self.M0,
            self.A,
            self.D0 * s.diurnal_damping_5cm,
            self.warming,
            c.diurnal_peak_hour + s.lag_5cm_h,
            tr.zero_curtain_strength,
            tr.zero_curtain_scale_K,
        )
        self.variants["surface"] = Variant(
            "surface",
            self.M0,
            self.A,
            self.D0 * s.surface_diurnal_factor,
            self.warming,
            s.surface_peak_hour,
            0.2,
            0.5,
            weather=s.surface_weather_factor,
            insulated=False,
            clip_on_snow=True,
        )


class Daily:
    """Rolling buffer of daily states for one point set (days ``lo`` .. ``hi - 1``).

    Stateless fields (weather, precipitation) are functions of the day; the snow packs,
    the ERA5 soil-water bucket and the ERA5 noise are recursions carried across chunks.
    "Boundary" arrays (:data:`BOUNDARY`) hold values at 00 UTC of days ``lo .. hi``
    (one row more than the daily arrays) so that instants can be interpolated.
    """

    BOUNDARY = ("W0", "W0e", "SL", "swe", "swe_e", "theta", "noise", "eerr")
    KEEP_TRUTH = ("W0", "SL", "cl", "swe")
    KEEP_ERA5 = ("W0", "W0e", "SL", "cl", "swe_e", "theta", "noise", "eerr", "P", "c", "wd")

    def __init__(
        self, ps: PointSet, first_day: int, era5: bool = False, stateful: bool = True, soil_water: bool = False
    ):
        self.keep = self.KEEP_ERA5 if era5 else self.KEEP_TRUTH + (("theta",) if soil_water else ())
        self.soil_water = soil_water and not era5  # the true layer-1 bucket (for the brightness temperatures)
        self.ps = ps
        self.twin = ps.twin
        self.era5 = era5
        self.stateful = stateful
        self.lo = self.hi = int(first_day)
        self.a: dict[str, np.ndarray] = {}
        n = ps.n
        self.swe = np.zeros(n)
        if self.soil_water:
            sw = self.twin.p.soil_water
            self.theta = sw.field_capacity[0] + sw.field_capacity[1] * ps.wetness
        if era5:
            self.swe_e = np.zeros(n)
            sw = self.twin.p.soil_water
            self.theta = sw.field_capacity[0] + sw.field_capacity[1] * ps.wetness
            self.noise = F.hash_normal(self.twin.seed, F.S_ERA_NOISE, ps.k1, ps.k2, first_day)

    # -- stateless daily fields ---------------------------------------------------------
    def stateless(self, days: np.ndarray, variant: str = "truth") -> dict:
        """Daily fields for ``days``; W0/SL have one extra row (00 UTC of the day after)."""
        twin, ps, p = self.twin, self.ps, self.twin.p
        c, pr, sn = p.climate, p.precip, p.snow
        days = np.asarray(days, np.int64)
        ext = np.append(days, days[-1] + 1)
        coef = np.concatenate([twin.ser_wl[ext], twin.ser_wm[ext]], axis=1)
        W0 = coef @ ps.bw.T  # (nd+1, npts)
        if variant == "era5":
            W0 = era5_weather(twin, ps, W0, ext)
        SL = twin.ser_slow[ext] @ ps.bslow.T
        zc = np.concatenate([twin.ser_zl[days], twin.ser_zs[days]], axis=1)
        Z = zc @ ps.bz.T
        tmid = days[:, None] + 0.5
        doy = np.mod(tmid, YEAR)
        m = np.exp(ps.kappa[None, :] * np.cos(2 * np.pi * (doy - pr.monsoon_doy) / YEAR)) / ps.i0kappa[None, :]
        z0 = pr.occurrence_z - pr.occurrence_season * (m - 1.0)
        ex = np.interp(z0, _ZGRID, twin.excess)
        P = ps.p_ann[None, :] / YEAR * m * np.maximum(Z - z0, 0.0) ** pr.intensity_power / ex
        cl = F.sig((Z - z0 + 0.3) / 0.2)
        storm_c = (
            pr.storm_local_hour
            - ps.lon[None, :] / 15.0
            + pr.storm_hour_sd * twin.storm_shift[days][:, None]
            + ps.storm_local
        )
        storm_c = np.clip(storm_c, -2.0, 26.0)
        lo, hi = pr.storm_width_h
        storm_w = (lo + (hi - lo) * twin.storm_width[days])[:, None] * np.ones((1, ps.n))
        v = ps.variants[variant]
        yr = 1950.0 + tmid / YEAR
        lead = v.lead_days + (
            v.lead_sd_days * year_anomaly(twin.seed, F.S_ERA_LEAD, ps.lon, ps.lat, tmid) if v.lead_sd_days else 0.0
        )
        base = (
            v.M0
            + v.w * (yr - p.trend.reference_year)
            + c.slow_sigma_K * 0.5 * (SL[:-1] + SL[1:])
            + v.A * -np.cos(2 * np.pi * (tmid + lead - (c.coldest_doy - 1)) / YEAR)
        )
        sigw = c.weather_sigma[0] + c.weather_sigma[1] * np.cos(2 * np.pi * (doy - 14.0) / YEAR)
        Ta = base + c.air_offset_K + c.air_weather_factor * sigw * 0.5 * (W0[:-1] + W0[1:])
        fs = F.sig((sn.rain_snow_threshold_C - Ta) / sn.rain_snow_width_K)
        return {"W0": W0, "SL": SL, "Z": Z, "P": P, "cl": cl, "c": storm_c, "wd": storm_w, "Ta": Ta, "fs": fs}

    # -- recursions -----------------------------------------------------------------------
    def extend(self, hi: int):
        hi = int(hi)
        if hi <= self.hi:
            return
        days = np.arange(self.hi, hi)
        out = self.stateless(days, "truth")
        if self.stateful and not self.era5:
            out["swe"], out["melt"] = self._snow(days, out["P"], out["fs"], out["Ta"], era5=False)
            if self.soil_water:
                out["theta"] = self._bucket(out["P"] * (1 - out["fs"]), out["melt"], out["Ta"])
        if self.era5:
            de = self.stateless(days, "era5")
            out["W0e"] = de["W0"]
            out["Ta_e"] = de["Ta"]
            out["fs_e"] = de["fs"]
            out["swe_e"], out["melt_e"] = self._snow(days, out["P"], de["fs"], de["Ta"], era5=True)
            out["theta"] = self._bucket(out["P"] * (1 - de["fs"]) * self._era_pfac(), out["melt_e"], de["Ta"])
            out["noise"] = self._noise(days)
            out["eerr"] = self.twin.ser_ee[np.append(days, days[-1] + 1)] @ self.ps.bee.T
        for k in self.keep:
            if k not in out:
                continue
            v = out[k].astype("f4")
            if k not in self.a:
                self.a[k] = v
            elif k in self.BOUNDARY:
                self.a[k] = np.concatenate([self.a[k][:-1], v], axis=0)
            else:
                self.a[k] = np.concatenate([self.a[k], v], axis=0)
        self.hi = hi

    def _era_pfac(self):
        return 1.0 + self.twin.p.era5.precip_factor_plateau * self.ps.plat

    def _snow(self, days, P, fs, Ta, era5: bool):
        """SWE (mm) at 00 UTC of days[0] .. days[-1] + 1, and the daily melt (mm)."""
        sn = self.twin.p.snow
        e = self.twin.p.era5
        swe = self.swe_e if era5 else self.swe
        out = np.empty((days.size + 1, self.ps.n))
        melt_out = np.empty((days.size, self.ps.n))
        snowfall = P * fs
        tm = np.full(self.ps.n, sn.melt_threshold_C)
        ddf, rad = sn.degree_day_mm_per_K, sn.radiation_melt_mm_per_day
        if era5:
            snowfall = snowfall * e.snowfall_factor * self._era_pfac()
            ddf, rad = ddf * e.degree_day_factor, rad * e.degree_day_factor
        years = (days + 0.5) / YEAR + 1950.0
        cur_year = None
        for i in range(days.size):
            if era5:
                year = int(np.floor(years[i]))
                if year != cur_year:
                    cur_year = year
                    mu, sd = e.melt_threshold_offset
                    tm = (
                        sn.melt_threshold_C
                        + mu
                        + sd * F.hash_normal(self.twin.seed, F.S_ERA_MELT, self.ps.k1, self.ps.k2, year)
                    )
            out[i] = swe
            swe = swe + snowfall[i]
            dT = Ta[i] - tm
            pot = ddf * np.maximum(dT, 0.0) + rad * np.clip(1.0 + dT / sn.radiation_melt_range_K, 0.0, 1.0)
            melt = np.minimum(swe, pot)
            swe = np.maximum(swe - melt - sn.sublimation_mm_per_day, 0.0)
            melt_out[i] = melt
        out[-1] = swe
        if era5:
            self.swe_e = swe
        else:
            self.swe = swe
        return out, melt_out

    def _bucket(self, rain, melt, Ta):
        sw = self.twin.p.soil_water
        ps = self.ps
        fc = sw.field_capacity[0] + sw.field_capacity[1] * ps.wetness
        th = self.theta
        out = np.empty((rain.shape[0] + 1, ps.n))
        for i in range(rain.shape[0]):
            out[i] = th
            frozen = (Ta[i] - self.twin.p.climate.air_offset_K) < -0.5
            infl = (rain[i] + melt[i]) * np.where(frozen, sw.frozen_infiltration, 1.0) / sw.layer_mm
            th = np.minimum(th + infl, sw.saturation)
            th = th - sw.drainage_per_day * np.maximum(th - fc, 0.0)
            et = sw.et_per_day * np.clip(Ta[i], 0.0, 20.0) / 20.0 * np.clip((th - sw.wilting) / (fc - sw.wilting), 0, 1)
            th = np.maximum(th - np.where(frozen, 0.0, et), sw.wilting * 0.8)
        out[-1] = th
        self.theta = th
        return out

    def _noise(self, days):
        e = self.twin.p.era5
        ps = self.ps
        out = np.empty((days.size + 1, ps.n))
        x = self.noise
        phi = e.noise_ar1
        for i, n in enumerate(days):
            out[i] = x
            x = phi * x + np.sqrt(1 - phi * phi) * F.hash_normal(self.twin.seed, F.S_ERA_NOISE, ps.k1, ps.k2, n + 1)
        out[-1] = x
        self.noise = x
        return out

    def trim(self, lo: int):
        lo = int(lo)
        if lo <= self.lo:
            return
        k = lo - self.lo
        for key in self.a:
            self.a[key] = self.a[key][k:]
        self.lo = lo


def era5_weather(twin: Twin, ps: PointSet, W0: np.ndarray, days: np.ndarray) -> np.ndarray:
    """ERA5-Land's weather anomaly: ``rho W + sqrt(1 - rho^2) W'`` with ``W'`` an independent
    field of the same structure (unit variance per point)."""
    rho = twin.p.era5.weather_correlation
    coef = np.concatenate([twin.ser_wl_e[days], twin.ser_wm_e[days]], axis=1)
    return rho * W0 + np.sqrt(1.0 - rho * rho) * (coef @ ps.bw.T)


def _take(arr: np.ndarray, i: np.ndarray) -> np.ndarray:
    """arr[i[r, c], c] for an (ndays, npts) array and row indices i (nt, npts)."""
    n = arr.shape[1]
    flat = i * n + np.arange(n)
    return np.take(arr.ravel(), flat)


def _interp_daily(daily: Daily, key: str, i, fr):
    """Linear interpolation of a boundary array between 00 UTC values."""
    arr = daily.a[key]
    a0 = _take(arr, i)
    a1 = _take(arr, i + 1)
    return a0 + (a1 - a0) * fr


def temperature(daily: Daily, variant: str, t, extras: bool = False):
    """Soil temperature (degC) seen by ``variant`` at instants ``t`` (days since EPOCH, (nt, npts))."""
    ps = daily.ps
    p = ps.twin.p
    c, sn = p.climate, p.snow
    v = ps.variants[variant]
    t = np.broadcast_to(np.asarray(t, "f8"), np.broadcast_shapes(np.shape(t), (1, ps.n)))
    n = np.floor(t).astype(np.int64)
    fr = t - n
    i = n - daily.lo
    if i.min() < 0 or i.max() >= daily.hi - daily.lo:
        raise RuntimeError(f"instant outside the daily buffer ({daily.lo}..{daily.hi}): {n.min()}..{n.max()}")
    W = _interp_daily(daily, "W0e" if variant == "era5" else "W0", i, fr)
    SL = _interp_daily(daily, "SL", i, fr)
    yr = 1950.0 + t / YEAR
    lead = v.lead_days + (
        v.lead_sd_days * year_anomaly(ps.twin.seed, F.S_ERA_LEAD, ps.lon, ps.lat, t) if v.lead_sd_days else 0.0
    )
    base = (
        v.M0
        + v.w * (yr - p.trend.reference_year)
        + c.slow_sigma_K * SL
        + v.A * -np.cos(2 * np.pi * (t + lead - (c.coldest_doy - 1)) / YEAR)
    )
    doy = np.mod(t, YEAR)
    sigw = c.weather_sigma[0] + c.weather_sigma[1] * np.cos(2 * np.pi * (doy - 14.0) / YEAR)
    spring = np.exp(-(((doy - 125.0) / 45.0) ** 2))
    cl = _take(daily.a["cl"], i)
    D = v.D0 * (1 + c.diurnal_spring_boost * spring) * (1 - c.cloud_damping * cl)
    lsh = np.mod(fr * 24.0 + ps.lon / 15.0, 24.0)
    f = diurnal_shape(lsh, v.peak)
    swe_key = "swe_e" if v.snow == "era5" else "swe"
    density = sn.density * (p.era5.snow_density_factor if v.snow == "era5" else 1.0)
    sd = _interp_daily(daily, swe_key, i, fr) * (1.0 / 1000.0 / density)
    weather = v.weather * sigw * W
    if v.insulated:
        ks = np.exp(-sd / sn.seasonal_insulation_m)
        kw = np.exp(-sd / sn.weather_damping_m)
        kd = np.exp(-sd / sn.diurnal_damping_m)
        tlim = np.minimum(0.25 * base, 0.0) - 0.1
        T = ks * base + (1 - ks) * tlim + kw * weather + kd * D * f
    else:
        T = base + weather + D * f
        if v.clip_on_snow:
            T = np.where(sd > 0.02, np.minimum(T, 0.0), T)
    if variant == "era5":
        e = p.era5
        T = (
            T
            + e.noise_sigma_K * _interp_daily(daily, "noise", i, fr)
            + e.error_field_sigma_K * _interp_daily(daily, "eerr", i, fr)
        )
        # cold-season cold bias over the plateau: 1 at the coldest day, 0 at the warmest
        winter = 0.5 * (1.0 + np.cos(2 * np.pi * (doy - (c.coldest_doy - 1)) / YEAR))
        T = T + e.cold_season_bias_K * ps.plat * winter
        hour = np.round(t * 24.0).astype(np.int64)
        T = T + e.hourly_noise_K * F.hash_normal(ps.twin.seed, F.S_ERA_HOUR, ps.k1, ps.k2, hour)
    Tc = compress(T, v.cs, v.cc)
    if not extras:
        return Tc
    Tfree = base + weather + D * f
    return Tc, {"sd": sd, "Tfree": Tfree, "i": i, "fr": fr}


def temperature_blocked(daily: Daily, variant: str, t: np.ndarray, extras: bool = False, max_values: int = 2_000_000):
    """:func:`temperature` over blocks of the time axis (bounded memory); float32 results."""
    t = np.asarray(t, "f8")
    n = daily.ps.n
    nt = t.shape[0]
    step = max(1, max_values // max(n, 1))
    if nt <= step:
        r = temperature(daily, variant, t, extras)
        if not extras:
            return r.astype("f4")
        return r[0].astype("f4"), {k: r[1][k].astype("f4") for k in ("sd", "Tfree")}
    out = np.empty((nt, n), "f4")
    ex = {"sd": np.empty((nt, n), "f4"), "Tfree": np.empty((nt, n), "f4")} if extras else None
    for a in range(0, nt, step):
        r = temperature(daily, variant, t[a : a + step], extras)
        if extras:
            out[a : a + step] = r[0]
            for k in ex:
                ex[k][a : a + step] = r[1][k]
        else:
            out[a : a + step] = r
    return (out, ex) if extras else out


def hysteresis(T: np.ndarray, prev: np.ndarray, delta: float):
    """FT state (1 frozen) along axis 0 with hysteresis; ``prev`` is the state before T[0]."""
    nt = T.shape[0]
    dec = np.where(T < -delta, 1, np.where(T > delta, 0, -1)).astype(np.int8)
    idx = np.where(dec >= 0, np.arange(nt)[:, None], -1)
    idx = np.maximum.accumulate(idx, axis=0)
    st = np.take_along_axis(dec, np.maximum(idx, 0), axis=0)
    st = np.where(idx >= 0, st, prev[None, :]).astype(np.uint8)
    return st, st[-1].copy()


def storm_cdf(h, c, w):
    """Fraction of a day's precipitation fallen between 00 UTC and UTC hour ``h``."""
    a = ndtr((0.0 - c) / w)
    b = ndtr((24.0 - c) / w)
    return np.clip((ndtr((h - c) / w) - a) / np.maximum(b - a, 1e-12), 0.0, 1.0)
