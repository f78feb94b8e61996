"""The run report: one self-contained HTML page (figures embedded) plus Markdown and CSV tables.

:func:`write_report` builds it from the result objects of :mod:`ftcloud.report.results` (the
model cards, :class:`ValidationResults`, :class:`TrendsResults`, the stages' record), which
``RunResults.load(OUT)`` reads back from a run folder, and writes ``OUT/report/``:

* ``report.html``: the paper's findings reproduced on the run's data beside the paper's numbers
  and (on the digital twin) the planted truth; fusion vs SMAP_E_FT by season; CTC by product,
  season and stratum; Table 2; every figure of the science layer; provenance (versions, model
  checksums, config, stage fingerprints and times). Opens offline: PNGs are base64 data URIs.
* ``report.md``: the same tables in Markdown, figures linked by relative path.
* ``findings.csv`` (paper vs this run vs truth), ``fusion_by_season.csv``, ``ctc.csv``,
  ``table2.csv``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
import time

import pandas as pd

from ftcloud.core.metadata import software_versions
from ftcloud.layout import RunLayout
from ftcloud.report.results import ModelCards, RunResults, ValidationResults
from ftcloud.report.tables import to_markdown
from ftcloud.science.validation import CA_COUNTS, MIN_TABLE_COUNT
from ftcloud.study import PAPER

__all__ = ["findings", "fusion_by_season", "gains_over_baselines", "provenance", "write_report"]

PRODUCTS = {
    "fused": "ConvLSTM_FT (fused)",
    "SMAP_E_FT": "SMAP_E_FT",
    "ESDR_FT": "ESDR_FT",
    "smap_head": "SMAP head",
    "esdr_head": "ESDR head",
}


def fusion_by_season(models: ModelCards) -> pd.DataFrame:
    """CA_F / CA_T / CA_O (%) per pass, season and product against the truth (twin) or SMAP_E_FT,
    every product on the model card's ONE common mask per season (with the CA_O interval)."""
    from ftcloud.report.model import PRODUCT_LABELS

    rows = []
    for p in models.passes:
        card = models[p]
        ref = "truth" if card["metrics"].get("common_vs_truth") else "SMAP_E_FT"
        for season, block in (card["metrics"].get(f"common_vs_{ref}") or {}).items():
            gains = {g["product"]: g for g in block.get("gains", [])}
            for r in block["table"]:
                pct = {
                    k: None if r.get(k) is None else 100 * r[k] for k in ("CA_F", "CA_T", "CA_O", "CA_O_lo", "CA_O_hi")
                }
                # as the tables and figures of validate: an accuracy from fewer than MIN_TABLE_COUNT
                # pixel-days is masked (a CA_T of 0.00 from one pixel-day is not a finding)
                for k, counts in CA_COUNTS.items():
                    if all(c in r for c in counts) and sum(int(r[c]) for c in counts) < MIN_TABLE_COUNT:
                        pct[k] = None
                        if k == "CA_O":
                            pct["CA_O_lo"] = pct["CA_O_hi"] = None
                g = gains.get("SMAP_E_FT") if r["product"] == "fused" else None
                rows.append(
                    {
                        "pass": p,
                        "reference": ref,
                        "season": season,
                        "product": PRODUCTS.get(r["product"], PRODUCT_LABELS.get(r["product"], r["product"])),
                        **pct,
                        "n": r["n"],
                        "gain_vs_SMAP_E_FT": None if g is None or g.get("gain") is None else 100 * g["gain"],
                    }
                )
    return pd.DataFrame(rows)


def _pts(v):
    """A fraction in % points, or None where it is undefined (None or NaN)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if v != v else 100 * v


def _interval_text(lo, hi) -> str:
    """``[lo, hi]`` of a slope interval, or n/a where it is undefined."""
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "n/a"
    return f"[{lo:.3f}, {hi:.3f}]"


def _interval(lo, hi) -> str:
    lo, hi = _pts(lo), _pts(hi)
    return "n/a" if lo is None or hi is None else f"[{lo:+.2f}, {hi:+.2f}]"


def _accuracy_interval(lo, hi) -> str:
    lo, hi = _pts(lo), _pts(hi)
    return "n/a" if lo is None or hi is None else f"[{lo:.2f}, {hi:.2f}]"


#: the products every validation scores; any other product of the baselines table is a compared one
_STANDARD_PRODUCTS = ("ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")


def families_side_by_side(validation: ValidationResults | None) -> pd.DataFrame:
    """Every product of the baselines table (the ConvLSTM, its baselines and the retrieval families compared
    with ``--compare`` / ``retrieve:``) as CA_O in % with its 95 % interval and n, one row per reference,
    pass, season and product, all on the table's common mask; empty when no family was compared."""
    base = None
    if validation is not None:  # the families' own table; an older validation folder kept them in baselines
        base = validation.families if validation.families is not None else validation.baselines
    if base is None or base.empty or set(base["product"]) <= set(_STANDARD_PRODUCTS):
        return pd.DataFrame()
    out = pd.DataFrame(
        {
            "reference": base["reference"],
            "pass": base["pass"],
            "season": base["season"],
            "product": base["product"],
            "CA_O %": [_pts(v) for v in base["CA_O"]],
            "95 % interval": [_accuracy_interval(a, b) for a, b in zip(base["CA_O_lo"], base["CA_O_hi"])],
            "CA_F %": [_pts(v) for v in base["CA_F"]],
            "CA_T %": [_pts(v) for v in base["CA_T"]],
            "n": base["n"].astype(int),
        }
    )
    return out


def gains_over_baselines(models: ModelCards, validation: ValidationResults | None) -> pd.DataFrame:
    """What the fused product gains over each baseline, per pass and season, against the truth
    (model cards: both heads too) and against in-situ (validation/baselines.csv), with 95 %
    intervals and a sentence per row. Gains in % points."""
    from ftcloud.science.compare import gain_sentence
    from ftcloud.report.model import PRODUCT_LABELS, gains_table

    rows = []
    for p in models.passes:
        card = models[p]
        if card:
            for r in gains_table(card, "truth"):
                rows.append(
                    {
                        "reference": "truth (model card, test period)",
                        "pass": p,
                        "season": r["season"],
                        "baseline": PRODUCT_LABELS.get(r["baseline"], r["baseline"]),
                        "fused %": _pts(r["fused_CA_O"]),
                        "baseline %": _pts(r["baseline_CA_O"]),
                        "gain (points)": _pts(r["gain"]),
                        "95 % interval": _interval(r["gain_lo"], r["gain_hi"]),
                        "n": r["n"],
                        "in words": r["sentence"],
                    }
                )
    base = validation.baselines if validation is not None else None
    if base is not None and not base.empty:
        b = base[(base["reference"] == "insitu") & (base["product"] != "ConvLSTM_FT")]
        fused = base[(base["reference"] == "insitu") & (base["product"] == "ConvLSTM_FT")].set_index(["pass", "season"])
        for _, r in b.iterrows():
            f = fused.loc[(r["pass"], r["season"]), "CA_O"]
            rows.append(
                {
                    "reference": "in-situ networks (validate)",
                    "pass": r["pass"],
                    "season": r["season"],
                    "baseline": r["product"],
                    "fused %": _pts(f),
                    "baseline %": _pts(r["CA_O"]),
                    "gain (points)": _pts(r["gain"]),
                    "95 % interval": _interval(r["gain_lo"], r["gain_hi"]),
                    "n": int(r["n"]),
                    "in words": f"{r['pass']}, {r['season']}: "
                    + gain_sentence(
                        "the fused product",
                        r["product"],
                        r["gain"],
                        r["gain_lo"],
                        r["gain_hi"],
                        int(r["n"]),
                        "the in-situ networks",
                    ),
                }
            )
    return pd.DataFrame(rows)


def findings(fusion: pd.DataFrame, base: pd.DataFrame | None, table2: pd.DataFrame | None) -> pd.DataFrame:
    """The paper's headline numbers beside this run's and (on the twin) the truth's.

    Both gains are on a common mask: against the truth from the model cards (``fusion``), against
    in-situ from the validation's baseline comparison ``base`` (the paper's numbers are the in-situ kind)."""
    rows = []
    for key, season, label in (
        ("gain_overall_pct_points", "all", "fused - SMAP_E_FT overall accuracy (CA_O, % points)"),
        ("gain_frozen_season_pct_points", "frozen", "fused - SMAP_E_FT, frozen season Dec-Jan (% points)"),
    ):
        for p in ("AM", "PM"):
            sel = (
                fusion[(fusion["pass"] == p) & (fusion["season"] == season) & (fusion["product"] == PRODUCTS["fused"])]
                if not fusion.empty
                else fusion
            )
            twin = (
                float(sel["gain_vs_SMAP_E_FT"].iloc[0])
                if len(sel) and sel["gain_vs_SMAP_E_FT"].notna().any()
                else math.nan
            )
            insitu = math.nan
            if base is not None:
                d = base[
                    (base["reference"] == "insitu")
                    & (base["season"] == season)
                    & (base["pass"] == p)
                    & (base["product"] == "SMAP_E_FT")
                ]
                if len(d) and pd.notna(d["gain"].iloc[0]):
                    insitu = 100 * float(d["gain"].iloc[0])
            ref = fusion["reference"].iloc[0] if not fusion.empty else "truth"
            rows.append(
                {
                    "finding": label,
                    "pass": p,
                    "paper": PAPER[key],
                    f"this run vs {ref}": twin,
                    "this run vs in-situ": insitu,
                }
            )
    if table2 is not None:
        t = table2[table2["pass"] == "mean"]
        for _, r in t.iterrows():
            if r["name"] in PAPER["table2_slope"]:
                rows.append(
                    {
                        "finding": f"Sen slope of frozen days, {r['name']} (days/year)",
                        "pass": "mean",
                        "paper": PAPER["table2_slope"][r["name"]],
                        "this run": r["sen_slope"],
                        "this run 95% CI": _interval_text(r["slope_low"], r["slope_high"]),
                        "truth": r.get("truth_sen_slope"),
                        "planted": r.get("planted_slope"),
                        # no slope, no interval: "planted in CI" is undefined, not False
                        "planted in CI": r.get("planted_in_ci") if pd.notna(r["sen_slope"]) else None,
                    }
                )
            if r["name"] in PAPER["table2_mean_days"]:
                rows.append(
                    {
                        "finding": f"mean frozen days, {r['name']}",
                        "pass": "mean",
                        "paper": PAPER["table2_mean_days"][r["name"]],
                        "this run": r["mean_frozen_days"],
                        "truth": r.get("truth_mean_frozen_days"),
                    }
                )
    return pd.DataFrame(rows)


def provenance(results: RunResults, config: dict | None) -> dict:
    from ftcloud.io.secrets import redact_obj

    state = results.stages
    models = {}
    for p in results.models.passes:
        card = results.models[p]
        models[p] = {k: v["sha256"] for k, v in card["files"].items()} | {
            "card": os.path.basename(RunLayout(results.out).card(p)),
            "torch": card.get("torch_version"),
        }
    twin = results.twin_parameters
    twin = {k: twin.get(k) for k in ("twin_version", "seed", "parameters", "parameter_sources")} if twin else None
    return {
        "twin": twin,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "software": {
            **software_versions(extra=("torch", "distributed", "dask-gateway", "pandas", "scipy")),
            "python": platform.python_version(),
        },
        "models_sha256": models,
        "stages": {
            k: {"seconds": round(v.get("seconds", 0.0), 1), "fingerprint": v.get("fingerprint")}
            for k, v in state.items()
        },
        "config": redact_obj(config),
    }


# --------------------------------------------------------------------------------------
# rendering

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.7em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:.9em;color:#555}.note{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
.kpi{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:.3em;min-width:12em}
.kpi b{font-size:1.4em;display:block}
"""


def _no_trend_reason(trd) -> str | None:
    """Why no trend test ran (e.g. "7 years < 10"), or None where it could run."""
    from ftcloud.study import MIN_TREND_YEARS

    if trd is None or not trd.years:
        return None
    n = trd.years[1] - trd.years[0] + 1
    return f"{n} year{'s' if n != 1 else ''} < {MIN_TREND_YEARS}" if n < MIN_TREND_YEARS else None


def _table_html(df: pd.DataFrame | None, digits: int = 3) -> str:
    if df is None or df.empty:
        return "<p class='note'>not available (the stage did not run or produced no rows)</p>"
    # an undefined statistic says so (n/a), it is not an empty cell
    return df.to_html(index=False, na_rep="n/a", float_format=lambda v: f"{v:.{digits}f}", border=0, escape=True)


def _table_md(df: pd.DataFrame | None, digits: int = 3) -> str:
    if df is None or df.empty:
        return "_not available_\n"
    return to_markdown(df, digits=digits)


def _img(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode()


def write_report(results: RunResults | str, config: dict | None = None) -> dict:
    """Write ``OUT/report/`` from the results of a finished (or partly finished) run; returns its files.

    ``results``: a :class:`~ftcloud.report.results.RunResults`, or the run's output folder ``OUT``
    (read with :meth:`RunResults.load <ftcloud.report.results.RunResults.load>`); ``config``: the run's
    configuration, by default the one the run recorded in ``OUT/run-config.json``."""
    if not isinstance(results, RunResults):
        results = RunResults.load(results)
    if config is None:
        config = results.config  # the one the run recorded
    out = results.out
    val, trd = results.validation, results.trends
    rep = RunLayout(out).report
    os.makedirs(rep, exist_ok=True)
    fusion = fusion_by_season(results.models)
    direct = val.direct if val is not None else None
    ctc = val.ctc if val is not None else None
    table2 = trd.table2 if trd is not None else None
    find = findings(fusion, val.baselines if val is not None else None, table2)
    prov = provenance(results, config)
    files = {}
    for name, df in (
        ("findings.csv", find),
        ("fusion_by_season.csv", fusion),
        ("ctc.csv", ctc),
        ("table2.csv", table2),
    ):
        if df is not None and not df.empty:
            df.to_csv(os.path.join(rep, name), index=False)
            files[name] = os.path.join(rep, name)
    with open(os.path.join(rep, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2, default=str)
    files["provenance.json"] = os.path.join(rep, "provenance.json")

    ctc_view = None
    if ctc is not None:
        ctc_view = ctc[ctc["n_stations"] > 0].copy()
        ctc_view["pi - true pi"] = ctc_view["pi"] - ctc_view["truth_pi"] if "truth_pi" in ctc_view else math.nan
    t2_view = None
    if table2 is not None:
        keep = [
            c
            for c in (
                "group",
                "name",
                "n_pixels",
                "mean_frozen_days",
                "sen_slope",
                "slope_low",
                "slope_high",
                "p",
                "significant",
                "truth_mean_frozen_days",
                "truth_sen_slope",
                "planted_slope",
                "planted_in_ci",
            )
            if c in table2
        ]
        t2_view = table2[table2["pass"] == "mean"][keep].copy()
        t2_view["paper_slope"] = [PAPER["table2_slope"].get(n, math.nan) for n in t2_view["name"]]
    direct_view = None
    if direct is not None:
        direct_view = (
            direct[(direct["network"] == "all")]
            .pivot_table(index=["reference", "season", "pass"], columns="product", values="CA_O", sort=False)
            .reset_index()
        )
        for c in direct_view.columns[3:]:
            direct_view[c] = 100 * direct_view[c]
    stage_rows = pd.DataFrame([{"stage": k, "seconds": v["seconds"]} for k, v in prov["stages"].items()])
    figs = results.figures()
    if config:
        region = config.get("region", "?")
        period = f"{config.get('start', '?')} .. {config.get('end', '?')}"
    else:
        region, period = "not recorded", "period not recorded (no run-config.json: pass --config)"
    is_twin = not (config or {}).get("source")
    ref_name = "the twin's hidden truth" if is_twin else "SMAP_E_FT"
    kpis = []
    for p in ("AM", "PM"):
        r = (
            find[(find["pass"] == p) & find["finding"].str.startswith("fused - SMAP_E_FT overall")]
            if not find.empty
            else find
        )
        if len(r):
            gain = r.iloc[0][
                [c for c in find.columns if c.startswith("this run vs ") and c != "this run vs in-situ"][0]
            ]
            text = "n/a" if _pts(gain) is None else f"{float(gain):+.2f} points"
            kpis.append((f"{p}: fused vs SMAP_E_FT", text, f"paper {PAPER['gain_overall_pct_points']:+.2f}"))
    no_trend = _no_trend_reason(trd)
    if trd is not None and trd.fdr_significant_fraction:
        v = trd.fdr_significant_fraction
        v = v.get("mean", next(iter(v.values())))
        text = f"n/a: {no_trend}" if no_trend or _pts(v) is None else f"{100 * float(v):.1f} %"
        kpis.append(("pixels with a significant trend (FDR 5 %)", text, "AM/PM mean"))

    fam = families_side_by_side(val)
    if not fam.empty:
        fam.to_csv(os.path.join(rep, "families.csv"), index=False)
        files["families.csv"] = os.path.join(rep, "families.csv")
    gains = gains_over_baselines(results.models, val)
    if not gains.empty:
        gains.to_csv(os.path.join(rep, "gains_over_baselines.csv"), index=False)
        files["gains_over_baselines.csv"] = os.path.join(rep, "gains_over_baselines.csv")
    gview = gains.drop(columns=["in words"]) if not gains.empty else None
    words = "".join(f"<li>{html.escape(w)}</li>" for w in gains["in words"]) if not gains.empty else ""
    twin_note = " on the synthetic digital twin, so every number can be checked against the planted truth"
    sections = [
        (
            "What the fused product gains over each baseline",
            "<p class='note'>Every product on one common mask of pixel-days per pass and season; gain = fused - "
            "baseline "
            "in % points with its paired 95 % block-bootstrap interval (10-day blocks of the whole window, or of all "
            "stations, against "
            f"in-situ). The paper's {PAPER['gain_overall_pct_points']:+.2f} / "
            f"{PAPER['gain_frozen_season_pct_points']:+.2f} % "
            "are fused vs SMAP_E_FT against six in-situ networks: compare them with the "
            "in-situ rows, not the truth rows. A gain whose interval includes 0 is not distinguishable from 0.</p>"
            + _table_html(gview, 2)
            + f"<ul>{words}</ul>",
            _table_md(gview, 2) + "\n" + "".join(f"- {w}\n" for w in (gains["in words"] if not gains.empty else [])),
        ),
        *(
            [
                (
                    "The retrieval families side by side (overall accuracy CA_O in %)",
                    "<p class='note'>Every product on the same pixel-days per reference, pass and season (the "
                    "baseline table's common mask), with 95 % block-bootstrap intervals: the ConvLSTM, its "
                    "baselines and the retrieval families of ftcloud retrieve. Figures: accuracy by season and "
                    "product, and where each product errs against the truth.</p>"
                    + _table_html(fam.drop(columns=["CA_F %", "CA_T %"]), 2),
                    _table_md(fam, 2),
                )
            ]
            if not fam.empty
            else []
        ),
        (
            "Findings beside the paper",
            f"<p>Paper: Cui et al. 2024. This run: region <b>{html.escape(str(region))}</b>, {period}"
            f"{twin_note if is_twin else ''}.</p>" + _table_html(find),
            _table_md(find),
        ),
        (
            f"Fusion vs SMAP_E_FT by season (accuracy in %, against {ref_name}, test period)",
            _table_html(fusion, 2),
            _table_md(fusion, 2),
        ),
        (
            "Direct validation against the in-situ networks (CA_O in %, all networks)",
            "<p class='note'>Full tables: validation/direct_validation.md</p>" + _table_html(direct_view, 2),
            _table_md(direct_view, 2),
        ),
        (
            "Categorical triple collocation by product, season and stratum",
            "<p class='note'>psi sensitivity, eta specificity, pi balanced accuracy; truth_* the actual accuracy "
            "against the twin's truth. "
            "CTC assumes conditionally independent errors; ConvLSTM_FT is built from ERA5-Land, so its errors are not "
            "independent "
            "of ERA5_FT's (see docs/science.md).</p>" + _table_html(ctc_view),
            _table_md(ctc_view),
        ),
        (
            "Table 2: frozen days and their trend (days/year)"
            + (f", {trd.years[0]}-{trd.years[1]}" if trd is not None and trd.years else ""),
            (
                f"<p class='note'>Trends n/a: {html.escape(no_trend)}; the mean frozen days are computed.</p>"
                if no_trend
                else ""
            )
            + _table_html(t2_view),
            (f"Trends n/a: {no_trend}; the mean frozen days are computed.\n\n" if no_trend else "")
            + _table_md(t2_view),
        ),
    ]
    body = [
        (
            f"<h1>ftcloud run report</h1><p class='note'>written {prov['written']} by ftcloud "
            f"{html.escape(str(prov['software'].get('ftcloud', '')))}; outputs in "
            f"{html.escape(os.path.abspath(out))}</p>"
        )
    ]
    body.append(
        "".join(f"<div class='kpi'>{html.escape(a)}<b>{html.escape(b)}</b>{html.escape(c)}</div>" for a, b, c in kpis)
    )
    md = [f"# ftcloud run report\n\nRegion {region}, {period}. Written {prov['written']}.\n"]
    for title, h, m in sections:
        body.append(f"<h2>{html.escape(title)}</h2>{h}")
        md.append(f"## {title}\n\n{m}")
    body.append("<h2>Figures</h2>")
    md.append("## Figures\n")
    for path, cap in figs:
        body.append(
            f"<figure><img alt='{html.escape(cap)}' "
            f"src='{_img(path)}'><figcaption>{html.escape(cap)}</figcaption></figure>"
        )
        md.append(f"![{cap}]({os.path.relpath(path, rep)})\n")
    prov_short = {k: prov[k] for k in ("software", "models_sha256", "config")}
    body.append(
        "<h2>Provenance</h2>"
        + _table_html(stage_rows, 1)
        + f"<pre>{html.escape(json.dumps(prov_short, indent=2, default=str))}</pre>"
    )
    md.append(
        "## Provenance\n\n" + _table_md(stage_rows, 1) + "\nVersions, model SHA-256 and config: provenance.json\n"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ftcloud report</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    tmp = os.path.join(rep, "report.html.tmp")
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, os.path.join(rep, "report.html"))
    with open(os.path.join(rep, "report.md"), "w") as f:
        f.write("\n".join(md))
    files["report.html"] = os.path.join(rep, "report.html")
    files["report.md"] = os.path.join(rep, "report.md")
    return {"out": rep, "files": files, "figures": len(figs), "headline": find.to_dict(orient="records")}
