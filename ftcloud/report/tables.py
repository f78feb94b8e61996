"""The one Markdown table renderer (:func:`to_markdown`) and the texts of the validation, CTC and Table 2 reports."""

from __future__ import annotations

import logging
from collections.abc import Mapping
import numpy as np

from ftcloud.study import SEASONS
import pandas as pd
from ftcloud.science.validation import (
    CA_COUNTS,
    MIN_TABLE_COUNT,
)
from ftcloud.science.ctc import _CTC_VARS, _TRUTH_VARS

log = logging.getLogger(__name__)


#: how a Markdown table shows a statistic masked for too few pixel-days (ftcloud.science.validation.MIN_TABLE_COUNT)
MASK_MARK = "–"


def _fmt(v, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{v:.{digits}f}"
    return str(v)


def to_markdown(df: pd.DataFrame, digits: int | Mapping[str, int] = 3) -> str:
    """A pipe table of ``df`` (no dependency on tabulate); NaN as an empty cell."""
    cols = list(df.columns)
    dig = (lambda c: digits.get(c, 3)) if isinstance(digits, Mapping) else (lambda c: digits)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, dig(c)) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines) + "\n"


def _baselines_markdown(df: pd.DataFrame, period) -> str:
    from ftcloud.science.compare import gain_sentence

    lines = [
        f"# Every product on one common mask ({period[0]} .. {period[1]})",
        "",
        "CA_O in % with its 95 % block-bootstrap interval (blocks of 10 days of the whole window or of all "
        "stations, so neighbours' shared errors are not counted as independent evidence); gain = ConvLSTM_FT - "
        "product in points with its paired interval. ConvLSTM's "
        "heads alone are in the model cards (the product stores the fused output only).",
        "",
        "| reference | pass | season | product | CA_O | interval | CA_F | CA_T | gain | gain interval | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    f = lambda v: "–" if v is None or not np.isfinite(v) else f"{100 * v:.2f}"  # noqa: E731
    g = lambda v: "" if v is None or not np.isfinite(v) else f"{100 * v:+.2f}"  # noqa: E731
    words = []
    for _, r in df.iterrows():
        gi = "" if not np.isfinite(r.get("gain", np.nan)) else f"[{g(r['gain_lo'])}, {g(r['gain_hi'])}]"
        ca_f = f(r["CA_F"]) if r.get("n_F", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else MASK_MARK
        ca_t = f(r["CA_T"]) if r.get("n_T", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else MASK_MARK
        lines.append(
            f"| {r['reference']} | {r['pass']} | {r['season']} | {r['product']} | {f(r['CA_O'])} | "
            f"[{f(r['CA_O_lo'])}, {f(r['CA_O_hi'])}] | {ca_f} | {ca_t} | {g(r.get('gain', np.nan))} | {gi} | "
            f"{int(r['n'])} |"
        )
        if np.isfinite(r.get("gain", np.nan)):
            ref = "the hidden truth" if r["reference"] == "truth" else "the in-situ networks"
            words.append(
                f"- {r['pass']}, {r['season']}: "
                + gain_sentence("ConvLSTM_FT", r["product"], r["gain"], r["gain_lo"], r["gain_hi"], int(r["n"]), ref)
            )
    note = (
        f"{MASK_MARK}: CA_F / CA_T over fewer than {MIN_TABLE_COUNT} frozen / thawed reference days "
        "(n_F / n_T in baselines.csv), not reported."
    )
    return "\n".join(lines + ["", note, "", "In words:", ""] + words) + "\n"


def _masked_cells(df: pd.DataFrame, sparse: Mapping[str, pd.Series]) -> tuple[pd.DataFrame, int]:
    """``df`` with the cells of column c where ``sparse[c]`` is true replaced by MASK_MARK; and their number."""
    out = df.copy()
    k = 0
    for c, m in sparse.items():
        m = np.asarray(m, bool)
        if m.any():
            out[c] = out[c].astype(object)
            out.loc[m, c] = MASK_MARK
            k += int(m.sum())
    return out, k


def _mask_note(k: int, what: str, min_count: int) -> str:
    return (
        f"\n{MASK_MARK} : masked, fewer than {min_count} {what} behind the statistic "
        f"({k} cell{'s' if k != 1 else ''} in this table).\n"
        if k
        else ""
    )


def _direct_markdown(ddf: pd.DataFrame, period, rule: str, min_count: int = MIN_TABLE_COUNT) -> str:
    lines = [
        f"# Direct validation against in-situ networks ({period[0]} .. {period[1]})\n",
        (
            f"\nIn-situ FT: {rule}. Products at the station's 9 km pixel; counts over station-days valid in both. "
            "CA_F = N[F/F]/(N[F/F]+N[T/F]), CA_T = N[T/T]/(N[T/T]+N[F/T]), CA_O = (N[F/F]+N[T/T])/N "
            "(product state / reference state), in %. Seasons: frozen Dec-Jan, transition Feb-Apr + Oct-Nov, "
            f"thawed May-Sep. An accuracy over fewer than {min_count} station-days (its own denominator: "
            f"N[F/F]+N[T/F] for CA_F, N[T/T]+N[F/T] for CA_T, N for CA_O) is not reported: {MASK_MARK} in the "
            "tables, empty in direct_validation.csv. Each product is counted on its own valid station-days "
            '("diff CA_O (own days)" is therefore not a like-for-like gain); the fused product beside every '
            "baseline on ONE common mask, with intervals: baselines.md.\n"
        ),
    ]
    for refname, title in (
        ("insitu", "against the in-situ FT"),
        ("truth", "against the twin's truth at the same station-days"),
    ):
        d = ddf[ddf["reference"] == refname]
        if d.empty:
            continue
        prods = [p for p in ("ConvLSTM_FT", "SMAP_E_FT", "truth") if p in set(d["product"])]
        if refname == "truth":
            prods = [p for p in prods if p != "truth"]
        for p in sorted(set(d["pass"])):
            dp = d[d["pass"] == p]
            wide = None
            for prod in prods:
                x = dp[dp["product"] == prod][
                    ["network", "season", "n", "N_FF", "N_TF", "N_TT", "N_FT", "CA_F", "CA_T", "CA_O"]
                ].copy()
                for c, cols in CA_COUNTS.items():
                    x[f"{c} sparse"] = sum(x[k] for k in cols) < min_count
                    x[c] = 100 * x[c]
                x = x.drop(columns=["N_FF", "N_TF", "N_TT", "N_FT"])
                x = x.rename(columns={c: f"{prod} {c}" for c in x.columns if c not in ("network", "season")})
                wide = x if wide is None else wide.merge(x, on=["network", "season"])
            sparse = {f"{prod} {c}": wide[f"{prod} {c} sparse"] for prod in prods for c in CA_COUNTS}
            if "ConvLSTM_FT CA_O" in wide and "SMAP_E_FT CA_O" in wide:
                wide["diff CA_O (own days)"] = wide["ConvLSTM_FT CA_O"] - wide["SMAP_E_FT CA_O"]
                sparse["diff CA_O (own days)"] = wide["ConvLSTM_FT CA_O sparse"] | wide["SMAP_E_FT CA_O sparse"]
            order = {s: i for i, s in enumerate(SEASONS)}
            wide = wide.sort_values(
                ["network", "season"],
                key=lambda c: c.map(order) if c.name == "season" else c.map(lambda v: (v != "all", v)),
            )
            sparse = {c: m.loc[wide.index] for c, m in sparse.items()}
            wide = wide[[c for c in wide.columns if not c.endswith(" sparse")]]
            shown, k = _masked_cells(wide, sparse)
            lines.append(f"\n## {p} pass, {title}\n\n")
            lines.append(to_markdown(shown, digits={c: (0 if c.endswith(" n") else 2) for c in wide.columns}))
            lines.append(_mask_note(k, "station-days", min_count))
    return "".join(lines)


def _ctc_markdown(sdf: pd.DataFrame, period, nst: int, min_count: int = MIN_TABLE_COUNT) -> str:
    has_truth = "truth_pi" in sdf.columns
    lines = [
        f"# Categorical triple collocation ({period[0]} .. {period[1]}, {nst} CMA station pixels)\n\n",
        (
            "Triplet: ConvLSTM_FT, ERA5_FT (stl1 at 05 h / 17 h local solar time < 273.15 K), Meteorology_FT "
            "(CMA daily 0 cm surface temperature < 0 degC, rule in ctc.zarr and docs/science.md). psi = sensitivity "
            "(frozen detected), eta = specificity (thawed detected), pi = balanced accuracy; mean and median "
            "(`_median`) over the stations where the CTC is defined (n_stations). n_out_of_range: stations left out "
            "because an estimated psi or eta fell outside [0, 1] (sampling noise where a class is rare; their raw "
            "estimates are psi_raw / eta_raw in ctc_stations.csv), which pulls the means down where the accuracy is "
            f"near 1. n_days: station-days behind the row; statistics over fewer than {min_count} are not reported "
            f"({MASK_MARK} here, empty in ctc_summary.csv).\n"
        ),
    ]
    if has_truth:
        lines.append(
            "Columns `true ...`: each product's actual accuracy against the twin's hidden truth at the same "
            "stations and days (the CTC assumes conditionally independent errors; ConvLSTM_FT is built from "
            "ERA5-Land, so its errors are not independent of ERA5_FT's).\n"
        )
    stat_cols = [c for c in sdf.columns if c.split("_median")[0] in _CTC_VARS + _TRUTH_VARS]
    a = sdf[sdf["stratum_type"] == "all"].copy()
    cols = [
        "season",
        "pass",
        "product",
        "n_stations",
        "n_out_of_range",
        "n_days",
        "psi",
        "psi_median",
        "eta",
        "eta_median",
        "pi",
        "pi_median",
    ]
    if has_truth:
        a["true psi"], a["true eta"], a["true pi"] = a["truth_psi"], a["truth_eta"], a["truth_pi"]
        a["pi - true pi"] = a["pi"] - a["truth_pi"]
        cols += ["true psi", "true eta", "true pi", "pi - true pi"]
        stat_cols += ["true psi", "true eta", "true pi", "pi - true pi"]
    order = {s: i for i, s in enumerate(SEASONS)}
    a = a.sort_values(["season", "pass", "product"], key=lambda c: c.map(order) if c.name == "season" else c)
    cols = [c for c in cols if c in a.columns]
    sparse = a["n_days"] < min_count
    shown, k = _masked_cells(a[cols], {c: sparse for c in cols if c in stat_cols})
    lines.append("\n## All stations\n\n" + to_markdown(shown) + _mask_note(k, "station-days", min_count))
    for kind in ("land_cover", "koppen", "tci"):
        d = sdf[(sdf["stratum_type"] == kind) & (sdf["season"] == "all")]
        if d.empty:
            continue
        c2 = [
            "stratum",
            "n_total",
            "pass",
            "product",
            "n_stations",
            "n_out_of_range",
            "n_days",
            "psi",
            "psi_median",
            "eta",
            "eta_median",
            "pi",
            "pi_median",
        ] + (["truth_pi"] if has_truth else [])
        c2 = [c for c in c2 if c in d.columns]
        shown, k = _masked_cells(d[c2], {c: d["n_days"] < min_count for c in c2 if c in stat_cols})
        lines.append(f"\n## By {kind} (all data)\n\n" + to_markdown(shown) + _mask_note(k, "station-days", min_count))
    return "".join(lines)


def _table2_markdown(tab: pd.DataFrame, years: tuple[int, int], variance: str, alpha: float) -> str:
    y0, y1 = years
    m = tab[tab["pass"] == "mean"].copy()
    am = tab[tab["pass"] == "AM"].set_index(["group", "name"])["sen_slope"]
    pm = tab[tab["pass"] == "PM"].set_index(["group", "name"])["sen_slope"]
    m["AM slope"] = [am.get((g, n), np.nan) for g, n in zip(m["group"], m["name"])]
    m["PM slope"] = [pm.get((g, n), np.nan) for g, n in zip(m["group"], m["name"])]
    m["95% CI"] = [
        f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) and np.isfinite(b) else ""
        for a, b in zip(m["slope_low"], m["slope_high"])
    ]
    cols = [
        "group",
        "name",
        "n_pixels",
        "mean_frozen_days",
        "sen_slope",
        "95% CI",
        "p",
        "significant",
        "AM slope",
        "PM slope",
    ]
    if "truth_sen_slope" in m:
        m["truth 95% CI"] = [
            f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) and np.isfinite(b) else ""
            for a, b in zip(m["truth_slope_low"], m["truth_slope_high"])
        ]
        cols += ["truth_mean_frozen_days", "truth_sen_slope", "truth 95% CI"]
    if "planted_slope" in m:
        cols += ["planted_slope", "planted_in_ci"] + (["planted_in_truth_ci"] if "planted_in_truth_ci" in m else [])
    lines = [
        f"# Table 2: frozen days and their trend, {y0}-{y1}\n\n",
        (
            "Frozen days per calendar year (mean of AM and PM; a year needs 90 % valid days), averaged over the "
            "stratum's pixels; trend = Sen slope [days/year] of that regional series with its "
            f"{100 * (1 - alpha):.0f} % confidence interval and the two-sided Mann-Kendall p ({variance} variance). "
            "Permafrost classes inside Qinghai-Tibet only.\n"
        ),
    ]
    if "truth_sen_slope" in m:
        lines.append(
            "\n`truth_*`: the same table from the twin's hidden truth (truth/truth_summary_9km.nc, complete years); "
            "`planted_slope`: the twin's planted per-pixel target slope averaged over the stratum "
            "(truth/parameters.json); "
            "`planted_in_ci` / `planted_in_truth_ci`: planted slope inside the product's / the truth's confidence "
            "interval.\n"
        )
    lines.append("\n" + to_markdown(m[cols], digits={"mean_frozen_days": 1, "truth_mean_frozen_days": 1, "p": 3}))
    return "".join(lines)
