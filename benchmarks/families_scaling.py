"""How time and peak memory of the TB ingest and of each retrieval family (fit + predict) grow with the period and
the region (issue 14): memory must stay at the work item, whatever the size.

Each stage at each size is one process under ``/usr/bin/time -v`` (peak RSS of the whole process, wall time):
``ftcloud ingest --sources tb_smap,tb_multifreq`` and ``ftcloud retrieve --method M --fit-start A --fit-end B``,
where the family learns on the whole period (so the fit period grows with the size too). The sizes: the demo
window over 1, 2 and 4 years, and a box of four demo windows (2 x 2) over 1 year. Prints one row per stage and
size, then per stage the fitted exponents of time and memory against cell-days (log-log least squares; goals:
time <= 1.05, memory <= 0.1) and the ratio of the largest to the smallest peak RSS.

    python benchmarks/families_scaling.py            # makes its twin (about 25 minutes on two cores)
    python benchmarks/families_scaling.py --quick    # tiny window, 1 and 2 years (a few minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaling import _print_exponents, _timed  # noqa: E402

METHODS = ("npr", "msta", "dia", "dfa", "ert", "autoencoder")
END = pd.Timestamp("2020-12-31")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny window, 1 and 2 years")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    from ftcloud.core.grid import parse_bbox, region_window

    if args.quick:
        region, big, years = "tiny", "101.0,103.4,33.5,35.1", (1, 2)
    else:
        region, big, years = "demo", "99.0,108.0,33.0,39.0", (1, 2, 4)
    methods = [m for m in args.methods.split(",") if m]
    exe = [sys.executable, "-m", "ftcloud.cli", "-q"]
    work = tempfile.mkdtemp(prefix="ftcloud-families-scaling-")
    rows = []
    try:
        runs = []
        for reg, ys in ((region, years), (big, (1,))):
            src = os.path.join(work, f"src_{len(runs)}")
            a0 = END - pd.DateOffset(years=max(ys)) + pd.Timedelta(days=1)
            print(f"generating the {reg} twin with TB {a0:%Y-%m-%d} .. {END:%Y-%m-%d} ...", flush=True)
            subprocess.run(
                [*exe, "synth", "--region", reg, "--start", f"{a0:%Y-%m-%d}", "--end", f"{END:%Y-%m-%d}"]
                + ["--out", src, "--targets-start", f"{a0:%Y-%m-%d}", "--no-insitu", "--tb"],
                check=True,
            )
            win = region_window(parse_bbox(reg) if "," in reg else reg)
            for y in ys:
                runs.append(
                    (reg, win.shape[0] * win.shape[1], src, END - pd.DateOffset(years=y) + pd.Timedelta(days=1))
                )
        for reg, ncell, src, a in runs:
            days = (END - a).days + 1
            label = "demo x4" if reg == big else reg
            store = os.path.join(work, "store")
            span = ["--start", f"{a:%Y-%m-%d}", "--end", f"{END:%Y-%m-%d}", "--targets-start", f"{a:%Y-%m-%d}"]
            base = [*exe, "ingest", "--source", src, "--store", store, "--region", reg, *span]
            subprocess.run([*base, "--sources", "era5land,smap_e_ft,statics"], check=True)
            wall, rss = _timed([*base, "--sources", "tb_smap,tb_multifreq"])
            rows.append(
                dict(stage="ingest TB", region=label, days=days, cell_days=ncell * days, wall_s=wall, peak_rss_GB=rss)
            )
            print(f"  {label} {days:5d} days: ingest TB {wall:6.1f} s, {rss:5.2f} GB", flush=True)
            for m in methods:
                out = os.path.join(work, f"{m}.zarr")
                wall, rss = _timed(
                    [*exe, "retrieve", "--method", m, "--store", store, "--out", out]
                    + ["--fit-start", f"{a:%Y-%m-%d}", "--fit-end", f"{END:%Y-%m-%d}"]
                )
                rows.append(
                    dict(stage=m, region=label, days=days, cell_days=ncell * days, wall_s=wall, peak_rss_GB=rss)
                )
                print(f"  {label} {days:5d} days: {m:11s} {wall:6.1f} s, {rss:5.2f} GB", flush=True)
                shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(store, ignore_errors=True)
        df = pd.DataFrame(rows)
        df["cell_days_per_s"] = df["cell_days"] / df["wall_s"]
        print("\none process per stage and size; a family fits on the whole period and predicts every day:\n")
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print()
        _print_exponents(df.groupby("stage", sort=False), width=12)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
