"""The training report: Markdown tables and a bar chart of test-period accuracies."""

from __future__ import annotations

import os

PRODUCT_LABELS = {
    "fused": "ConvLSTM_FT (fused)",
    "smap_head": "SMAP head alone",
    "esdr_head": "ESDR head alone",
    "ERA5_FT": "ERA5_FT (stl1 < 273.15 K)",
    "SMAP_E_FT": "SMAP_E_FT (target product)",
    "ESDR_FT": "ESDR_FT (target product)",
}
from ftcloud.validation import MIN_TABLE_COUNT  # noqa: E402

BASELINES = ("ERA5_FT", "SMAP_E_FT", "ESDR_FT", "smap_head", "esdr_head")
SEASON_LABELS = {"all": "all days", "frozen": "frozen season (Dec-Jan)", "transition": "transition (Feb-Apr, Oct-Nov)",
                 "thawed": "thawed season (May-Sep)"}


def _fmt(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _pp(v):
    """A fraction as % points, None stays None."""
    return None if v is None else 100 * v


def _sg(v) -> str:
    return "–" if v is None else f"{v:+.2f}"


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
    from ftcloud.compare import gain_sentence

    common = card["metrics"].get(f"common_vs_{reference}") or {}
    rows = []
    ref_words = "the hidden truth" if reference == "truth" else reference
    for season, block in common.items():
        f = _row(block, "fused")
        for b in BASELINES:
            g, r = _gain(block, b), _row(block, b)
            if g is None or r is None:
                continue
            rows.append({
                "pass": card["pass"], "reference": reference, "season": season, "baseline": b,
                "fused_CA_O": f["CA_O"], "baseline_CA_O": r["CA_O"], "gain": g["gain"], "gain_lo": g["gain_lo"],
                "gain_hi": g["gain_hi"], "n": f["n"],
                "sentence": f"{card['pass']}, {SEASON_LABELS.get(season, season)}: "
                            + gain_sentence("the fused product", PRODUCT_LABELS.get(b, b), g["gain"], g["gain_lo"],
                                            g["gain_hi"], f["n"], ref_words),
            })
    return rows


def headline(card: dict) -> dict | None:
    """Fused vs SMAP_E_FT accuracy against the truth on the common mask (overall and Dec-Jan), and
    the fused product's gain over every baseline with its 95 % interval (``vs``)."""
    common = card["metrics"].get("common_vs_truth")
    if not common:
        return None
    out = {}
    for key, season in (("overall", "all"), ("frozen_season", "frozen")):
        block = common.get(season)
        if not block:
            out[key] = {"fused": None, "SMAP_E_FT": None, "gain_pct_points": None, "vs": {}}
            continue
        f, s = _row(block, "fused"), _row(block, "SMAP_E_FT")
        vs = {}
        for b in BASELINES:
            g = _gain(block, b)
            if g is not None:
                vs[b] = {"CA_O": _row(block, b)["CA_O"], "gain_pct_points": _pp(g["gain"]),
                         "gain_lo": _pp(g["gain_lo"]), "gain_hi": _pp(g["gain_hi"])}
        both = f["CA_O"] is not None and s["CA_O"] is not None
        out[key] = {"fused": f["CA_O"], "SMAP_E_FT": s["CA_O"], "n": f["n"], "fused_lo": f["CA_O_lo"], "fused_hi": f["CA_O_hi"],
                    "gain_pct_points": 100 * (f["CA_O"] - s["CA_O"]) if both else None, "vs": vs}
    return out


def headline_text(pass_: str, h: dict) -> str:
    """One line: the fused accuracy against the truth beside every baseline's, with the gains' intervals
    (points), overall and in Dec-Jan."""
    parts = []
    for key, label in (("overall", "all days"), ("frozen_season", "Dec-Jan")):
        o = h.get(key) or {}
        if o.get("fused") is None:
            parts.append(f"{label}: no common pixel-day")
            continue
        head = (f"{label}: fused {_fmt(o['fused'])} % [{_fmt(o.get('fused_lo'))}, {_fmt(o.get('fused_hi'))}] "
                f"on {o.get('n', 0):,} common pixel-days")
        gains = ", ".join(f"{b} {_fmt(v['CA_O'])} % ({_sg(v['gain_pct_points'])} [{_sg(v['gain_lo'])}, {_sg(v['gain_hi'])}])"
                          for b, v in o["vs"].items())
        parts.append(f"{head}; {gains}")
    return f"{pass_} against the truth -- " + " | ".join(parts)


def markdown(card: dict) -> str:
    lines = [f"# ConvLSTM FT model, pass {card['pass']}", ""]
    tr = card["training"]
    lines += [
        f"Trained on `{tr['store']}` ({tr['target_period'][0]} .. {tr['target_period'][1]} targets), "
        f"best epoch {tr['best_epoch']} of {len(tr['history'])}, {tr['seconds']} s; "
        f"architecture {card['architecture']}, halo {card['halo']} cells.",
        "",
    ]
    m = card["metrics"]
    period = " .. ".join(m.get("period", []))
    for ref in ("truth", "SMAP_E_FT", "ESDR_FT"):
        common = m.get(f"common_vs_{ref}")
        if not common:
            continue
        words = "the hidden truth" if ref == "truth" else ref
        lines += [f"## Against {words}: every product on one common mask (test period {period})", "",
                  "CA_O / CA_F / CA_T in %, with the 95 % block-bootstrap interval of CA_O (blocks of 10 days of the "
                  "whole window: neighbours share their errors); "
                  "gain = fused - product, in points, with its paired interval.", ""]
        lines += ["| season | product | CA_O | 95 % interval | CA_F | CA_T | fused gain | gain interval | n |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for season, block in common.items():
            for r in block["table"]:
                g = _gain(block, r["product"])
                gain = "" if g is None else _sg(_pp(g["gain"]))
                gint = "" if g is None else f"[{_sg(_pp(g['gain_lo']))}, {_sg(_pp(g['gain_hi']))}]"
                ca_f = _fmt(r["CA_F"]) if r.get("n_F", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else "–*"
                ca_t = _fmt(r["CA_T"]) if r.get("n_T", MIN_TABLE_COUNT) >= MIN_TABLE_COUNT else "–*"
                lines.append(f"| {season} | {PRODUCT_LABELS.get(r['product'], r['product'])} | {_fmt(r['CA_O'])} | "
                             f"[{_fmt(r['CA_O_lo'])}, {_fmt(r['CA_O_hi'])}] | {ca_f} | {ca_t} | "
                             f"{gain} | {gint} | {r['n']} |")
        lines.append("")
        if ref == "truth":
            lines += ["What the fused product gains, in words:", ""]
            lines += [f"- {r['sentence']}" for r in gains_table(card, "truth")]
            lines.append("")
    lines += ["CA_F = N[F/F] / (N[F/F] + N[T/F]), CA_T = N[T/T] / (N[T/T] + N[F/T]), CA_O = (N[F/F] + N[T/T]) / all "
              f"(product state / reference state). –*: CA_F or CA_T over fewer than {MIN_TABLE_COUNT} frozen / thawed "
              "reference pixel-days, not reported. The common mask keeps a pixel-day only where the reference and "
              "every product in the table are valid (0 or 1). The paper's +2.44 / +7.03 % are fused vs SMAP_E_FT "
              "against six in-situ networks, not against this truth: compare like with like.", ""]
    return "\n".join(lines)


def bar_chart(card: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ref = "truth" if card["metrics"].get("common_vs_truth") else "SMAP_E_FT"
    common = card["metrics"][f"common_vs_{ref}"]
    seasons = [s for s in ("all", "frozen", "transition", "thawed") if s in common]
    prods = [r["product"] for r in common[seasons[0]]["table"]]
    prods = [p for p in ("fused", "smap_head", "esdr_head", "ERA5_FT", "SMAP_E_FT", "ESDR_FT") if p in prods] + \
        [p for p in prods if p not in PRODUCT_LABELS]
    fig, ax = plt.subplots(figsize=(8.5, 4.4), dpi=110)
    width = 0.8 / len(prods)
    lo_all = 100.0
    for i, p in enumerate(prods):
        rows = [_row(common[s], p) for s in seasons]
        vals = np.array([100 * (r["CA_O"] if r and r["CA_O"] is not None else np.nan) for r in rows])
        lo = np.array([100 * (r["CA_O_lo"] if r and r["CA_O_lo"] is not None else np.nan) for r in rows])
        hi = np.array([100 * (r["CA_O_hi"] if r and r["CA_O_hi"] is not None else np.nan) for r in rows])
        ax.bar(np.arange(len(seasons)) + i * width, vals, width, yerr=[vals - lo, hi - vals], capsize=2,
               label=PRODUCT_LABELS.get(p, p))
        lo_all = min(lo_all, np.nanmin(lo) if np.isfinite(lo).any() else 100.0)
    ax.set_xticks(np.arange(len(seasons)) + 0.4 - width / 2, [SEASON_LABELS[s].split(" (")[0] for s in seasons])
    ax.set_ylabel("overall accuracy CA_O (%), 95 % interval")
    ax.set_ylim(max(0, lo_all - 5), 100)
    ax.set_title(f"Test period, pass {card['pass']}, against {'the truth' if ref == 'truth' else ref}: one common mask")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.09), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(card: dict, out: str, pass_: str) -> None:
    with open(os.path.join(out, f"report_{pass_}.md"), "w") as f:
        f.write(markdown(card))
    bar_chart(card, os.path.join(out, f"accuracy_{pass_}.png"))
