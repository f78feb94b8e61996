"""ERA5-Land hourly reanalysis at the request hours: stl1, swvl1, sde, tp on the 0.1 degree box."""

from __future__ import annotations

import numpy as np

from ftcloud.study import FREEZING_K
from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain

__all__ = ["Era5Observer"]


class Era5Observer:
    """The hidden soil seen through ERA5-Land's own land model: its temperature variant
    (bias, damped diurnal cycle), snow depth from its SWE with its own density, liquid soil water
    and precipitation with a plateau factor and shifted, widened storms, accumulated from 00 UTC
    (docs/twin.md, "ERA5-Land"). Stateless: the daily buffers of the domain carry the state.
    """

    def __init__(self, domain: Domain, params):
        self.domain = domain
        self.params = params

    def hours(self, a: np.datetime64, b: np.datetime64) -> np.ndarray:
        """The UTC times written for UTC dates ``a .. b``."""
        utc_dates = np.arange(a, b + 1)
        hours = np.array(self.domain.era_hours, np.int64)
        return (utc_dates.astype("datetime64[h]")[:, None] + hours[None, :].astype("timedelta64[h]")).ravel()

    def observe(self, a: np.datetime64, b: np.datetime64) -> dict:
        """Variables (ntime, nlat, nlon) float32 (NaN over sea) for UTC dates ``a .. b``."""
        p = self.params
        dom = self.domain
        utc_dates = np.arange(a, b + 1)
        hours = np.array(dom.era_hours, np.int64)
        t = PH.day_number(a) + np.repeat(np.arange(utc_dates.size), hours.size) + np.tile(hours, utc_dates.size) / 24.0
        ps, de = dom.pe, dom.de
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
            res["stl1"][sl] = T + FREEZING_K
            res["swvl1"][sl] = theta * liq
            res["sde"][sl] = sd
            res["tp"][sl] = np.where(hh == 0, prev, acc) / 1000.0
        nlat, nlon = dom.era_lats.size, dom.era_lons.size
        for v in res.values():
            v[:, ps.sea] = np.nan
        return {k: v.reshape(t.size, nlat, nlon) for k, v in res.items()}
