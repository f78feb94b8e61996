"""ftcloud's digital twin: a deterministic synthetic world for soil freeze/thaw science.

:func:`generate` writes, for a region and period, the native source files that the real
archives deliver (ERA5-Land monthly NetCDF, IMERG half-hourly HDF5 granules, SMAP enhanced
FT daily HDF5, ESDR FT yearly NetCDF, auxiliary maps, in-situ CSVs; layouts in
``docs/source-formats.md``) plus the hidden truth (``truth/``): the freeze/thaw state of a
hidden "true" soil that every product observes through its own, different errors.

The physics and error models, with every parameter value, are documented in one place:
``docs/twin.md``; the numbers themselves live in :mod:`ftcloud.synth.params` and are
recorded with each run in ``truth/parameters.json``.
"""

from ftcloud.synth.generate import TWIN_VERSION, check_twin_period, generate
from ftcloud.synth.params import TwinParameters

__all__ = ["generate", "check_twin_period", "TwinParameters", "TWIN_VERSION"]
