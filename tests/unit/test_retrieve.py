"""The classical FT retrievals against hand-computed cases, and the DFA against a simulation with a known
Bayes rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.retrieve import (
    DFARetrieval,
    DIARetrieval,
    MSTARetrieval,
    NPRRetrieval,
    fit_discriminants,
)

# four days: two in the frozen-season months (Jan, Feb), two in the thawed-season months (Jul, Aug), then
# four days to classify
TIMES = pd.to_datetime(
    ["2018-01-10", "2018-02-10", "2018-07-10", "2018-08-10", "2018-04-01", "2018-04-02", "2018-10-01", "2018-10-02"]
)


def _ds(**vars_):
    return xr.Dataset({k: (("time", "x"), np.asarray(v, "f8")) for k, v in vars_.items()}, coords={"time": TIMES})


def test_npr_seasonal_threshold_by_hand():
    # pixel 0: NPR 0.02 in winter, 0.06 in summer -> references 0.02 / 0.06, threshold at NPR 0.04
    # pixel 1: no contrast between the seasons -> missing
    npr_target = np.array([0.02, 0.02, 0.06, 0.06, 0.030, 0.041, 0.039, 0.07])
    tbv = np.full(8, 250.0)
    tbh = tbv * (1 - npr_target) / (1 + npr_target)  # so that (v - h) / (v + h) = npr_target
    ds = _ds(tbh=np.stack([tbh, tbh * 0 + 245.0], 1), tbv=np.stack([tbv, tbv], 1))
    ft = NPRRetrieval().predict(ds)
    assert ft.dtype == np.uint8 and ft.attrs["flag_meanings"] == "thawed frozen"
    # deltas on the four later days: 0.25, 0.525, 0.475, 1.25 -> frozen, thawed, frozen, thawed
    assert ft.isel(x=0).values[4:].tolist() == [1, 0, 1, 0]
    assert (ft.isel(x=1).values == 255).all()


def test_msta_on_37v_by_hand_and_the_per_pixel_threshold():
    # references 240 K (Jan, Feb) and 280 K (Jul, Aug): delta = (TB - 240) / 40
    tb = np.array([238.0, 242.0, 278.0, 282.0, 255.0, 262.0, 259.0, 270.0])
    ds = _ds(**{"TB36.5V": tb[:, None]})
    ft = MSTARetrieval().predict(ds)
    assert ft.isel(x=0).values[4:].tolist() == [1, 0, 1, 0]  # deltas 0.375, 0.55, 0.475, 0.75 against 0.5
    # a reference FT that calls 262 K frozen and 270 K thawed: the best threshold lies in (0.55, 0.75]
    target = xr.DataArray(np.array([1, 1, 0, 0, 1, 1, 1, 0], "u1")[:, None], dims=("time", "x"))
    m = MSTARetrieval().fit(ds, target)
    assert 0.55 < float(m.threshold.isel(x=0)) <= 0.75
    assert m.predict(ds).isel(x=0).values.tolist() == target.isel(x=0).values.tolist()


def test_dia_both_indices_by_hand():
    tb19 = np.array([255.0, 255.0, 250.0, 262.0])
    tb37 = np.array([250.0, 256.0, 259.0, 258.0])
    # gradients (37 - 19) / 17.8: -0.281, +0.056, +0.506, -0.225; TB37V < 258.2: yes, yes, no, yes
    ds = xr.Dataset({"TB18.7V": ("x", tb19), "TB36.5V": ("x", tb37)})
    assert DIARetrieval().predict(ds).values.tolist() == [1, 0, 0, 1]
    assert DIARetrieval(sg_max=0.1).predict(ds).values.tolist() == [1, 1, 0, 1]


def test_retrievals_stay_lazy_on_dask_inputs():
    from ftcloud.testing import assert_lazy

    tb = np.array([238.0, 242.0, 278.0, 282.0, 255.0, 262.0, 259.0, 270.0])
    ds = _ds(**{"TB36.5V": tb[:, None], "TB18.7V": tb[:, None] + 3}).chunk({"time": 4})
    m = MSTARetrieval().fit(ds)
    assert_lazy(m.predict(ds))
    assert_lazy(DIARetrieval().predict(ds))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dfa_recovers_the_bayes_rule_of_two_gaussian_classes(seed):
    """Two classes with means (0, 0) and (2, 1), a shared covariance, priors 0.7 / 0.3: the optimal rule is
    linear and known; the fitted functions' accuracy on fresh samples is within sampling error of it."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    mu = [np.array([0.0, 0.0]), np.array([2.0, 1.0])]
    prior1 = 0.3

    def draw(n):
        y = (rng.random(n) < prior1).astype(int)
        X = np.where(y[:, None] == 1, mu[1], mu[0]) + rng.multivariate_normal([0, 0], cov, n)
        return X, y

    X, y = draw(20_000)
    W, c = fit_discriminants(X, y)
    Xt, yt = draw(50_000)
    fitted = ((Xt @ (W[1] - W[0]) + c[1] - c[0]) > 0).astype(int)
    inv = np.linalg.inv(cov)
    w = inv @ (mu[1] - mu[0])
    b = -0.5 * (mu[1] @ inv @ mu[1] - mu[0] @ inv @ mu[0]) + np.log(prior1 / (1 - prior1))
    bayes = ((Xt @ w + b) > 0).astype(int)
    acc_fit, acc_bayes = (fitted == yt).mean(), (bayes == yt).mean()
    se = np.sqrt(acc_bayes * (1 - acc_bayes) / len(yt))
    assert acc_bayes - acc_fit < 4 * se + 0.002  # no worse than the optimum beyond sampling error
    assert (fitted != bayes).mean() < 0.01  # and the same decisions almost everywhere


def test_dfa_as_a_retrieval_on_channels():
    rng = np.random.default_rng(4)
    n = 400
    frozen = rng.random(n) < 0.5
    t37 = np.where(frozen, 245.0, 270.0) + rng.normal(0, 4, n)
    t19 = np.where(frozen, 252.0, 268.0) + rng.normal(0, 4, n)
    ds = xr.Dataset({"TB36.5V": ("time", t37), "TB18.7V": ("time", t19)})
    target = xr.DataArray(frozen.astype("u1"), dims="time")
    d = DFARetrieval(channels=("TB18.7V", "TB36.5V")).fit(ds, target)
    acc = float((d.predict(ds) == target).mean())
    assert acc > 0.97  # the classes are 25 K apart with 4 K noise: separable
    with pytest.raises(Exception, match="needs a reference FT"):
        DFARetrieval(channels=("TB18.7V",)).fit(ds)
