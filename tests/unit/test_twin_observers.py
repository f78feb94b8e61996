"""The twin's observers as objects: state carried across chunks, and error models that do what
docs/twin.md says, checked on arrays (no files) against hand-set parameters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ftcloud.synth import TwinParameters
from ftcloud.synth import _physics as PH
from ftcloud.synth.domain import Domain
from ftcloud.synth.observers import EsdrObserver, SmapObserver
from ftcloud.synth.truth import Truth

D0 = np.datetime64("2016-01-01")
ND = 60


def _world(params: TwinParameters, seed: int = 3):
    n0 = PH.day_number(D0)
    dom = Domain("tiny", params, seed, n0 - 2, n0 + ND + 5, imerg=False, insitu=False)
    dom.advance(n0, n0 + ND - 1)
    days = np.arange(n0, n0 + ND)
    dates = D0 + np.arange(ND)
    truth = Truth(dom, params).step(days)
    return dom, days, dates, truth


@pytest.fixture(scope="module")
def world():
    return _world(TwinParameters())


def _split(truth: dict, sl: slice) -> dict:
    return {k: v[sl] for k, v in truth.items()}


@pytest.mark.parametrize("cut", [1, 17, 31])
def test_smap_and_esdr_give_the_same_days_whatever_the_chunking(world, cut):
    """The AR(1) error state (and ESDR's smoothed fraction) carries from one chunk to the next:
    two calls give the bytes of one call."""
    dom, days, dates, truth = world
    p = TwinParameters()
    win = {k: v[:, :, dom.crop_idx] for k, v in truth.items()}
    one = SmapObserver(dom, p.smap, 3).observe(dates, days, win)
    s = SmapObserver(dom, p.smap, 3)
    a, b = slice(0, cut), slice(cut, None)
    two = np.concatenate([s.observe(dates[a], days[a], _split(win, a)), s.observe(dates[b], days[b], _split(win, b))])
    assert one.shape == (ND, 2, dom.crop_idx.size) and (one == two).all()
    one = EsdrObserver(dom, p.esdr, 3).observe(dates, days, truth)
    e = EsdrObserver(dom, p.esdr, 3)
    two = np.concatenate(
        [e.observe(dates[a], days[a], _split(truth, a)), e.observe(dates[b], days[b], _split(truth, b))]
    )
    assert one.shape == (ND, dom.n25) and (one == two).all()


def test_a_fresh_observer_forgets_the_state():
    """Without the carried state the second chunk differs: the check above can fail."""
    p = TwinParameters()
    dom, days, dates, truth = _world(p)
    win = {k: v[:, :, dom.crop_idx] for k, v in truth.items()}
    one = SmapObserver(dom, p.smap, 3).observe(dates, days, win)
    b = slice(20, None)
    fresh = SmapObserver(dom, p.smap, 3).observe(dates[b], days[b], _split(win, b))
    assert (one[b] != fresh).any()


def _no_smap_errors(**kw) -> TwinParameters:
    p = TwinParameters()
    zero = dict(
        frozen_as_thawed=0.0,
        thawed_as_frozen=0.0,
        near_zero_frozen=0.0,
        near_zero_thawed=0.0,
        wet_snow=0.0,
        transition_season=0.0,
        tci_per_400m=0.0,
        open_water=0.0,
        vegetation={},
        pixel_year_sd=0.0,
    )
    return dataclasses.replace(p, smap=dataclasses.replace(p.smap, **{**zero, **kw}))


def test_smap_without_errors_reads_the_truth_where_it_reports():
    p = _no_smap_errors()
    dom, days, dates, truth = _world(p)
    win = {k: v[:, :, dom.crop_idx] for k, v in truth.items()}
    obs = SmapObserver(dom, p.smap, 3).observe(dates, days, win)
    seen = obs != 254
    assert 0.3 < seen.mean() < 1.0  # swaths and missing days remove some, not all
    assert (obs[seen] == win["ft"][seen]).all()


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_smap_flips_frozen_soil_at_its_constant_rate(seed):
    """With one constant flip probability for frozen soil (and none for thawed), the share of
    frozen truth read as thawed is that probability; the tolerance is four standard errors of
    the mean over pixels (the AR(1) errors are correlated in time, independent across pixels)."""
    rate = 0.2
    p = _no_smap_errors(frozen_as_thawed=rate)
    dom, days, dates, truth = _world(p, seed)
    win = {k: v[:, :, dom.crop_idx] for k, v in truth.items()}
    obs = SmapObserver(dom, p.smap, seed).observe(dates, days, win)
    ft = win["ft"]
    seen = (obs != 254) & (ft <= 1)
    assert ((obs[seen & (ft == 0)]) == 0).all()  # thawed soil never flips
    frozen = seen & (ft == 1)
    per_pixel = []
    for j in range(2):
        for i in range(ft.shape[2]):
            m = frozen[:, j, i]
            if m.sum() >= 10:
                per_pixel.append((obs[m, j, i] == 0).mean())
    per_pixel = np.array(per_pixel)
    assert per_pixel.size >= 100
    se = per_pixel.std(ddof=1) / np.sqrt(per_pixel.size)
    assert abs(per_pixel.mean() - rate) < 4 * se, (per_pixel.mean(), se)
