"""The learned families read the store in blocks: their samples and predictions do not depend on the block
size, memory stays at a block whatever the period, and fitted models travel by file, not in the graph."""

from __future__ import annotations

import tracemalloc

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.retrieve.sampling import sample_pixel_days


def _lazy(days: int, ny: int, nx: int, nvars: int = 3, tchunk: int = 16, seed: int = 0) -> xr.Dataset:
    """A dask-backed (pass, time, y, x) dataset of random 'TB' with 10 % missing and a 0/1/255 target."""
    shape, chunks = (2, days, ny, nx), (1, tchunk, ny, nx)
    rs = da.random.RandomState(seed)
    out = {}
    for k in range(nvars):
        x = rs.normal(250 + k, 10, size=shape, chunks=chunks).astype("f4")
        out[f"v{k}"] = (("pass", "time", "y", "x"), da.where(rs.random_sample(shape, chunks=chunks) < 0.1, np.nan, x))
    t = rs.randint(0, 3, size=shape, chunks=chunks).astype("u1")
    out["target"] = (("pass", "time", "y", "x"), da.where(t == 2, 255, t).astype("u1"))
    time = pd.date_range("2016-01-01", periods=days, freq="D")
    return xr.Dataset(out, coords={"time": time})


def test_the_sample_is_every_valid_pixel_day_when_there_are_few():
    ds = _lazy(40, 6, 5)
    X, y, idx = sample_pixel_days(ds, ["v0", "v1"], ds["target"], max_samples=10**9, seed=3, budget_bytes=4096)
    a = ds.load()
    # oracle: the valid pixel-days of the loaded arrays, in (time, pass, y, x) order
    v0 = a["v0"].transpose("time", ...).values.ravel()
    v1 = a["v1"].transpose("time", ...).values.ravel()
    t = a["target"].transpose("time", ...).values.ravel()
    ok = np.isfinite(v0) & np.isfinite(v1) & (t <= 1)
    assert idx.tolist() == np.flatnonzero(ok).tolist()
    assert np.array_equal(X[:, 0], v0[ok]) and np.array_equal(X[:, 1], v1[ok]) and np.array_equal(y, t[ok])


def test_a_seed_names_one_sample_whatever_the_block_size_or_chunking():
    from ftcloud.retrieve.sampling import INDEX_BYTES, blocks

    a, b = _lazy(60, 8, 7, tchunk=16), _lazy(60, 8, 7, tchunk=7)
    b = b.assign({k: a[k] for k in a.data_vars}).chunk({"time": 7})  # same values, other chunks
    a = a.chunk({"y": 2})
    # a budget below one time chunk of the region: blocks of one chunk of days by bands of two rows
    days, rows, cols = blocks(a["v0"].transpose("time", ...), 8 + INDEX_BYTES, budget=2000)
    assert days == [(0, 16), (16, 32), (32, 48), (48, 60)] and rows == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert cols == [(0, 7)]  # one chunk of columns: a block is at least a chunk
    s1 = sample_pixel_days(a, ["v0", "v2"], a["target"], max_samples=500, seed=5, budget_bytes=2000)
    s2 = sample_pixel_days(b, ["v0", "v2"], b["target"], max_samples=500, seed=5, budget_bytes=10**9)
    assert s1[2].size == 500 and np.array_equal(s1[2], s2[2]) and np.array_equal(s1[0], s2[0])
    # columns chunked too: a chunk of days by a chunk of rows is over the budget, so bands of columns
    c = a.chunk({"x": 3})
    assert blocks(c["v0"].transpose("time", ...), 8 + INDEX_BYTES, budget=2000)[2] == [(0, 3), (3, 6), (6, 7)]
    s4 = sample_pixel_days(c, ["v0", "v2"], c["target"], max_samples=500, seed=5, budget_bytes=2000)
    assert all(np.array_equal(u, w) for u, w in zip(s1, s4))
    s3 = sample_pixel_days(a, ["v0", "v2"], a["target"], max_samples=500, seed=6, budget_bytes=2000)
    assert not np.array_equal(s1[2], s3[2])


def test_the_sample_is_uniform_over_the_valid_pixel_days():
    # the valid pixel-days are 0..N-1 in time order; a uniform sample of k has a mean position of (N-1)/2 with
    # standard error sqrt((N^2 - 1) / 12 / k * (1 - k/N)) (sampling without replacement); several seeds
    ds = _lazy(50, 10, 10)
    _, _, everything = sample_pixel_days(ds, ["v0"], ds["target"], max_samples=10**9, seed=0)
    n, k = everything.size, 2000
    pos = {int(g): i for i, g in enumerate(everything)}
    se = np.sqrt((n**2 - 1) / 12 / k * (1 - k / n))
    for seed in range(4):
        _, _, idx = sample_pixel_days(ds, ["v0"], ds["target"], max_samples=k, seed=seed, budget_bytes=20_000)
        p = np.array([pos[int(g)] for g in idx])
        assert idx.size == k and abs(p.mean() - (n - 1) / 2) < 4 * se
        # and the first and second halves of the period are equally represented (binomial, 4 SE)
        assert abs((p < n / 2).mean() - 0.5) < 4 * np.sqrt(0.25 / k)


def test_sampling_a_long_period_holds_a_block_not_the_period():
    # 1,000 days of 3 variables on 40 x 40 x 2 passes: 38 MB of float32 if loaded; the sampler with a 1 MB
    # block may hold a few blocks and the kept sample (5,000 x 3), not the period
    ds = _lazy(1000, 40, 40, tchunk=8)
    tracemalloc.start()
    try:
        X, y, _ = sample_pixel_days(
            ds, ["v0", "v1", "v2"], ds["target"], max_samples=5000, seed=0, budget_bytes=1 << 20
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert X.shape == (5000, 3) and set(np.unique(y).tolist()) == {0, 1}
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB"


def _tb(days=120, ny=4, nx=3, tchunk=None, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2017-01-01", periods=days, freq="D")
    season = 15 * np.cos(2 * np.pi * (t.dayofyear.values - 200) / 365)[None, :, None, None]
    h = 230 + season + rng.normal(0, 2, (2, days, ny, nx))
    v = h + 12 + rng.normal(0, 1, h.shape)
    gaps = rng.random(h.shape) < 0.25  # single days and runs of missing days, as on the swath edges
    gaps[:, 40:47] = True  # a run longer than the filled gaps
    h[gaps] = np.nan
    v[gaps] = np.nan
    ds = xr.Dataset(
        {"tbh": (("pass", "time", "y", "x"), h.astype("f4")), "tbv": (("pass", "time", "y", "x"), v.astype("f4"))},
        coords={"time": t},
    )
    return ds.chunk({"pass": 1, "time": tchunk}) if tchunk else ds


def test_the_autoencoder_scores_chunk_by_chunk_exactly_as_on_the_whole_series():
    pytest.importorskip("torch")
    import torch

    from ftcloud.retrieve.autoencoder import AutoencoderRetrieval, _fill_gaps, windows

    torch.manual_seed(0)
    from ftcloud.retrieve._ae_net import AE

    ae = AutoencoderRetrieval()
    ae.model = AE().eval()
    whole = _tb()
    # oracle: the whole series at once, with the plain trailing windows (no blocks, no halo)
    tb = np.stack([whole["tbh"].values, whole["tbv"].values], 2).reshape(2, 120, 2, -1)
    want = np.full((2, 120, tb.shape[-1]), np.nan, "f4")
    for i in range(2):
        own = np.isfinite(tb[i]).all(axis=1)
        w = windows(_fill_gaps(tb[i]), ae.window)
        ok = np.isfinite(w).all(axis=(2, 3)) & own
        with torch.no_grad():
            want[i][ok] = ae.model.error(torch.from_numpy(w[ok])).numpy()
    want = want.reshape(2, 120, 4, 3)
    for tchunk in (8, 13, 32):
        got = ae.window_errors(_tb(tchunk=tchunk))
        assert got.chunks is not None
        np.testing.assert_allclose(got.values, want, rtol=1e-5, equal_nan=True)
    assert np.isfinite(want).sum() > 300  # the comparison covers many windows, and the gaps leave holes
    assert np.isnan(want[:, 44]).all()


def test_ert_predicts_from_its_exported_file_not_from_the_graph(tmp_path):
    pytest.importorskip("sklearn")
    import cloudpickle

    from ftcloud.errors import ValidationError
    from ftcloud.retrieve.ert import ERTRetrieval

    ds = _lazy(30, 10, 10, nvars=2)
    ds = ds.rename({"v0": "TB36.5V", "v1": "TB18.7V"})
    target = xr.where(ds["TB36.5V"] < 250, 1, 0).astype("u1")
    ert = ERTRetrieval(features=("TB36.5V", "TB18.7V"), n_estimators=30, min_samples_leaf=1, max_samples=4000).fit(
        ds, target
    )
    inline = ert.predict(ds)
    card = ert.export(str(tmp_path / "model"))
    size = (tmp_path / "model" / card["files"]["pickle"]["name"]).stat().st_size
    fresh = ERTRetrieval.from_export(str(tmp_path / "model"))
    by_file = fresh.predict(ds)
    graph_bytes = len(cloudpickle.dumps(dict(by_file.data.__dask_graph__())))
    inline_bytes = len(cloudpickle.dumps(dict(inline.data.__dask_graph__())))
    # the unexported trees ride in the graph; the exported ones stay in their (compressed) file
    assert inline_bytes > size > 2 * graph_bytes, (inline_bytes, size, graph_bytes)
    assert np.array_equal(by_file.values, inline.values)
    # a changed file is refused, in one line, before unpickling
    path = tmp_path / "model" / card["files"]["pickle"]["name"]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte changed, whatever it was
    path.write_bytes(bytes(raw))
    with pytest.raises(ValidationError, match="SHA-256"):
        ERTRetrieval.from_export(str(tmp_path / "model"))


def test_the_autoencoders_fit_sample_does_not_depend_on_the_block(monkeypatch):
    """The fit's windows, sampled block by block (days with their halo, bands of rows), are the whole series'
    windows: the same sample for a budget of the whole period and for a budget of a few days and rows."""
    from ftcloud.retrieve import sampling
    from ftcloud.retrieve.autoencoder import AutoencoderRetrieval, _fill_gaps, windows

    ae = AutoencoderRetrieval(max_samples=300)
    ds = _tb(days=400, tchunk=10).chunk({"y": 1})
    monkeypatch.setattr(sampling, "BLOCK_BYTES", 1 << 30)
    Xa, ya = ae._sample_windows(ds, 7)
    monkeypatch.setattr(sampling, "BLOCK_BYTES", 4000)  # one 10-day chunk by one row
    days, rows, cols = sampling.blocks(ds["tbh"].transpose("time", ...), 4 * 14 + sampling.INDEX_BYTES, 4000)
    assert days[:2] == [(0, 10), (10, 20)] and rows == [(0, 1), (1, 2), (2, 3), (3, 4)] and cols == [(0, 3)]
    Xb, yb = ae._sample_windows(ds, 7)
    assert len(ya) == 300 and np.array_equal(Xa, Xb, equal_nan=True) and np.array_equal(ya, yb)
    # and by bands of two rows by one column: each block's window positions map back to the whole array
    dc = ds.chunk({"y": 2, "x": 1})
    monkeypatch.setattr(sampling, "BLOCK_BYTES", 8000)  # one 10-day chunk by one two-row chunk is 14,400 B
    _, rows, cols = sampling.blocks(dc["tbh"].transpose("time", ...), 4 * 14 + sampling.INDEX_BYTES, 8000)
    assert rows == [(0, 2), (2, 4)] and cols == [(0, 1), (1, 2), (2, 3)]
    Xc, yc = ae._sample_windows(dc, 7)
    assert np.array_equal(Xa, Xc, equal_nan=True) and np.array_equal(ya, yc)
    # the oracle, without blocks: every whole-series window that ends on an observed peak-season day, labelled
    # 0 (Jan-Feb) or 1 (Jul-Aug); each sampled window is one of them, with its label
    tb = np.stack([ds["tbh"].values, ds["tbv"].values], 2).reshape(2, 400, 2, -1)
    month = ds["time"].dt.month.values
    label = np.where(np.isin(month, [1, 2]), 0, np.where(np.isin(month, [7, 8]), 1, -1))
    allowed = set()
    for i in range(2):
        own = np.isfinite(tb[i]).all(axis=1)  # (time, cells)
        w = windows(_fill_gaps(tb[i]), ae.window)  # (time, cells, 2, window)
        for d, c in zip(*np.nonzero(own & (label >= 0)[:, None] & np.isfinite(w).all(axis=(2, 3)))):
            allowed.add((w[d, c].tobytes(), int(label[d])))
    assert all((x.tobytes(), int(lab)) in allowed for x, lab in zip(Xa, ya))
    assert 0 < ya.mean() < 1
