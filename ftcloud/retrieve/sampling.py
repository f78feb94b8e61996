"""A uniform random sample of valid pixel-days, streamed from the store in time blocks.

The families that learn from samples (DFA, ERT) need at most a few hundred thousand pixel-days, whatever
the region or period. :func:`sample_pixel_days` reads the fit period one block at a time (:func:`blocks`: whole
days of the region where a budget allows, else one time chunk by bands of rows; aligned to the store's
chunks), keeps the valid pixel-days and
holds only the ``max_samples`` with the smallest random keys seen so far (bottom-k sampling, a uniform
sample without replacement). Memory: one block plus the kept sample, never the period or the region.

Each pixel-day's key is a hash of its position in the fit period and the seed (SplitMix64), not a draw
from a stream, so the sample is the same for any block size or chunking: a seed names one sample.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["BLOCK_BYTES", "blocks", "sample_pixel_days", "splitmix64"]

#: bytes of one block of features read at once (float32): the sampler's memory, with the kept sample
BLOCK_BYTES = 32 << 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64's output for the state ``(x + 1) * golden + seed * C`` (uint64; Steele et al. 2014): for seed 0,
    positions 0, 1, 2 ... give the reference SplitMix64 stream started at state 0.

    >>> [hex(int(v)) for v in splitmix64(np.array([0, 1], "u8"), 0)]
    ['0xe220a8397b1dcdaf', '0x6e789e6aa1b965f4']
    """
    with np.errstate(over="ignore"):
        offset = np.uint64(int(seed) % (1 << 64)) * np.uint64(0xD1B54A32D192ED03)
        z = (np.asarray(x, "u8") + np.uint64(1)) * _GOLDEN + offset
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _chunk(da_: xr.DataArray, dim: str) -> int | None:
    return int(da_.chunksizes[dim][0]) if da_.chunks is not None and dim in da_.chunksizes else None


def blocks(like: xr.DataArray, bytes_per_cell_day: int, budget: int = BLOCK_BYTES) -> tuple[int, int]:
    """(days, rows) of one block of ``like`` (dims time, ..., y, ...) that holds about ``budget`` bytes: whole days
    of the whole region where they fit, else bands of rows; both whole multiples of the store's chunks (no chunk
    is read twice), at least one chunk each: the block is bounded by the budget, not by the period or region.

    >>> like = xr.DataArray(np.zeros((100, 2, 50, 40)), dims=("time", "pass", "y", "x")).chunk({"time": 10, "y": 8})
    >>> blocks(like, 4, budget=2 * 50 * 40 * 4 * 30)  # 30 days of the whole region fit: 30 days, every row
    (30, 50)
    >>> blocks(like, 4, budget=2 * 50 * 40 * 4 * 3)  # 3 days do: one time chunk (10 days), bands of 8 rows
    (10, 8)
    """
    n_days = like.sizes["time"]
    day = bytes_per_cell_day * int(np.prod([like.sizes[d] for d in like.dims if d != "time"]))
    tc = _chunk(like, "time") or 1
    days = (budget // max(day, 1)) // tc * tc
    if days >= tc or "y" not in like.dims:
        return int(min(max(days, tc), n_days)), int(like.sizes.get("y", 1))
    ny = like.sizes["y"]
    yc = _chunk(like, "y") or 1
    rows = (budget // max(tc * day // ny, 1)) // yc * yc
    return int(min(tc, n_days)), int(min(max(rows, yc), ny))


def sample_pixel_days(
    ds: xr.Dataset,
    features,
    target: xr.DataArray | None = None,
    *,
    max_samples: int,
    seed: int = 0,
    budget_bytes: int = BLOCK_BYTES,
    progress=None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """At most ``max_samples`` pixel-days of ``ds`` where every feature is finite (and ``target`` is 0 or 1),
    uniformly at random for ``seed``: ``(X (n, nfeatures) float32, y (n,) uint8 or None, index (n,) int64)``.

    ``index`` is each sample's position in the (time, other dims...) order of the first feature, ascending;
    features without a time dimension (statics) are broadcast. ``progress(k)`` is called with the days read.
    """
    features = tuple(features)
    like = ds[features[0]]
    if target is not None:
        like = like.broadcast_like(target)
    dims = ("time", *[d for d in like.dims if d != "time"])
    like = like.transpose(*dims)
    shape = tuple(like.sizes[d] for d in dims)
    n_days, ny = shape[0], like.sizes.get("y", 1)
    bdays, brows = blocks(like, 4 * len(features), budget_bytes)
    keys = np.empty(0, "u8")
    X = np.empty((0, len(features)), "f4")
    y = np.empty(0, "u1") if target is not None else None
    index = np.empty(0, "i8")
    for a in range(0, n_days, bdays):
        b = min(a + bdays, n_days)
        for r0 in range(0, ny, brows):
            sel = {"time": slice(a, b), **({"y": slice(r0, min(r0 + brows, ny))} if "y" in dims else {})}
            part = like.isel(sel)
            sub = ds[list(features)].isel({k: v for k, v in sel.items() if k in ds.dims}).load()
            xb = np.stack(
                [np.asarray(sub[f].broadcast_like(part).transpose(*dims).values, "f4").ravel() for f in features],
                axis=1,
            )
            ok = np.isfinite(xb).all(axis=1)
            yb = None
            if target is not None:
                tb = target.isel({k: v for k, v in sel.items() if k in target.dims})
                yb = np.asarray(tb.broadcast_like(part).transpose(*dims).values).ravel()
                ok &= yb <= 1
            idx = np.flatnonzero(ok)
            # each kept pixel-day's position in the whole (time, ...) array: its key does not depend on the block
            local = np.unravel_index(idx, part.shape)
            offset = [a if d == "time" else (r0 if d == "y" else 0) for d in dims]
            gidx = np.ravel_multi_index(tuple(ix + o for ix, o in zip(local, offset)), shape).astype("i8")
            keys = np.concatenate([keys, splitmix64(gidx.astype("u8"), seed)])
            X = np.concatenate([X, xb[idx]])
            index = np.concatenate([index, gidx])
            if y is not None:
                y = np.concatenate([y, yb[idx].astype("u1")])
            del sub, xb, yb, local
            if keys.size > max_samples:
                keep = np.argpartition(keys, max_samples - 1)[:max_samples]
                keys, X, index = keys[keep], X[keep], index[keep]
                if y is not None:
                    y = y[keep]
        if progress is not None:
            progress(b - a)
    order = np.argsort(index, kind="stable")
    return X[order], (None if y is None else y[order]), index[order]
