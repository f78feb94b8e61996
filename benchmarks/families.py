"""Retrieval families benchmark: pixel-days per second of each family's prediction (store zarr -> product zarr)
beside the ConvLSTM's `predict`, on the same store in the same run (ratios robust to a noisy machine).

    python benchmarks/families.py                          # builds a tiny twin with TB (2016-2017) and a model
    python benchmarks/families.py --store OUT/store --models OUT/models   # a run made with synth.tb: true

Fitting is timed apart (it runs once per product). The ConvLSTM's model in the default set-up has fixed random
weights (the speed does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def _setup(root: str):
    from ftcloud.synth import generate
    from ftcloud.workflows.ingest import ingest

    generate(
        "tiny",
        "2016-01-01",
        "2017-12-31",
        os.path.join(root, "src"),
        seed=0,
        insitu=False,
        targets_start="2016-01-01",
        progress=False,
        tb=True,
    )
    store = os.path.join(root, "store")
    ingest(os.path.join(root, "src"), store, progress=False)
    return store, _model(store, os.path.join(root, "models"))


def _model(store: str, out: str) -> str:
    from ftcloud.testing.factories import random_model

    return random_model(store, out, hidden=(12,), seed=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--models", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import dask

    from ftcloud.inference import InferencePlan, predict
    from ftcloud.layout import Store
    from ftcloud.workflows.retrieve import _family, methods_for, retrieval_inputs

    tmp = tempfile.mkdtemp(prefix="ftcloud-bench-families-")
    store, models = args.store, args.models
    if store is None:
        t0 = time.perf_counter()
        store, models = _setup(tmp)
        print(f"set-up (tiny twin with TB 2016-2017, ingest, model): {time.perf_counter() - t0:.0f} s")
    st = Store(store)
    rows = []
    with dask.config.set(scheduler="threads"):
        for m in methods_for(st):
            ds, target = retrieval_inputs(st, m)
            t0 = time.perf_counter()
            fam = _family(m)(**({"seed": 0} if m in ("dfa", "ert", "autoencoder") else {}))
            fam.fit(ds.load() if m in ("dfa", "ert") else ds, None if target is None else target.load())
            fit_s = time.perf_counter() - t0
            n = ds.sizes["pass"] * ds.sizes["time"] * ds.sizes["y"] * ds.sizes["x"]
            best = np.inf
            for i in range(args.repeat):
                out = os.path.join(tmp, f"{m}_{i}.zarr")
                t0 = time.perf_counter()
                fam.predict(ds).to_dataset(name="ft").to_zarr(out, mode="w")
                best = min(best, time.perf_counter() - t0)
            rows.append((fam.product, n, fit_s, best))
    if models is not None:
        best = np.inf
        for i in range(args.repeat):
            out = os.path.join(tmp, f"convlstm_{i}.zarr")
            t0 = time.perf_counter()
            res = predict(store, models, out, plan=InferencePlan(), progress=False)
            best = min(best, time.perf_counter() - t0)
        n = 2 * int(res.get("days", 0)) * int(np.prod(Store(store).open("statics")["elevation"].shape))
        rows.append(("ConvLSTM_FT (predict)", n, float("nan"), best))
    base = rows[-1][1] / rows[-1][3] if models is not None else None
    print(f"{'product':<24} {'pixel-days':>12} {'fit s':>7} {'predict s':>10} {'pixel-days/s':>14} {'x ConvLSTM':>11}")
    for name, n, fit_s, t in rows:
        rate = n / t
        ratio = f"{rate / base:11.1f}" if base else " " * 11
        print(f"{name:<24} {n:>12,} {fit_s:>7.1f} {t:>10.2f} {rate:>14,.0f} {ratio}")


if __name__ == "__main__":
    main()
