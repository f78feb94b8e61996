"""How time and peak memory of ``ftcloud ingest`` grow with the size of the work (issue 10).

Each size is one ``ftcloud ingest`` process run under ``/usr/bin/time -v`` (peak RSS of the
whole process, wall time) over the same twin folder with ``--start/--end``: the sizes differ
only in the number of days. Prints per size: days, cells x days, bytes written, wall time,
throughput (cell-days/s), peak RSS, and the fitted exponents of time and of memory against
cells x days (log-log least squares). Goals: time exponent <= 1.05, memory exponent <= 0.1.

    python benchmarks/scaling.py                         # demo window, 1, 2, 4, 8, 16 years (makes its own twin)
    python benchmarks/scaling.py --source TWIN_DIR       # an existing twin folder covering the years
    python benchmarks/scaling.py --quick                 # tiny window, 1, 2, 4, 16 months (a test runs this)

Stages other than ingest (a training epoch, prediction) are not measured here yet.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd


def _tree_size(folder) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of a command, from /usr/bin/time -v."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        raise SystemExit(f"scaling: {' '.join(cmd[:3])} ... failed with exit code {p.returncode}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, (int(m.group(1)) / 1e6 if m else float("nan"))


def _fit(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=None, help="twin folder covering the periods (default: generate one)")
    ap.add_argument("--region", default=None)
    ap.add_argument("--quick", action="store_true", help="tiny window, months instead of years (about a minute)")
    ap.add_argument("--sources", default="era5land,smap_e_ft,esdr_ft,statics")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the baseline (pangeo-forge StoreToZarr writer) at the two smallest sizes")
    args = ap.parse_args(argv)

    from ftcloud.grid import region_window

    region = args.region or ("tiny" if args.quick else "demo")
    if args.quick:
        end = pd.Timestamp("2018-12-31")
        periods = [(end - pd.DateOffset(months=m) + pd.Timedelta(days=1), end) for m in (1, 2, 4, 16)]
    else:
        end = pd.Timestamp("2020-12-31")
        periods = [(end - pd.DateOffset(years=y) + pd.Timedelta(days=1), end) for y in (1, 2, 4, 8, 16)]
    work = tempfile.mkdtemp(prefix="ftcloud-scaling-")
    exe = [sys.executable, "-m", "ftcloud.cli"]
    try:
        src = args.source
        if src is None:
            src = os.path.join(work, "src")
            first = min(a for a, _ in periods)
            print(f"generating the {region} twin {first:%Y-%m-%d} .. {end:%Y-%m-%d} ...", flush=True)
            subprocess.run([*exe, "-q", "synth", "--region", region, "--start", f"{first:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}",
                            "--out", src, "--targets-start", f"{first:%Y-%m-%d}", "--no-insitu"], check=True)
        ncell = int(np.prod(region_window(region).shape))
        from ftcloud.ingest import twin_defaults, twin_parameters

        ts0 = pd.Timestamp(twin_defaults(twin_parameters(src)).get("targets_start") or min(a for a, _ in periods))
        rows = []
        for a, b in periods:
            store = os.path.join(work, f"store_{a:%Y%m%d}")
            wall, rss = _timed([*exe, "-q", "ingest", "--source", src, "--store", store, "--region", region,
                                "--start", f"{a:%Y-%m-%d}", "--end", f"{b:%Y-%m-%d}", "--targets-start", f"{max(a, ts0):%Y-%m-%d}",
                                "--sources", args.sources])
            days = (b - a).days + 1
            rows.append({"days": days, "cell_days": ncell * days, "MB_written": _tree_size(store) / 1e6, "wall_s": wall,
                         "cell_days_per_s": ncell * days / wall, "peak_rss_GB": rss})
            row = rows[-1]
            if not args.no_baseline and len(rows) <= 3:
                bstore = store + "_pf"
                bw, brss = _timed([*exe, "-q", "ingest", "--source", src, "--store", bstore, "--region", region,
                                   "--start", f"{a:%Y-%m-%d}", "--end", f"{b:%Y-%m-%d}", "--targets-start", f"{max(a, ts0):%Y-%m-%d}",
                                   "--sources", args.sources, "--writer", "pangeo-forge"])
                row["baseline_wall_s"], row["baseline_peak_rss_GB"] = bw, brss
                shutil.rmtree(bstore, ignore_errors=True)
            print(f"  {days:6d} days: {wall:7.1f} s, peak RSS {rss:5.2f} GB"
                  + (f" (baseline writer: {row['baseline_wall_s']:.1f} s, {row['baseline_peak_rss_GB']:.2f} GB)"
                     if "baseline_wall_s" in row else ""), flush=True)
            shutil.rmtree(store, ignore_errors=True)
        df = pd.DataFrame(rows)
        print(f"\nftcloud ingest ({args.sources}), region {region} ({ncell} cells), one process per size:\n")
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        et = _fit(df["cell_days"], df["wall_s"])
        em = _fit(df["cell_days"], df["peak_rss_GB"])
        span = df["cell_days"].max() / df["cell_days"].min()
        print(f"\nsize span {span:.0f}x; fitted exponent of time {et:.2f} (goal <= 1.05), of peak memory {em:.2f} (goal <= 0.1)")
        print(f"peak RSS ratio largest / smallest size: {df['peak_rss_GB'].iloc[-1] / df['peak_rss_GB'].iloc[0]:.2f}")
        if "baseline_peak_rss_GB" in df:
            b = df.dropna(subset=["baseline_peak_rss_GB"])
            print("baseline (pangeo-forge StoreToZarr on the DirectRunner) / regions writer, same sizes, same run: "
                  + ", ".join(f"{int(r.days)} d: memory {r.baseline_peak_rss_GB / r.peak_rss_GB:.2f}x, "
                              f"time {r.baseline_wall_s / r.wall_s:.2f}x" for r in b.itertuples()))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
