"""The ESDR FT record (Kim et al.), 25 km, one daily code from the AM and PM states."""

from __future__ import annotations

import numpy as np

from ftcloud.synth import _fields as F
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain
from ftcloud.synth.observers._common import TRANSITION_MONTHS, ar1, months_of

__all__ = ["EsdrObserver", "MISSING"]

MISSING = 254


class EsdrObserver:
    """The frozen fraction of each 25 km cell, exponentially smoothed in time, thresholded at one
    half, then misclassified with AR(1)-correlated errors (more near 0 degC, for cold thawed soil,
    in the transition season, with terrain, open water and vegetation); codes 0 frozen both
    passes, 1 thawed both, 2 frozen AM / thawed PM, 3 the reverse, 254 missing (docs/twin.md, "ESDR").

    State: the smoothed frozen fraction and the AR(1) deviate per pass and 25 km cell.
    """

    def __init__(self, domain: Domain, params, seed: int):
        self.domain = domain
        self.p = params
        self.seed = int(seed)
        self.g = None
        self.z = np.zeros((2, domain.n25))

    def observe(self, dates: np.ndarray, days: np.ndarray, truth: dict) -> np.ndarray:
        """ESDR codes (nday, n25) uint8 from the truth on the work cells."""
        p = self.p
        seed = self.seed
        dom = self.domain
        n25 = dom.n25
        nd = days.size
        ft = truth["ft"]
        land = ft <= 1
        frac = (
            np.stack(
                [
                    np.stack(
                        [np.bincount(dom.cell25, weights=(ft[i, j] == 1).astype("f8"), minlength=n25) for j in range(2)]
                    )
                    for i in range(nd)
                ]
            )
            / dom.count25
        )
        Tm = (
            np.stack(
                [
                    np.stack(
                        [
                            np.bincount(dom.cell25, weights=np.where(land[i, j], truth["T"][i, j], 0.0), minlength=n25)
                            for j in range(2)
                        ]
                    )
                    for i in range(nd)
                ]
            )
            / dom.count25
        )
        if self.g is None:
            self.g = frac[0].copy()
        a = p.smoothing_weight_today
        g = np.empty_like(frac)
        gs = self.g
        for i in range(nd):
            gs = a * frac[i] + (1 - a) * gs
            g[i] = gs
        self.g = gs
        state = (g >= 0.5).astype(np.int16)
        trans = np.isin(months_of(dates), TRANSITION_MONTHS)[:, None, None]
        near0 = np.exp(-np.abs(Tm) / 1.5)
        cold = np.where(Tm > 0, np.exp(-np.maximum(Tm, 0) / p.cold_thawed_scale_K), 0.0)
        site = p.tci_per_400m * dom.tci25 + p.open_water * dom.owf25 + dom.veg25
        p_f = p.frozen_as_thawed + p.near_zero_frozen * near0 + site
        p_t = p.thawed_as_frozen + p.cold_thawed * cold + p.transition_season * trans + site
        perr = np.clip(np.where(state == 1, p_f, p_t), 0, 0.6)
        k1, k2 = dom.key25
        z, self.z = ar1(seed, F.S_ESDR_ERR, k1, k2, days, self.z, p.error_ar1)
        obs = np.where(PH.ndtr(z) < perr, 1 - state, state)  # 1 frozen
        miss = F.hash_uniform(seed, F.S_ESDR_DAY, days[:, None], np.arange(2)[None, :]) < p.day_missing_probability
        miss = miss[:, :, None] | dom.water25[None, None, :] | dom.sea25[None, None, :]
        am, pm = obs[:, 0], obs[:, 1]
        code = np.select([(am == 1) & (pm == 1), (am == 0) & (pm == 0), (am == 1) & (pm == 0)], [0, 1, 2], 3)
        return np.where(miss.any(axis=1), MISSING, code).astype(np.uint8)
