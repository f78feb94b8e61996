"""Trend benchmark: pixels/s of ftcloud's Sen slope + Mann-Kendall vs a pymannkendall loop.

The array is the China frozen-day cube, (41 years, 404, 657) float32, with integer values
(many ties) and 5 % NaN. ftcloud runs on all of it (dask, chunked over space; reported for
the threaded scheduler and single-threaded); pymannkendall.original_test runs pixel by pixel
on a random sample in the same process. The sample's results are compared (slope relative,
p absolute). Goal: >= 100x pymannkendall's pixels/s.

    python benchmarks/trends.py                     # full (41, 404, 657)
    python benchmarks/trends.py --pixels 20000      # scaled down (pixels taken from the full grid's x)
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=int, default=41)
    ap.add_argument("--ny", type=int, default=404)
    ap.add_argument("--nx", type=int, default=657)
    ap.add_argument("--pixels", type=int, default=None, help="scale down: use this many pixels (ny * nx' >= pixels)")
    ap.add_argument("--sample", type=int, default=300, help="pixels run through pymannkendall")
    ap.add_argument("--y-chunk", type=int, default=51)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="ftcloud runs per scheduler (best is reported)")
    args = ap.parse_args(argv)

    import dask
    import pymannkendall as pmk
    import xarray as xr

    from ftcloud.science.trends import mann_kendall

    nx = args.nx if args.pixels is None else max(1, -(-args.pixels // args.ny))
    rng = np.random.default_rng(args.seed)
    shape = (args.years, args.ny, nx)
    trend = rng.normal(-0.2, 0.3, (args.ny, nx)).astype(np.float32)
    years = np.arange(1980, 1980 + args.years)
    data = np.round(rng.normal(150, 12, shape).astype(np.float32) + trend * (years - years[0])[:, None, None])
    data[rng.random(shape) < 0.05] = np.nan
    da = xr.DataArray(data, dims=("year", "y", "x"), coords={"year": years}, attrs={"units": "days"})
    npix = args.ny * nx

    def run(scheduler: str) -> tuple[float, xr.Dataset]:
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = mann_kendall(da.chunk({"y": args.y_chunk}), min_count=10)[["slope", "p"]].compute(scheduler=scheduler)
            best = min(best, time.perf_counter() - t0)
        return best, res

    mann_kendall(da.isel(y=slice(0, 2)), min_count=10).compute()  # warm-up (imports, first-call costs)

    t_thr, res = run("threads")
    t_syn, res_syn = run("synchronous")
    same = bool(
        np.array_equal(res.p.values, res_syn.p.values, equal_nan=True)
        and np.array_equal(res.slope.values, res_syn.slope.values, equal_nan=True)
    )

    flat = data.reshape(args.years, -1)
    idx = rng.choice(npix, size=min(args.sample, npix), replace=False)
    slopes_ref, p_ref = np.empty(idx.size), np.empty(idx.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for k, i in enumerate(idx):
            r = pmk.original_test(flat[:, i].astype(np.float64))
            slopes_ref[k], p_ref[k] = r.slope, r.p
        t_pmk = time.perf_counter() - t0
    s_ours = res.slope.values.reshape(-1)[idx]
    p_ours = res.p.values.reshape(-1)[idx]
    rel = np.abs(s_ours - slopes_ref) / np.maximum(np.abs(slopes_ref), 1e-12)
    rel = np.where(slopes_ref == 0, np.abs(s_ours), rel)
    dp = np.abs(p_ours - p_ref)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    out = {
        "pixels": npix,
        "shape": shape,
        "ftcloud_px_s_threads": npix / t_thr,
        "ftcloud_px_s_single": npix / t_syn,
        "pymannkendall_px_s": idx.size / t_pmk,
        "speedup_threads": (npix / t_thr) / (idx.size / t_pmk),
        "speedup_single": (npix / t_syn) / (idx.size / t_pmk),
        "max_slope_rel_diff": float(np.nanmax(rel)),
        "max_p_abs_diff": float(np.nanmax(dp)),
        "threads_equal_synchronous": same,
        "peak_rss_gb": peak_gb,
    }
    print(
        f"array {shape} float32 ({npix} pixels), 5 % NaN, integer values; chunks y={args.y_chunk}; "
        f"{dask.system.CPU_COUNT} cores"
    )
    print(f"ftcloud mann_kendall (threads)     : {t_thr:7.2f} s  {out['ftcloud_px_s_threads']:10.0f} pixels/s")
    print(f"ftcloud mann_kendall (1 thread)    : {t_syn:7.2f} s  {out['ftcloud_px_s_single']:10.0f} pixels/s")
    print(
        f"pymannkendall.original_test loop   : {t_pmk:7.2f} s  {out['pymannkendall_px_s']:10.0f} pixels/s  "
        f"({idx.size} pixels)"
    )
    print(f"speedup: {out['speedup_threads']:.0f}x (threads), {out['speedup_single']:.0f}x (1 thread)   (goal >= 100x)")
    print(
        f"agreement on the {idx.size} sampled pixels: max |slope| rel diff {out['max_slope_rel_diff']:.1e}, "
        f"max |p| diff {out['max_p_abs_diff']:.1e}; threaded == synchronous: {same}"
    )
    print(f"peak RSS: {peak_gb:.2f} GB")
    return out


if __name__ == "__main__":
    main()
