"""``ftcloud trends``: frozen days, per-pixel Sen/Mann-Kendall with FDR, Table 2 and its figures.

Orchestration only: :func:`trend_graph` opens the product and builds the whole per-pixel graph
lazily (frozen days per year of each pass and of their mean, Mann-Kendall, FDR); :func:`trends`
computes it in one ``dask.compute`` on the active scheduler (the cluster of ``ftcloud run``) and
then summarises the small results (Table 2, regional series) and writes them. The statistics are
:mod:`ftcloud.science.trends`; tables :mod:`ftcloud.report.tables`; figures :mod:`ftcloud.report.figures`.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud import layout
from ftcloud.core.metadata import history_stamp
from ftcloud.layout import Store, as_store
from ftcloud.report.results import TrendsResults
from ftcloud.study import MIN_TREND_YEARS
from ftcloud.science.trends import fdr, frozen_days, mann_kendall, regional_series, stability_in, stratum_masks, table2
from ftcloud.workflows._common import _Stages, _write_zarr
from ftcloud.workflows.inputs import _on_grid, find_truth, open_product, open_truth_summary

__all__ = ["TrendGraph", "trend_graph", "trends"]

log = logging.getLogger(__name__)


@dataclass
class TrendGraph:
    """The lazy per-pixel results of ``ftcloud trends`` (dask-backed until computed).

    ``frozen_days`` (pass, year, y, x) with pass AM, PM and their ``mean``; ``mk`` the Mann-Kendall
    dataset of :func:`ftcloud.science.trends.mann_kendall` (pass, y, x); ``significant_fdr`` (pass, y, x).
    """

    product: xr.Dataset
    frozen_days: xr.DataArray
    mk: xr.Dataset
    significant_fdr: xr.DataArray

    def compute(self) -> TrendGraph:
        """All three in one ``dask.compute`` (frozen days are computed once, shared by the trend tests)."""
        with warnings.catch_warnings():  # 0/0 of pixels without a valid day (water), NaN by design
            warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
            both = xr.Dataset(
                {
                    "frozen_days": self.frozen_days,
                    "significant_fdr": self.significant_fdr,
                    **{f"mk_{k}": v for k, v in self.mk.data_vars.items()},
                }
            ).compute()
        mk = xr.Dataset({k[3:]: both[k] for k in both.data_vars if k.startswith("mk_")}, attrs=self.mk.attrs)
        return TrendGraph(self.product, both["frozen_days"], mk, both["significant_fdr"])


def trend_graph(
    product: str | Store,
    *,
    storage_options: dict | None = None,
    variance: str = "original",
    lag: int | None = 1,
    alpha: float = 0.05,
    q: float = 0.05,
    min_valid: float = 0.9,
    variable: str | None = None,
    codes: dict | None = None,
) -> TrendGraph:
    """Open ``product`` (a URL reached with ``storage_options``, or a :class:`~ftcloud.layout.Store`)
    and build the per-pixel trend graph without computing anything. ``variable`` and ``codes``: how to
    read a product not written by ftcloud (:func:`ftcloud.workflows.inputs.open_product`)."""
    product = as_store(product, storage_options)
    prod = open_product(product.url, product.storage_options, variable=variable, codes=codes)
    ft = prod["ft"]
    if "pass" not in ft.dims:
        ft = ft.expand_dims(pass_=["day"]).rename(pass_="pass")
    fd = frozen_days(ft, min_valid=min_valid).transpose("pass", "year", "y", "x")
    fd = fd.drop_vars([c for c in fd.coords if c not in fd.dims])
    fdm = fd.mean("pass", skipna=False).expand_dims({"pass": ["mean"]})
    fdm.attrs = dict(fd.attrs, cell_methods="time: sum pass: mean")
    fd_all = xr.concat([fd, fdm], dim="pass", combine_attrs="override")
    fd_all.attrs = dict(fd.attrs)
    fd_all["year"].attrs = {"long_name": "calendar year", "units": "year"}
    mk = mann_kendall(fd_all, dim="year", variance=variance, lag=lag, alpha=alpha)
    sig = fdr(mk["p"], q=q, dims=["y", "x"])
    return TrendGraph(prod, fd_all, mk, sig)


def trends(
    product: str | Store,
    store: str | Store | None,
    out: str,
    *,
    truth: str | None = None,
    storage_options: dict | None = None,
    variance: str = "original",
    lag: int | None = 1,
    alpha: float = 0.05,
    q: float = 0.05,
    min_valid: float = 0.9,
    figures: bool = True,
    progress: bool = True,
    variable: str | None = None,
    codes: dict | None = None,
) -> TrendsResults:
    """Frozen days per year, per-pixel Sen/Mann-Kendall with FDR, Table 2, figures.

    ``product`` and ``store``: a URL (reached with ``storage_options``) or a
    :class:`~ftcloud.layout.Store` that carries its own options. Writes into ``out``:
    ``trends.zarr`` (``frozen_days`` (pass, year, y, x) with pass AM, PM and their mean;
    per-pixel ``slope``, ``slope_low``, ``slope_high``, ``p``, ``significant``,
    ``significant_fdr`` (pass, y, x); the stratum series ``series`` (pass, stratum, year)),
    ``table2.{csv,md}``, ``regional_series.csv``, ``figures/fig11_regional_series.png``,
    ``figures/fig12_stability_series.png``, ``figures/slope_map.png`` and ``trends-summary.json``.
    With the twin's truth (found from the store or ``truth``) Table 2 also holds the truth's
    regional slopes and the planted ones. Returns the :class:`~ftcloud.report.results.TrendsResults`
    it saved (``trends-summary.json`` is written last).

    ``store`` may be None (your own product, without an ftcloud store): the per-pixel trends, the
    frozen days and the slope map are computed; Table 2 and the regional series, which need the
    store's regions, are not (said in ``notes``). ``variable``/``codes``: see :func:`trend_graph`.
    """
    product = as_store(product, storage_options)
    store = as_store(store, storage_options) if store is not None else None
    os.makedirs(out, exist_ok=True)
    figdir = os.path.join(out, "figures")
    stages = _Stages(["frozen days", "per-pixel trends", "table 2", "figures", "write"], "trends", progress)
    t_all = time.perf_counter()
    res = TrendsResults(
        out=out,
        product=product.url,
        store=store.url if store is not None else "",
        parameters={
            "variance": variance,
            "lag": "all" if lag is None else int(lag),
            "alpha": alpha,
            "fdr_q": q,
            "min_valid": min_valid,
        },
    )

    stages.start("frozen days")
    graph = trend_graph(
        product,
        variance=variance,
        lag=lag,
        alpha=alpha,
        q=q,
        min_valid=min_valid,
        variable=variable,
        codes=codes,
    )
    prod = graph.product
    stages.done("frozen days")

    stages.start("per-pixel trends")
    graph = graph.compute()
    fd_all, mk, sig = graph.frozen_days, graph.mk, graph.significant_fdr
    fd = fd_all.sel({"pass": [p for p in fd_all["pass"].values if p != "mean"]})
    stages.done("per-pixel trends")

    stages.start("table 2")
    res.years = (int(fd["year"][0]), int(fd["year"][-1]))
    series = tseries = None
    if store is None:
        res.notes.append("Table 2 and the regional series need an ftcloud store's regions (--store): not computed")
    else:
        statics = _on_grid(store.open(layout.STATICS), fd, "statics").load()
        region, stab = statics["region"], statics.get("permafrost_stability")
        tdir = find_truth(store.url, truth, store.storage_options)
        res.truth = tdir
        truth_fd = planted = None
        if tdir and os.path.exists(os.path.join(tdir, layout.TRUTH_SUMMARY)):
            ts = open_truth_summary(tdir, fd)
            complete = ts["days_in_period"] >= 365
            tfd = ts["frozen_days"].where(complete).mean("pass").astype(np.float64)
            yrs = np.intersect1d(tfd["year"].values, fd["year"].values)
            truth_fd = tfd.sel(year=yrs).assign_attrs(
                units="days", long_name="truth frozen days per year (mean of AM and PM)"
            )
            truth_fd["year"].attrs = {"units": "year"}
            planted = ts.get("target_slope")
        tables = []
        for p in fd_all["pass"].values:
            t = table2(
                fd_all.sel({"pass": p}, drop=True),
                region,
                stab,
                alpha=alpha,
                truth_fd=truth_fd if p == "mean" else None,
                planted=planted if p == "mean" else None,
                variance=variance,
                lag=lag,
            )
            t.insert(0, "pass", p)
            tables.append(t)
        res.table2 = pd.concat(tables, ignore_index=True)
        masks = stratum_masks(region, stability_in(region, stab))
        series = xr.concat(
            [regional_series(fd_all.sel({"pass": p}, drop=True), masks) for p in fd_all["pass"].values],
            dim=fd_all["pass"],
        )
        series = series.compute()
        tseries = regional_series(truth_fd, masks).compute() if truth_fd is not None else None
        sdf = series.to_dataframe(name="frozen_days").reset_index()
        if tseries is not None:
            sdf = sdf.merge(
                tseries.to_dataframe(name="truth_frozen_days").reset_index()[["stratum", "year", "truth_frozen_days"]],
                on=["stratum", "year"],
                how="left",
            )
        res.series = sdf
    stages.done("table 2")

    stages.start("figures")
    n_years = res.years[1] - res.years[0] + 1
    undefined = (
        f"{n_years} year{'s' if n_years != 1 else ''} < {MIN_TREND_YEARS}"
        if n_years < MIN_TREND_YEARS
        else f"fewer than {MIN_TREND_YEARS} valid years"
    )
    if figures:
        from ftcloud.report import figures as F

        os.makedirs(figdir, exist_ok=True)
        if series is not None:
            fits = mann_kendall(
                series.sel({"pass": "mean"}), dim="year", variance=variance, lag=lag, alpha=alpha
            ).compute()
            for grp, name, title in (
                (("region", "all"), "regional_series", "Regional mean frozen days (mean of AM and PM)"),
                (("stability",), "stability_series", "Frozen days by permafrost thermal stability (Qinghai-Tibet)"),
            ):
                groups = list(series["group"].values)
                sel = [i for i, g in enumerate(groups) if g in grp]
                if groups.count("region") == 1:  # one region: "all regions" is the same series
                    sel = [i for i in sel if groups[i] != "all"]
                if not sel:
                    continue
                fp = os.path.join(out, layout.FIGURES[name])
                F.regional_series(
                    series.sel({"pass": "mean"}).isel(stratum=sel),
                    fits.isel(stratum=sel),
                    fp,
                    title=title,
                    truth=tseries.isel(stratum=sel) if tseries is not None else None,
                    undefined=undefined,
                )
                res.figures[name] = fp
        fp = os.path.join(out, layout.FIGURES["slope_map"])
        on_map = {k: prod[k] for k in ("lat", "lon") if k in prod.coords and prod[k].ndim == 2}
        F.slope_map(
            mk["slope"].sel({"pass": "mean"}).assign_coords(on_map),  # lat/lon: the graticule
            sig.sel({"pass": "mean"}),
            mk["significant"].sel({"pass": "mean"}),
            fp,
            title=f"Sen slope of frozen days (mean of AM and PM), {int(fd['year'][0])}-{int(fd['year'][-1])}\n"
            f"black dots: significant after FDR (q = {q:g}); grey dots: p < {alpha:g} per pixel only",
            undefined=undefined,
        )
        res.figures["slope_map"] = fp
    stages.done("figures")

    stages.start("write")
    ds = xr.Dataset({"frozen_days": fd_all})
    for k in ("slope", "slope_low", "slope_high", "intercept", "tau", "p", "significant", "n"):
        ds[k] = mk[k]
    ds["significant_fdr"] = sig
    if series is not None:
        ds["series"] = series.assign_attrs(
            long_name="stratum-mean frozen days (mean over the pixels valid in each year)", units="days"
        )
    ds = ds.assign_coords(lat=prod["lat"], lon=prod["lon"]) if "lat" in prod.coords else ds
    ds.attrs = {
        "title": "ftcloud frozen-day trends: Sen slope and Mann-Kendall per pixel, FDR, regional series",
        "product": product.url,
        "variance": variance,
        "lag": "all" if lag is None else int(lag),
        "alpha": alpha,
        "fdr_q": q,
        "min_valid": min_valid,
        "history": history_stamp("ftcloud trends"),
    }
    _write_zarr(ds, os.path.join(out, res.DATASET))
    res.fdr_significant_fraction = {str(p): float(sig.sel({"pass": p}).mean()) for p in sig["pass"].values}
    stages.done("write")
    stages.close()
    res.stage_seconds = stages.times
    res.seconds = round(time.perf_counter() - t_all, 1)
    res.save()  # Table 2, the series, then the summary (last: it says the folder is complete)
    return res
