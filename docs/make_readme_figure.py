"""Compose docs/img/ftcloud-outputs.png (the README's picture) from a finished run folder.

    python docs/make_readme_figure.py ftcloud-out

Three of the run's own figures at a size that stays readable on a README page (1,200 px wide):
accuracy by season against the in-situ networks (paper Fig. 5) across the top, then the regional
frozen-day series with Sen slopes (Fig. 11) beside the per-pixel slope map. The heading names the
run's region and period from its recorded config (``OUT/run-config.json``).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script, not the package: no user session to disturb
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

TOP = ("validation/figures/fig05_accuracy_by_season.png", "Accuracy by season against the in-situ networks")
BOTTOM = (
    ("trends/figures/fig11_regional_series.png", "Frozen days per year and their Sen slope"),
    ("trends/figures/slope_map.png", "Per-pixel Sen slope (FDR-significant dotted)"),
)


def main(run: str, out: str = str(Path(__file__).parent / "img" / "ftcloud-outputs.png")) -> None:
    run_dir = Path(run)
    cfg_path = run_dir / "run-config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    where = f"{cfg.get('region', '?')} region, {str(cfg.get('start', '?'))[:4]}-{str(cfg.get('end', '?'))[:4]}"
    imgs = {rel: mpimg.imread(run_dir / rel) for rel, _ in (TOP, *BOTTOM)}
    width, gap, head = 12.0, 0.15, 0.45  # inches: page width, gap between the bottom panels, a panel title

    def height(rel, w):  # the panel's height at width w, keeping the image's aspect
        h, w_px = imgs[rel].shape[:2]
        return w * h / w_px

    half = (width - gap) / 2
    top_h = height(TOP[0], width)
    bottom_h = max(height(rel, half) for rel, _ in BOTTOM)
    total = 0.6 + head + top_h + head + bottom_h
    fig = plt.figure(figsize=(width, total))
    boxes = [(TOP, 0.0, total - 0.6 - head - top_h, width, top_h)] + [
        (panel, i * (half + gap), bottom_h - height(panel[0], half), half, height(panel[0], half))
        for i, panel in enumerate(BOTTOM)
    ]
    for (rel, title), x, y, w, h in boxes:
        ax = fig.add_axes((x / width, y / total, w / width, h / total))
        ax.imshow(imgs[rel], interpolation="lanczos")
        ax.set_title(title, fontsize=13)
        ax.axis("off")
    fig.suptitle(f"ftcloud run on the digital twin ({where}): three of the report's figures", fontsize=15, y=0.995)
    fig.savefig(out, dpi=100, facecolor="white")
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
