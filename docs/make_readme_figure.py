"""Compose docs/img/ftcloud-outputs.png (the README's picture) from a finished run folder.

    python docs/make_readme_figure.py ftcloud-out

Four of the run's own figures side by side: FT maps (paper Fig. 3), accuracy by season
(Fig. 5), regional frozen-day series with Sen slopes (Fig. 11) and the per-pixel slope map.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (
    ("validation/figures/fig03_ft_maps_AM.png", "FT state, first day of each month (AM)"),
    ("validation/figures/fig05_accuracy_by_season.png", "accuracy by season vs in-situ"),
    ("trends/figures/fig11_regional_series.png", "frozen days per year and Sen slope"),
    ("trends/figures/slope_map.png", "per-pixel slope, FDR-significant stippled"),
)


def main(run: str, out: str = str(Path(__file__).parent / "img" / "ftcloud-outputs.png")) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, (rel, title) in zip(axes.ravel(), PANELS):
        ax.imshow(mpimg.imread(Path(run) / rel))
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    fig.suptitle(f"ftcloud run on the digital twin ({Path(run).name}): a few of the report's figures", fontsize=13)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
