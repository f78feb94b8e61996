"""How time and peak memory of ingest, a training epoch and prediction grow with the size of the work (issue 10).

Each stage at each size is one process (``ftcloud ingest``; ``ftcloud train --epochs 1`` of the
AM pass with every day but the last ~20 % a training day, which also exports the model and
scores the last days; ``ftcloud predict --pass AM``) run under ``/usr/bin/time -v`` (peak RSS
of the whole process, wall time) over the same twin folder with ``--start/--end``: the sizes
differ only in the number of days. Prints per stage and size: days, cells x days, bytes
written, wall time, throughput (cell-days/s), peak RSS, and the fitted exponents of time and of
memory against cells x days (log-log least squares). Goals: time exponent <= 1.05, memory
exponent <= 0.1. At the three smallest sizes the baseline writer (pangeo-forge StoreToZarr,
float32) runs too, for ratios measured in the same run.

    python benchmarks/scaling.py                         # demo window, 1, 2, 4, 8, 16 years (makes its own twin)
    python benchmarks/scaling.py --source TWIN_DIR       # an existing twin folder covering the years
    python benchmarks/scaling.py --quick                 # tiny window, 1, 2, 4, 16 months (a test runs this)

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


def _print_exponents(groups, width: int = 19) -> None:
    """One line per (stage, rows): the fitted exponents of wall time and of peak RSS against cell-days."""
    for stage, g in groups:
        et, em = _fit(g["cell_days"], g["wall_s"]), _fit(g["cell_days"], g["peak_rss_GB"])
        print(
            f"{stage:{width}s} size span {g['cell_days'].max() / g['cell_days'].min():4.0f}x; "
            f"fitted exponent of time {et:5.2f} (goal <= 1.05), of peak memory {em:5.2f} (goal <= 0.1); "
            f"peak RSS largest / smallest {g['peak_rss_GB'].max() / g['peak_rss_GB'].min():.2f}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=None, help="twin folder covering the periods (default: generate one)")
    ap.add_argument("--region", default=None)
    ap.add_argument("--quick", action="store_true", help="tiny window, months instead of years (about a minute)")
    ap.add_argument("--sources", default="era5land,smap_e_ft,esdr_ft,statics")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument(
        "--china-month",
        default=None,
        metavar="CHINA_TWIN",
        help="also measure January 2016 of China (265,428 cells) from this twin folder "
        "(ftcloud synth --region china --start 2016-01-01 --end 2016-01-31 --no-insitu --no-tb)",
    )
    ap.add_argument(
        "--stages",
        default="ingest,train,predict",
        help="stages measured after ingest: train (one AM epoch), predict (AM); default both",
    )
    ap.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the baseline (pangeo-forge StoreToZarr writer) at the two smallest sizes",
    )
    args = ap.parse_args(argv)

    from ftcloud.core.grid import region_window

    region = args.region or ("tiny" if args.quick else "demo")
    if args.quick:
        end = pd.Timestamp("2018-12-31")
        periods = [(end - pd.DateOffset(months=m) + pd.Timedelta(days=1), end) for m in (1, 2, 4, 16)]
    else:
        # within the twin's SMAP period (2015-04-01 ..), so that every size also trains on its days:
        # 3 months .. 4 years, a 16x span (48x with --china-month)
        end = pd.Timestamp("2020-12-31")
        periods = [(end - pd.DateOffset(months=m) + pd.Timedelta(days=1), end) for m in (3, 6, 12, 24, 48)]
    work = tempfile.mkdtemp(prefix="ftcloud-scaling-")
    exe = [sys.executable, "-m", "ftcloud.cli"]
    try:
        src = args.source
        if src is None:
            src = os.path.join(work, "src")
            first = min(a for a, _ in periods)
            print(f"generating the {region} twin {first:%Y-%m-%d} .. {end:%Y-%m-%d} ...", flush=True)
            subprocess.run(
                [
                    *exe,
                    "-q",
                    "synth",
                    "--region",
                    region,
                    "--start",
                    f"{first:%Y-%m-%d}",
                    "--end",
                    f"{end:%Y-%m-%d}",
                    "--out",
                    src,
                    "--targets-start",
                    f"{first:%Y-%m-%d}",
                    "--no-insitu",
                    "--no-tb",
                ],
                check=True,
            )
        ncell = int(np.prod(region_window(region).shape))
        from ftcloud.workflows.ingest import twin_defaults, twin_parameters

        ts0 = pd.Timestamp(twin_defaults(twin_parameters(src)).get("targets_start") or min(a for a, _ in periods))
        stages = [x for x in args.stages.split(",") if x]
        rows = []
        runs = [(region, src, ncell, a, b, ts0) for a, b in periods]
        if args.china_month:
            runs.append(
                (
                    "china",
                    args.china_month,
                    int(np.prod(region_window("china").shape)),
                    pd.Timestamp("2016-01-01"),
                    pd.Timestamp("2016-01-31"),
                    pd.Timestamp("2016-01-01"),
                )
            )
        for region, src, ncell, a, b, ts0 in runs:
            days = (b - a).days + 1
            store = os.path.join(work, f"store_{a:%Y%m%d}")
            wall, rss = _timed(
                [
                    *exe,
                    "-q",
                    "ingest",
                    "--source",
                    src,
                    "--store",
                    store,
                    "--region",
                    region,
                    "--start",
                    f"{a:%Y-%m-%d}",
                    "--end",
                    f"{b:%Y-%m-%d}",
                    "--targets-start",
                    f"{max(a, ts0):%Y-%m-%d}",
                    "--sources",
                    args.sources,
                ]
            )
            row = {
                "stage": "ingest",
                "region": region,
                "days": days,
                "cell_days": ncell * days,
                "MB_written": _tree_size(store) / 1e6,
                "wall_s": wall,
                "cell_days_per_s": ncell * days / wall,
                "peak_rss_GB": rss,
            }
            if not args.no_baseline and len([r for r in rows if r["stage"] == "ingest"]) < 3:
                bstore = store + "_pf"
                bw, brss = _timed(
                    [
                        *exe,
                        "-q",
                        "ingest",
                        "--source",
                        src,
                        "--store",
                        bstore,
                        "--region",
                        region,
                        "--start",
                        f"{a:%Y-%m-%d}",
                        "--end",
                        f"{b:%Y-%m-%d}",
                        "--targets-start",
                        f"{max(a, ts0):%Y-%m-%d}",
                        "--sources",
                        args.sources,
                        "--writer",
                        "pangeo-forge",
                    ]
                )
                row["baseline_wall_s"], row["baseline_peak_rss_GB"] = bw, brss
                row["baseline_MB_written"] = _tree_size(bstore) / 1e6
                shutil.rmtree(bstore, ignore_errors=True)
            rows.append(row)
            print(
                f"  {days:6d} days: ingest {wall:7.1f} s, peak RSS {rss:5.2f} GB, {row['MB_written']:.1f} MB"
                + (
                    f" (baseline writer: {row['baseline_wall_s']:.1f} s, {row['baseline_peak_rss_GB']:.2f} GB, "
                    f"{row['baseline_MB_written']:.1f} MB)"
                    if "baseline_wall_s" in row
                    else ""
                ),
                flush=True,
            )
            models = os.path.join(work, f"models_{a:%Y%m%d}")
            if "train" in stages:
                # one epoch of the AM pass: every day but the last ~20 % is a training day
                nt = max(3, days // 10)
                t_end = b - pd.Timedelta(days=2 * nt)
                splits = (
                    f"train={a:%Y-%m-%d}:{t_end:%Y-%m-%d};val={t_end + pd.Timedelta(days=1):%Y-%m-%d}:"
                    f"{b - pd.Timedelta(days=nt):%Y-%m-%d};test={b - pd.Timedelta(days=nt - 1):%Y-%m-%d}:{b:%Y-%m-%d}"
                )
                w2, r2 = _timed(
                    [
                        *exe,
                        "-q",
                        "train",
                        "--store",
                        store,
                        "--pass",
                        "AM",
                        "--out",
                        models,
                        "--epochs",
                        "1",
                        "--patience",
                        "1",
                        "--splits",
                        splits,
                    ]
                )
                tdays = (t_end - a).days + 1
                rows.append(
                    {
                        "stage": "train epoch",
                        "region": region,
                        "days": tdays,
                        "cell_days": ncell * tdays,
                        "wall_s": w2,
                        "cell_days_per_s": ncell * tdays / w2,
                        "peak_rss_GB": r2,
                    }
                )
                print(
                    f"  {tdays:6d} training days: one epoch + export + test {w2:7.1f} s, peak RSS {r2:5.2f} GB",
                    flush=True,
                )
            if "predict" in stages and os.path.isdir(models):
                w3, r3 = _timed(
                    [
                        *exe,
                        "-q",
                        "predict",
                        "--store",
                        store,
                        "--model",
                        models,
                        "--pass",
                        "AM",
                        "--out",
                        os.path.join(work, f"product_{a:%Y%m%d}.zarr"),
                    ]
                )
                rows.append(
                    {
                        "stage": "predict",
                        "region": region,
                        "days": days,
                        "cell_days": ncell * days,
                        "wall_s": w3,
                        "cell_days_per_s": ncell * days / w3,
                        "peak_rss_GB": r3,
                    }
                )
                print(f"  {days:6d} days: predict (AM) {w3:7.1f} s, peak RSS {r3:5.2f} GB", flush=True)
                shutil.rmtree(os.path.join(work, f"product_{a:%Y%m%d}.zarr"), ignore_errors=True)
            shutil.rmtree(models, ignore_errors=True)
            shutil.rmtree(store, ignore_errors=True)
        df = pd.DataFrame(rows)
        print(f"\none process per stage and size (ingest: {args.sources}); sizes in cells x days:\n")
        cols = [
            c
            for c in (
                "stage",
                "region",
                "days",
                "cell_days",
                "MB_written",
                "wall_s",
                "cell_days_per_s",
                "peak_rss_GB",
                "baseline_wall_s",
                "baseline_peak_rss_GB",
                "baseline_MB_written",
            )
            if c in df
        ]
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep=""))
        print()
        groups = [(stage, g) for stage, g in df.groupby("stage", sort=False)]
        if df["region"].nunique() > 1:  # the period alone (one region), then every size together
            groups = [
                (f"{stage} ({g['region'].iloc[0]})", g[g["region"] == g["region"].iloc[0]]) for stage, g in groups
            ] + groups
        _print_exponents(groups)
        ing = df[df.stage == "ingest"]
        if "baseline_peak_rss_GB" in ing:
            bl = ing.dropna(subset=["baseline_peak_rss_GB"])
            print(
                "baseline (pangeo-forge StoreToZarr on the DirectRunner, float32) / regions writer (packed), same "
                "sizes, same run: "
                + ", ".join(
                    f"{int(r.days)} d: memory {r.baseline_peak_rss_GB / r.peak_rss_GB:.2f}x, "
                    f"time {r.baseline_wall_s / r.wall_s:.2f}x, bytes {r.baseline_MB_written / r.MB_written:.2f}x"
                    for r in bl.itertuples()
                )
            )
        last = ing.iloc[-1]
        print(
            f"store size: {last.MB_written * 1e6 / (ncell * last.days / 365.25) / 1e3:.2f} kB per cell-year "
            f"({args.sources}, {int(last.days)} days)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
