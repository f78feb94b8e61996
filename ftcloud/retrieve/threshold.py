"""The classical threshold rules on brightness temperatures: NPR (SMAP L3 FT), MSTA (ESDR FT) and DIA.

Plain array functions (numpy or xarray, lazy with dask), their thresholds documented parameters:

* **NPR seasonal threshold** (the SMAP L3 FT baseline, SMAP L3 FT ATBD): ``NPR = (TBv - TBh) / (TBv + TBh)``;
  per pixel and pass a frozen reference (mean NPR of the frozen-season months) and a thawed reference (of
  the summer months); the seasonal scale ``delta = (NPR - NPR_fr) / (NPR_th - NPR_fr)``; frozen where
  ``delta < 0.5``. Frozen ground is more emissive and less polarised, so its NPR is low.
* **MSTA** (the ESDR FT algorithm, Kim et al. 2011, 2017): the same seasonal scale on TB 37 GHz V (36.5 GHz
  on AMSR-type sensors), frozen where it falls below 0.5 (STA's threshold; Kim et al. fit it per pixel to
  air temperature, which :meth:`MSTARetrieval.fit` does when given a reference FT).
* **DIA** (the dual-index algorithm, Zuerndorfer et al. 1990, 1992; used for the TPDC FT record):
  frozen where TB37V < 258.2 K and the spectral gradient ``SG = (TB37V - TB19V) / (37 - 19 GHz)`` < 0 K/GHz
  (frozen ground and snow scatter: the higher frequency is the colder one).

The references and the DIA gradient threshold are defaults a user can change; docs/science.md states which
numbers come from the literature and which are assumed.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ftcloud.retrieve.base import Retrieval, as_ft

__all__ = [
    "DIA_SG_K_PER_GHZ",
    "DIA_TB37V_K",
    "DIARetrieval",
    "MSTARetrieval",
    "NPRRetrieval",
    "SEASONAL_THRESHOLD",
    "dia_frozen",
    "npr",
    "seasonal_references",
    "seasonal_scale",
    "spectral_gradient",
]

#: frozen below this seasonal scale (SMAP L3 FT ATBD; STA)
SEASONAL_THRESHOLD = 0.5
#: months whose mean is the frozen / thawed reference (the seasonal extremes on the Tibetan Plateau)
FROZEN_MONTHS = (1, 2)
THAWED_MONTHS = (7, 8)
#: DIA: TB37V below this (K; Zuerndorfer et al. 1990) ...
DIA_TB37V_K = 258.2
#: ... and a spectral gradient below this (K/GHz; assumed: "negative", the sign that marks scattering)
DIA_SG_K_PER_GHZ = 0.0
#: a pixel whose references differ by less than this (in the scaled quantity's units) cannot be scaled
MIN_CONTRAST = {"npr": 0.002, "tb": 2.0}


def npr(tbh, tbv):
    """Normalised polarisation ratio ``(TBv - TBh) / (TBv + TBh)``.

    >>> round(float(npr(240.0, 260.0)), 6)
    0.04
    """
    return (tbv - tbh) / (tbv + tbh)


def spectral_gradient(tb19v, tb37v, f19: float = 18.7, f37: float = 36.5):
    """``(TB37V - TB19V) / (f37 - f19)`` in K/GHz (negative where the surface scatters: frozen ground, snow).

    >>> round(float(spectral_gradient(250.0, 241.1)), 3)
    -0.5
    """
    return (tb37v - tb19v) / (f37 - f19)


def seasonal_scale(x, ref_frozen, ref_thawed):
    """``(x - ref_frozen) / (ref_thawed - ref_frozen)``: 0 at the frozen reference, 1 at the thawed one.

    >>> float(seasonal_scale(0.03, 0.02, 0.06))
    0.25
    """
    return (x - ref_frozen) / (ref_thawed - ref_frozen)


def dia_frozen(tb37v, sg, tb37v_max: float = DIA_TB37V_K, sg_max: float = DIA_SG_K_PER_GHZ):
    """DIA: frozen where TB37V < ``tb37v_max`` and the spectral gradient < ``sg_max`` (both indices).

    >>> dia_frozen(np.array([250.0, 250.0, 262.0]), np.array([-0.5, 0.3, -0.5])).tolist()
    [True, False, False]
    """
    return (tb37v < tb37v_max) & (sg < sg_max)


def seasonal_references(x: xr.DataArray, frozen_months=FROZEN_MONTHS, thawed_months=THAWED_MONTHS, dim="time"):
    """Per-pixel (and per-pass) means of ``x`` over the frozen-season and the thawed-season months: the
    frozen and thawed references of the seasonal threshold algorithms (lazy)."""
    month = x[dim].dt.month
    ref_f = x.where(month.isin(list(frozen_months))).mean(dim)
    ref_t = x.where(month.isin(list(thawed_months))).mean(dim)
    return ref_f, ref_t


class _SeasonalThreshold(Retrieval):
    """A seasonal threshold on one scaled quantity (NPR or a TB channel)."""

    contrast_key = "tb"

    def __init__(self, threshold=SEASONAL_THRESHOLD, frozen_months=FROZEN_MONTHS, thawed_months=THAWED_MONTHS):
        self.threshold = threshold
        self.frozen_months, self.thawed_months = tuple(frozen_months), tuple(thawed_months)
        self.ref_frozen = self.ref_thawed = None

    def quantity(self, ds: xr.Dataset) -> xr.DataArray:  # pragma: no cover - each rule defines it
        raise NotImplementedError

    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        """The references from ``ds`` (its frozen- and thawed-season months), computed once (small)."""
        self._check(ds)
        f, t = seasonal_references(self.quantity(ds), self.frozen_months, self.thawed_months)
        self.ref_frozen, self.ref_thawed = f.compute(), t.compute()
        for ref, months in ((self.ref_frozen, self.frozen_months), (self.ref_thawed, self.thawed_months)):
            if not np.isfinite(np.asarray(ref.values, "f8")).any():
                from ftcloud.errors import ValidationError

                raise ValidationError(
                    f"{self.method}: the fit period has no observed day in months {list(months)}, so no seasonal "
                    "reference; fit on a period that holds a winter and a summer"
                )
        return self

    def scale(self, ds: xr.Dataset) -> xr.DataArray:
        if self.ref_frozen is None:
            self.fit(ds)
        return seasonal_scale(self.quantity(ds), self.ref_frozen, self.ref_thawed)

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        self._check(ds)
        x = self.scale(ds)
        contrast = (self.ref_thawed - self.ref_frozen) > MIN_CONTRAST[self.contrast_key]
        valid = x.notnull() & contrast
        return as_ft(x < self.threshold, valid, self.product, self.source)


class NPRRetrieval(_SeasonalThreshold):
    """NPR seasonal threshold on SMAP L-band TB H and V (``tbh``, ``tbv``)."""

    method, product, inputs = "npr", "NPR_FT", ("tbh", "tbv")
    source = "NPR seasonal threshold (SMAP L3 FT ATBD) on SMAP L-band TB"
    contrast_key = "npr"

    def quantity(self, ds):
        return npr(ds["tbh"], ds["tbv"])


class MSTARetrieval(_SeasonalThreshold):
    """MSTA: seasonal threshold on TB 36.5/37 GHz V (``channel``); ``fit`` with a reference FT also picks the
    per-pixel threshold that agrees best with it (Kim et al.'s per-pixel optimisation)."""

    method, product = "msta", "MSTA_FT"
    source = "modified seasonal threshold (Kim et al. 2011) on TB 36.5 GHz V"

    def __init__(self, channel: str = "TB36.5V", **kw):
        super().__init__(**kw)
        self.channel = channel
        self.inputs = (channel,)

    def quantity(self, ds):
        return ds[self.channel]

    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        super().fit(ds)
        if target is not None:
            x = self.scale(ds)
            cands = np.round(np.arange(0.2, 0.81, 0.05), 2)
            ok = target <= 1
            hits = xr.concat(
                [((x < c) == (target == 1)).where(ok).mean("time") for c in cands], dim="threshold"
            ).assign_coords(threshold=cands)
            best = hits.fillna(-1).argmax("threshold")
            self.threshold = xr.DataArray(cands, dims="threshold")[best].drop_vars("threshold", errors="ignore")
            self.threshold = self.threshold.compute()
        return self


class DIARetrieval(Retrieval):
    """DIA on TB 36.5/37 GHz V and the 18.7/19-36.5/37 GHz V spectral gradient."""

    method, product = "dia", "DIA_FT"
    source = "dual-index algorithm (Zuerndorfer et al. 1990) on TB 36.5 V and 18.7-36.5 GHz V"

    def __init__(self, tb37v_max: float = DIA_TB37V_K, sg_max: float = DIA_SG_K_PER_GHZ, low="TB18.7V", high="TB36.5V"):
        self.tb37v_max, self.sg_max, self.low, self.high = tb37v_max, sg_max, low, high
        self.inputs = (low, high)

    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        self._check(ds)
        lo, hi = ds[self.low], ds[self.high]
        f_lo, f_hi = float(self.low[2:-1]), float(self.high[2:-1])
        sg = spectral_gradient(lo, hi, f_lo, f_hi)
        return as_ft(
            dia_frozen(hi, sg, self.tb37v_max, self.sg_max), lo.notnull() & hi.notnull(), self.product, self.source
        )
