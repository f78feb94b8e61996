"""The FT retrieval families of the field beside the ConvLSTM, one module per family, one interface.

* :mod:`ftcloud.retrieve.threshold`: the classical rules on brightness temperatures, plain array functions
  with their thresholds as documented parameters: the SMAP L-band normalised polarisation ratio with
  seasonal references (NPR, the SMAP L3 FT baseline), the modified seasonal threshold on 37 GHz V (MSTA,
  the ESDR FT algorithm) and the dual-index algorithm on 37 GHz V and the 19-37 GHz spectral gradient (DIA).
* :mod:`ftcloud.retrieve.dfa`: the discriminant-function algorithm (linear discriminant functions per class
  on multi-frequency TB, fitted to a reference FT; frozen where the frozen function wins).
* :mod:`ftcloud.retrieve.ert`: extremely randomized trees (scikit-learn) on TB, terrain and ERA5-Land soil,
  trained on SMAP_E_FT with the TPDC record's 70/15/15 split.
* :mod:`ftcloud.retrieve.autoencoder`: a TB-window convolutional autoencoder (PyTorch) that treats thaw as an
  anomaly, exported with a checksummed card like the ConvLSTM.

Every retrieval has ``fit(ds, target=None)`` (a no-op where the family learns nothing but its references)
and ``predict(ds)``, which returns an FT DataArray (uint8, 0 thawed, 1 frozen, 255 missing, CF flags) on
the input's grid, lazily where the input is dask-backed. The learned families read their samples in blocks
(:mod:`ftcloud.retrieve.sampling`: memory bounded by a block, not by the period or the region), and ERT and the
autoencoder export their models with a SHA-256 card; predict's tasks load the verified file once per worker
(:func:`ftcloud.retrieve.base.load_verified`), so a model never rides in the task graph.
"""

from __future__ import annotations

from ftcloud.retrieve.base import Retrieval, as_ft
from ftcloud.retrieve.dfa import DFARetrieval, fit_discriminants
from ftcloud.retrieve.threshold import (
    DIARetrieval,
    MSTARetrieval,
    NPRRetrieval,
    dia_frozen,
    npr,
    seasonal_references,
    seasonal_scale,
    spectral_gradient,
)

__all__ = [
    "DFARetrieval",
    "DIARetrieval",
    "MSTARetrieval",
    "NPRRetrieval",
    "Retrieval",
    "as_ft",
    "dia_frozen",
    "fit_discriminants",
    "npr",
    "seasonal_references",
    "seasonal_scale",
    "spectral_gradient",
]
