"""The science: numpy kernels and their xarray/dask wrappers (SPEC sections 5-7); no I/O.

* :mod:`ftcloud.science.validation`: FT from soil temperature, station sampling, CA_F/CA_T/CA_O,
  direct validation of products against the in-situ FT.
* :mod:`ftcloud.science.reference`: the reference FT rules of the paper (in-situ networks,
  CMA meteorology, ERA5_FT).
* :mod:`ftcloud.science.ctc`: categorical triple collocation, strata summaries, CTC against the truth.
* :mod:`ftcloud.science.compare`: every product beside its baselines on one common mask, block-bootstrap intervals.
* :mod:`ftcloud.science.trends`: frozen days, Sen slope, Mann-Kendall (with corrected variances),
  FDR, strata, the paper's Table 2.

Every function takes arrays (dask-backed ones stay lazy) and returns arrays or tables; the
workflows open stores and write files.
"""

from ftcloud.science import compare, ctc, reference, trends, validation

__all__ = ["compare", "ctc", "reference", "trends", "validation"]
