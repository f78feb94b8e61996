"""Training: normalisation from the training days only, masked loss, determinism, the report."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ftcloud.metadata import FT_MISSING  # noqa: E402
from ftcloud.model.data import load_target_period, split_mask  # noqa: E402
from ftcloud.model.training import (  # noqa: E402
    TrainConfig,
    accuracy,
    channel_stats,
    evaluate_test_period,
    head_targets,
    train_pass,
)

SPLITS = {
    "train": (("2017-01-01", "2017-01-31"),),
    "val": (("2017-02-01", "2017-02-14"),),
    "test": (("2017-02-15", "2017-02-28"),),
}


def test_accuracy_matches_hand_counted_table():
    # product / reference: F/F x3, T/F x1, T/T x4, F/T x2, and missing pairs that must not count
    prod = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 255, 1], "u1")
    ref = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 255], "u1")
    a = accuracy(prod, ref)
    assert (a["N_FF"], a["N_TF"], a["N_TT"], a["N_FT"], a["n"]) == (3, 1, 4, 2, 10)
    assert a["CA_F"] == pytest.approx(3 / 4) and a["CA_T"] == pytest.approx(4 / 6) and a["CA_O"] == pytest.approx(7 / 10)


def test_normalisation_uses_training_days_only():
    X = np.zeros((4, 3, 8, 2, 2), "f4")
    X[:2] = 1.0
    X[2:] = 100.0  # validation/test days: must not leak into the statistics
    mean, std = channel_stats(X, np.array([True, True, False, False]))
    assert np.allclose(mean, 1.0) and np.all(std <= 1e-6 + 1e-9)


def test_daily_gaps_are_masked_and_permanent_gaps_are_a_class():
    y = np.array([[[0, 255]], [[1, 255]], [[255, 255]]], "u1")  # (t=3, y=1, x=2)
    t = head_targets(y, np.array([True, True, False]), 0.98)
    assert t[:, 0, 0].tolist() == [0, 1, -100]  # a daily gap is left out of the loss
    assert t[:, 0, 1].tolist() == [2, 2, 2]  # never observed: taught as "missing"
    assert FT_MISSING == 255


def test_training_is_deterministic_and_reports(tiny_store):
    data = load_target_period(tiny_store, "AM")
    assert split_mask(data.times, "train", SPLITS).sum() == 31
    cfg = TrainConfig(hidden=(4,), epochs=2, patience=5, batch_days=8, patch=8, seed=7, splits=SPLITS)
    a = train_pass(data, cfg, progress=False)
    b = train_pass(data, cfg, progress=False)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = train_pass(data, TrainConfig(**{**cfg.__dict__, "seed": 8}), progress=False)
    assert not all(torch.equal(va, vc) for va, vc in zip(a.model.state_dict().values(), c.model.state_dict().values()))
    report = evaluate_test_period(a.model, data, SPLITS)
    assert report["test_days"] == 14
    assert set(report) >= {"vs_SMAP_E_FT", "vs_ESDR_FT", "vs_truth"}
    fused = report["vs_truth"]["fused"]["all"]
    assert fused["n"] > 0 and 0 <= fused["CA_O"] <= 1


@pytest.mark.slow
def test_fusion_beats_smap_against_the_truth(tmp_path):
    """The paper's central claim, on the twin: in the test period the fused output is more
    accurate against the hidden truth than SMAP_E_FT itself, overall and in Dec-Jan."""
    from ftcloud.ingest import ingest
    from ftcloud.model import train
    from ftcloud.model.report import headline
    from ftcloud.synth import generate

    generate("tiny", "2015-04-01", "2020-12-31", str(tmp_path / "src"), seed=11, insitu=False, progress=False)
    ingest(str(tmp_path / "src"), str(tmp_path / "store"), sources=["era5land", "smap_e_ft", "esdr_ft", "statics"], progress=False)
    card = train(str(tmp_path / "store"), "AM", str(tmp_path / "models"), TrainConfig(epochs=12, seed=0), progress=False)
    h = headline(card)
    assert card["training"]["truth_available"]
    assert h["overall"]["fused"] > h["overall"]["SMAP_E_FT"] + 0.01
    assert h["frozen_season"]["fused"] > h["frozen_season"]["SMAP_E_FT"] + 0.02
    assert (tmp_path / "models" / "report_AM.md").exists() and (tmp_path / "models" / "accuracy_AM.png").exists()
