"""A uniform random sample of valid pixel-days, streamed from the store in time blocks.

The families that learn from samples (DFA, ERT) need at most a few hundred thousand pixel-days, whatever
the region or period. :func:`sample_pixel_days` reads the fit period one block at a time (:func:`blocks`:
whole days of the region where a budget allows, else one time chunk by bands of rows, or by bands of
columns within a chunk of rows; aligned to the store's chunks), keeps the valid pixel-days and holds only
the ``max_samples`` with the smallest random keys seen so far (bottom-k sampling, a uniform sample without
replacement). Memory: one block plus the kept sample, never the period or the region.

Each pixel-day's key is a hash of its position in the fit period and the seed (SplitMix64), not a draw
from a stream, so the sample is the same for any block size or chunking: a seed names one sample.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["BLOCK_BYTES", "INDEX_BYTES", "blocks", "sample_pixel_days", "splitmix64"]

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


#: bytes per cell-day a block costs beyond its features: the valid positions, their global index and key
INDEX_BYTES = 64


def _edges(like: xr.DataArray, dim: str) -> list[int]:
    """The chunk boundaries of ``dim`` (every position where ``like`` is not chunked)."""
    n = like.sizes[dim]
    if like.chunks is None:
        return list(range(n + 1))
    return [0, *np.cumsum(like.chunksizes[dim]).tolist()]


def _group(edges: list[int], unit: float, budget: int) -> list[tuple[int, int]]:
    """Runs of consecutive chunks (``edges``) of at most ``budget`` bytes at ``unit`` bytes a position (at least
    one chunk each)."""
    out, a = [], 0
    for i in range(1, len(edges)):
        if i + 1 < len(edges) and (edges[i + 1] - edges[a]) * unit <= budget:
            continue
        out.append((edges[a], edges[i]))
        a = i
    return out


def blocks(like: xr.DataArray, bytes_per_cell_day: int, budget: int = BLOCK_BYTES):
    """The blocks that read ``like`` (dims time, ..., y, x, ...) in about ``budget`` bytes each: ``(days, rows,
    cols)``, lists of [start, stop) ranges (a block is one of each). Whole days of the region while they fit,
    else one time chunk by bands of rows, else one time chunk by one chunk of rows by bands of columns; every
    range ends on a chunk edge of the (possibly sliced) array, so no chunk is read twice, and each holds at
    least one chunk: a block is bounded by the budget (or one chunk), not by the period or the region.

    >>> like = xr.DataArray(np.zeros((100, 2, 50, 40)), dims=("time", "pass", "y", "x"))
    >>> like = like.chunk({"time": 10, "y": 8, "x": 16})
    >>> days, rows, cols = blocks(like, 4, budget=2 * 50 * 40 * 4 * 30)  # 30 days of the region fit: 3 chunks
    >>> days[:2], rows, cols
    ([(0, 30), (30, 60)], [(0, 50)], [(0, 40)])
    >>> blocks(like.isel(time=slice(5, None)), 4, budget=2 * 50 * 40 * 4 * 30)[0][:2]  # a period from mid-chunk
    [(0, 25), (25, 55)]
    >>> days, rows, cols = blocks(like, 4, budget=2 * 50 * 40 * 4 * 3)  # 3 days: a chunk of days by 8-row bands
    >>> days[:2], rows[:2], cols
    ([(0, 10), (10, 20)], [(0, 8), (8, 16)], [(0, 40)])
    >>> days, rows, cols = blocks(like, 4, budget=2 * 10 * 8 * 20 * 4)  # under a band of rows: columns too
    >>> days[:2], rows[:2], cols
    ([(0, 10), (10, 20)], [(0, 8), (8, 16)], [(0, 16), (16, 32), (32, 40)])
    """
    ny, nx = int(like.sizes.get("y", 1)), int(like.sizes.get("x", 1))
    day = bytes_per_cell_day * int(np.prod([like.sizes[d] for d in like.dims if d != "time"]))
    tedges = _edges(like, "time")
    longest = max(b - a for a, b in zip(tedges, tedges[1:]))
    if longest * day <= budget or "y" not in like.dims:
        return _group(tedges, day, budget), [(0, ny)], [(0, nx)]
    chunks_of_days = list(zip(tedges, tedges[1:]))
    row = longest * day / ny  # bytes of one row of one chunk of days
    redges = _edges(like, "y")
    tallest = max(b - a for a, b in zip(redges, redges[1:]))
    if tallest * row <= budget or "x" not in like.dims:
        return chunks_of_days, _group(redges, row, budget), [(0, nx)]
    return chunks_of_days, list(zip(redges, redges[1:])), _group(_edges(like, "x"), tallest * row / nx, budget)


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
    day_ranges, row_ranges, col_ranges = blocks(like, 4 * len(features) + INDEX_BYTES, budget_bytes)
    bands = [
        {**({"y": slice(*r)} if "y" in dims else {}), **({"x": slice(*c)} if "x" in dims else {})}
        for r in row_ranges
        for c in col_ranges
    ]
    keys = np.empty(0, "u8")
    X = np.empty((0, len(features)), "f4")
    y = np.empty(0, "u1") if target is not None else None
    index = np.empty(0, "i8")
    for a, b in day_ranges:
        for band in bands:
            sel = {"time": slice(a, b), **band}
            part = like.isel(sel)
            sub = ds[list(features)].isel({k: v for k, v in sel.items() if k in ds.dims}).load()
            cols = [np.asarray(sub[f].broadcast_like(part).transpose(*dims).values, "f4").ravel() for f in features]
            del sub
            ok = np.isfinite(cols[0])
            for c in cols[1:]:
                ok &= np.isfinite(c)
            if target is not None:
                tb = target.isel({k: v for k, v in sel.items() if k in target.dims})
                yb = np.asarray(tb.broadcast_like(part).transpose(*dims).values).ravel()
                ok &= yb <= 1
            idx = np.flatnonzero(ok)
            del ok
            # each valid pixel-day's position in the whole (time, ...) array: its key does not depend on the block
            local = np.unravel_index(idx, part.shape)
            offset = [sel[d].start if d in sel else 0 for d in dims]
            gidx = np.ravel_multi_index(tuple(ix + o for ix, o in zip(local, offset)), shape).astype("i8")
            del local
            k = splitmix64(gidx.astype("u8"), seed)
            if keys.size >= max_samples:  # only candidates below the current k-th key can enter the sample
                below = k < keys.max()
                idx, gidx, k = idx[below], gidx[below], k[below]
            keys = np.concatenate([keys, k])
            X = np.concatenate([X, np.stack([c[idx] for c in cols], axis=1)])
            index = np.concatenate([index, gidx])
            if y is not None:
                y = np.concatenate([y, yb[idx].astype("u1")])
            del cols
            if keys.size > max_samples:
                keep = np.argpartition(keys, max_samples - 1)[:max_samples]
                keys, X, index = keys[keep], X[keep], index[keep]
                if y is not None:
                    y = y[keep]
        if progress is not None:
            progress(b - a)
    order = np.argsort(index, kind="stable")
    return X[order], (None if y is None else y[order]), index[order]
