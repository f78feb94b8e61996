"""The ConvLSTM FT fusion model: training (`train`), export and loading.

Only this package and :mod:`ftcloud.inference` import torch, and only inside functions, so
``import ftcloud`` works in an image without torch.
"""

from __future__ import annotations

import json
import os

from ftcloud import layout
from ftcloud.core.timeutil import check_pass

__all__ = ["read_reports", "train"]


def _require_torch(feature: str = "ftcloud's model (PyTorch)"):
    """torch, or a MissingExtraError (an ImportError) naming the [torch] extra and the pin."""
    from ftcloud.errors import require

    return require("torch", "torch", feature=feature, note="torch==2.13.0, the CPU build")


def train(store: str, pass_: str, out: str, config=None, storage_options=None, progress: bool = True) -> dict:
    """Train the model for one pass on ``store``, export it to ``out`` and write its report.

    Returns the model card (which embeds the test-period report).
    """
    _require_torch()
    from ftcloud.io.stores import open_group
    from ftcloud.model.convlstm import ModelConfig
    from ftcloud.model.data import load_target_period
    from ftcloud.study import SPLITS
    from ftcloud.model.export import export_model
    from ftcloud.report.model import write_report
    from ftcloud.model.training import TrainConfig, evaluate_test_period, train_pass

    check_pass(pass_)
    config = config or TrainConfig()
    data = load_target_period(store, pass_, storage_options)
    result = train_pass(data, config, progress=progress)
    report = evaluate_test_period(result.model, data, config.splits)
    attrs = open_group(store, layout.STATICS, storage_options).attrs
    mcfg = ModelConfig(hidden=tuple(config.hidden), kernel=config.kernel)
    card = export_model(
        result.model,
        out,
        pass_,
        {
            "architecture": mcfg.to_dict(),
            "halo": mcfg.halo,
            "grid": {k: attrs.get(k) for k in ("ease2_grid", "ease2_window_rows", "ease2_window_cols", "region")},
            "training": {
                "store": store,
                "splits": config.splits or SPLITS,
                "config": config.to_dict(),
                "history": result.history,
                "best_epoch": result.best_epoch,
                "seconds": round(result.seconds, 1),
                "target_period": [str(data.times[0].date()), str(data.times[-1].date())],
                "truth_available": data.truth is not None,
            },
            "metrics": report,
        },
    )
    write_report(card, out, pass_)
    return card


def read_reports(out: str) -> dict:
    """The cards of the passes trained into ``out``."""
    cards = {}
    for p in ("AM", "PM"):
        path = os.path.join(out, f"{layout.MODEL_STEM}_{p}.json")
        if os.path.exists(path):
            with open(path) as f:
                cards[p] = json.load(f)
    return cards
