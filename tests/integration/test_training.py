"""Training: normalisation from the training days only, masked loss, determinism, the report."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ftcloud.core.metadata import FT_MISSING  # noqa: E402
from ftcloud.core.timeutil import split_mask  # noqa: E402
from ftcloud.model.data import load_target_period  # noqa: E402
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
    assert (
        a["CA_F"] == pytest.approx(3 / 4) and a["CA_T"] == pytest.approx(4 / 6) and a["CA_O"] == pytest.approx(7 / 10)
    )


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
def test_fused_product_beside_its_baselines_on_three_seeds(tmp_path):
    """What the twin's physics imply, on three seeds, with margins from the paired block-bootstrap
    intervals of the model card (not a score): SMAP_E_FT's errors are mostly flips that neither
    ESDR_FT nor the predictors share, so a model trained on both targets is more accurate than
    SMAP_E_FT against the truth, overall and in Dec-Jan. Whether the fused product also beats
    ERA5_FT and its own better head is a finding, not an assumption: the card must report those
    comparisons on the same pixel-days (their direction is not asserted)."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.model import train
    from ftcloud.report.model import gains_table, headline
    from ftcloud.synth import generate

    overall = []
    for seed in (11, 12, 13):
        d = tmp_path / f"s{seed}"
        generate("tiny", "2015-04-01", "2020-12-31", str(d / "src"), seed=seed, insitu=False, progress=False)
        ingest(
            str(d / "src"), str(d / "store"), sources=["era5land", "smap_e_ft", "esdr_ft", "statics"], progress=False
        )
        card = train(str(d / "store"), "AM", str(d / "models"), TrainConfig(epochs=12, seed=0), progress=False)
        assert card["training"]["truth_available"]
        h = headline(card)
        for key in ("overall", "frozen_season"):
            assert set(h[key]["vs"]) == {"ERA5_FT", "SMAP_E_FT", "ESDR_FT", "smap_head", "esdr_head"}
        # Dec-Jan: SMAP_E_FT's frozen-season flips (wet snow, vegetation) are large: beyond each seed's interval
        v = h["frozen_season"]["vs"]["SMAP_E_FT"]
        assert v["gain_lo"] > 0, (seed, v)
        overall.append(h["overall"]["vs"]["SMAP_E_FT"])
        # one common mask: every product of a season block is scored on the same pixel-days
        for season, block in card["metrics"]["common_vs_truth"].items():
            assert len({r["n"] for r in block["table"]}) == 1, season
        words = [r["sentence"] for r in gains_table(card)]
        assert any("ERA5_FT" in w for w in words) and any("ESDR head alone" in w for w in words)
    # overall, the tiny window's 10-day-block interval is wide (one seed: +0.9 [-2.1, +3.6] points):
    # pool the three independent seeds (mean gain, SE from each 95 % interval's half-width / 1.96)
    g = np.array([v["gain_pct_points"] for v in overall])
    se = np.array([(v["gain_hi"] - v["gain_lo"]) / (2 * 1.96) for v in overall])
    pooled, pooled_se = g.mean(), np.sqrt((se**2).sum()) / len(g)
    assert pooled - 1.96 * pooled_se > 0, (g, se)
    assert (d / "models" / "report_AM.md").exists() and (d / "models" / "accuracy_AM.png").exists()


def test_store_inputs_are_read_on_demand_and_equal_the_eager_stack(tiny_store):
    from ftcloud.model.data import StoreInputs, open_inputs, stack_inputs

    data = load_target_period(tiny_store, "AM")
    assert isinstance(data.X, StoreInputs)  # nothing of the period is loaded up front
    pred, st = open_inputs(tiny_store, "AM")
    eager = stack_inputs(pred.sel(time=data.times).load(), st.load())
    assert data.X.shape == eager.shape
    assert np.array_equal(np.asarray(data.X), eager, equal_nan=True)
    idx = np.array([0, 3, 4, 20])
    rows, cols = slice(2, 7), slice(1, 6)
    assert np.array_equal(data.X.read(idx, rows, cols), eager[idx][..., rows, cols], equal_nan=True)


def test_streamed_channel_stats_equal_numpy_over_the_training_days():
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(70, 3, 8, 4, 5)) * np.arange(1, 9)[None, None, :, None, None] + 270).astype("f4")
    X[5, 1, 2, 0, 0] = np.nan
    X[:, :, 7] = np.nan  # a channel missing everywhere
    train = rng.random(70) < 0.6
    mean, std = channel_stats(X, train, block_days=7)  # blocks of 7 days: the merge is exercised
    x = X[train].transpose(2, 0, 1, 3, 4).reshape(8, -1).astype("f8")
    assert np.allclose(mean[:7], np.nanmean(x[:7], axis=1), rtol=1e-6)
    assert np.allclose(std[:7], np.nanstd(x[:7], axis=1), rtol=1e-5)
    assert np.isnan(mean[7]) and std[7] == pytest.approx(1e-6)


def test_own_splits_parse_and_bad_ones_are_one_line(tiny_store, tmp_path, capsys):
    from ftcloud.cli import main, parse_splits
    from ftcloud.errors import ValidationError

    assert parse_splits(
        "train=2016-01-01:2016-08-31,2016-11-01:2016-11-30;val=2016-09-01:2016-10-31;test=2016-12-01:2016-12-31"
    ) == {
        "train": (("2016-01-01", "2016-08-31"), ("2016-11-01", "2016-11-30")),
        "val": (("2016-09-01", "2016-10-31"),),
        "test": (("2016-12-01", "2016-12-31"),),
    }
    for bad, words in (
        ("train=2016-01-01:2016-08-31;val=2016-09-01:2016-10-31", "no test"),
        ("train=2016-09-01:2016-08-31;val=a:b;test=c:d", "START <= END"),
        ("fit=2016-01-01:2016-02-01", "NAME=START:END"),
        ("train=:2016-01-01;val=2016-02-01:2016-03-01;test=2016-04-01:2016-05-01", "START <= END"),
        ("train=2016-01-01:2016-01-05;train=2016-01-06:2016-01-09;val=a:b;test=c:d", "given twice"),
    ):
        with pytest.raises(ValidationError, match=words):
            parse_splits(bad)
    rc = main(
        [
            "-q",
            "train",
            "--store",
            tiny_store,
            "--pass",
            "AM",
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "1",
            "--splits",
            "train=2001-01-01:2001-02-01;val=2001-02-02:2001-03-01;test=2001-03-02:2001-04-01",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert (
        rc == 2 and len(err.splitlines()) == 1 and "does not cover the training, validation and test splits" in err
    ), err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
