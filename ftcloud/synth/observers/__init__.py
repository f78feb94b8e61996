"""The twin's observers: one per product, each its state and its error model, and no I/O.

Each observer turns the hidden truth (or the hidden soil's daily state) of a chunk of days
into what its archive would hold for those days, as arrays; ``ftcloud.synth.generate``
writes them in the archive's native format (:mod:`ftcloud.synth.writers`). The error
models and their sources are documented in ``docs/twin.md``.

- :class:`SmapObserver`: SMAP enhanced L3 FT (9 km, AM/PM) with AR(1) errors, swath gaps and outages.
- :class:`EsdrObserver`: the 25 km ESDR FT record, a smoothed aggregate of the truth with AR(1) errors.
- :class:`Era5Observer`: ERA5-Land hourly stl1, swvl1, sde and tp, a biased view of the hidden soil.
- :class:`ImergObserver`: IMERG half-hourly precipitation with multiplicative noise and missed detections.
- :class:`InsituObserver`: 5 cm network probes (half-hourly, with gaps and outages) and CMA 0 cm daily min/max.
- :class:`SmapTbObserver` / :class:`MultiFreqTbObserver`: brightness temperatures from the hidden state
  (SMAP L-band H/V at 9 km; AMSR-like 6.9-89 GHz H/V at 25 km), by emission physics with sensor noise.
"""

from ftcloud.synth.observers.era5 import Era5Observer
from ftcloud.synth.observers.esdr import EsdrObserver
from ftcloud.synth.observers.imerg import ImergObserver
from ftcloud.synth.observers.insitu import InsituObserver
from ftcloud.synth.observers.smap import SmapObserver
from ftcloud.synth.observers.tb import MultiFreqTbObserver, SmapTbObserver

__all__ = [
    "SmapObserver",
    "EsdrObserver",
    "Era5Observer",
    "ImergObserver",
    "InsituObserver",
    "SmapTbObserver",
    "MultiFreqTbObserver",
]
