"""Small date helpers shared by the observers."""

from __future__ import annotations

import numpy as np

from ftcloud.study import SEASON_MONTHS
from ftcloud.synth import _fields as F

TRANSITION_MONTHS = SEASON_MONTHS["transition"]


def as_day(x) -> np.datetime64:
    return np.datetime64(str(x)[:10], "D")


def months_of(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[M]").astype(int) % 12 + 1


def ar1(seed: int, stream: int, k1, k2, days, z0: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance AR(1) noise per (day, pass, cell) from hashed innovations; returns (z, last state)."""
    z = np.empty((len(days),) + z0.shape)
    zs = z0
    for i, n in enumerate(days):
        e = F.hash_normal(seed, stream, k1[None, :], k2[None, :], n, np.arange(2)[:, None])
        zs = rho * zs + np.sqrt(1 - rho * rho) * e
        z[i] = zs
    return z, zs
