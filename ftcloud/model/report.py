"""The training report: Markdown tables and a bar chart of test-period accuracies."""

from __future__ import annotations

import os

PRODUCT_LABELS = {
    "fused": "ConvLSTM_FT (fused)",
    "smap_head": "SMAP head",
    "esdr_head": "ESDR head",
    "SMAP_E_FT": "SMAP_E_FT (target product)",
    "ESDR_FT": "ESDR_FT (target product)",
}


def _fmt(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def headline(card: dict) -> dict | None:
    """Fused vs SMAP_E_FT accuracy against the truth: overall CA_O and frozen-season CA_O."""
    m = card["metrics"].get("vs_truth")
    if not m:
        return None
    out = {}
    for key, season in (("overall", "all"), ("frozen_season", "frozen")):
        f = m["fused"].get(season, {}).get("CA_O")
        s = m["SMAP_E_FT"].get(season, {}).get("CA_O")
        out[key] = {"fused": f, "SMAP_E_FT": s, "gain_pct_points": None if f is None or s is None else 100 * (f - s)}
    return out


def markdown(card: dict) -> str:
    lines = [f"# ConvLSTM FT model, pass {card['pass']}", ""]
    tr = card["training"]
    lines += [
        f"Trained on `{tr['store']}` ({tr['target_period'][0]} .. {tr['target_period'][1]} targets), "
        f"best epoch {tr['best_epoch']} of {len(tr['history'])}, {tr['seconds']} s; "
        f"architecture {card['architecture']}, halo {card['halo']} cells.",
        "",
    ]
    h = headline(card)
    if h:
        lines += [
            "**Against the hidden truth (test period 2018-04-01 .. 2020-12-31):** "
            f"fused {_fmt(h['overall']['fused'])} % vs SMAP_E_FT {_fmt(h['overall']['SMAP_E_FT'])} % overall "
            f"({h['overall']['gain_pct_points']:+.2f} points); frozen season (Dec-Jan) "
            f"{_fmt(h['frozen_season']['fused'])} % vs {_fmt(h['frozen_season']['SMAP_E_FT'])} % "
            f"({h['frozen_season']['gain_pct_points']:+.2f} points). The paper reports +2.44 overall and +7.03 in the frozen season.",
            "",
        ]
    m = card["metrics"]
    for ref in ("vs_truth", "vs_SMAP_E_FT", "vs_ESDR_FT"):
        if ref not in m:
            continue
        lines += [f"## Accuracy {ref.replace('vs_', 'against ')} (%)", ""]
        lines += ["| product | CA_F | CA_T | CA_O | CA_O frozen | CA_O transition | CA_O thawed | n |", "|---|---|---|---|---|---|---|---|"]
        for prod, block in m[ref].items():
            a = block["all"]
            row = [PRODUCT_LABELS.get(prod, prod), _fmt(a["CA_F"]), _fmt(a["CA_T"]), _fmt(a["CA_O"])]
            for s in ("frozen", "transition", "thawed"):
                row.append(_fmt(block.get(s, {}).get("CA_O")))
            row.append(str(a["n"]))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["CA_F = N[F/F] / (N[F/F] + N[T/F]), CA_T = N[T/T] / (N[T/T] + N[F/T]), CA_O = (N[F/F] + N[T/T]) / all "
              "(product state / reference state), over pixel-days valid in both.", ""]
    return "\n".join(lines)


def bar_chart(card: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ref = "vs_truth" if "vs_truth" in card["metrics"] else "vs_SMAP_E_FT"
    block = card["metrics"][ref]
    prods = [p for p in ("fused", "smap_head", "esdr_head", "SMAP_E_FT", "ESDR_FT") if p in block]
    seasons = ["all", "frozen", "transition", "thawed"]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    width = 0.8 / len(prods)
    for i, p in enumerate(prods):
        vals = [100 * (block[p].get(s, {}).get("CA_O") or np.nan) for s in seasons]
        ax.bar(np.arange(len(seasons)) + i * width, vals, width, label=PRODUCT_LABELS.get(p, p))
    ax.set_xticks(np.arange(len(seasons)) + 0.4 - width / 2, ["all", "frozen (Dec-Jan)", "transition", "thawed (May-Sep)"])
    ax.set_ylabel("overall accuracy CA_O (%)")
    lo = min(100 * (block[p].get(s, {}).get("CA_O") or 1) for p in prods for s in seasons)
    ax.set_ylim(max(0, lo - 5), 100)
    ax.set_title(f"Test period, pass {card['pass']}, {ref.replace('vs_', 'against ')}")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(card: dict, out: str, pass_: str) -> None:
    with open(os.path.join(out, f"report_{pass_}.md"), "w") as f:
        f.write(markdown(card))
    bar_chart(card, os.path.join(out, f"accuracy_{pass_}.png"))
