"""The results of ``ftcloud validate``, ``ftcloud trends`` and ``ftcloud run`` as objects.

The workflows return these; the run report (:mod:`ftcloud.report.html`) is built from them. Each
result can :meth:`save` itself into its output folder (the tables as CSV and Markdown, then a JSON
summary, written last: a folder with the summary is complete) and :meth:`load` one back, so a
report of an earlier run needs no file names of its own: they are defined here and in
:mod:`ftcloud.layout`, once.

Examples
--------
>>> from ftcloud.report.results import RunResults
>>> res = RunResults.load("ftcloud-out")  # doctest: +SKIP
>>> res.validation.baselines.head()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ftcloud import layout
from ftcloud.layout import RunLayout

__all__ = ["ModelCards", "RunResults", "TrendsResults", "ValidationResults"]

#: caption of every figure the report shows: (result, figure key) -> caption
FIGURE_CAPTIONS = {
    ("validation", "ft_maps_AM"): "FT state on the first day of each month, AM (paper Fig. 3)",
    ("validation", "ft_maps_PM"): "FT state on the first day of each month, PM",
    ("validation", "accuracy_by_network"): "Accuracy per in-situ network (paper Fig. 4)",
    ("validation", "accuracy_by_season"): "Accuracy by season (paper Fig. 5)",
    ("validation", "ctc_AM"): "CTC sensitivity and specificity, AM (paper Fig. 6)",
    ("validation", "ctc_PM"): "CTC sensitivity and specificity, PM (paper Fig. 7)",
    ("validation", "family_accuracy"): "Accuracy by season of every product, the retrieval families included",
    ("validation", "family_errors_AM"): "Where each product errs against the truth, AM",
    ("validation", "family_errors_PM"): "Where each product errs against the truth, PM",
    ("trends", "regional_series"): "Regional frozen-day series with Sen slopes (paper Fig. 11)",
    ("trends", "stability_series"): "Frozen days by permafrost stability (paper Fig. 12)",
    ("trends", "slope_map"): "Per-pixel Sen slope, FDR-significant pixels stippled",
    ("models", "accuracy_AM"): "Model accuracy on the test period, AM",
    ("models", "accuracy_PM"): "Model accuracy on the test period, PM",
}


def _r(v, n: int = 4):
    """A float rounded for a JSON summary; None where it is undefined."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if not math.isfinite(v) else round(v, n)


#: columns that hold names, even where every name looks like a number (WMO station numbers)
_TEXT_COLUMNS = {"station": str, "network": str, "stratum": str, "name": str}


def _read_csv(path: str) -> pd.DataFrame | None:
    if not os.path.exists(path):
        return None
    try:
        return pd.read_csv(path, dtype=_TEXT_COLUMNS)
    except pd.errors.EmptyDataError:
        return None


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _write_json(path: str, obj: dict) -> None:
    """``obj`` as JSON at ``path``, atomically (a reader sees the old file or the whole new one)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


#: figure key -> its file in the command's output folder (:data:`ftcloud.layout.FIGURES`)
_FIGURE_FILES = {
    "validation": {
        "ft_maps_AM": layout.FIGURES["ft_maps"].format(p="AM"),
        "ft_maps_PM": layout.FIGURES["ft_maps"].format(p="PM"),
        "accuracy_by_network": layout.FIGURES["accuracy_by_network"],
        "accuracy_by_season": layout.FIGURES["accuracy_by_season"],
        "ctc_AM": layout.FIGURES["ctc"].format(n=6, p="AM"),
        "ctc_PM": layout.FIGURES["ctc"].format(n=7, p="PM"),
        "family_accuracy": layout.FIGURES["family_accuracy"],
        "family_errors_AM": layout.FIGURES["family_errors"].format(p="AM"),
        "family_errors_PM": layout.FIGURES["family_errors"].format(p="PM"),
    },
    "trends": {k: layout.FIGURES[k] for k in ("regional_series", "stability_series", "slope_map")},
}


def _figures(out: str, part: str, recorded: dict | None) -> dict[str, str]:
    """The figures of a result folder that exist: those its summary records, else (a folder
    written before summaries recorded them) the files of :data:`ftcloud.layout.FIGURES` found there."""
    res = {}
    for k, name in _FIGURE_FILES[part].items():
        for f in ((recorded or {}).get(k), name):  # as recorded (relative to the folder, or absolute), else by name
            if f and os.path.exists(os.path.join(out, f)):
                res[k] = os.path.join(out, f)
                break
    return res


def _remove(out: str, *names: str | None) -> None:
    import shutil

    for n in names:
        if not n:
            continue
        p = os.path.join(out, n)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def _period(p) -> tuple[str, str] | None:
    return None if p is None else (str(p[0]), str(p[1]))


@dataclass
class ValidationResults:
    """What ``ftcloud validate`` found; a table is None where its part was skipped (see ``skipped``).

    ``direct``: accuracy against the in-situ networks (and the truth), one row per reference,
    product, network, season and pass (:func:`ftcloud.science.validation._direct_table`);
    ``baselines``: the ConvLSTM beside its baselines on one common mask
    (:func:`ftcloud.science.compare.baseline_comparison`); ``families``: the same with the compared retrieval
    families, on their own common mask (None without ``--compare``); ``ctc``: the CTC summaries by stratum
    (:func:`ftcloud.science.ctc.ctc_summaries`); ``ctc_stations``: one row per CMA station.
    ``figures``: figure key (``ft_maps_AM``, ``accuracy_by_network``, ``ctc_PM``, ...) -> path.
    """

    out: str
    store: str = ""
    product: str = ""
    truth: str | None = None
    direct: pd.DataFrame | None = None
    direct_period: tuple[str, str] | None = None
    direct_rule: str = ""
    baselines: pd.DataFrame | None = None
    baselines_period: tuple[str, str] | None = None
    families: pd.DataFrame | None = None
    ctc: pd.DataFrame | None = None
    ctc_stations: pd.DataFrame | None = None
    ctc_period: tuple[str, str] | None = None
    skipped: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    SUMMARY = "validate-summary.json"
    #: the zarr datasets the workflow writes beside the tables: table attribute -> dataset
    DATASETS = {"direct": "direct_validation.zarr", "ctc": "ctc.zarr"}
    #: table attribute -> the summary key that says its part ran
    _PERIOD_KEYS = {
        "direct": "direct_period",
        "baselines": "baselines_period",
        "families": "baselines_period",
        "ctc": "ctc_period",
        "ctc_stations": "ctc_period",
    }

    @property
    def n_ctc_stations(self) -> int:
        """The number of CMA stations the CTC ran at."""
        if self.ctc_stations is None or "station" not in self.ctc_stations:
            return 0
        return int(self.ctc_stations["station"].nunique())

    def _tables(self):
        """(attribute, CSV name, Markdown name) of every table."""
        return (
            ("direct", layout.DIRECT_CSV, "direct_validation.md"),
            ("baselines", layout.BASELINES_CSV, "baselines.md"),
            ("families", "baselines_with_families.csv", None),
            ("ctc", layout.CTC_SUMMARY_CSV, "ctc_summary.md"),
            ("ctc_stations", "ctc_stations.csv", None),
        )

    @property
    def files(self) -> list[str]:
        """Every output of this result that exists in ``out``: figures, tables, datasets."""
        names = [n for _, c, m in self._tables() for n in (c, m) if n] + list(self.DATASETS.values())
        return list(self.figures.values()) + [
            os.path.join(self.out, n) for n in names if os.path.exists(os.path.join(self.out, n))
        ]

    def direct_headline(self) -> dict:
        """reference -> product -> network -> season (all, frozen) -> pass -> CA_F, CA_T, CA_O, n."""
        res: dict = {}
        if self.direct is None:
            return res
        d = self.direct[self.direct["season"].isin(["all", "frozen"])]
        for r in d.to_dict("records"):
            res.setdefault(r["reference"], {}).setdefault(r["product"], {}).setdefault(r["network"], {}).setdefault(
                r["season"], {}
            )[r["pass"]] = {"CA_F": _r(r["CA_F"]), "CA_T": _r(r["CA_T"]), "CA_O": _r(r["CA_O"]), "n": int(r["n"])}
        return res

    def ctc_headline(self) -> dict:
        """season -> pass -> product -> psi, eta, pi (and the truth's), n_stations; all stations."""
        res: dict = {}
        if self.ctc is None:
            return res
        a = self.ctc[self.ctc["stratum_type"] == "all"]
        for r in a.to_dict("records"):
            e = {k: _r(r[k]) for k in ("psi", "eta", "pi", "truth_psi", "truth_eta", "truth_pi") if k in r}
            e["n_stations"] = int(r["n_stations"])
            res.setdefault(r["season"], {}).setdefault(r["pass"], {})[r["product"]] = e
        return res

    def summary(self) -> dict:
        """The JSON summary (``validate-summary.json``); the tables themselves are in the CSVs."""
        s: dict = {
            "store": self.store,
            "product": self.product,
            "out": os.path.abspath(self.out),
            "truth": self.truth,
            "skipped": list(self.skipped),
            "files": self.files,
            "figures": {k: os.path.relpath(v, self.out) for k, v in self.figures.items()},  # movable folder
            "direct_rule": self.direct_rule,
        }
        if self.direct is not None:
            s["direct"] = self.direct_headline()
            s["direct_period"] = list(self.direct_period)
        if self.baselines is not None:
            s["baselines_period"] = list(self.baselines_period)
        if self.ctc is not None:
            s["ctc"] = self.ctc_headline()
            s["ctc_period"] = list(self.ctc_period)
        s["stage_seconds"] = dict(self.stage_seconds)
        s["seconds"] = self.seconds
        return s

    def save(self) -> None:
        """The tables (CSV and Markdown) into ``out``, then the summary, last."""
        from ftcloud.report.tables import _baselines_markdown, _ctc_markdown, _direct_markdown

        os.makedirs(self.out, exist_ok=True)
        md = {
            "direct": lambda: _direct_markdown(self.direct, self.direct_period, self.direct_rule),
            "baselines": lambda: _baselines_markdown(self.baselines, self.baselines_period),
            "ctc": lambda: _ctc_markdown(self.ctc, self.ctc_period, self.n_ctc_stations),
        }
        for attr, csv, mdname in self._tables():
            df = getattr(self, attr)
            if df is None:  # skipped this time: an earlier run's files must not pass for this run's
                _remove(self.out, csv, mdname, self.DATASETS.get(attr))
                continue
            df.to_csv(os.path.join(self.out, csv), index=False)
            if mdname:
                with open(os.path.join(self.out, mdname), "w") as f:
                    f.write(md[attr]())
        _write_json(os.path.join(self.out, self.SUMMARY), self.summary())

    @classmethod
    def load(cls, out: str) -> ValidationResults | None:
        """The results in the folder ``out``; None where ``ftcloud validate`` has not finished there."""
        s = _read_json(os.path.join(out, cls.SUMMARY))
        if s is None:
            return None
        res = cls(
            out=out,
            store=s.get("store", ""),
            product=s.get("product", ""),
            truth=s.get("truth"),
            direct_period=_period(s.get("direct_period")),
            direct_rule=s.get("direct_rule", ""),
            baselines_period=_period(s.get("baselines_period")),
            ctc_period=_period(s.get("ctc_period")),
            skipped=list(s.get("skipped", [])),
            figures=_figures(out, "validation", s.get("figures")),
            stage_seconds=s.get("stage_seconds", {}),
            seconds=s.get("seconds", 0.0),
        )
        for attr, csv, _ in res._tables():
            if s.get(cls._PERIOD_KEYS[attr]) is not None:  # the part ran (a skipped part's files are not read)
                setattr(res, attr, _read_csv(os.path.join(out, csv)))
        return res


@dataclass
class TrendsResults:
    """What ``ftcloud trends`` found.

    ``table2``: Table 2 per pass (AM, PM and their ``mean``) and stratum
    (:func:`ftcloud.science.trends.table2`); ``series``: the stratum-mean frozen days per pass and
    year (with the truth's, on the twin); ``fdr_significant_fraction``: pass -> share of pixels with
    a trend significant after FDR; ``years``: the first and last year; ``figures``: key -> path.
    """

    out: str
    product: str = ""
    store: str = ""
    truth: str | None = None
    table2: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    years: tuple[int, int] | None = None
    fdr_significant_fraction: dict[str, float | None] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: what was not computed, and why (e.g. no store: no Table 2)
    notes: list[str] = field(default_factory=list)

    SUMMARY = "trends-summary.json"
    DATASET = "trends.zarr"
    SERIES_CSV = "regional_series.csv"

    @property
    def files(self) -> list[str]:
        names = (self.DATASET, layout.TABLE2_CSV, "table2.md", self.SERIES_CSV)
        return list(self.figures.values()) + [
            os.path.join(self.out, n) for n in names if os.path.exists(os.path.join(self.out, n))
        ]

    def table2_rows(self, p: str = "mean") -> list[dict]:
        """Table 2 of pass ``p`` as records, undefined statistics as None."""
        if self.table2 is None:
            return []
        m = self.table2[self.table2["pass"] == p]
        return [
            {k: (_r(v) if isinstance(v, (float, np.floating)) else v) for k, v in r.items()}
            for r in m.to_dict("records")
        ]

    def summary(self) -> dict:
        return {
            "product": self.product,
            "store": self.store,
            "out": os.path.abspath(self.out),
            "truth": self.truth,
            "files": self.files,
            "figures": {k: os.path.relpath(v, self.out) for k, v in self.figures.items()},  # movable folder
            "years": None if self.years is None else list(self.years),
            "parameters": dict(self.parameters),
            "table2": self.table2_rows("mean"),
            "fdr_significant_fraction": {k: _r(v) for k, v in self.fdr_significant_fraction.items()},
            "notes": list(self.notes),
            "stage_seconds": dict(self.stage_seconds),
            "seconds": self.seconds,
        }

    def save(self) -> None:
        """Table 2 (CSV and Markdown) and the stratum series into ``out``, then the summary, last."""
        from ftcloud.report.tables import _table2_markdown

        os.makedirs(self.out, exist_ok=True)
        if self.table2 is not None:
            self.table2.to_csv(os.path.join(self.out, layout.TABLE2_CSV), index=False)
        else:  # not computed this time (no store): an earlier run's table must not pass for this one's
            _remove(self.out, layout.TABLE2_CSV, "table2.md")
        if self.table2 is not None and self.years is not None:
            with open(os.path.join(self.out, "table2.md"), "w") as f:
                f.write(
                    _table2_markdown(
                        self.table2, self.years, self.parameters.get("variance", ""), self.parameters.get("alpha", 0.05)
                    )
                )
        if self.series is not None:
            self.series.to_csv(os.path.join(self.out, self.SERIES_CSV), index=False)
        else:
            _remove(self.out, self.SERIES_CSV)
        _write_json(os.path.join(self.out, self.SUMMARY), self.summary())

    @classmethod
    def load(cls, out: str) -> TrendsResults | None:
        """The results in the folder ``out``; None where ``ftcloud trends`` has not finished there."""
        s = _read_json(os.path.join(out, cls.SUMMARY))
        if s is None:
            return None
        y = s.get("years")
        return cls(
            out=out,
            product=s.get("product", ""),
            store=s.get("store", ""),
            truth=s.get("truth"),
            table2=_read_csv(os.path.join(out, layout.TABLE2_CSV)),
            series=_read_csv(os.path.join(out, cls.SERIES_CSV)),
            years=None if y is None else (int(y[0]), int(y[1])),
            fdr_significant_fraction=s.get("fdr_significant_fraction") or {},
            parameters=s.get("parameters") or {},
            figures=_figures(out, "trends", s.get("figures")),
            stage_seconds=s.get("stage_seconds", {}),
            seconds=s.get("seconds", 0.0),
            notes=list(s.get("notes", [])),
        )


@dataclass
class ModelCards:
    """The model cards of a run's ``models/`` folder: pass -> card (the JSON the trainer wrote)."""

    folder: str
    cards: dict[str, dict] = field(default_factory=dict)

    def __getitem__(self, p: str) -> dict:
        return self.cards[p]

    def get(self, p: str) -> dict | None:
        return self.cards.get(p)

    @property
    def passes(self) -> list[str]:
        return [p for p in ("AM", "PM") if p in self.cards]

    def figures(self) -> dict[str, str]:
        """``accuracy_AM``/``accuracy_PM`` -> the training report's accuracy figure, where it exists."""
        res = {}
        for p in self.passes:
            fp = os.path.join(self.folder, f"accuracy_{p}.png")
            if os.path.exists(fp):
                res[f"accuracy_{p}"] = fp
        return res

    @classmethod
    def load(cls, folder: str) -> ModelCards:
        cards = {}
        for p in ("AM", "PM"):
            c = _read_json(os.path.join(folder, f"{layout.MODEL_STEM}_{p}.json"))
            if c:
                cards[p] = c
        return cls(folder, cards)


@dataclass
class RunResults:
    """Everything a finished (or partly finished) ``ftcloud run`` output folder holds for the report."""

    out: str
    models: ModelCards
    validation: ValidationResults | None = None
    trends: TrendsResults | None = None
    stages: dict = field(default_factory=dict)
    twin_parameters: dict | None = None
    #: the configuration the run recorded (``run-config.json``), None for a folder without one
    config: dict | None = None

    @property
    def empty(self) -> bool:
        """Whether no stage has left a result here (no model card, validation, trends or stage record)."""
        return not (self.models.cards or self.validation or self.trends or self.stages)

    def figures(self) -> list[tuple[str, str]]:
        """(path, caption) of every figure there is, in the report's order."""
        have = {
            "validation": self.validation.figures if self.validation else {},
            "trends": self.trends.figures if self.trends else {},
            "models": self.models.figures(),
        }
        return [(have[part][key], cap) for (part, key), cap in FIGURE_CAPTIONS.items() if key in have[part]]

    @classmethod
    def load(cls, out: str) -> RunResults:
        """The results under ``out``; a stage that has not finished there is None (or empty)."""
        run = RunLayout(out)
        return cls(
            out=out,
            models=ModelCards.load(run.models),
            validation=ValidationResults.load(run.validation),
            trends=TrendsResults.load(run.trends),
            stages=_read_json(run.state) or {},
            twin_parameters=_read_json(run.twin_parameters),
            config=_read_json(run.config),
        )
