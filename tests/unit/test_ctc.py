"""ftcloud.science.ctc: categorical triple collocation against a simulation with known truth and brute force."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.science.ctc import CELLS, REASONS, TCI_LABELS, select_season, summarise_by, triple_collocation
from ftcloud.errors import UndefinedStatisticWarning, ValidationError
from ftcloud.testing import assert_lazy

SENS = (0.95, 0.80, 0.88)
SPEC = (0.85, 0.92, 0.88)


def _simulate(rng, n=15000, shape=(3, 4), p_frozen=0.35, missing=0.0):
    """Three uint8 products seeing a binary truth with independent errors of known accuracy."""
    truth = rng.random((n,) + shape) < p_frozen
    out = []
    for sens, spec in zip(SENS, SPEC):
        u = rng.random(truth.shape)
        x = np.where(truth, u < sens, u >= spec).astype("u1")
        if missing:
            x[rng.random(x.shape) < missing] = 255
        out.append(xr.DataArray(x, dims=("time", "y", "x"), coords={"time": pd.date_range("1980-01-01", periods=n)}))
    return out, truth


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedStatisticWarning)
        return fn(*a, **k)


def test_recovers_known_accuracies(rng):
    xs, truth = _simulate(rng)
    res = triple_collocation(*[x.rename(f"p{i}") for i, x in enumerate(xs)])
    assert res.product.values.tolist() == ["p0", "p1", "p2"]
    assert (res.reason == 0).all() and (res.n == 15000).all()
    psi, eta = res.psi.values, res.eta.values  # (product, y, x)
    sens, spec = np.array(SENS)[:, None, None], np.array(SPEC)[:, None, None]
    # the pixel mean (12 pixels x 15,000 days) within 0.01; each pixel within 0.03 (~3 standard errors)
    assert np.abs(psi.mean((1, 2)) - np.array(SENS)).max() < 0.01
    assert np.abs(eta.mean((1, 2)) - np.array(SPEC)).max() < 0.01
    assert np.abs(psi - sens).max() < 0.03 and np.abs(eta - spec).max() < 0.03
    np.testing.assert_allclose(res.pi.values, (psi + eta) / 2)
    b_true = 2 * truth.mean(0) - 1  # b = E[Y], Y = +1 frozen
    assert np.abs(res.b.values - b_true).max() < 0.03
    assert res.b.mean() == pytest.approx(2 * 0.35 - 1, abs=0.01)


def test_moments_match_brute_force(rng):
    xs, _ = _simulate(rng, n=3000, shape=(2, 3), missing=0.1)
    res = triple_collocation(*xs, min_count=10)
    a = [x.values for x in xs]
    for j in range(2):
        for k in range(3):
            s = [v[:, j, k] for v in a]
            ok = (s[0] < 2) & (s[1] < 2) & (s[2] < 2)
            X = np.stack([2.0 * v[ok] - 1 for v in s])  # +1 frozen, -1 thawed
            cov = np.cov(X, bias=True)
            c = X - X.mean(axis=1, keepdims=True)
            r = res.isel(y=j, x=k)
            assert int(r.n) == ok.sum()
            np.testing.assert_allclose(r["mean"].values, X.mean(axis=1), rtol=0, atol=1e-12)
            assert float(r.Q12) == pytest.approx(cov[0, 1], abs=1e-12)
            assert float(r.Q13) == pytest.approx(cov[0, 2], abs=1e-12)
            assert float(r.Q23) == pytest.approx(cov[1, 2], abs=1e-12)
            assert float(r.T123) == pytest.approx(np.mean(c[0] * c[1] * c[2]), abs=1e-12)
            code = (s[0][ok].astype(int) << 2) | (s[1][ok].astype(int) << 1) | s[2][ok].astype(int)
            np.testing.assert_array_equal(r.counts.values, np.bincount(code, minlength=8))
            assert r.counts.sel(cell="FFF") == np.sum((X == 1).all(axis=0))
    assert list(res.cell.values) == list(CELLS) and CELLS[0] == "TTT" and CELLS[4] == "FTT"


def test_undefined_pixels_are_nan_with_reason(rng):
    xs, _ = _simulate(rng, n=2000, shape=(1, 4))
    xs = [x.copy() for x in xs]
    xs[0][:, 0, 0] = 0  # all thawed (a summer pixel): zero variance
    xs[1][:, 0, 0] = 0
    xs[2][:, 0, 1] = 1 - xs[0][:, 0, 1]  # product 3 anti-correlated with product 1: Q13 < 0
    xs[0][5:, 0, 2] = 255  # 5 common samples < min_count
    with pytest.warns(UndefinedStatisticWarning) as rec:
        res = triple_collocation(*xs, min_count=30)
    msg = str(rec[0].message)
    assert "3 of 4 pixels" in msg and "1 with reason 1" in msg and "1 with reason 2" in msg and "1 with reason 3" in msg
    assert res.reason.values[0].tolist() == [2, 3, 1, 0]
    for k in ("psi", "eta", "pi", "v"):
        assert np.isnan(res[k].values[:, 0, :3]).all() and np.isfinite(res[k].values[:, 0, 3]).all()
    assert np.isnan(res.b.values[0, :3]).all()
    assert float(res.Q13[0, 1]) < 0  # the moments themselves are reported ...
    assert np.isnan(res.Q12[0, 2])  # ... except with too few samples
    assert int(res.n[0, 2]) == 5
    assert res.reason.attrs["flag_meanings"].split() == [REASONS[k] for k in sorted(REASONS)]


def test_a_season_with_no_day_gives_nan_with_reason_not_a_crash():
    """Zero common days (a season the period does not reach): every pixel undefined with the
    too-few-samples reason, n = 0 (it used to fail in numpy: reshape of a 0-length series)."""
    empty = pd.DatetimeIndex([], name="time")
    xs = [
        xr.DataArray(np.zeros((0, 2, 3), np.uint8), dims=("time", "y", "x"), coords={"time": empty}) for _ in range(3)
    ]
    with pytest.warns(UndefinedStatisticWarning):
        res = triple_collocation(*xs, min_count=30)
    assert (res.n.values == 0).all() and res.n.shape == (2, 3)
    assert (res.reason.values == 1).all()
    assert np.isnan(res.psi.values).all()


def test_uint8_and_float_inputs_agree(rng):
    xs, _ = _simulate(rng, n=1500, shape=(2, 2), missing=0.05)
    ref = triple_collocation(*xs)
    as01 = [x.astype("f4").where(x != 255) for x in xs]  # 1 frozen / 0 thawed / NaN
    aspm = [(2 * x - 1) for x in as01]  # +1 / -1 / NaN
    for variant in (as01, aspm):
        got = triple_collocation(*variant)
        for k in ref.data_vars:
            np.testing.assert_array_equal(got[k].values, ref[k].values)


def test_lazy_and_chunk_independent(rng):
    xs, _ = _simulate(rng, n=4000, shape=(6, 5), missing=0.05)
    eager = triple_collocation(*xs)
    results = []
    for tchunk in (4000, 1000, 333, 97):
        lazy = triple_collocation(*[x.chunk({"time": tchunk, "y": 4, "x": 2}) for x in xs])
        assert_lazy(lazy)
        results.append(lazy.compute())
    for r in results:
        for k in eager.data_vars:
            np.testing.assert_allclose(r[k].values, eager[k].values, rtol=0, atol=1e-12)
            assert r[k].dtype == eager[k].dtype


def test_pass_dim_broadcast_and_alignment(rng):
    xs, _ = _simulate(rng, n=1000, shape=(2, 2))
    am_pm = xr.concat([xs[0], xs[0]], dim=pd.Index(["AM", "PM"], name="pass"))
    am_pm = am_pm.assign_coords(lat=(("y", "x"), np.full((2, 2), 35.0)))
    res = triple_collocation(am_pm, xs[1], xs[2])
    assert "lat" in res.coords and res.lat.dims == ("y", "x")
    assert res.psi.dims == ("product", "pass", "y", "x")
    np.testing.assert_array_equal(res.psi.sel(**{"pass": "AM"}).values, res.psi.sel(**{"pass": "PM"}).values)
    with pytest.raises(ValidationError, match="same grid"):
        triple_collocation(xs[0], xs[1].isel(time=slice(1, None)), xs[2])
    with pytest.raises(ValidationError, match="no dimension"):
        triple_collocation(xs[0], xs[1], xs[2], dim="day")


def test_select_season_uses_spec_months():
    t = pd.date_range("2019-01-01", "2019-12-31", freq="D")
    da = xr.DataArray(np.arange(t.size), dims="time", coords={"time": t})
    assert set(select_season(da, "frozen").time.dt.month.values) == {12, 1}
    assert set(select_season(da, "transition").time.dt.month.values) == {2, 3, 4, 10, 11}
    assert set(select_season(da, ["frozen", "thawed"]).time.dt.month.values) == {12, 1, 5, 6, 7, 8, 9}
    assert select_season(da, "all").size == t.size
    with pytest.raises(ValidationError, match="unknown season"):
        select_season(da, "winter")


def test_summarise_by_strata_and_tci_bins():
    pi = np.array([[[0.9, 0.8, np.nan], [0.7, 0.6, 0.5]]])  # (product=1, y=2, x=3)
    res = xr.Dataset(
        {"pi": (("product", "y", "x"), pi), "psi": (("product", "y", "x"), pi + 0.05)}, coords={"product": ["a"]}
    )
    lc = xr.DataArray(
        [[1, 1, 2], [2, 3, 3]],
        dims=("y", "x"),
        attrs={"flag_values": np.array([1, 2, 3], "u1"), "flag_meanings": "cropland forest shrub"},
    )
    s = summarise_by(res, lc, variables=("pi", "psi"))
    assert s.stratum.values.tolist() == ["cropland", "forest", "shrub"]
    np.testing.assert_allclose(s.pi.sel(product="a").values, [0.85, 0.7, 0.55])
    np.testing.assert_allclose(s.psi.sel(product="a").values, [0.9, 0.75, 0.6])
    assert s.n_pixels.sel(product="a").values.tolist() == [2, 1, 2]
    assert s.n_total.values.tolist() == [2, 2, 2]
    tci = xr.DataArray([[10.0, 50.0, 149.9], [150.0, 400.0, 349.99]], dims=("y", "x"))
    b = summarise_by(res, tci, bins="tci", variables=("pi",))
    assert b.stratum.values.tolist() == list(TCI_LABELS)
    np.testing.assert_allclose(
        b.pi.sel(product="a").values, [0.9, 0.8, 0.7, 0.5, 0.6]
    )  # [50,150) holds 50 and 149.9 (NaN)
    assert b.n_total.values.tolist() == [1, 2, 1, 1, 1]
    lazy = summarise_by(res.chunk({"y": 1}), lc)
    assert_lazy(lazy)
    np.testing.assert_allclose(lazy.pi.values, s.pi.values)


def _brute_ctc(xs):
    """psi, eta (product, pixel) of CTC from the raw 0/1 series (time, pixel), straight from the equations."""
    X = np.stack([2.0 * x - 1 for x in xs])  # (3, time, pixel): +1 frozen, -1 thawed
    mu = X.mean(axis=1)
    c = X - mu[:, None]
    q = {(i, j): (c[i] * c[j]).mean(axis=0) for i in range(3) for j in range(3) if i < j}
    t = (c[0] * c[1] * c[2]).mean(axis=0)
    v = np.stack(
        [
            np.sqrt(q[0, 1] * q[0, 2] / q[1, 2]),
            np.sqrt(q[0, 1] * q[1, 2] / q[0, 2]),
            np.sqrt(q[0, 2] * q[1, 2] / q[0, 1]),
        ]
    )
    alpha = t / v.prod(axis=0)
    b = -alpha / np.sqrt(4 + alpha**2)
    psi = 0.5 * (1 + mu + v * np.sqrt((1 - b) / (1 + b)))
    eta = 0.5 * (1 - mu + v * np.sqrt((1 + b) / (1 - b)))
    return psi, eta


def test_out_of_range_estimates_are_flagged_and_left_out_of_summaries(rng):
    """95 % frozen days and n = 1,000: 50 thawed days make eta so noisy that many pixels estimate eta > 1.

    Such pixels get reason ``estimate_out_of_range``: psi/eta/pi NaN (out of every mean), the raw
    estimates kept in psi_raw/eta_raw; summarise_by reports mean, median and counts over the rest.
    """
    n, ny, nx = 1000, 20, 20
    xs, _ = _simulate(rng, n=n, shape=(ny, nx), p_frozen=0.95)
    psi_b, eta_b = _brute_ctc([x.values.reshape(n, -1).astype(float) for x in xs])  # (3, 400)
    outside = ((psi_b < 0) | (psi_b > 1) | (eta_b < 0) | (eta_b > 1)).any(axis=0)
    # the problem exists: sampling noise alone puts eta above 1 for many pixels (true eta 0.85-0.92)
    assert (eta_b > 1).any(axis=0).mean() > 0.2 and 0.1 < outside.mean() < 0.9
    with pytest.warns(UndefinedStatisticWarning, match="reason 6"):
        res = triple_collocation(*xs)
    assert REASONS[6] == "estimate_out_of_range"
    reason = res.reason.values.reshape(-1)
    np.testing.assert_array_equal(reason, np.where(outside, 6, 0))
    for k, brute in (("psi", psi_b), ("eta", eta_b)):
        np.testing.assert_allclose(res[f"{k}_raw"].values.reshape(3, -1), brute, rtol=0, atol=1e-9)
        got = res[k].values.reshape(3, -1)
        assert np.isnan(got[:, outside]).all() and np.isfinite(got[:, ~outside]).all()
        assert ((got[:, ~outside] >= 0) & (got[:, ~outside] <= 1)).all()
    assert np.isnan(res.pi.values.reshape(3, -1)[:, outside]).all()
    assert np.isfinite(res.b.values.reshape(-1)).all()  # the fit itself is defined

    # summary over two strata (left / right half): mean, median and counts against numpy
    half = np.repeat([[1] * (nx // 2) + [2] * (nx // 2)], ny, axis=0)
    strata = xr.DataArray(half, dims=("y", "x"), attrs={"flag_values": [1, 2], "flag_meanings": "west east"})
    s = summarise_by(res, strata)
    for j, name in enumerate(("west", "east")):
        cell = half.reshape(-1) == j + 1
        use = cell & ~outside
        assert int(s.n_pixels.sel(stratum=name, product="x1")) == use.sum()
        assert int(s.n_out_of_range.sel(stratum=name)) == (cell & outside).sum() > 0
        assert int(s.n_samples.sel(stratum=name, product="x1")) == n * use.sum()
        for k, brute in (("psi", psi_b), ("eta", eta_b)):
            np.testing.assert_allclose(s[k].sel(stratum=name).values, brute[:, use].mean(axis=1), rtol=1e-12)
            np.testing.assert_allclose(
                s[f"{k}_median"].sel(stratum=name).values, np.median(brute[:, use], axis=1), rtol=1e-12
            )
            assert (s[k].sel(stratum=name).values <= 1).all()
    # lazy input gives the same summary, still lazy
    lazy = summarise_by(triple_collocation(*[x.chunk({"y": 5}) for x in xs]), strata)
    assert_lazy(lazy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedStatisticWarning)
        lazy = lazy.compute()
    for k in ("eta", "eta_median", "n_pixels", "n_out_of_range", "n_samples"):
        np.testing.assert_allclose(lazy[k].values, s[k].values, rtol=1e-12)


def test_one_series_without_other_dims(rng):
    """Three plain time series (no pixel dims): 0-d results, the same as the pixel's in a gridded run."""
    xs, _ = _simulate(rng, n=3000, shape=(1, 1))
    grid = triple_collocation(*xs)
    one = triple_collocation(*[x.isel(y=0, x=0) for x in xs])
    assert one.reason.ndim == 0 and one.psi.dims == ("product",)
    for k in ("b", "alpha", "Q12", "T123", "psi", "eta", "pi", "psi_raw"):
        np.testing.assert_array_equal(one[k].values, grid[k].isel(y=0, x=0).values)
    few = _quiet(triple_collocation, *[x.isel(y=0, x=0, time=slice(0, 5)) for x in xs])  # masked assignments on 0-d
    assert int(few.reason) == 1 and np.isnan(few.b) and np.isnan(few.Q12)
