"""Where things live: the store's groups, a run folder's files, and a store with its storage options.

Every path of a store group or of ``ftcloud run``'s output folder is defined here once; the
sources, the model, inference, the workflows and the report import them (a test greps the
package for literal group paths). See the README's "Store layout" for what each group holds.

Examples
--------
>>> from ftcloud import layout
>>> layout.GROUPS["era5land"]
'predictors/era5land'
>>> run = layout.RunLayout("ftcloud-out")
>>> run.card("AM")
'ftcloud-out/models/ft_convlstm_AM.json'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ftcloud.errors import MissingVariableError

__all__ = [
    "CMA",
    "ERA5LAND",
    "ESDR_FT",
    "GROUPS",
    "IMERG",
    "NETWORKS",
    "BASELINES_CSV",
    "CTC_SUMMARY_CSV",
    "DIRECT_CSV",
    "FIGURES",
    "MODEL_STEM",
    "PRODUCT_NAME",
    "TABLE2_CSV",
    "SMAP_E_FT",
    "STATICS",
    "TB_MULTIFREQ",
    "TB_SMAP",
    "RunLayout",
    "Store",
    "as_store",
    "group_of",
]

# -- the store's groups ---------------------------------------------------------------------
ERA5LAND = "predictors/era5land"
IMERG = "predictors/imerg"
SMAP_E_FT = "targets/smap_e_ft"
ESDR_FT = "targets/esdr_ft"
STATICS = "statics"
NETWORKS = "insitu/networks"
CMA = "insitu/cma"
TB_SMAP = "predictors/tb_smap"
TB_MULTIFREQ = "predictors/tb_multifreq"
#: source name (``ftcloud ingest --sources``) -> its group in the store
GROUPS = {
    "era5land": ERA5LAND,
    "imerg": IMERG,
    "smap_e_ft": SMAP_E_FT,
    "esdr_ft": ESDR_FT,
    "statics": STATICS,
    "networks": NETWORKS,
    "cma": CMA,
    "tb_smap": TB_SMAP,  # optional: sources with brightness temperatures (the retrieval families)
    "tb_multifreq": TB_MULTIFREQ,
}
#: the file stem of a pass's model files (``models/ft_convlstm_AM.json`` and friends)
MODEL_STEM = "ft_convlstm"
#: the FT product's folder name (``ftcloud predict``'s default output, ``ftcloud run``'s product)
PRODUCT_NAME = "ft_convlstm.zarr"
#: the twin's hidden truth, inside its source folder
TRUTH_DIR = "truth"
TRUTH_FT = "truth_ft_9km.nc"
TRUTH_SUMMARY = "truth_summary_9km.nc"
TRUTH_PARAMETERS = "parameters.json"

# -- the files of ftcloud validate (OUT/validation) and ftcloud trends (OUT/trends) ----------------
DIRECT_CSV = "direct_validation.csv"
BASELINES_CSV = "baselines.csv"
CTC_SUMMARY_CSV = "ctc_summary.csv"
TABLE2_CSV = "table2.csv"
#: figure files: name -> path inside the command's output folder ({p}: the pass)
FIGURES = {
    "ft_maps": "figures/fig03_ft_maps_{p}.png",
    "accuracy_by_network": "figures/fig04_accuracy_by_network.png",
    "accuracy_by_season": "figures/fig05_accuracy_by_season.png",
    "ctc": "figures/fig{n:02d}_ctc_{p}.png",
    "family_accuracy": "figures/families_accuracy_by_season.png",
    "family_errors": "figures/families_error_maps_{p}.png",
    "regional_series": "figures/fig11_regional_series.png",
    "stability_series": "figures/fig12_stability_series.png",
    "slope_map": "figures/slope_map.png",
}


def group_of(source: str) -> str:
    """The store group of a source name (a :class:`~ftcloud.errors.MissingVariableError`, a KeyError,
    names the known ones)."""
    try:
        return GROUPS[source]
    except KeyError:
        raise MissingVariableError(f"unknown source {source!r}; known sources: {', '.join(GROUPS)}") from None


@dataclass(frozen=True)
class Store:
    """A store root and the fsspec options to reach it (never credentials: see ftcloud.io.secrets)."""

    url: str
    #: not in the repr, so that a Store can be logged whatever its options hold
    storage_options: dict = field(default_factory=dict, repr=False)

    def group(self, path: str) -> str:
        """URL of a group of this store."""
        return self.url.rstrip("/") + "/" + path

    def open(self, path: str):
        """The group as a lazy, verified xarray Dataset (:func:`ftcloud.io.stores.open_group`)."""
        from ftcloud.io.stores import open_group

        return open_group(self.url, path, self.storage_options)


def as_store(where, storage_options: dict | None = None) -> Store:
    """``where`` as a :class:`Store`: a Store is kept as it is (it carries its own options); a URL
    or path is paired with ``storage_options``.

    >>> as_store("s3://bucket/store", {"anon": True})
    Store(url='s3://bucket/store')
    >>> as_store(Store("gs://b/p")).url
    'gs://b/p'
    """
    if isinstance(where, Store):
        return where
    return Store(str(where), dict(storage_options or {}))


@dataclass(frozen=True)
class RunLayout:
    """The files of one ``ftcloud run`` output folder ``OUT``."""

    out: str

    def _p(self, *parts: str) -> str:
        return os.path.join(self.out, *parts)

    @property
    def config(self) -> str:
        """The run's resolved configuration (credentials redacted), written when the run starts."""
        return self._p("run-config.json")

    @property
    def state(self) -> str:
        """The stages' fingerprints and times."""
        return self._p("ftcloud-stages.json")

    @property
    def sources(self) -> str:
        """The twin's native files (when the config names no sources)."""
        return self._p("sources")

    @property
    def store(self) -> str:
        return self._p("store")

    @property
    def models(self) -> str:
        return self._p("models")

    @property
    def product(self) -> str:
        return self._p("product", PRODUCT_NAME)

    @property
    def validation(self) -> str:
        return self._p("validation")

    @property
    def trends(self) -> str:
        return self._p("trends")

    @property
    def report(self) -> str:
        return self._p("report")

    @property
    def twin_parameters(self) -> str:
        return self._p("sources", TRUTH_DIR, TRUTH_PARAMETERS)

    def card(self, pass_: str) -> str:
        """The model card of a pass."""
        return self._p("models", f"{MODEL_STEM}_{pass_}.json")
