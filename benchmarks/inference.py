"""Inference benchmark: bare model vs `predict` (zarr -> zarr), fp32 vs bf16, memory vs years, China projection.

Needs a store (``ftcloud ingest``) and a model folder (``ftcloud train``); by default it uses
``ftcloud-out/store`` and ``ftcloud-out/models`` written by ``ftcloud run``.

    python benchmarks/inference.py [--store DIR] [--model DIR] [--days 365] [--skip-rss]

All figures come from the same run, so ratios are robust to a noisy machine. On a machine
with a CUDA GPU the same script runs unchanged and reports the GPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CHINA = (404, 657)
CHINA_PIXEL_DAYS = CHINA[0] * CHINA[1] * 14976 * 2


def _best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def bare_model(model_dir, X, plan, device, dtype=None, fmt=None):
    """Pixel-days/s of the exported model on in-memory tensors, the same tiles/batches predict uses."""
    import torch

    from ftcloud.inference import cached_model, run_tiles

    model, _ = cached_model(model_dir, "AM", fmt or plan.fmt)
    model = model.to(device)
    torch.set_num_threads(os.cpu_count())  # the bare model gets every core (predict's tasks set their own)
    h = plan.halo
    xp = np.pad(X, ((0, 0), (0, 0), (0, 0), (h, h), (h, h)), constant_values=np.nan)

    def go():
        if dtype is None:
            return run_tiles(model, device, xp, plan.tile, h, plan.batch_days)
        with torch.autocast(device.type, dtype=dtype):
            return run_tiles(model, device, xp, plan.tile, h, plan.batch_days)

    go()  # warm-up
    t = _best(go, 3)
    return X.shape[0] * X.shape[3] * X.shape[4] / t, go()[0]


def rss_of_predict(store, model_dir, start, end, work) -> float:
    """Peak RSS (MB) of a fresh process predicting [start, end] for one pass."""
    out = os.path.join(work, f"rss_{start}_{end}.zarr")
    code = (
        "import resource, sys; from ftcloud.inference import predict, InferencePlan;"
        f"predict({store!r}, {model_dir!r}, {out!r}, start={start!r}, end={end!r}, passes=['AM'], progress=False);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shutil.rmtree(out, ignore_errors=True)
    return int(r.stdout.strip().splitlines()[-1]) / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="ftcloud-out/store")
    ap.add_argument("--model", default="ftcloud-out/models")
    ap.add_argument("--days", type=int, default=365, help="days for the throughput comparison")
    ap.add_argument("--skip-rss", action="store_true", help="skip the 10- vs 20-year memory runs")
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from ftcloud.inference import InferencePlan, _device, predict
    from ftcloud.io.stores import open_group
    from ftcloud.model.data import open_inputs, stack_inputs
    from ftcloud.model.export import read_card

    device = _device()
    print(
        f"device: {device} "
        f"({torch.cuda.get_device_name(0) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}), "
        f"torch {torch.__version__}"
    )
    era = open_group(args.store, "predictors/era5land")
    times = pd.DatetimeIndex(era["time"].values)
    sel = times[-args.days :]
    pred, statics = open_inputs(args.store, "AM")
    X = stack_inputs(pred.sel(time=sel).load(), statics.load())
    card = read_card(args.model, "AM")
    plan = InferencePlan().resolve(X.shape[-2:], card["halo"])
    work = tempfile.mkdtemp(prefix="ftcloud-bench-inf-")
    try:
        out = os.path.join(work, "p.zarr")

        def run_predict():
            shutil.rmtree(out, ignore_errors=True)
            predict(
                args.store,
                args.model,
                out,
                start=str(sel[0].date()),
                end=str(sel[-1].date()),
                passes=["AM"],
                plan=plan,
                progress=False,
            )

        run_predict()  # warm-up (model load, zarr metadata)
        t = _best(run_predict, 3)
        full = X.shape[0] * X.shape[3] * X.shape[4] / t
        bare, ft32 = bare_model(args.model, X, plan, device)  # the plan's format (default: export)
        print(f"bare exported model ({plan.fmt}), in memory : {bare:12,.0f} pixel-days/s")
        print(f"predict zarr -> zarr (same days)       : {full:12,.0f} pixel-days/s")
        print(f"ratio predict / bare                   : {full / bare:.2f}  (goal >= 0.8)")

        bare_ts, _ = bare_model(args.model, X, plan, device, fmt="torchscript")
        bare_pt2, _ = bare_model(args.model, X, plan, device, fmt="export")
        print(
            f"bare TorchScript / torch.export (.pt2) : {bare_ts:12,.0f} / {bare_pt2:,.0f} pixel-days/s "
            f"-> faster: {'export' if bare_pt2 >= bare_ts else 'torchscript'} (plan uses {plan.fmt})"
        )
        bf16, ft16 = bare_model(args.model, X, plan, device, dtype=torch.bfloat16)
        valid = (ft32 != 255) | (ft16 != 255)
        agree = float((ft32[valid] == ft16[valid]).mean())
        print(
            f"bf16 autocast                          : {bf16:12,.0f} pixel-days/s ({bf16 / bare:.2f}x fp32), "
            f"label agreement {100 * agree:.2f} % -> {'bf16 usable' if agree >= 0.995 else 'keep fp32'} (rule: >= "
            "99.5 %)"
        )

        if not args.skip_rss:
            first = times[0]
            r10 = rss_of_predict(
                args.store,
                args.model,
                str(first.date()),
                str((first + pd.DateOffset(years=10) - pd.Timedelta(days=1)).date()),
                work,
            )
            r20 = rss_of_predict(
                args.store,
                args.model,
                str(first.date()),
                str((first + pd.DateOffset(years=20) - pd.Timedelta(days=1)).date()),
                work,
            )
            print(
                f"peak RSS predict 10 years / 20 years   : {r10:.0f} MB / {r20:.0f} MB, ratio {r20 / r10:.2f} (goal "
                "<= 1.2)"
            )
        hours = CHINA_PIXEL_DAYS / full / 3600
        print(
            f"projected China ({CHINA[1]} x {CHINA[0]}, 41 years, AM+PM) on this machine: {hours:.1f} h "
            f"({CHINA_PIXEL_DAYS:,} pixel-days at {full:,.0f} /s)"
        )
        print(
            json.dumps(
                {
                    "bare": bare,
                    "bare_torchscript": bare_ts,
                    "bare_pt2": bare_pt2,
                    "predict": full,
                    "ratio": full / bare,
                    "bf16": bf16,
                    "bf16_agreement": agree,
                    "device": str(device),
                    "china_hours": hours,
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
