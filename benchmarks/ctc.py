"""CTC benchmark: GB/s of input through triple_collocation vs numpy.sum(axis=0) over the same data.

Three uint8 FT series (days x pixels, dask-chunked) are built lazily: every chunk is one of a
few pre-generated random blocks (truth with a seasonal cycle, product errors, 5 % missing =
255), handed out without copying, so neither path pays for data generation and the input is
never held in memory as a whole. Both paths run in the same process with the same scheduler;
the ratio (goal >= 0.5) is robust to a noisy machine.

    python benchmarks/ctc.py                        # 14,976 days x 100,000 pixels (4.5 GB of input)
    python benchmarks/ctc.py --days 3650 --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def _templates(time_chunk: int, ny: int, nx: int, seed: int, variants: int = 2) -> list[list[np.ndarray]]:
    """``variants`` blocks per product: (time_chunk, ny, nx) uint8 codes with independent errors."""
    rng = np.random.default_rng(seed)
    acc = [(0.95, 0.85), (0.80, 0.92), (0.88, 0.88)]
    out: list[list[np.ndarray]] = [[], [], []]
    doy = np.arange(time_chunk) % 365
    p_frozen = 0.5 + 0.45 * np.cos(2 * np.pi * doy / 365.0)  # winter at day 0
    for _ in range(variants):
        truth = rng.random((time_chunk, ny, nx), dtype=np.float32) < p_frozen[:, None, None]
        for i, (sens, spec) in enumerate(acc):
            u = rng.random((time_chunk, ny, nx), dtype=np.float32)
            x = np.where(truth, u < sens, u >= spec).astype(np.uint8)
            x[rng.random((time_chunk, ny, nx), dtype=np.float32) < 0.05] = 255
            out[i].append(x)
    return out


def _lazy(template: list[np.ndarray], days: int, time_chunk: int, ny: int, nx: int, y_chunk: int):
    import dask.array as da

    def block(block_id=None, **_):
        i, j, _k = block_id
        t = template[(i + j) % len(template)]
        nt = min(time_chunk, days - i * time_chunk)
        ys = min(y_chunk, ny - j * y_chunk)
        return t[:nt, :ys]

    chunks = (
        (time_chunk,) * (days // time_chunk) + ((days % time_chunk,) if days % time_chunk else ()),
        (y_chunk,) * (ny // y_chunk) + ((ny % y_chunk,) if ny % y_chunk else ()),
        (nx,),
    )
    return da.map_blocks(block, chunks=chunks, dtype=np.uint8, meta=np.empty((0, 0, 0), np.uint8))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=14976)
    ap.add_argument("--ny", type=int, default=250)
    ap.add_argument("--nx", type=int, default=400, help="pixels = ny * nx (default 100,000)")
    ap.add_argument("--time-chunk", type=int, default=936)
    ap.add_argument("--y-chunk", type=int, default=125)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--scheduler", default="threads")
    args = ap.parse_args(argv)

    import dask
    import xarray as xr

    from ftcloud.science.ctc import triple_collocation

    tpl = _templates(args.time_chunk, min(args.y_chunk, args.ny), args.nx, seed=1)
    arrs = [_lazy(t, args.days, args.time_chunk, args.ny, args.nx, args.y_chunk) for t in tpl]
    xs = [xr.DataArray(a, dims=("time", "y", "x"), name=f"p{i + 1}") for i, a in enumerate(arrs)]
    nbytes = 3 * args.days * args.ny * args.nx
    t_ctc, t_sum = [], []
    with dask.config.set(scheduler=args.scheduler):
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = triple_collocation(*xs, min_count=30)
            res = res[["n", "psi", "eta", "pi", "reason"]].compute()
            t_ctc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sums = dask.compute(*[a.sum(axis=0) for a in arrs])
            t_sum.append(time.perf_counter() - t0)
    best_c, best_s = min(t_ctc), min(t_sum)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: KiB
    out = {
        "input_gb": nbytes / 1e9,
        "ctc_s": best_c,
        "sum_s": best_s,
        "ctc_gb_s": nbytes / 1e9 / best_c,
        "sum_gb_s": nbytes / 1e9 / best_s,
        "ratio": best_s / best_c,
        "peak_rss_gb": peak_gb,
        "threads": dask.system.CPU_COUNT,
        "check_mean_pi": [float(v) for v in res["pi"].mean(("y", "x")).values],
        "check_sum": int(sums[0].sum()),
    }
    print(
        f"input: 3 x {args.days} days x {args.ny * args.nx} pixels uint8 = {out['input_gb']:.2f} GB, "
        f"chunks (time {args.time_chunk}, y {args.y_chunk}, x {args.nx}), scheduler {args.scheduler} "
        f"({out['threads']} cores)"
    )
    print(
        f"triple_collocation : {best_c:7.2f} s  {out['ctc_gb_s']:6.2f} GB/s   (runs: "
        f"{', '.join(f'{t:.2f}' for t in t_ctc)})"
    )
    print(
        f"numpy.sum(axis=0)  : {best_s:7.2f} s  {out['sum_gb_s']:6.2f} GB/s   (runs: "
        f"{', '.join(f'{t:.2f}' for t in t_sum)})"
    )
    print(f"ratio (CTC / sum throughput): {out['ratio']:.2f}   (goal >= 0.5)")
    print(
        "mean balanced accuracy per product (truth 0.90, 0.86, 0.88): "
        f"{', '.join(f'{v:.3f}' for v in out['check_mean_pi'])}"
    )
    print(f"peak RSS: {peak_gb:.2f} GB")
    return out


if __name__ == "__main__":
    main()
