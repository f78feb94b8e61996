"""The hidden truth: the freeze/thaw state of the true 0-7 cm soil at the two overpasses.

:class:`Truth` carries the hysteresis state from one chunk of days to the next;
:class:`FrozenDays` counts truth frozen days per calendar year on the region window and
measures the realised frozen-day slopes of the planted trend groups. Neither writes files.
"""

from __future__ import annotations

import numpy as np

from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain
from ftcloud.synth.params import REGION_CODES, STABILITY_CLASSES, TwinParameters

__all__ = ["Truth", "FrozenDays", "year_of"]

FT_SEA = 254  # the truth's code for sea cells


def year_of(d) -> int:
    return int(str(np.datetime64(d, "D"))[:4])


class Truth:
    """Truth FT at the overpass hours of every work cell, chunk by chunk (state: the last FT)."""

    def __init__(self, domain: Domain, params: TwinParameters):
        self.domain = domain
        self.params = params
        self.ft_state = None

    def step(self, days: np.ndarray) -> dict:
        """Truth for the day numbers ``days`` (consecutive, after the previous call's).

        Returns ``ft`` (uint8, 1 frozen, 0 thawed, 254 sea), soil temperature ``T`` (degC),
        snow depth ``sd`` (m) and free-air temperature ``Tfree`` (degC), each (nday, 2, ncell), and the
        volumetric soil water ``theta`` where the domain carries it (``Domain(tb=True)``).
        """
        p = self.params
        ps = self.domain.p9
        H = np.array(p.truth.overpass_hours)
        t = days[:, None, None] + (H[None, :, None] - ps.lon[None, None, :] / 15.0) / 24.0
        nd = days.size
        Tc, ex = PH.temperature_blocked(self.domain.d9, "truth", t.reshape(nd * 2, ps.n), extras=True)
        if self.ft_state is None:
            self.ft_state = (Tc[0] < 0).astype(np.uint8)
        ft, self.ft_state = PH.hysteresis(Tc, self.ft_state, p.truth.hysteresis_K)
        ft = np.where(ps.sea[None, :], FT_SEA, ft).astype(np.uint8)
        out = {
            "ft": ft.reshape(nd, 2, ps.n),
            "T": Tc.reshape(nd, 2, ps.n),
            "sd": ex["sd"].reshape(nd, 2, ps.n),
            "Tfree": ex["Tfree"].reshape(nd, 2, ps.n),
        }
        d9 = self.domain.d9
        if "theta" in d9.a:  # the true volumetric soil water of layer 1 (brightness temperatures)
            tt = t.reshape(nd * 2, ps.n)
            n = np.floor(tt).astype(np.int64)
            out["theta"] = PH._interp_daily(d9, "theta", n - d9.lo, tt - n).reshape(nd, 2, ps.n).astype("f4")
        return out


class FrozenDays:
    """Truth frozen days per calendar year and pass on the region window (only days in the period)."""

    def __init__(self, domain: Domain, start: np.datetime64, end: np.datetime64):
        self.domain = domain
        self.years = np.arange(year_of(start), year_of(end) + 1)
        npix = domain.crop_idx.size
        self.fd = np.zeros((self.years.size, 2, npix), np.int32)
        self.days = np.zeros(self.years.size, np.int32)

    def add(self, dates: np.ndarray, ft: np.ndarray) -> None:
        """Count ``ft`` (nday, 2, npix) on the region window for ``dates``."""
        yrs = np.array([year_of(d) for d in dates])
        for y in np.unique(yrs):
            k = int(y - self.years[0])
            m = yrs == y
            self.fd[k] += (ft[m] == 1).sum(axis=0)
            self.days[k] += int(m.sum())

    def realised_slopes(self) -> dict:
        """Least-squares frozen-day slope of each planted group over complete years (at least 5)."""
        ps = self.domain.p9
        ci = self.domain.crop_idx
        complete = self.days >= 365
        realised = {}
        if complete.sum() < 5:
            return realised
        yrs = self.years[complete].astype("f8")
        fdm = self.fd[complete].mean(axis=1)  # (nyear, npix), mean of AM and PM
        stab = ps.stability[ci]
        reg = ps.region[ci]
        groups = {f"qt_{STABILITY_CLASSES[k]}": (reg == 1) & (stab == k) for k in range(0, 7)}
        groups.update({f"region_{REGION_CODES[r]}": reg == r for r in (1, 2, 3, 4)})
        tgt = ps.target_slope[ci]
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
                "warming_K_per_year_mean": round(float(ps.warming[ci][m].mean()), 5),
            }
        return realised
