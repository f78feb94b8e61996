"""ftcloud.science.compare: common mask, hand-counted accuracies, block-bootstrap interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftcloud.science.compare import MIN_BLOCKS, compare, gain_sentence, pixel_year_blocks, time_blocks


def test_common_mask_and_hand_counted_accuracies():
    ref = np.array([1, 1, 1, 0, 0, 0, 1, 0, 255])
    a = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1])
    b = np.array([1, 1, 1, 1, 0, 0, 254, 0, 0])  # missing on day 6: the common mask drops it for both
    blocks = np.arange(ref.size)
    c = compare({"fused": a, "b": b}, ref, blocks, ref.size, n_boot=200, min_blocks=1)
    # common mask: days 0-5 and 7 (day 6: b missing, day 8: reference missing)
    assert c.table.loc["fused", "n"] == 7 and c.table.loc["b", "n"] == 7
    assert c.table.loc["fused", "n_F"] == 3 and c.table.loc["fused", "n_T"] == 4  # reference frozen / thawed days
    # fused on the mask: FF = 2 (days 0, 2), TF = 1 (day 1), TT = 3 (days 3, 5, 7), FT = 1 (day 4)
    assert c.table.loc["fused", "CA_F"] == pytest.approx(2 / 3)
    assert c.table.loc["fused", "CA_T"] == pytest.approx(3 / 4)
    assert c.table.loc["fused", "CA_O"] == pytest.approx(5 / 7)
    # b: FF = 3, TF = 0, TT = 3 (4, 5, 7), FT = 1 (day 3)
    assert c.table.loc["b", "CA_O"] == pytest.approx(6 / 7)
    assert c.gains.loc["b", "gain"] == pytest.approx(5 / 7 - 6 / 7)
    for s in ("CA_O", "CA_F", "CA_T"):
        assert c.table.loc["fused", f"{s}_lo"] <= c.table.loc["fused", s] <= c.table.loc["fused", f"{s}_hi"]


def test_pixel_year_blocks():
    t = pd.date_range("2018-12-30", periods=4, freq="D")
    ids, n = pixel_year_blocks(t, (2, 3))
    assert n == 2 * 6 and ids.shape == (4, 2, 3)
    assert (ids[0] == ids[1]).all() and (ids[2] == ids[3]).all() and not (ids[1] == ids[2]).any()
    assert np.unique(ids).size == 12


def _simulate(rng, n_blocks, days, acc_true, block_sd):
    """Reference all frozen; a product whose per-block accuracy varies around acc_true."""
    p_block = np.clip(acc_true + block_sd * rng.standard_normal(n_blocks), 0.01, 0.99)
    # the population accuracy is the mean of the block accuracies (equal block sizes)
    right = rng.random((n_blocks, days)) < p_block[:, None]
    return (
        np.where(right, 1, 0),
        np.ones((n_blocks, days), int),
        np.repeat(np.arange(n_blocks), days).reshape(n_blocks, days),
        p_block,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_block_bootstrap_covers_where_iid_does_not(seed):
    """Errors correlated within blocks: the block interval covers the known accuracy at about
    its nominal rate; an interval that treats every pixel-day as independent under-covers."""
    rng = np.random.default_rng(seed)
    reps, nb, days, acc, sd = 120, 40, 50, 0.85, 0.08
    cover_block = cover_iid = 0
    for _ in range(reps):
        prod, ref, blocks, p_block = _simulate(rng, nb, days, acc, sd)
        truth = acc  # expected accuracy of the generating process (block sd is symmetric, no clipping at 0.85 +- 3 sd)
        cb = compare({"fused": prod}, ref, blocks, nb, n_boot=300, seed=int(rng.integers(1 << 31)))
        assert not cb.notes
        ci = compare(
            {"fused": prod},
            ref,
            np.arange(prod.size).reshape(prod.shape),
            prod.size,
            n_boot=300,
            seed=int(rng.integers(1 << 31)),
        )
        cover_block += cb.table.loc["fused", "CA_O_lo"] <= truth <= cb.table.loc["fused", "CA_O_hi"]
        cover_iid += ci.table.loc["fused", "CA_O_lo"] <= truth <= ci.table.loc["fused", "CA_O_hi"]
    se = np.sqrt(0.95 * 0.05 / reps)
    # percentile bootstrap with 40 blocks is slightly liberal; allow 4 binomial SE below nominal
    assert cover_block / reps > 0.95 - 4 * se, cover_block / reps
    # the iid interval is ~3x too narrow here (design effect 1 + (days - 1) * ICC ~ 10): it must miss often
    assert cover_iid / reps < 0.75, cover_iid / reps


def test_gain_interval_is_paired():
    """Two products that differ only on a few pixel-days: the paired gain interval is narrow
    and excludes 0 even though the products' own intervals overlap."""
    rng = np.random.default_rng(0)
    nb, days = 60, 80
    ref = (rng.random((nb, days)) < 0.5).astype(int)
    base = np.where(rng.random((nb, days)) < 0.2 + 0.1 * rng.random((nb, 1)), 1 - ref, ref)
    better = base.copy()
    wrong = np.argwhere(base != ref)
    fix = wrong[rng.random(len(wrong)) < 0.1]
    better[fix[:, 0], fix[:, 1]] = ref[fix[:, 0], fix[:, 1]]
    blocks = np.repeat(np.arange(nb), days).reshape(nb, days)
    c = compare({"fused": better, "base": base}, ref, blocks, nb, n_boot=500)
    t = c.table
    assert t.loc["fused", "CA_O_lo"] < t.loc["base", "CA_O_hi"]  # the marginal intervals overlap
    assert c.gains.loc["base", "gain_lo"] > 0  # the paired gain does not include 0
    assert c.gains.loc["base", "gain"] == pytest.approx(len(fix) / ref.size)


def test_gain_sentence_words():
    assert "more accurate" in gain_sentence("A", "B", 0.02, 0.01, 0.03, 100, "the truth")
    assert "LESS accurate" in gain_sentence("A", "B", -0.02, -0.03, -0.01, 100, "the truth")
    assert "not distinguishable" in gain_sentence("A", "B", 0.01, -0.01, 0.03, 100, "the truth")


def test_time_blocks():
    t = pd.date_range("2019-01-01", periods=25, freq="D")
    ids, n = time_blocks(t, (2, 3), days=10)
    assert n == 3 and ids.shape == (25, 2, 3)
    assert (ids[:10] == 0).all() and (ids[10:20] == 1).all() and (ids[20:] == 2).all()


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_shared_regime_needs_domain_blocks(seed):
    """Errors driven by one regime shared by every pixel (a bad-weather spell): pixel-year
    blocks treat neighbours as independent and badly under-cover; 10-day blocks of the whole
    domain cover at about the nominal rate."""
    rng = np.random.default_rng(seed)
    reps, days, npix = 60, 360, 50
    t = pd.date_range("2018-07-01", periods=days, freq="D")
    cover_dom = cover_pix = 0
    for _ in range(reps):
        # a daily two-state regime with ~5-day persistence, shared by all pixels: error rate 0.05 or 0.35
        z = np.empty(days)
        z[0] = rng.standard_normal()
        for i in range(1, days):
            z[i] = 0.8 * z[i - 1] + 0.6 * rng.standard_normal()
        rate = np.where(z > 0.8, 0.35, 0.05)
        truth = 1 - (0.05 * (1 - 0.2119) + 0.35 * 0.2119)  # P(z > 0.8) = 0.2119 for a unit normal
        ref = np.ones((days, npix), int)
        prod = (rng.random((days, npix)) >= rate[:, None]).astype(int)
        bd, nd = time_blocks(t, (npix,), days=10)
        cd = compare({"fused": prod}, ref, bd, nd, n_boot=300, seed=int(rng.integers(1 << 31)))
        years = np.zeros((days, npix), int) + np.arange(npix)[None, :]  # one year: pixel-year = pixel
        cp = compare({"fused": prod}, ref, years, npix, n_boot=300, seed=int(rng.integers(1 << 31)))
        cover_dom += cd.table.loc["fused", "CA_O_lo"] <= truth <= cd.table.loc["fused", "CA_O_hi"]
        cover_pix += cp.table.loc["fused", "CA_O_lo"] <= truth <= cp.table.loc["fused", "CA_O_hi"]
    se = np.sqrt(0.95 * 0.05 / reps)
    # 36 blocks of a persistent process: somewhat liberal; allow 5 binomial SE below nominal
    assert cover_dom / reps > 0.95 - 5 * se, cover_dom / reps
    assert cover_pix / reps < 0.5, cover_pix / reps


def test_few_blocks_give_no_interval_and_no_verdict():
    ref = np.ones((30, 4), int)
    prod = (np.arange(120).reshape(30, 4) % 9 != 0).astype(int)
    ids, n = time_blocks(pd.date_range("2019-01-01", periods=30), (4,), days=10)
    c = compare({"fused": prod, "b": ref}, ref, ids, n)
    assert n == 3 < MIN_BLOCKS and c.notes
    assert np.isnan(c.table.loc["fused", "CA_O_lo"]) and np.isnan(c.gains.loc["b", "gain_lo"])
    g = c.gains.loc["b"]
    assert "no verdict" in gain_sentence("A", "B", g["gain"], g["gain_lo"], g["gain_hi"], 120, "the truth")
    # an empty common mask: no comparison, in words, and no crash
    e = compare({"fused": np.full((30, 4), 255), "b": ref}, ref, ids, n)
    assert e.table.loc["fused", "n"] == 0
    assert "no comparison" in gain_sentence("A", "B", None, None, None, 0, "the truth")
