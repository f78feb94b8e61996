"""In-situ soil temperature: network probes at 5 cm (half-hourly) and CMA 0 cm daily min/max."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain
from ftcloud.synth.observers._common import as_day
from ftcloud.synth.params import NETWORKS

__all__ = ["InsituObserver"]

SLOTS_PER_DAY = 48  # half-hourly network records


class InsituObserver:
    """Probes read the hidden 5 cm temperature with a fixed per-station offset and white noise,
    then lose single records and whole outages; CMA stations report the daily min and max of
    the 0 cm surface temperature with noise and missing days (docs/twin.md, "In situ").

    State: the series of the whole period (the network records are small), filled chunk by
    chunk by :meth:`observe`; the gap model is applied when the records are read.
    """

    def __init__(self, domain: Domain, params, seed: int, start: np.datetime64, end: np.datetime64):
        if domain.st is None:
            raise RuntimeError("internal: the domain was built without stations")
        self.domain = domain
        self.p = params
        self.seed = int(seed)
        self.start, self.end = start, end
        st = domain.st
        ia, ib = as_day(params.insitu_period[0]), as_day(params.insitu_period[1])
        self.networks: dict[str, dict] = {}
        for k, (name, *_rest) in enumerate(NETWORKS):
            cols = np.nonzero(st.net_index == k)[0]
            if cols.size == 0:
                continue
            na, nb = as_day(NETWORKS[k][6]), as_day(NETWORKS[k][7])
            a = max(ia, na, start)
            b = min(ib, nb, end)
            if a > b:
                continue
            nslots = int((b - a).astype(int) + 1) * SLOTS_PER_DAY
            self.networks[name] = {
                "cols": cols,
                "first": a,
                "last": b,
                "data": np.full((nslots, cols.size), np.nan, "f4"),
            }
        cma_cols = np.nonzero(st.net_index < 0)[0]
        nd = int((end - start).astype(int) + 1)
        self.cma = {
            "cols": cma_cols,
            "min": np.full((nd, cma_cols.size), np.nan, "f4"),
            "max": np.full((nd, cma_cols.size), np.nan, "f4"),
        }

    def observe(self, dates: np.ndarray, days: np.ndarray) -> None:
        """Fill the records of ``dates`` (day numbers ``days``)."""
        sp = self.p
        seed = self.seed
        ps = self.domain.ps
        dS = self.domain.dS
        for s in self.networks.values():
            sel = (dates >= s["first"]) & (dates <= s["last"])
            if not sel.any():
                continue
            dd = days[sel]
            t = (dd[:, None] + np.arange(SLOTS_PER_DAY)[None, :] / float(SLOTS_PER_DAY)).ravel()
            T = PH.temperature_blocked(dS, "probe", np.broadcast_to(t[:, None], (t.size, ps.n)))[:, s["cols"]]
            cols = s["cols"]
            k1, k2 = ps.k1[cols], ps.k2[cols]
            off = sp.offset_5cm_K * F.hash_normal(seed, F.S_ST_NOISE, k1, k2, -1)
            slot = np.round(t * SLOTS_PER_DAY).astype(np.int64)
            noise = sp.noise_5cm_K * F.hash_normal(seed, F.S_ST_NOISE, k1[None, :], k2[None, :], slot[:, None])
            i0 = int((dates[sel][0] - s["first"]).astype(int)) * SLOTS_PER_DAY
            s["data"][i0 : i0 + t.size] = (T + off[None, :] + noise).astype("f4")
        if self.cma["cols"].size:
            sel = (dates >= self.start) & (dates <= self.end)
            if not sel.any():
                return
            cols = self.cma["cols"]
            dd = days[sel]
            lon = ps.lon[None, None, :]
            t = dd[:, None, None] + (np.arange(24)[None, :, None] - lon / 15.0) / 24.0
            nd = dd.size
            T0 = PH.temperature_blocked(dS, "surface", t.reshape(nd * 24, ps.n)).reshape(nd, 24, ps.n)[:, :, cols]
            k1, k2 = ps.k1[cols][None, :], ps.k2[cols][None, :]
            nmin = F.hash_normal(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 0)
            nmax = F.hash_normal(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 1)
            tmin = T0.min(axis=1) + sp.surface_noise_K * nmin
            tmax = np.maximum(T0.max(axis=1) + sp.surface_noise_K * nmax, tmin)
            miss = F.hash_uniform(seed, F.S_CMA_NOISE, k1, k2, dd[:, None], 2) < sp.cma_missing_probability
            i0 = int((dates[sel][0] - self.start).astype(int))
            self.cma["min"][i0 : i0 + nd] = np.where(miss, np.nan, tmin)
            self.cma["max"][i0 : i0 + nd] = np.where(miss, np.nan, tmax)

    def network_records(self) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
        """(network, station column, UTC half-hour times, 5 cm degC with NaN gaps) per probe.

        The gap model: single records lost with ``single_gap_probability``; about
        ``outages_per_station_year`` outages per station and year, each ``outage_days`` long.
        """
        sp = self.p
        seed = self.seed
        ps = self.domain.ps
        for name, s in self.networks.items():
            a, b = s["first"], s["last"]
            ts = np.arange(a.astype("datetime64[m]"), (b + 1).astype("datetime64[m]"), np.timedelta64(30, "m"))
            nslots = ts.size
            years = nslots / (SLOTS_PER_DAY * 365.25)
            for j, col in enumerate(s["cols"]):
                v = s["data"][:, j].copy()
                key = (int(ps.k1[col]), int(ps.k2[col]))
                gap = F.hash_uniform(seed, F.S_ST_GAP, *key, np.arange(nslots)) < sp.single_gap_probability
                v[gap] = np.nan
                n_out = int(
                    np.floor(sp.outages_per_station_year * years + F.hash_uniform(seed, F.S_ST_OUTAGE, *key, -1))
                )
                for k in range(n_out):
                    s0 = int(F.hash_uniform(seed, F.S_ST_OUTAGE, *key, k, 0) * nslots)
                    lo, hi = sp.outage_days
                    ln = int((lo + (hi - lo) * F.hash_uniform(seed, F.S_ST_OUTAGE, *key, k, 1)) * SLOTS_PER_DAY)
                    v[s0 : s0 + ln] = np.nan
                yield name, int(col), ts, v

    def cma_daily(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(station columns, daily min (nday, nstation), daily max) in degC, NaN where missing."""
        return self.cma["cols"], self.cma["min"], self.cma["max"]
