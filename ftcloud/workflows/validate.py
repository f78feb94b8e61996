"""``ftcloud validate``: direct validation, every product beside its baselines, CTC at the CMA stations, figures.

Orchestration only: opens the product, the store's groups and (on the twin) the truth; runs
:mod:`ftcloud.science.validation`, :mod:`ftcloud.science.compare` and :mod:`ftcloud.science.ctc`
as the paper does (SPEC sections 5-6); writes CSV, Markdown (:mod:`ftcloud.report.tables`), zarr
and figures (:mod:`ftcloud.report.figures`). A part whose inputs are absent is skipped and noted.

Products and references (uint8 FT codes: 0 thawed, 1 frozen, 255 missing): ConvLSTM_FT (the
product), SMAP_E_FT and ESDR_FT (the store's targets), ERA5_FT, Meteorology_FT and the in-situ FT
of the networks (:mod:`ftcloud.science.reference`), and the twin's truth.
"""

from __future__ import annotations

import json
import logging
import os
import time
import numpy as np
import pandas as pd
from ftcloud.errors import (
    MissingVariableError,
)
from ftcloud.io.stores import open_group
from ftcloud.science.validation import (
    sample_at_stations,
)
from ftcloud.report.tables import _baselines_markdown, _ctc_markdown, _direct_markdown
from ftcloud.science.compare import baseline_comparison
from ftcloud.science.ctc import _ctc_station_table, ctc_at_stations, ctc_summaries
from ftcloud.science.validation import _direct_table, direct_validation
from ftcloud.science.reference import era5_ft, network_ft
from ftcloud.study import CTC_PERIOD, TEST_PERIOD
from ftcloud.workflows._common import _Stages, _period_clip, _r, _write_zarr
from ftcloud.workflows.inputs import _on_grid, find_truth, open_product, open_truth_ft
from ftcloud import layout

log = logging.getLogger(__name__)


def validate(
    store: str,
    product: str,
    out: str,
    *,
    truth: str | None = None,
    storage_options: dict | None = None,
    product_storage_options: dict | None = None,
    test_period: tuple[str, str] = TEST_PERIOD,
    ctc_period: tuple[str, str] = CTC_PERIOD,
    min_count: int = 30,
    half_window_h: float = 1.0,
    map_start: str = "2018-04-01",
    figures: bool = True,
    progress: bool = True,
) -> dict:
    """Direct validation against the networks, CTC at the CMA stations, figures; returns a summary.

    Writes into ``out``: ``direct_validation.{csv,md,zarr}``, ``ctc_stations.csv``,
    ``ctc_summary.{csv,md}``, ``ctc.zarr``, ``figures/fig03_ft_maps_{AM,PM}.png``,
    ``figures/fig04_accuracy_by_network.png``, ``figures/fig05_accuracy_by_season.png``,
    ``figures/fig06_ctc_AM.png``, ``figures/fig07_ctc_PM.png`` and ``validate-summary.json``.
    A part whose inputs are absent (no ``insitu/networks`` or ``insitu/cma`` group) is skipped
    with a log message and noted in the summary.
    """
    os.makedirs(out, exist_ok=True)
    figdir = os.path.join(out, "figures")
    stages = _Stages(["open", "direct", "baselines", "ctc", "figures", "write"], "validate", progress)
    summary: dict = {"store": store, "product": product, "out": os.path.abspath(out), "skipped": [], "files": []}
    t_all = time.perf_counter()

    stages.start("open")
    prod = open_product(product, product_storage_options)
    conv = prod["ft"].transpose("pass", "time", "y", "x")
    smap = open_group(store, layout.SMAP_E_FT, storage_options)["smap_e_ft"].transpose("pass", "time", "y", "x")
    statics = _on_grid(open_group(store, layout.STATICS, storage_options), conv, "statics").load()
    tdir = find_truth(store, truth, storage_options)
    truth_ft = open_truth_ft(tdir, conv) if tdir and os.path.exists(os.path.join(tdir, "truth_ft_9km.nc")) else None
    summary["truth"] = tdir
    stages.done("open")

    # direct validation ------------------------------------------------------------------
    stages.start("direct")
    direct = None
    try:
        nets = open_group(store, layout.NETWORKS, storage_options).load()
    except MissingVariableError as e:
        nets = None
        log.warning("direct validation skipped: %s", e)
        summary["skipped"].append("direct validation (no insitu/networks group)")
    if nets is not None:
        ref = network_ft(nets["tsoil"], half_window_h=half_window_h)
        per = _period_clip(np.intersect1d(conv["time"].values, ref["time"].values), test_period)
        direct = direct_validation({"ConvLSTM_FT": conv, "SMAP_E_FT": smap}, ref, truth=truth_ft, period=per)
        ddf = _direct_table(direct)
        ddf.to_csv(os.path.join(out, layout.DIRECT_CSV), index=False)
        _write_zarr(direct, os.path.join(out, "direct_validation.zarr"))
        with open(os.path.join(out, "direct_validation.md"), "w") as f:
            f.write(_direct_markdown(ddf, per, ref.attrs.get("rule", "")))
        summary["direct"] = _direct_headline(ddf)
        summary["direct_period"] = list(per)
    stages.done("direct")

    # every product beside its baselines on one common mask ----------------------------------
    stages.start("baselines")
    try:
        esdr = open_group(store, layout.ESDR_FT, storage_options)["esdr_ft"].transpose("pass", "time", "y", "x")
        era_b = era5_ft(open_group(store, layout.ERA5LAND, storage_options)["stl1"]).transpose("pass", "time", "y", "x")
    except (MissingVariableError, KeyError) as e:
        esdr = era_b = None
        log.warning("baseline comparison skipped: %s", e)
        summary["skipped"].append(f"baseline comparison ({e})")
    ref_in = network_ft(nets["tsoil"], half_window_h=half_window_h) if nets is not None else None
    if esdr is not None and (truth_ft is not None or ref_in is not None):
        common_t = conv["time"].values
        for other in (smap, esdr, era_b):
            common_t = np.intersect1d(common_t, other["time"].values)
        per_b = _period_clip(common_t, test_period) if len(common_t) else None
        if per_b is None or pd.Timestamp(per_b[0]) > pd.Timestamp(per_b[1]):
            why = f"the product, ERA5-Land and both targets share no day in {test_period[0]}..{test_period[1]}"
            log.warning("baseline comparison skipped: %s", why)
            summary["skipped"].append(f"baseline comparison ({why})")
        else:
            bprods = {"ConvLSTM_FT": conv, "ERA5_FT": era_b, "SMAP_E_FT": smap, "ESDR_FT": esdr}
            bdf = baseline_comparison(bprods, truth_ft, ref_in, per_b)
            if not bdf.empty:
                bdf.to_csv(os.path.join(out, layout.BASELINES_CSV), index=False)
                with open(os.path.join(out, "baselines.md"), "w") as f:
                    f.write(_baselines_markdown(bdf, per_b))
                summary["baselines_period"] = list(per_b)
    stages.done("baselines")

    # CTC ---------------------------------------------------------------------------------
    stages.start("ctc")
    ctc = None
    try:
        cma = open_group(store, layout.CMA, storage_options)
    except MissingVariableError as e:
        cma = None
        log.warning("CTC skipped: %s", e)
        summary["skipped"].append("CTC (no insitu/cma group)")
    if cma is not None:
        era = open_group(store, layout.ERA5LAND, storage_options)["stl1"]
        per = _period_clip(
            np.intersect1d(np.intersect1d(conv["time"].values, era["time"].values), cma["time"].values), ctc_period
        )
        ctc = ctc_at_stations(conv, era, cma, truth=truth_ft, period=per, min_count=min_count)
        rows, cols = ctc["pixel_row"], ctc["pixel_col"]
        st_strata = sample_at_stations(statics[["land_cover", "koppen", "tci", "elevation"]], rows, cols).load()
        strata = {
            "land_cover": (st_strata["land_cover"], None),
            "koppen": (st_strata["koppen"], None),
            "tci": (st_strata["tci"], "tci"),
        }
        sdf = ctc_summaries(ctc, strata)
        sdf.to_csv(os.path.join(out, layout.CTC_SUMMARY_CSV), index=False)
        stdf = _ctc_station_table(ctc, st_strata[["land_cover", "koppen", "tci"]])
        stdf.to_csv(os.path.join(out, "ctc_stations.csv"), index=False)
        _write_zarr(ctc, os.path.join(out, "ctc.zarr"))
        with open(os.path.join(out, "ctc_summary.md"), "w") as f:
            f.write(_ctc_markdown(sdf, per, ctc.sizes["station"]))
        summary["ctc"] = _ctc_headline(sdf)
        summary["ctc_period"] = list(per)
    stages.done("ctc")

    # figures -----------------------------------------------------------------------------
    stages.start("figures")
    if figures:
        from ftcloud.report import figures as F

        os.makedirs(figdir, exist_ok=True)
        dates = pd.date_range(map_start, periods=12, freq="MS")
        for p in conv["pass"].values:
            fp = os.path.join(out, layout.FIGURES["ft_maps"].format(p=p))
            F.ft_maps(
                {"ConvLSTM_FT": conv.sel({"pass": p}), "SMAP_E_FT": smap.sel({"pass": p})},
                dates,
                fp,
                title=f"FT on the first day of each month, {p} pass",
            )
            summary["files"].append(fp)
        if direct is not None:
            d = ddf[ddf["reference"] == "insitu"]
            d = d[d["product"] != "truth"]
            for by, name in (("network", "accuracy_by_network"), ("season", "accuracy_by_season")):
                fp = os.path.join(out, layout.FIGURES[name])
                F.accuracy_bars(d, fp, by=by)
                summary["files"].append(fp)
        if ctc is not None:
            xs = statics["x"].values[np.asarray(ctc["pixel_col"].values)]
            ys = statics["y"].values[np.asarray(ctc["pixel_row"].values)]
            for p, n in (("AM", 6), ("PM", 7)):
                if p not in ctc["pass"].values:
                    continue
                fp = os.path.join(out, layout.FIGURES["ctc"].format(n=n, p=p))
                F.ctc_bivariate(
                    ctc.sel({"pass": p}),
                    xs,
                    ys,
                    statics["elevation"],
                    fp,
                    title=f"CTC sensitivity / specificity at the CMA stations, {p} pass",
                )
                summary["files"].append(fp)
    stages.done("figures")

    stages.start("write")
    for name in (
        layout.DIRECT_CSV,
        "direct_validation.md",
        "direct_validation.zarr",
        layout.BASELINES_CSV,
        "baselines.md",
        layout.CTC_SUMMARY_CSV,
        "ctc_summary.md",
        "ctc_stations.csv",
        "ctc.zarr",
    ):
        if os.path.exists(os.path.join(out, name)):
            summary["files"].append(os.path.join(out, name))
    stages.done("write")
    stages.close()
    summary["stage_seconds"] = stages.times
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    with open(os.path.join(out, "validate-summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    return summary


def _direct_headline(ddf: pd.DataFrame) -> dict:
    out: dict = {}
    d = ddf[(ddf["season"].isin(["all", "frozen"]))]
    for r in d.to_dict("records"):
        out.setdefault(r["reference"], {}).setdefault(r["product"], {}).setdefault(r["network"], {}).setdefault(
            r["season"], {}
        )[r["pass"]] = {"CA_F": _r(r["CA_F"]), "CA_T": _r(r["CA_T"]), "CA_O": _r(r["CA_O"]), "n": int(r["n"])}
    return out


def _ctc_headline(sdf: pd.DataFrame) -> dict:
    a = sdf[sdf["stratum_type"] == "all"]
    out: dict = {}
    for r in a.to_dict("records"):
        e = {k: _r(r[k]) for k in ("psi", "eta", "pi", "truth_psi", "truth_eta", "truth_pi") if k in r}
        e["n_stations"] = int(r["n_stations"])
        out.setdefault(r["season"], {}).setdefault(r["pass"], {})[r["product"]] = e
    return out
