"""IMERG Final half-hourly precipitation rate at the granules the overpass steps read."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain

__all__ = ["ImergObserver"]


class ImergObserver:
    """The hidden storm rate of each half hour times log-normal noise (mean one), light rain missed
    with a probability, snowfall damped (docs/twin.md, "IMERG"). Stateless.

    Only the granules whose start minute the ERA5 request hours read (``domain.imerg_minutes``)
    are simulated, on the domain's 0.1 degree IMERG cells.
    """

    def __init__(self, domain: Domain, params, seed: int, period: tuple[np.datetime64, np.datetime64]):
        if domain.pi is None:
            raise RuntimeError("internal: the domain was built without IMERG cells")
        self.domain = domain
        self.p = params
        self.seed = int(seed)
        self.period = period

    def observe(self, dates: np.ndarray) -> Iterator[tuple[np.datetime64, np.ndarray]]:
        """(granule start, rate (nlon, nlat) mm/h rounded to 1e-4) for each granule of ``dates`` in the period."""
        a, b = self.period
        sel = dates[(dates >= a) & (dates <= b)]
        if sel.size == 0:
            return
        p = self.p
        seed = self.seed
        dom = self.domain
        starts = np.unique(
            (np.array([PH.day_number(d) for d in sel])[:, None] * 1440 + dom.imerg_minutes[None, :]).ravel()
        )
        udays = np.unique(starts // 1440)
        st = dom.dI.stateless(udays, "truth")
        ps = dom.pi
        nlat, nlon = dom.im_lats.size, dom.im_lons.size
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
            yield start, rate.reshape(nlat, nlon).T
