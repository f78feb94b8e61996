"""SMAP enhanced L3 radiometer FT (SMAP_E_FT), 9 km, AM and PM, on the region window."""

from __future__ import annotations

import numpy as np

from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain
from ftcloud.synth.observers._common import TRANSITION_MONTHS, ar1, as_day, months_of
from ftcloud.synth.truth import year_of

__all__ = ["SmapObserver", "MISSING"]

MISSING = 254


class SmapObserver:
    """Misclassification with AR(1)-correlated errors whose probability grows near 0 degC, with wet
    snow, in the transition season, with terrain, open water and vegetation, plus a per-pixel-year
    term; missing swaths, whole days, outages, water and sea (docs/twin.md, "SMAP_E_FT").

    State: the AR(1) error deviate per pass and pixel.
    """

    def __init__(self, domain: Domain, params, seed: int):
        self.domain = domain
        self.p = params
        self.seed = int(seed)
        self.z = np.zeros((2, domain.crop_idx.size))
        win = domain.window
        ci = domain.crop_idx
        ps = domain.p9
        shp = win.shape
        # static layers of the granule on the region window
        self.static = {
            "latitude": ps.lat[ci].reshape(shp),
            "longitude": ps.lon[ci].reshape(shp),
            "open_water_body_fraction": np.where(ps.sea[ci], 1.0, ps.owf[ci]).reshape(shp),
            "terrain_complexity_index": ps.tci[ci].reshape(shp),
            "altitude_dem": ps.elev[ci].reshape(shp),
        }
        # vegetation term per pass and pixel (static: the land cover does not change)
        p = params
        veg = np.vectorize(lambda k: p.vegetation.get(int(k), 0.0))(ps.land_cover[ci]).astype("f8")
        self.veg = (
            veg[None, None, :]
            * np.array([p.vegetation_pass_factor["AM"], p.vegetation_pass_factor["PM"]])[None, :, None]
        )
        xx, yy = np.meshgrid(win.x, win.y)
        self.xy_km = (xx.ravel() / 1000.0, yy.ravel() / 1000.0)

    def observe(self, dates: np.ndarray, days: np.ndarray, truth: dict) -> np.ndarray:
        """SMAP_E_FT (nday, 2, npix) uint8 (1 frozen, 0 thawed, 254 missing) from the truth on the region window."""
        p = self.p
        seed = self.seed
        ci = self.domain.crop_idx
        ps = self.domain.p9
        k1, k2 = ps.k1[ci], ps.k2[ci]
        ft = truth["ft"].astype(np.int16)
        T = truth["T"]
        wet = (truth["sd"] > 0.01) & (truth["Tfree"] > 0.0)
        trans = np.isin(months_of(dates), TRANSITION_MONTHS)[:, None, None]
        near0 = np.exp(-np.abs(T) / p.near_zero_scale_K)
        tci = np.clip(ps.tci[ci] / 400.0, 0, 1)[None, None, :]
        owf = ps.owf[ci][None, None, :]
        years = np.array([year_of(d) for d in dates])
        pix = np.stack([p.pixel_year_sd * F.hash_normal(seed, F.S_SMAP_PIXYEAR, k1, k2, y) for y in years])[:, None, :]
        veg = self.veg
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
        z, self.z = ar1(seed, F.S_SMAP_ERR, k1, k2, days, self.z, p.error_ar1)
        err = PH.ndtr(z) < perr
        obs = np.where(err, 1 - ft, ft)
        # missing: swaths, whole days, outages, water, sea
        xk, yk = self.xy_km
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
            out = (dates >= as_day(a)) & (dates <= as_day(b))
            miss |= out[:, None, None]
        miss |= (owf > p.water_fill_fraction) | ps.sea[ci][None, None, :]
        return np.where(miss | (ft > 1), MISSING, obs).astype(np.uint8)
