"""The discriminant-function algorithm (DFA; Zhao et al. 2011): one linear discriminant function per class on
multi-frequency brightness temperatures, fitted to a reference FT; frozen where the frozen function wins.

``g_k(x) = x . w_k + c_k`` with ``w_k = S^-1 mu_k`` and ``c_k = -mu_k . S^-1 mu_k / 2 + ln(prior_k)``: Fisher's
linear discriminant functions with the pooled within-class covariance ``S`` (the classical form of Zhao et
al.'s functions; their published coefficients are for AMSR-E over China, so ftcloud fits its own to the
target it is given). The channels are a parameter (default: 18.7 and 36.5 GHz H and V, 23.8 GHz V and
89 GHz V, the scattering and emission channels; assumed).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ftcloud.retrieve.base import Retrieval, as_ft
from ftcloud.retrieve.sampling import sample_pixel_days

__all__ = ["DFA_CHANNELS", "DFARetrieval", "fit_discriminants"]

DFA_CHANNELS = ("TB18.7H", "TB18.7V", "TB23.8V", "TB36.5H", "TB36.5V", "TB89.0V")


def fit_discriminants(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``W`` (2, nfeat) and constants ``c`` (2,) of the linear discriminant functions of classes
    0 (thawed) and 1 (frozen), from samples ``X`` (n, nfeat) with labels ``y`` in {0, 1}.

    >>> X = np.array([[0.0], [0.2], [-0.2], [2.0], [2.2], [1.8]]); y = np.array([0, 0, 0, 1, 1, 1])
    >>> W, c = fit_discriminants(X, y)
    >>> g = lambda x: W @ np.atleast_1d(x) + c  # equal priors and variances: the boundary is x = 1
    >>> bool(g(0.9)[0] > g(0.9)[1]), bool(g(1.1)[1] > g(1.1)[0])
    (True, True)
    """
    X = np.asarray(X, "f8")
    y = np.asarray(y)
    if set(np.unique(y).tolist()) != {0, 1}:
        from ftcloud.errors import ValidationError

        raise ValidationError("dfa: the reference FT holds only one class in the fit period; both are needed")
    mus, cov, priors = [], np.zeros((X.shape[1], X.shape[1])), []
    for k in (0, 1):
        xk = X[y == k]
        mus.append(xk.mean(axis=0))
        cov += (xk - mus[-1]).T @ (xk - mus[-1])
        priors.append(len(xk) / len(X))
    cov /= len(X) - 2
    inv = np.linalg.pinv(cov)
    W = np.stack([inv @ m for m in mus])
    c = np.array([-0.5 * m @ inv @ m + np.log(p) for m, p in zip(mus, priors)])
    return W, c


class DFARetrieval(Retrieval):
    """DFA on the channels ``channels`` of a multi-frequency TB Dataset; ``fit`` needs a reference FT."""

    method, product = "dfa", "DFA_FT"
    source = "discriminant-function algorithm (Zhao et al. 2011) on multi-frequency TB"

    def __init__(self, channels=DFA_CHANNELS, max_samples: int = 200_000, seed: int = 0):
        self.channels = tuple(channels)
        self.inputs = self.channels
        self.max_samples, self.seed = int(max_samples), int(seed)
        self.W = self.c = None

    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        """Fit on the pixel-days where every channel and ``target`` (ftcloud FT codes) are valid: a uniform
        random sample of at most ``max_samples``, streamed from ``ds`` in time blocks (:mod:`.sampling`)."""
        from ftcloud.errors import ValidationError

        self._check(ds)
        if target is None:
            raise ValidationError("dfa: fitting the discriminant functions needs a reference FT (target)")
        X, y, _ = sample_pixel_days(ds, self.channels, target, max_samples=self.max_samples, seed=self.seed)
        if y.size == 0:
            raise ValidationError("dfa: the fit period holds no pixel-day with every channel and the reference FT")
        self.W, self.c = fit_discriminants(X, y)
        return self

    def scores(self, ds: xr.Dataset) -> xr.DataArray:
        """``g_frozen - g_thawed`` per pixel-day (positive: frozen)."""
        if self.W is None:
            from ftcloud.errors import ValidationError

            raise ValidationError("dfa: predict before fit (the discriminant functions are fitted to a reference)")
        d = self.W[1] - self.W[0]
        out = self.c[1] - self.c[0]
        for w, ch in zip(d, self.channels):
            out = out + w * ds[ch]
        return out

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        self._check(ds)
        s = self.scores(ds)
        return as_ft(s > 0, s.notnull(), self.product, self.source)
