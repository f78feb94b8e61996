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

import logging
import os
import time

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud import layout
from ftcloud.errors import GridMismatchError, MissingVariableError
from ftcloud.layout import Store, as_store
from ftcloud.report.results import ValidationResults
from ftcloud.science.compare import baseline_comparison
from ftcloud.science.ctc import _ctc_station_table, ctc_at_stations, ctc_summaries
from ftcloud.science.reference import era5_ft, network_ft
from ftcloud.science.validation import _direct_table, direct_validation, sample_at_stations
from ftcloud.study import CTC_PERIOD, PASSES, TEST_PERIOD
from ftcloud.workflows._common import _period_clip, _Stages, _write_zarr
from ftcloud.workflows.inputs import _on_grid, find_truth, open_product, open_truth_ft

__all__ = ["validate"]

log = logging.getLogger(__name__)


def _on_the_store_grid(ft: xr.DataArray, where: str) -> xr.DataArray:
    """``ft`` as ``(pass, time, y, x)`` on EASE-Grid 2.0 metres; a daily product without ``pass`` is that state
    at both overpasses; a lat/lon product is refused in one line (validation compares store cells)."""
    if str(ft["x"].attrs.get("units", "")).startswith("degree"):
        raise GridMismatchError(
            f"{where}: the product is on a lat/lon grid; validate compares it with the store's EASE-Grid 2.0 "
            "cells, so regrid it to the store's grid first (ftcloud trends works on any grid)"
        )
    if "pass" not in ft.dims:
        log.info("%s has no pass dimension: its daily state is scored at both overpasses", where)
        ft = ft.expand_dims({"pass": list(PASSES)})
    return ft.transpose("pass", "time", "y", "x")


def _family_figures(res, products: dict, truth, period, out: str) -> None:
    """Accuracy by season of every product, and (against the truth) where each errs, per pass."""
    from ftcloud.core.metadata import ft_valid
    from ftcloud.report import figures as F

    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    fp = os.path.join(out, layout.FIGURES["family_accuracy"])
    F.family_accuracy(res.families, fp)
    res.figures["family_accuracy"] = fp
    if truth is None:
        return
    t = truth.sel(time=slice(*period))
    times = t["time"].values
    for p in t["pass"].values:
        tp = t.sel({"pass": p})
        errs = {}
        for name, da in products.items():
            v = da.sel({"pass": p}).sel(time=times)
            ok = ft_valid(v) & tp.notnull()
            errs[name] = ((v != tp) & ok).sum("time") / ok.sum("time").where(ok.sum("time") > 0)
        errs = {k: e.compute() for k, e in errs.items()}
        fp = os.path.join(out, layout.FIGURES["family_errors"].format(p=p))
        F.error_maps(errs, fp, title=f"Where each product errs against the truth, {p} pass, {period[0]} .. {period[1]}")
        res.figures[f"family_errors_{p}"] = fp


def validate(
    store: str | Store,
    product: str | Store,
    out: str,
    *,
    truth: str | None = None,
    storage_options: dict | None = None,
    test_period: tuple[str, str] = TEST_PERIOD,
    ctc_period: tuple[str, str] = CTC_PERIOD,
    min_count: int = 30,
    half_window_h: float = 1.0,
    map_start: str = "2018-04-01",
    figures: bool = True,
    progress: bool = True,
    variable: str | None = None,
    codes: dict | None = None,
    compare: dict | None = None,
) -> ValidationResults:
    """Direct validation against the networks, CTC at the CMA stations, figures.

    ``store`` and ``product``: a URL (reached with ``storage_options``) or a
    :class:`~ftcloud.layout.Store` that carries its own options. Writes into ``out``:
    ``direct_validation.{csv,md,zarr}``, ``baselines.{csv,md}``, ``ctc_stations.csv``,
    ``ctc_summary.{csv,md}``, ``ctc.zarr``, the figures of :data:`ftcloud.layout.FIGURES` and,
    last, ``validate-summary.json``. A part whose inputs are absent (no ``insitu/networks`` or
    ``insitu/cma`` group) is skipped with a log message and noted in ``skipped``.
    Returns the :class:`~ftcloud.report.results.ValidationResults` it saved.

    ``product`` may be any CF FT zarr on the store's EASE-Grid 2.0 cells (``variable``/``codes``: see
    :func:`~ftcloud.workflows.inputs.open_product`); one without a ``pass`` dimension (one state a day)
    is scored as that state at both overpasses.

    ``compare``: more products side by side (name -> URL or Store; ``ftcloud retrieve``'s retrieval
    families, say): each joins the baseline table (every product on one common mask per reference, pass
    and season, with intervals; their days narrow that mask), the accuracy-by-season figure of all
    products and, against the truth, the maps of where each product errs.
    """
    store, product = as_store(store, storage_options), as_store(product, storage_options)
    os.makedirs(out, exist_ok=True)
    stages = _Stages(["open", "direct", "baselines", "ctc", "figures", "write"], "validate", progress)
    res = ValidationResults(out=out, store=store.url, product=product.url)
    t_all = time.perf_counter()

    stages.start("open")
    prod = open_product(product.url, product.storage_options, variable=variable, codes=codes)
    conv = _on_the_store_grid(prod["ft"], product.url)
    smap = store.open(layout.SMAP_E_FT)["smap_e_ft"].transpose("pass", "time", "y", "x")
    statics = _on_grid(store.open(layout.STATICS), conv, "statics").load()
    tdir = find_truth(store.url, truth, store.storage_options)
    truth_ft = open_truth_ft(tdir, conv) if tdir and os.path.exists(os.path.join(tdir, layout.TRUTH_FT)) else None
    res.truth = tdir
    others = {}
    for name, where in (compare or {}).items():
        loc = as_store(where, storage_options)
        others[name] = _on_the_store_grid(open_product(loc.url, loc.storage_options)["ft"], loc.url)
    stages.done("open")

    # direct validation ------------------------------------------------------------------
    stages.start("direct")
    direct = None
    try:
        nets = store.open(layout.NETWORKS).load()
    except MissingVariableError as e:
        nets = None
        log.warning("direct validation skipped: %s", e)
        res.skipped.append("direct validation (no insitu/networks group)")
    if nets is not None:
        ref = network_ft(nets["tsoil"], half_window_h=half_window_h)
        per = _period_clip(np.intersect1d(conv["time"].values, ref["time"].values), test_period)
        direct = direct_validation({"ConvLSTM_FT": conv, "SMAP_E_FT": smap}, ref, truth=truth_ft, period=per)
        res.direct, res.direct_period, res.direct_rule = _direct_table(direct), per, ref.attrs.get("rule", "")
        _write_zarr(direct, os.path.join(out, "direct_validation.zarr"))
    stages.done("direct")

    # every product beside its baselines on one common mask ----------------------------------
    stages.start("baselines")
    try:
        esdr = store.open(layout.ESDR_FT)["esdr_ft"].transpose("pass", "time", "y", "x")
        era_b = era5_ft(store.open(layout.ERA5LAND)["stl1"]).transpose("pass", "time", "y", "x")
    except (MissingVariableError, KeyError) as e:
        esdr = era_b = None
        log.warning("baseline comparison skipped: %s", e)
        res.skipped.append(f"baseline comparison ({e})")
    ref_in = network_ft(nets["tsoil"], half_window_h=half_window_h) if nets is not None else None
    if esdr is not None and (truth_ft is not None or ref_in is not None):
        common_t = conv["time"].values
        for other in (smap, esdr, era_b, *others.values()):
            common_t = np.intersect1d(common_t, other["time"].values)
        per_b = _period_clip(common_t, test_period) if len(common_t) else None
        if per_b is None or pd.Timestamp(per_b[0]) > pd.Timestamp(per_b[1]):
            why = f"the product, ERA5-Land and both targets share no day in {test_period[0]}..{test_period[1]}"
            log.warning("baseline comparison skipped: %s", why)
            res.skipped.append(f"baseline comparison ({why})")
        else:
            # the headline table: the ConvLSTM and its baselines on their own common mask, whatever is compared
            bprods = {"ConvLSTM_FT": conv, "ERA5_FT": era_b, "SMAP_E_FT": smap, "ESDR_FT": esdr}
            bdf = baseline_comparison(bprods, truth_ft, ref_in, per_b)
            if not bdf.empty:
                res.baselines, res.baselines_period = bdf, per_b
            if others:  # the families side by side: every product on the common mask of all of them
                allp = {**bprods, **others}
                fdf = baseline_comparison(allp, truth_ft, ref_in, per_b)
                if not fdf.empty:
                    res.families, res.baselines_period = fdf, per_b
                    if figures:
                        _family_figures(res, allp, truth_ft, per_b, out)
    stages.done("baselines")

    # CTC ---------------------------------------------------------------------------------
    stages.start("ctc")
    ctc = None
    try:
        cma = store.open(layout.CMA)
    except MissingVariableError as e:
        cma = None
        log.warning("CTC skipped: %s", e)
        res.skipped.append("CTC (no insitu/cma group)")
    if cma is not None:
        era = store.open(layout.ERA5LAND)["stl1"]
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
        res.ctc = ctc_summaries(ctc, strata)
        res.ctc_stations = _ctc_station_table(ctc, st_strata[["land_cover", "koppen", "tci"]])
        res.ctc_period = per
        if others:  # the compared products cover their own days: each row says which
            res.ctc["period"] = f"{per[0]}..{per[1]}"
        # each compared product in the ConvLSTM's place of the triplet (with ERA5_FT and Meteorology_FT);
        # its own rows join the summary (the other two members' rows are the ConvLSTM triplet's estimates)
        for name, other in others.items():
            p_o = _period_clip(
                np.intersect1d(np.intersect1d(other["time"].values, era["time"].values), cma["time"].values), ctc_period
            )
            c_o = ctc_at_stations(other, era, cma, truth=truth_ft, period=p_o, min_count=min_count)
            rows_o = ctc_summaries(c_o, strata)
            rows_o = rows_o[rows_o["product"] == "ConvLSTM_FT"].assign(product=name, period=f"{p_o[0]}..{p_o[1]}")
            res.ctc = pd.concat([res.ctc, rows_o], ignore_index=True)
        _write_zarr(ctc, os.path.join(out, "ctc.zarr"))
    stages.done("ctc")

    # figures -----------------------------------------------------------------------------
    stages.start("figures")
    if figures:
        from ftcloud.report import figures as F

        os.makedirs(os.path.join(out, "figures"), exist_ok=True)
        dates = pd.date_range(map_start, periods=12, freq="MS")
        for p in conv["pass"].values:
            fp = os.path.join(out, layout.FIGURES["ft_maps"].format(p=p))
            F.ft_maps(
                {"ConvLSTM_FT": conv.sel({"pass": p}), "SMAP_E_FT": smap.sel({"pass": p})},
                dates,
                fp,
                title=f"FT on the first day of each month, {p} pass",
            )
            res.figures[f"ft_maps_{p}"] = fp
        if res.direct is not None:
            d = res.direct[res.direct["reference"] == "insitu"]
            d = d[d["product"] != "truth"]
            for by, name in (("network", "accuracy_by_network"), ("season", "accuracy_by_season")):
                fp = os.path.join(out, layout.FIGURES[name])
                F.accuracy_bars(d, fp, by=by)
                res.figures[name] = fp
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
                res.figures[f"ctc_{p}"] = fp
    stages.done("figures")

    stages.start("write")  # the tables, then the summary (last: it says the folder is complete)
    stages.done("write")
    stages.close()
    res.stage_seconds = stages.times
    res.seconds = round(time.perf_counter() - t_all, 1)
    res.save()
    return res
