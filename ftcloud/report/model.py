"""The training report: Markdown tables and a bar chart of test-period accuracies."""

from __future__ import annotations

import math
import os

from ftcloud.study import PAPER, SEASONS

PRODUCT_LABELS = {
    "fused": "ConvLSTM_FT (fused)",
    "smap_head": "SMAP head alone",
    "esdr_head": "ESDR head alone",
    "ERA5_FT": "ERA5_FT (stl1 < 273.15 K)",
    "SMAP_E_FT": "SMAP_E_FT (target product)",
    "ESDR_FT": "ESDR_FT (target product)",
}
from ftcloud.science.validation import MIN_TABLE_COUNT  # noqa: E402

BASELINES = ("ERA5_FT", "SMAP_E_FT", "ESDR_FT", "smap_head", "esdr_head")
SEASON_LABELS = {
    "all": "all days",
    "frozen": "frozen season (Dec-Jan)",
    "transition": "transition (Feb-Apr, Oct-Nov)",
    "thawed": "thawed season (May-Sep)",
}


#: what the report prints for a missing or undefined value (None, NaN, absent)
NA = "n/a"
#: the seasons of a model card's test-period tables, in order ("all" = every test day)
SEASON_ORDER = SEASONS


def _num(v) -> float | None:
    """``v`` as a finite float, or None (None, NaN, inf, or not a number at all)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)  # numpy scalars
        except (TypeError, ValueError):
            return None
    return float(v) if math.isfinite(v) else None


def _fmt(v) -> str:
    """A fraction in % (2 decimals); n/a when undefined."""
    v = _num(v)
    return NA if v is None else f"{100 * v:.2f}"


def _pp(v):
    """A fraction as % points, None stays None."""
    v = _num(v)
    return None if v is None else 100 * v


def _sg(v) -> str:
    """Signed points (2 decimals); n/a when undefined."""
    v = _num(v)
    return NA if v is None else f"{v:+.2f}"


def _count(v, sep: str = ",") -> str:
    """A count (thousands separated by ``sep``); n/a when undefined."""
    v = _num(v)
    return NA if v is None else f"{int(v):,}".replace(",", sep)


def _txt(v) -> str:
    return NA if v is None or (isinstance(v, float) and not math.isfinite(v)) else str(v)


def _row(block: dict, product: str) -> dict | None:
    for r in block.get("table", []):
        if r["product"] == product:
            return r
    return None


def _gain(block: dict, baseline: str) -> dict | None:
    for r in block.get("gains", []):
        if r["product"] == baseline:
            return r
    return None


def gains_table(card: dict, reference: str = "truth") -> list[dict]:
    """The fused product's gain over each baseline, per season, on the common mask (rows of dicts).

    Each row: season, baseline, fused and baseline CA_O, gain (fraction) with its 95 % interval,
    n common pixel-days and a plain sentence. Empty when the card has no such reference.
    """
    from ftcloud.science.compare import gain_sentence

    common = (card.get("metrics") or {}).get(f"common_vs_{reference}") or {}
    rows = []
    ref_words = "the hidden truth" if reference == "truth" else reference
    for season, block in common.items():
        f = _row(block, "fused")
        if f is None:
            continue
        for b in BASELINES:
            g, r = _gain(block, b), _row(block, b)
            if g is None or r is None:
                continue
            rows.append(
                {
                    "pass": card["pass"],
                    "reference": reference,
                    "season": season,
                    "baseline": b,
                    "fused_CA_O": f.get("CA_O"),
                    "baseline_CA_O": r.get("CA_O"),
                    "gain": g.get("gain"),
                    "gain_lo": g.get("gain_lo"),
                    "gain_hi": g.get("gain_hi"),
                    "n": f.get("n"),
                    "sentence": f"{card['pass']}, {SEASON_LABELS.get(season, season)}: "
                    + gain_sentence(
                        "the fused product",
                        PRODUCT_LABELS.get(b, b),
                        _num(g.get("gain")),
                        _num(g.get("gain_lo")),
                        _num(g.get("gain_hi")),
                        _num(f.get("n")),
                        ref_words,
                    ),
                }
            )
    return rows


def headline(card: dict) -> dict | None:
    """Fused vs SMAP_E_FT accuracy against the truth on the common mask (overall and Dec-Jan), and
    the fused product's gain over every baseline with its 95 % interval (``vs``)."""
    common = (card.get("metrics") or {}).get("common_vs_truth")
    if not common:
        return None
    out = {}
    for key, season in (("overall", "all"), ("frozen_season", "frozen")):
        block = common.get(season)
        f = _row(block, "fused") if block else None
        if f is None:  # no test day in the season (or no fused row): n/a
            out[key] = {"fused": None, "SMAP_E_FT": None, "gain_pct_points": None, "vs": {}, "no_test_days": not block}
            continue
        s = _row(block, "SMAP_E_FT") or {}
        vs = {}
        for b in BASELINES:
            g, r = _gain(block, b), _row(block, b)
            if g is not None:
                vs[b] = {
                    "CA_O": (r or {}).get("CA_O"),
                    "gain_pct_points": _pp(g.get("gain")),
                    "gain_lo": _pp(g.get("gain_lo")),
                    "gain_hi": _pp(g.get("gain_hi")),
                }
        fo, so = _num(f.get("CA_O")), _num(s.get("CA_O"))
        gain = None if fo is None or so is None else 100 * (fo - so)
        out[key] = {
            "fused": fo,
            "SMAP_E_FT": so,
            "n": f.get("n"),
            "fused_lo": f.get("CA_O_lo"),
            "fused_hi": f.get("CA_O_hi"),
            "gain_pct_points": gain,
            "vs": vs,
        }
    return out


def headline_text(pass_: str, h: dict) -> str:
    """One line: the fused accuracy against the truth beside every baseline's, with the gains' intervals
    (points), overall and in Dec-Jan."""
    parts = []
    for key, label in (("overall", "all days"), ("frozen_season", "Dec-Jan")):
        o = h.get(key) or {}
        if o.get("no_test_days"):
            parts.append(f"{label}: {NA} (no test day in this season)")
            continue
        if _num(o.get("fused")) is None:
            parts.append(f"{label}: no common pixel-day")
            continue
        head = (
            f"{label}: fused {_fmt(o['fused'])} % [{_fmt(o.get('fused_lo'))}, {_fmt(o.get('fused_hi'))}] "
            f"on {_count(o.get('n'))} common pixel-days"
        )
        gains = ", ".join(
            f"{b} {_fmt(v.get('CA_O'))} % ({_sg(v.get('gain_pct_points'))} "
            f"[{_sg(v.get('gain_lo'))}, {_sg(v.get('gain_hi'))}])"
            for b, v in (o.get("vs") or {}).items()
        )
        parts.append(f"{head}; {gains}")
    return f"{pass_} against the truth -- " + " | ".join(parts)


def _masked(ca, n) -> str:
    """CA_F / CA_T, or –* when fewer than MIN_TABLE_COUNT reference pixel-days are behind it."""
    n = _num(n)
    return "–*" if n is not None and n < MIN_TABLE_COUNT else _fmt(ca)


def markdown(card: dict) -> str:
    lines = [f"# ConvLSTM FT model, pass {_txt(card.get('pass'))}", ""]
    tr = card.get("training") or {}
    tp = list(tr.get("target_period") or []) + [None, None]
    lines += [
        f"Trained on `{_txt(tr.get('store'))}` ({_txt(tp[0])} .. {_txt(tp[1])} targets), "
        f"best epoch {_txt(tr.get('best_epoch'))} of {len(tr.get('history') or [])}, {_txt(tr.get('seconds'))} s; "
        f"architecture {_txt(card.get('architecture'))}, halo {_txt(card.get('halo'))} cells.",
        "",
    ]
    m = card.get("metrics") or {}
    period = " .. ".join(map(_txt, m.get("period") or [])) or NA
    for ref in ("truth", "SMAP_E_FT", "ESDR_FT"):
        common = m.get(f"common_vs_{ref}")
        if not common:
            continue
        words = "the hidden truth" if ref == "truth" else ref
        lines += [
            f"## Against {words}: every product on one common mask (test period {period})",
            "",
            "CA_O / CA_F / CA_T in %, with the 95 % block-bootstrap interval of CA_O (blocks of 10 days of the "
            "whole window: neighbours share their errors); "
            "gain = fused - product, in points, with its paired interval.",
            "",
        ]
        lines += [
            "| season | product | CA_O | 95 % interval | CA_F | CA_T | fused gain | gain interval | n |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        absent = [s for s in SEASON_ORDER if s not in common]
        for season, block in [(s, common[s]) for s in SEASON_ORDER if s in common] + [
            (s, b) for s, b in common.items() if s not in SEASON_ORDER
        ]:
            for r in (block or {}).get("table") or []:
                g = _gain(block, r.get("product"))
                gain = "" if g is None else _sg(_pp(g.get("gain")))
                gint = "" if g is None else f"[{_sg(_pp(g.get('gain_lo')))}, {_sg(_pp(g.get('gain_hi')))}]"
                ca_f = _masked(r.get("CA_F"), r.get("n_F"))
                ca_t = _masked(r.get("CA_T"), r.get("n_T"))
                lines.append(
                    f"| {season} | {PRODUCT_LABELS.get(r.get('product'), _txt(r.get('product')))} | "
                    f"{_fmt(r.get('CA_O'))} | [{_fmt(r.get('CA_O_lo'))}, {_fmt(r.get('CA_O_hi'))}] | "
                    f"{ca_f} | {ca_t} | {gain} | {gint} | {_count(r.get('n'), '')} |"
                )
        for season in absent:
            lines.append(f"| {season} | every product | {NA} | {NA} | {NA} | {NA} | {NA} | {NA} | 0 |")
        lines.append("")
        if absent:
            lines += [
                f"{NA}: the test period ({period}) has no day in the "
                + ", ".join(SEASON_LABELS.get(s, s) for s in absent)
                + ".",
                "",
            ]
        if ref == "truth":
            lines += ["What the fused product gains, in words:", ""]
            lines += [f"- {r['sentence']}" for r in gains_table(card, "truth")]
            lines.append("")
    lines += [
        "CA_F = N[F/F] / (N[F/F] + N[T/F]), CA_T = N[T/T] / (N[T/T] + N[F/T]), CA_O = (N[F/F] + N[T/T]) / all "
        f"(product state / reference state). –*: CA_F or CA_T over fewer than {MIN_TABLE_COUNT} frozen / thawed "
        f"reference pixel-days, not reported; {NA}: undefined (no pixel-day to score). "
        "The common mask keeps a pixel-day only where the reference and "
        "every product in the table are valid (0 or 1). "
        f"The paper's {PAPER['gain_overall_pct_points']:+.2f} / {PAPER['gain_frozen_season_pct_points']:+.2f} % "
        "are fused vs SMAP_E_FT "
        "against six in-situ networks, not against this truth: compare like with like.",
        "",
    ]
    return "\n".join(lines)


def bar_chart(card: dict, path: str) -> None:
    import numpy as np

    from ftcloud.report.figures import DPI, _figure

    def subplots(w, h):  # a Figure on the Agg canvas, no pyplot: a user's notebook backend stays as it is
        fig = _figure(w, h)
        return fig, fig.add_subplot()

    metrics = card.get("metrics") or {}
    ref = "truth" if metrics.get("common_vs_truth") else "SMAP_E_FT"
    common = metrics.get(f"common_vs_{ref}") or {}
    seasons = [s for s in SEASON_ORDER if s in common]
    prods = [r.get("product") for r in ((common[seasons[0]] or {}).get("table") or [])] if seasons else []
    if not prods:  # nothing was scored: a chart that says so
        fig, ax = subplots(8.5, 4.4)
        ax.axis("off")
        ax.text(0.5, 0.5, f"pass {_txt(card.get('pass'))}: no test-period score ({NA})", ha="center", va="center")
        fig.savefig(path, format="png", dpi=DPI)
        return
    prods = [p for p in ("fused", "smap_head", "esdr_head", "ERA5_FT", "SMAP_E_FT", "ESDR_FT") if p in prods] + [
        p for p in prods if p not in PRODUCT_LABELS
    ]
    fig, ax = subplots(8.5, 4.4)
    width = 0.8 / len(prods)
    for i, p in enumerate(prods):
        rows = [_row(common[s] or {}, p) or {} for s in seasons]
        vals, lo, hi = (
            np.array([100 * (_num(r.get(k)) if _num(r.get(k)) is not None else np.nan) for r in rows])
            for k in ("CA_O", "CA_O_lo", "CA_O_hi")
        )
        ax.bar(
            np.arange(len(seasons)) + i * width,
            vals,
            width,
            yerr=[vals - lo, hi - vals],
            capsize=2,
            label=PRODUCT_LABELS.get(p, p),
        )
    ax.set_xticks(np.arange(len(seasons)) + 0.4 - width / 2, [SEASON_LABELS[s].split(" (")[0] for s in seasons])
    ax.set_ylabel("overall accuracy CA_O (%), 95 % interval")
    ax.set_ylim(0, 100)  # from 0: a cut axis makes small differences look large
    against = "the truth" if ref == "truth" else ref
    ax.set_title(f"Test period, pass {_txt(card.get('pass'))}, against {against}: one common mask")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.09), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)


def _replace_atomically(path: str, write) -> None:
    """``write(tmp)`` to a temporary name in ``path``'s folder, then rename it over ``path``: a crash
    leaves the previous file (or none), never a truncated one."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_report(card: dict, out: str, pass_: str) -> None:
    """``report_<pass>.md`` and ``accuracy_<pass>.png`` in ``out``, each written atomically."""
    text = markdown(card)  # rendered before any file is opened

    def write_md(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    _replace_atomically(os.path.join(out, f"report_{pass_}.md"), write_md)
    _replace_atomically(os.path.join(out, f"accuracy_{pass_}.png"), lambda tmp: bar_chart(card, tmp))
