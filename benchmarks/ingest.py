"""Ingest benchmark: source MB/s through the ERA5-Land recipe vs a plain open_mfdataset().to_zarr().

Both paths read the same twin files in the same run, so the ratio is robust to a noisy
machine. The recipe does more (hour selection per longitude, de-accumulation, regridding,
rechunking, validation); the goal is ratio >= 0.5.

    python benchmarks/ingest.py                      # demo region, 2 years of ERA5-Land
    python benchmarks/ingest.py --years 5 --repeat 3
    python benchmarks/ingest.py --full-demo          # also: 41-year demo synth + full ingest, size and wall time
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile
import time


def _size(paths) -> int:
    return sum(os.path.getsize(p) for p in paths)


def _tree_size(folder) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def bench_era5(src: str, work: str, region: str, start: str, end: str, repeat: int) -> dict:
    import xarray as xr

    from ftcloud.workflows.ingest import ingest

    files = sorted(glob.glob(os.path.join(src, "era5land", "*.nc")))
    nbytes = _size(files)
    t_recipe, t_plain = [], []
    for i in range(repeat):
        store = os.path.join(work, f"recipe{i}")
        t0 = time.perf_counter()
        ingest(src, store, region=region, start=start, end=end, sources=["era5land"], progress=False)
        t_recipe.append(time.perf_counter() - t0)
        shutil.rmtree(store)
        out = os.path.join(work, f"plain{i}.zarr")
        t0 = time.perf_counter()
        ds = xr.open_mfdataset(files, combine="nested", concat_dim="time", engine="netcdf4", parallel=False)
        ds.to_zarr(out, mode="w", consolidated=True)
        t_plain.append(time.perf_counter() - t0)
        shutil.rmtree(out)
    best_r, best_p = min(t_recipe), min(t_plain)
    return {
        "files": len(files),
        "source_mb": nbytes / 1e6,
        "recipe_s": best_r,
        "plain_s": best_p,
        "recipe_mb_s": nbytes / 1e6 / best_r,
        "plain_mb_s": nbytes / 1e6 / best_p,
        "ratio": best_p / best_r,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region", default="demo")
    ap.add_argument("--years", type=int, default=2, help="years of ERA5-Land for the throughput comparison")
    ap.add_argument("--repeat", type=int, default=2, help="repeats; the best time of each path is used")
    ap.add_argument("--full-demo", action="store_true", help="also time the 41-year demo synth + ingest")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    from ftcloud.synth import generate

    work = args.workdir or tempfile.mkdtemp(prefix="ftcloud-bench-")
    try:
        start, end = "2017-01-01", f"{2016 + args.years}-12-31"
        src = os.path.join(work, "src")
        generate(args.region, start, end, src, seed=1, insitu=False, progress=False)
        r = bench_era5(src, work, args.region, start, end, args.repeat)
        print(f"ERA5-Land {args.region} {start}..{end}: {r['files']} files, {r['source_mb']:.1f} MB")
        print(f"  recipe (pangeo-forge, DirectRunner): {r['recipe_s']:7.2f} s  {r['recipe_mb_s']:7.2f} MB/s")
        print(f"  plain open_mfdataset().to_zarr():    {r['plain_s']:7.2f} s  {r['plain_mb_s']:7.2f} MB/s")
        print(f"  ratio recipe/plain throughput: {r['ratio']:.2f}  (goal >= 0.5)")
        if args.full_demo:
            from ftcloud.workflows.ingest import ingest

            full = os.path.join(work, "demo41")
            t0 = time.perf_counter()
            generate("demo", "1980-01-01", "2020-12-31", full, seed=0, progress=True)
            t_synth = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = ingest(full, os.path.join(work, "demo41-store"), progress=True)
            t_ingest = time.perf_counter() - t0
            print(
                f"41-year demo: sources {_tree_size(full) / 1e9:.2f} GB written in {t_synth:.0f} s; "
                f"ingest {t_ingest:.0f} s; store {_tree_size(os.path.join(work, 'demo41-store')) / 1e6:.0f} MB"
            )
            print(res.summary())
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
