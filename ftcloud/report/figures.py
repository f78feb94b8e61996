"""Figures of the science layer (Cui et al. 2024 Figs. 3-7, 11-12), drawn with matplotlib's Agg canvas.

No pyplot: every function builds a :class:`matplotlib.figure.Figure` on a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, saves a PNG and returns its path, so
the module is safe in threads, on headless machines and inside notebooks (it never changes the
global backend). Inputs are plain xarray / pandas objects; maps use the EASE-Grid 2.0 x/y (km).
"""

from __future__ import annotations

import os

from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.study import SEASONS
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = ["BIVARIATE", "FT_COLOURS", "accuracy_bars", "ctc_bivariate", "ft_maps", "regional_series", "slope_map"]

#: thawed, frozen, missing
FT_COLOURS = ("#e08a3c", "#2b6cb0", "#d9d9d9")
#: 3 x 3 bivariate palette: rows = specificity class (low -> high), columns = sensitivity class (low -> high)
BIVARIATE = (
    ("#e8e8e8", "#dfb0d6", "#be64ac"),
    ("#ace4e4", "#a5add3", "#8c62aa"),
    ("#5ac8c8", "#5698b9", "#3b4994"),
)
_PRODUCT_COLOURS = {
    "ConvLSTM_FT": "#1b9e77",
    "SMAP_E_FT": "#d95f02",
    "ESDR_FT": "#7570b3",
    "ERA5_FT": "#e7298a",
    "Meteorology_FT": "#66a61e",
    "truth": "#444444",
}
_SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


#: print resolution of every PNG (journals ask for 300 dpi); a vector PDF is written beside each
DPI = 300


def _save(fig: Figure, path: str) -> str:
    """``path`` (PNG at :data:`DPI`) and the same figure as vector PDF beside it (``.pdf``)."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    fig.savefig(os.path.splitext(path)[0] + ".pdf", bbox_inches="tight", facecolor="white")
    return path


def _degrees(da: xr.DataArray) -> bool:
    """Whether the grid is in degrees (a product on a lat/lon grid), not EASE2 metres."""
    return str(da["x"].attrs.get("units", "")).startswith("degree")


def _axis_scale(da: xr.DataArray) -> float:
    return 1.0 if _degrees(da) else 1e3


def _extent(da: xr.DataArray) -> list[float]:
    x = np.asarray(da["x"].values, dtype=float) / _axis_scale(da)
    y = np.asarray(da["y"].values, dtype=float) / _axis_scale(da)
    dx = abs(x[1] - x[0]) if x.size > 1 else 9.0
    dy = abs(y[1] - y[0]) if y.size > 1 else 9.0
    return [x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2]


def _image(ax, arr: np.ndarray, da: xr.DataArray, **kw):
    """imshow with north up whatever the order of y."""
    y = np.asarray(da["y"].values)
    if y.size > 1 and y[1] > y[0]:
        arr = arr[::-1]
    return ax.imshow(arr, extent=_extent(da), origin="upper", interpolation="nearest", **kw)


def _graticule(ax, da: xr.DataArray) -> bool:
    """Latitude/longitude lines (labelled, in degrees) over an EASE2 map, from ``da``'s 2-D ``lat``/``lon``
    coordinates; returns whether it drew them (a map without them, or in degrees already, gets none)."""
    if _degrees(da) or "lat" not in da.coords or "lon" not in da.coords or da["lat"].ndim != 2:
        return False
    lat, lon = np.asarray(da["lat"].values, float), np.asarray(da["lon"].values, float)
    if not (np.isfinite(lat).any() and np.isfinite(lon).any()):
        return False
    x = np.asarray(da["x"].values, float) / 1e3
    y = np.asarray(da["y"].values, float) / 1e3
    span = max(np.nanmax(lat) - np.nanmin(lat), np.nanmax(lon) - np.nanmin(lon))
    step = next((s for s in (0.5, 1, 2, 5, 10) if span / s <= 6), 20)
    for field, ns, ew in ((lat, "N", "S"), (lon, "E", "W")):
        lo, hi = np.floor(np.nanmin(field) / step) * step, np.ceil(np.nanmax(field) / step) * step
        levels = np.arange(lo, hi + step / 2, step)
        if len(levels) < 2:
            continue
        cs = ax.contour(x, y, field, levels=levels, colors="k", linewidths=0.6, alpha=0.8)

        def fmt(v, pos=ns, neg=ew):
            return f"{abs(v):g}°{pos if v >= 0 else neg}"

        for t in ax.clabel(cs, fmt=fmt, fontsize=6, inline=True):
            t.set_bbox({"facecolor": "white", "alpha": 0.75, "pad": 0.6, "linewidth": 0})
    return True


def ft_maps(
    products: Mapping[str, xr.DataArray], dates: Sequence, path: str, title: str = "", ncols_dates: int = 3
) -> str:
    """FT maps of several products side by side on each date (paper Fig. 3).

    ``products``: name -> FT codes (time, y, x) (0 thawed, 1 frozen, else missing). A date a product
    lacks is drawn as missing and labelled "no data".
    """
    names = list(products)
    dates = pd.DatetimeIndex(dates)
    nrows = int(np.ceil(len(dates) / ncols_dates))
    ncols = ncols_dates * len(names)
    first = next(iter(products.values()))
    ny, nx = first.sizes["y"], first.sizes["x"]
    pw = 2.3
    ph = max(1.2, pw * ny / max(nx, 1)) + 0.35
    fig = _figure(pw * ncols, ph * nrows + 0.8)
    cmap = ListedColormap(list(FT_COLOURS))
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
    loaded = {}
    for n, da in products.items():
        have = pd.DatetimeIndex(da["time"].values)
        sel = [d for d in dates if d in have]
        loaded[n] = (da.sel(time=sel).load() if sel else None, set(sel))
    for i, d in enumerate(dates):
        r, c0 = divmod(i, ncols_dates)
        for j, n in enumerate(names):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c0 * len(names) + j + 1)
            arr, have = loaded[n]
            if arr is not None and d in have:
                v = np.asarray(arr.sel(time=d).values)
                codes = np.where(v == 0, 0, np.where(v == 1, 1, 2))
                _image(ax, codes, first, cmap=cmap, norm=norm)
                _graticule(ax, first)
                frac = np.mean(codes == 1) * 100
                ax.set_title(f"{d:%Y-%m-%d} {n}\nfrozen {frac:.0f} %", fontsize=7)
            else:
                _image(ax, np.full((ny, nx), 2), first, cmap=cmap, norm=norm)
                ax.set_title(f"{d:%Y-%m-%d} {n}\nno data", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [
        Patch(color=FT_COLOURS[0], label="thawed"),
        Patch(color=FT_COLOURS[1], label="frozen"),
        Patch(color=FT_COLOURS[2], label="missing"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return _save(fig, path)


#: a bar drawn from fewer pairs than this shows its count (its accuracy is uncertain by several points)
THIN_PAIRS = 100


def accuracy_bars(
    df: pd.DataFrame,
    path: str,
    by: str = "network",
    metrics: Sequence[str] = ("CA_F", "CA_T", "CA_O"),
    title: str | None = None,
    min_pairs: int = 20,
) -> str:
    """Grouped bars of classification accuracy per ``by`` (network or season), product and pass (Figs. 4-5).

    ``df``: the long direct-validation table (columns product, network, season, pass, CA_*, and
    the counts N_FF, N_TF, N_TT, N_FT, n). With ``by="network"`` the season is "all"; with
    ``by="season"`` the network is "all". Accuracies over fewer than ``min_pairs`` pairs (e.g.
    CA_T in Dec-Jan, when the soil is almost never thawed) are left out rather than drawn, and say
    so (``n < 20`` at the bar's place); a bar over fewer than :data:`THIN_PAIRS` pairs carries its count
    (``n=34``). Accuracies in %, on an axis from 0 (no truncated bars).
    """
    denom = {"CA_F": ("N_FF", "N_TF"), "CA_T": ("N_TT", "N_FT"), "CA_O": ("n",)}
    df = df.copy()
    for m in metrics:
        cols = denom.get(m)
        if cols and all(c in df for c in cols):
            df[f"_n_{m}"] = df[list(cols)].sum(axis=1)
            df.loc[df[f"_n_{m}"] < min_pairs, m] = np.nan
    other = "season" if by == "network" else "network"
    d = df[df[other] == "all"]
    if by == "season":
        cats = [s for s in SEASONS if s in set(d["season"])]
    else:
        cats = sorted(set(d["network"]), key=lambda v: (v != "all", v))
    prods = list(dict.fromkeys(d["product"]))
    passes = sorted(set(d["pass"]))
    fig = _figure(3.6 * len(metrics), 2.6 * len(passes) + 0.6)
    w = 0.8 / max(len(prods), 1)
    for i, p in enumerate(passes):
        for j, m in enumerate(metrics):
            ax = fig.add_subplot(len(passes), len(metrics), i * len(metrics) + j + 1)
            for k, prod in enumerate(prods):
                vals, have, ns = [], [], []
                for c in cats:
                    row = d[(d["pass"] == p) & (d["product"] == prod) & (d[by] == c)]
                    vals.append(100 * float(row[m].iloc[0]) if len(row) else np.nan)
                    have.append(len(row) > 0)
                    ns.append(int(row[f"_n_{m}"].iloc[0]) if len(row) and f"_n_{m}" in row else None)
                xpos = np.arange(len(cats)) + (k - (len(prods) - 1) / 2) * w
                ax.bar(xpos, vals, width=w, color=_PRODUCT_COLOURS.get(prod, _SERIES_COLOURS[k % 9]), label=prod)
                for xx, vv, h, n in zip(xpos, vals, have, ns):
                    if np.isfinite(vv):
                        thin = n is not None and n < THIN_PAIRS  # a bar on few pairs says how few
                        label = f"{vv:.0f}\nn={n}" if thin else f"{vv:.0f}"
                        ax.text(xx, vv + 0.5, label, ha="center", va="bottom", fontsize=6 if not thin else 5)
                    elif h:  # omitted, not zero: say why
                        ax.text(xx, 2, f"n < {min_pairs}", ha="center", va="bottom", fontsize=5, rotation=90)
            ax.set_xlim(-0.5, len(cats) - 0.5)  # every category's place, drawn or omitted, inside the panel
            ax.set_xticks(np.arange(len(cats)))
            ax.set_xticklabels(cats, fontsize=7, rotation=20 if len(cats) > 4 else 0)
            ax.set_ylim(0, 112)
            ax.set_title(f"{m}, {p} pass", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if j == 0:
                ax.set_ylabel("accuracy (%)", fontsize=8)
    fig.legend(
        handles=[Patch(color=_PRODUCT_COLOURS.get(p, "k"), label=p) for p in prods],
        loc="lower center",
        ncol=len(prods),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        title or f"Classification accuracy against in-situ FT by {by} (accuracies over < {min_pairs} pairs omitted)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return _save(fig, path)


def _bivariate_class(v: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), v, side="right")


def ctc_bivariate(
    ctc: xr.Dataset,
    xs: np.ndarray,
    ys: np.ndarray,
    elevation: xr.DataArray,
    path: str,
    edges: Sequence[float] = (0.8, 0.9),
    title: str = "",
) -> str:
    """Bivariate sensitivity/specificity maps of the CTC per product and season (Figs. 6-7).

    ``ctc``: one pass of the station CTC (season, product, station) with ``psi``, ``eta``,
    ``reason``; ``xs``/``ys``: the station pixels' EASE2 x/y (m). Each station is a marker whose
    colour comes from a 3 x 3 palette (sensitivity class x specificity class, ``edges``) on the
    elevation map; stations where the CTC is undefined are open grey markers.
    """
    seasons = list(ctc["season"].values)
    prods = list(ctc["product"].values)
    ny, nx = elevation.sizes["y"], elevation.sizes["x"]
    pw = 3.0
    ph = max(1.6, pw * ny / max(nx, 1))
    fig = _figure(pw * len(prods) + 1.8, ph * len(seasons) + 0.9)
    gs = fig.add_gridspec(len(seasons), len(prods) + 1, width_ratios=[1] * len(prods) + [0.55])
    elev = np.asarray(elevation.values, dtype=float)
    vmin, vmax = np.nanpercentile(elev, 2), np.nanpercentile(elev, 98)
    labels = [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in pairwise(edges)] + [f">={edges[-1]:g}"]
    im = None
    for i, s in enumerate(seasons):
        for j, prod in enumerate(prods):
            ax = fig.add_subplot(gs[i, j])
            im = _image(
                ax, elev, elevation, cmap="Greys", vmin=vmin, vmax=vmax + 0.8 * (vmax - vmin)
            )  # light background
            c = ctc.sel(season=s, product=prod)
            psi, eta = np.asarray(c["psi"].values, float), np.asarray(c["eta"].values, float)
            ok = np.isfinite(psi) & np.isfinite(eta) & (np.asarray(c["reason"].values) == 0)
            ci, ri = _bivariate_class(psi, edges), _bivariate_class(eta, edges)
            cols = [BIVARIATE[min(r, 2)][min(k, 2)] for r, k in zip(ri, ci)]
            xk, yk = xs / 1e3, ys / 1e3
            ax.scatter(
                xk[ok], yk[ok], c=[cols[t] for t in np.flatnonzero(ok)], s=70, edgecolors="k", linewidths=0.8, zorder=3
            )
            ax.scatter(
                xk[~ok], yk[~ok], facecolors="none", edgecolors="#777777", s=50, linewidths=1.0, marker="o", zorder=3
            )
            ax.set_xticks([])
            ax.set_yticks([])
            defined = int(ok.sum())
            mp = np.nanmean(psi[ok]) if defined else np.nan
            me = np.nanmean(eta[ok]) if defined else np.nan
            stats = f"mean sens {mp:.2f}, spec {me:.2f}" if defined else "CTC undefined"
            ax.set_title(f"{prod}, {s}\n{stats} ({defined}/{ok.size} stations)", fontsize=7)
    # the 2-D legend
    lax = fig.add_subplot(gs[0, -1])
    k = len(BIVARIATE)
    rgb = np.array(
        [[tuple(int(h[1 + 2 * q : 3 + 2 * q], 16) / 255 for q in range(3)) for h in row] for row in BIVARIATE]
    )
    lax.imshow(rgb, origin="lower", extent=(0, k, 0, k))
    lax.set_xticks(np.arange(k) + 0.5)
    lax.set_xticklabels(labels, fontsize=6, rotation=45)
    lax.set_yticks(np.arange(k) + 0.5)
    lax.set_yticklabels(labels, fontsize=6)
    lax.set_xlabel("sensitivity ->", fontsize=7)
    lax.set_ylabel("specificity ->", fontsize=7)
    lax.set_title("CTC legend", fontsize=8)
    if len(seasons) > 1:
        nax = fig.add_subplot(gs[1, -1])
        nax.axis("off")
        nax.legend(
            handles=[Line2D([], [], marker="o", ls="", mfc="none", mec="#777777", label="CTC undefined")],
            loc="upper left",
            fontsize=7,
            frameon=False,
        )
        if im is not None:
            cb = fig.colorbar(im, ax=nax, orientation="horizontal", fraction=0.25, pad=0.05)
            cb.set_label("elevation (m)", fontsize=7)
            cb.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, path)


def regional_series(
    series: xr.DataArray,
    fits: xr.Dataset,
    path: str,
    title: str = "",
    truth: xr.DataArray | None = None,
    undefined: str = "too few valid years for a trend",
) -> str:
    """Stratum-mean frozen days per year with their Sen-slope lines (Figs. 11-12).

    ``series`` (stratum, year); ``fits``: :func:`ftcloud.science.trends.mann_kendall` of it (``slope``,
    ``intercept``, ``p``); ``truth`` (stratum, year): the twin's truth, drawn thin and dashed.
    A stratum without a slope is labelled ``n/a: <undefined>`` (not ``+nan d/yr``).
    """
    years = np.asarray(series["year"].values, dtype=float)
    fig = _figure(8.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    for i, s in enumerate(series["stratum"].values):
        col = _SERIES_COLOURS[i % len(_SERIES_COLOURS)]
        v = np.asarray(series.sel(stratum=s).values, dtype=float)
        f = fits.sel(stratum=s) if "stratum" in fits.dims else fits.isel(stratum=i)
        slope, icpt, p = float(f["slope"]), float(f["intercept"]), float(f["p"])
        label = f"{s}: {slope:+.2f} d/yr (p = {p:.2f})" if np.isfinite(slope) else f"{s}: n/a ({undefined})"
        ax.plot(years, v, "o-", color=col, ms=3, lw=1.2, label=label)
        if np.isfinite(slope):
            ax.plot(years, icpt + slope * years, "--", color=col, lw=1.5)
        if truth is not None and s in truth["stratum"].values:
            tv = truth.sel(stratum=s).reindex(year=series["year"].values)
            ax.plot(years, np.asarray(tv.values, float), ":", color=col, lw=1.0, alpha=0.8)
    ax.set_xlabel("year")
    ax.set_ylabel("frozen days per year")
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], ls="--", color="k", label="Sen slope"))
    if truth is not None:
        handles.append(Line2D([], [], ls=":", color="k", label="twin truth"))
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def slope_map(
    slope: xr.DataArray,
    significant_fdr: xr.DataArray,
    significant: xr.DataArray | None,
    path: str,
    title: str = "",
    undefined: str = "no pixel has enough valid years",
) -> str:
    """Per-pixel Sen slope (days/yr) with stippling: black dots significant after FDR, grey p < alpha only.

    Without any finite slope the map says ``n/a: <undefined>`` in words instead of an empty map under
    a colour bar."""
    s = np.asarray(slope.values, dtype=float)
    finite = s[np.isfinite(s)]
    if not finite.size:
        ny, nx = s.shape
        fig = _figure(7.5, max(3.0, 7.5 * ny / max(nx, 1) * 0.85) + 0.6)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_facecolor("#eeeeee")
        ax.text(
            0.5, 0.5, f"no Sen slope: n/a\n{undefined}", transform=ax.transAxes, ha="center", va="center", fontsize=12
        )
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            ax.set_title(title, fontsize=8)
        fig.tight_layout()
        return _save(fig, path)
    vmax = float(np.nanpercentile(np.abs(finite), 98)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    ny, nx = s.shape
    fig = _figure(7.5, max(3.0, 7.5 * ny / max(nx, 1) * 0.85) + 0.6)
    ax = fig.add_subplot(1, 1, 1)
    im = _image(ax, s, slope, cmap="RdBu", vmin=-vmax, vmax=vmax)
    _graticule(ax, slope)
    xx, yy = np.meshgrid(
        np.asarray(slope["x"].values) / _axis_scale(slope), np.asarray(slope["y"].values) / _axis_scale(slope)
    )
    fd = np.asarray(significant_fdr.values, dtype=bool)
    if significant is not None:
        only = np.asarray(significant.values, dtype=bool) & ~fd
        ax.scatter(xx[only], yy[only], s=4, c="#777777", marker="o", linewidths=0)
    ax.scatter(xx[fd], yy[fd], s=9, c="k", marker="o", edgecolors="white", linewidths=0.4)
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label("Sen slope of frozen days (days/year)")
    ax.set_xlabel("longitude (°E)" if _degrees(slope) else "EASE2 x (km)")
    ax.set_ylabel("latitude (°N)" if _degrees(slope) else "EASE2 y (km)")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def family_accuracy(df: pd.DataFrame, path: str, title: str | None = None) -> str:
    """Overall accuracy CA_O (%) with its 95 % interval by season for every product (the retrieval families
    beside the fused product and the baselines), one panel per reference (truth, in-situ) and pass, all on
    the comparison's common mask (``df``: the baselines table of ``baseline_comparison``)."""
    refs = [r for r in ("truth", "insitu") if r in set(df["reference"])]
    passes = sorted(set(df["pass"]))
    seasons = [s for s in dict.fromkeys(df["season"])]
    prods = list(dict.fromkeys(df["product"]))
    fig = _figure(max(7.0, 1.1 * len(seasons) * max(len(prods), 4) / 3), 2.9 * len(refs) * len(passes) + 0.8)
    w = 0.8 / max(len(prods), 1)
    for i, (r, p) in enumerate((r, p) for r in refs for p in passes):
        ax = fig.add_subplot(len(refs) * len(passes), 1, i + 1)
        d = df[(df["reference"] == r) & (df["pass"] == p)]
        for k, prod in enumerate(prods):
            rows = [d[(d["season"] == s) & (d["product"] == prod)] for s in seasons]
            vals = np.array([100 * float(x["CA_O"].iloc[0]) if len(x) else np.nan for x in rows])
            lo = np.array([100 * float(x["CA_O_lo"].iloc[0]) if len(x) else np.nan for x in rows])
            hi = np.array([100 * float(x["CA_O_hi"].iloc[0]) if len(x) else np.nan for x in rows])
            xpos = np.arange(len(seasons)) + (k - (len(prods) - 1) / 2) * w
            colour = _PRODUCT_COLOURS.get(prod, _SERIES_COLOURS[k % len(_SERIES_COLOURS)])
            err = np.where(np.isfinite(vals), [vals - lo, hi - vals], 0)
            ax.bar(xpos, vals, width=w, color=colour, yerr=err, capsize=1.5, label=prod)
        ax.set_xlim(-0.5, len(seasons) - 0.5)
        ax.set_xticks(np.arange(len(seasons)))
        ax.set_xticklabels(seasons, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("CA_O (%)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        n = int(d["n"].max()) if len(d) else 0
        ax.set_title(
            f"against {'the twin truth' if r == 'truth' else 'the in-situ networks'}, {p} pass "
            f"(common mask, n = {n:,} per season 'all')",
            fontsize=9,
        )
    fig.legend(
        handles=[
            Patch(color=_PRODUCT_COLOURS.get(p, _SERIES_COLOURS[k % len(_SERIES_COLOURS)]), label=p)
            for k, p in enumerate(prods)
        ],
        loc="lower center",
        ncol=min(len(prods), 5),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title or "Overall accuracy by season and product, 95 % block-bootstrap intervals", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return _save(fig, path)


def error_maps(errors: Mapping[str, xr.DataArray], path: str, title: str = "") -> str:
    """Where each product errs: its per-pixel share of wrong pixel-days against the truth (``errors``: name ->
    (y, x) fraction 0..1), one map per product on a shared colour scale."""
    names = list(errors)
    ncols = min(4, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    first = next(iter(errors.values()))
    ny, nx = first.sizes["y"], first.sizes["x"]
    pw = 3.0
    ph = max(1.6, pw * ny / max(nx, 1)) + 0.5
    fig = _figure(pw * ncols + 0.8, ph * nrows + 0.6)
    vmax = max(0.05, float(np.nanmax([np.nanpercentile(e.values, 98) for e in errors.values()])))
    im = None
    for i, n in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        e = errors[n]
        im = _image(ax, 100 * np.asarray(e.values, float), e, cmap="magma_r", vmin=0, vmax=100 * vmax)
        _graticule(ax, e)
        ax.set_title(f"{n}: {100 * float(np.nanmean(e.values)):.1f} % wrong", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        cb = fig.colorbar(im, ax=fig.axes, shrink=0.8)
        cb.set_label("pixel-days wrong against the truth (%)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
