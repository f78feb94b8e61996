"""A run's ingest plan without its data: work items, memory per item, store size (issue 10).

``ftcloud run --config CONFIG --dry-run`` (and :func:`dry_run`) builds the recipes of the
config's region and period from the file patterns alone (nothing is opened or listed), counts
their work items, and sizes them with the per-item costs measured on this project's runs (the
constants below; README "China 2016, stage by stage"). It then checks the cluster the config
names: concurrent items per worker x memory per item must fit the worker's memory.

Memory per item is modelled as ``BASE + PER_CELL_DAY x (cells x days of the item)`` for the
ERA5-Land tiles (they dominate) and the same form for the FT targets and the brightness
temperatures; store bytes per cell-day per group come from the written stores. These are
estimates from one machine and one region: the dry run is a sanity check of a config (does an item
fit a worker, how big is the store), not a promise. The statics and station groups are single small items.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: process baseline of one ingest (Python, numpy, xarray, Beam imports), GB: the demo's 1715-cell
#: ERA5-Land items peak at 0.31-0.33 GB whatever the period (benchmarks/scaling.py)
BASE_GB = 0.30
#: peak RSS above the baseline per cell-day of one work item's output, GB, measured with
#: ``/usr/bin/time -v ftcloud ingest`` on China 2016 (README "China 2016, stage by stage"):
#: ERA5-Land 404 x 512-cell tiles x 32 days peak at 2.21 GB -> 2.9e-7; the FT targets (365-day
#: items of the whole window, with ESDR and statics) at 0.91 GB -> 6.3e-9. IMERG is not measured
#: (no IMERG granules in that run): assumed half the ERA5-Land figure (one variable instead of four,
#: two half-hours per step).
#: The TB groups, measured with ``/usr/bin/time -v ftcloud ingest --sources tb_smap`` (and
#: ``tb_multifreq``) on twins of two boxes of China in January 2016 (78 x 107 and 194 x 321 cells,
#: 31 days; peaks 0.31 / 0.38 GB and 0.37 / 0.70 GB): the slope between the two. ``tb_smap`` items are
#: the whole window x one time chunk; ``tb_multifreq`` items a 256-cell tile x one time chunk (its 24
#: channel-passes). Their China January-February 2016 ingest peaked at 0.89 GB (README); these give 0.85.
PER_CELL_DAY_GB = {
    "era5land": 2.9e-7,
    "imerg": 1.5e-7,
    "smap_e_ft": 6.3e-9,
    "esdr_ft": 6.3e-9,
    "tb_smap": 4.2e-8,
    "tb_multifreq": 2.6e-7,
}
#: store bytes per cell-day as written for China 2016 (packed predictors; uint8 targets); IMERG
#: assumed (float32, not measured); the TB groups as written for the 194 x 321-cell box above
BYTES_PER_CELL_DAY = {
    "era5land": 14.5,
    "imerg": 4.0,
    "smap_e_ft": 0.41,
    "esdr_ft": 0.21,
    "tb_smap": 4.6,
    "tb_multifreq": 10.8,
}
#: the brightness-temperature groups, which only the retrieval families read
TB_SOURCES = ("tb_smap", "tb_multifreq")


@dataclass
class ItemPlan:
    source: str
    inputs: int
    items: int
    days_per_item: int
    cells_per_item: int
    memory_gb: float
    store_gb: float


def dry_run(cfg: dict) -> dict:
    """The ingest plan of a run config (:func:`ftcloud.config.load_config`), sized, no data read."""
    from ftcloud.core.grid import region_window
    from ftcloud.workflows.ingest import plan
    from ftcloud.sources.regions import work_items

    window = region_window(cfg["region"])
    imerg = (cfg.get("imerg") or {}).get("start"), (cfg.get("imerg") or {}).get("end")
    sources = ["era5land", "imerg", "smap_e_ft", "esdr_ft"]
    tb = _tb_plan(cfg)
    if tb:
        sources += list(TB_SOURCES)
    recipes = plan(
        cfg.get("source") or "dry-run://sources",
        window,
        cfg["start"],
        cfg["end"],
        cfg["targets_start"],
        cfg["chunks"],
        sources,
        None,
        imerg if imerg[0] else None,
        probe=False,
    )
    rows = []
    for r in recipes:
        items = work_items(r)
        it = max(items, key=lambda i: (i.stop - i.start) * _cells(i, window))
        days = it.stop - it.start
        cells = _cells(it, window)
        total_days = len(r.index)
        rows.append(
            ItemPlan(
                r.name,
                len(r.urls),
                len(items),
                days,
                cells,
                BASE_GB + PER_CELL_DAY_GB.get(r.name, 2.3e-7) * cells * days,
                BYTES_PER_CELL_DAY.get(r.name, 19.0) * window.shape[0] * window.shape[1] * total_days / 1e9,
            )
        )
    cl = cfg.get("cluster") or {}
    ing = cfg.get("ingest") or {}
    on_cluster = str(ing.get("runner") or "DirectRunner") == "cluster"
    workers = int((cl.get("workers") if on_cluster else 1) or 1)
    threads = int((cl.get("threads_per_worker") if on_cluster else ing.get("workers")) or 1)
    mem = cl.get("worker_memory_gib") if on_cluster else None
    need = max(p.memory_gb for p in rows) * threads if rows else 0.0
    return {
        "region": cfg["region"],
        "shape": list(window.shape),
        "period": [cfg["start"], cfg["end"]],
        "items": rows,
        "runner": "cluster" if on_cluster else str(ing.get("runner") or "DirectRunner"),
        "workers": workers,
        "items_per_worker": threads,
        "worker_memory_gib": mem,
        "memory_needed_per_worker_gb": need,
        "fits": (mem is None) or need <= 0.85 * float(mem) * 1.0737,
        "store_gb": sum(p.store_gb for p in rows),
        "tb": tb,
    }


def _tb_plan(cfg: dict) -> str | None:
    """Whether the run would ingest the TB groups, and why: ``"twin"`` when the twin makes them (``synth: tb``
    on), ``"assumed"`` for a real source (ingest takes them wherever it has them; the dry run lists no files),
    None when the twin makes none."""
    if cfg.get("source") is None:
        return "twin" if (cfg.get("synth") or {}).get("tb", False) else None
    return "assumed"


def _cells(item, window) -> int:
    if item.rows is None:
        return int(window.shape[0] * window.shape[1])
    return int((item.rows[1] - item.rows[0]) * (item.cols[1] - item.cols[0]))


def format_plan(p: dict) -> str:
    df = pd.DataFrame([vars(r) for r in p["items"]])
    lines = [
        f"ingest plan: {p['region']} ({p['shape'][0]} x {p['shape'][1]} cells), {p['period'][0]} .. {p['period'][1]}, "
        f"runner {p['runner']}"
    ]
    lines.append(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    mem = p["worker_memory_gib"]
    lines.append(
        f"store: {p['store_gb']:.0f} GB in all; largest item needs {max(r.memory_gb for r in p['items']):.2f} GB; "
        f"{p['items_per_worker']} item(s) at a time per worker need {p['memory_needed_per_worker_gb']:.1f} GB"
        + (
            f" of {mem} GiB: {'fits' if p['fits'] else 'DOES NOT FIT (fewer threads per worker or more memory)'}"
            if mem
            else ""
        )
    )
    if p.get("tb") == "assumed":
        lines.append(
            "tb_smap and tb_multifreq are sized as if the source holds them (only the retrieval families read them; "
            "ingest takes them wherever the source has them)"
        )
    return "\n".join(lines)
