"""Ingest as a zarr skeleton plus region writes (issue 10): the plan, resume by region, and the
same recipes on Beam's DaskRunner against a dask cluster with two worker processes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import xarray as xr

from ftcloud.io.stores import store_status
from ftcloud.core.grid import region_window
from ftcloud.sources import pipelines, regions
from ftcloud.synth import generate

START, END = "2017-12-20", "2018-03-10"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    out = tmp_path_factory.mktemp("regions") / "src"
    generate("tiny", START, END, out, seed=0, targets_start=START, progress=False)
    return out


def _chunks(root: Path) -> dict:
    """SHA-256 of every file of a store, and the attributes of every group minus its history stamp."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.name in (".zattrs", ".zmetadata"):
            doc = json.loads(p.read_text())
            if p.name == ".zattrs":
                doc.pop("history", None)
            else:
                doc = {
                    k: {kk: vv for kk, vv in v.items() if kk != "history"} if k.endswith(".zattrs") else v
                    for k, v in doc["metadata"].items()
                }
            out[rel] = json.dumps(doc, sort_keys=True)
        elif p.name == ".ftcloud-status.json":  # the status record, less its time stamp
            doc = json.loads(p.read_text())
            doc.pop("written")
            out[rel] = json.dumps(doc, sort_keys=True)
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_work_items_cover_the_period_once(src):
    win = region_window("tiny")
    r = pipelines.era5land_recipe(str(src), win, START, END, {"time": 32, "pass": 1, "y": 128, "x": 128})
    items = regions.work_items(r)
    assert [(it.start, it.stop) for it in items] == [(0, 32), (32, 64), (64, 81)]  # 81 days in 32-day chunks
    # every item needs exactly the monthly files that hold its days
    months = [Path(u).name for u in items[0].urls]
    assert months == ["era5land_201712.nc", "era5land_201801.nc"]
    assert [Path(u).name for u in items[2].urls] == ["era5land_201802.nc", "era5land_201803.nc"]
    assert regions.plan_fingerprint(r, items) == regions.plan_fingerprint(r, regions.work_items(r))
    r2 = pipelines.era5land_recipe(str(src), win, START, END, {"time": 16, "pass": 1, "y": 128, "x": 128})
    assert regions.plan_fingerprint(r2, regions.work_items(r2)) != regions.plan_fingerprint(r, items)


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_tiles_of_a_region_write_the_same_bytes_as_one_window(src, tmp_path):
    """ERA5-Land work items are tiles x time chunks: each opens only its tile's source box and
    days, and the store holds exactly the values the whole-window items write."""
    win = region_window("tiny")  # 10 x 13 cells
    chunks = {"time": 32, "pass": 1, "y": 4, "x": 4}
    whole = pipelines.era5land_recipe(str(src), win, START, END, chunks, tile=None)
    tiled = pipelines.era5land_recipe(str(src), win, START, END, chunks, tile=8)
    items = regions.work_items(tiled)
    assert len(items) == 3 * 4  # 3 time chunks x (2 x 2 tiles)
    assert {(it.rows, it.cols) for it in items} == {
        ((0, 8), (0, 8)),
        ((0, 8), (8, 13)),
        ((8, 10), (0, 8)),
        ((8, 10), (8, 13)),
    }
    # a tile that is not a multiple of the chunks becomes the largest multiple below it (4 here):
    # items still cover whole chunks only
    odd = regions.work_items(pipelines.era5land_recipe(str(src), win, START, END, chunks, tile=6))
    assert {(it.rows, it.cols) for it in odd} == {
        ((r, min(r + 4, 10)), (c, min(c + 4, 13))) for r in (0, 4, 8) for c in (0, 4, 8, 12)
    }
    regions.write_recipe(whole, str(tmp_path / "whole"))
    regions.write_recipe(tiled, str(tmp_path / "tiled"))
    a, b = _chunks(tmp_path / "whole"), _chunks(tmp_path / "tiled")
    data = [k for k in a if not k.startswith((".", regions.MARKERS))]
    assert any(k.startswith("stl1/") for k in data)
    assert {k: a[k] for k in data} == {k: b[k] for k in data}


def test_interrupted_ingest_resumes_by_region(src, tmp_path, monkeypatch):
    """A failure after two regions leaves an incomplete group; the next ingest writes only the
    regions that are not done and ends with the same bytes as an uninterrupted ingest."""
    from ftcloud.errors import FTCloudError
    from ftcloud.workflows.ingest import ingest

    clean = tmp_path / "clean"
    ingest(str(src), str(clean), sources=["era5land"], progress=False)

    real = regions.write_item
    calls = []

    def failing(recipe, item, *a, **k):
        if len(calls) == 2:
            raise FTCloudError("injected failure after two regions")
        calls.append(item.index)
        return real(recipe, item, *a, **k)

    monkeypatch.setattr(regions, "write_item", failing)
    store = tmp_path / "store"
    with pytest.raises(FTCloudError, match="injected"):
        ingest(str(src), str(store), sources=["era5land"], progress=False)
    # nothing at the group's name; the partial copy is staged beside it, marked incomplete
    assert store_status(str(store / "predictors" / "era5land")) is None
    staged = store / "predictors" / ".era5land.ftcloud-new"
    assert store_status(str(staged)) == "incomplete"
    assert len(list((staged / regions.MARKERS).iterdir())) == 2

    resumed = []
    monkeypatch.setattr(
        regions,
        "write_item",
        lambda recipe, item, *a, **k: (resumed.append(item.index), real(recipe, item, *a, **k))[1],
    )
    res = ingest(str(src), str(store), sources=["era5land"], progress=False)
    assert sorted(resumed) == [2] and res.groups["era5land"]["resumed_items"] == 2
    assert store_status(str(store / "predictors" / "era5land")) == "complete"
    assert not (store / "predictors" / "era5land" / regions.MARKERS).exists() and not staged.exists()
    assert _chunks(store) == _chunks(clean)


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_dask_runner_on_two_worker_processes_equals_the_local_run(src, tmp_path):
    from distributed import Client, LocalCluster

    from ftcloud.workflows.ingest import ingest

    local = tmp_path / "local"
    ingest(str(src), str(local), progress=False)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cl,
        Client(cl) as client,
    ):
        ingest(str(src), str(tmp_path / "dask"), progress=False, dask_address=cl.scheduler_address)
        # the work items ran as tasks of this scheduler, on its two worker processes
        seen = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.transition_log))
        assert seen > 0
        assert len(client.scheduler_info()["workers"]) == 2
        # the same items as plain dask tasks of a client (how `ftcloud run` ingests on a gateway cluster)
        ingest(str(src), str(tmp_path / "tasks"), progress=False, client=client)
        ran = client.run_on_scheduler(
            lambda dask_scheduler: {
                str(t[0]) for t in dask_scheduler.transition_log if str(t[0]).startswith("ingest-") and t[2] == "memory"
            }
        )
        assert {k.split("-")[1] for k in ran} >= {"era5land", "smap_e_ft", "esdr_ft"}, ran
    assert _chunks(tmp_path / "tasks") == _chunks(local)
    assert _chunks(tmp_path / "dask") == _chunks(local)
    # Beam's DaskRunner leaves no default client behind: plain dask work still runs afterwards
    import dask.array as dsa

    assert float(dsa.ones(4, chunks=2).sum().compute()) == 4.0
    ds = xr.open_zarr(tmp_path / "dask" / "predictors" / "era5land")
    assert ds.sizes["time"] == 81 and store_status(str(tmp_path / "dask" / "predictors" / "era5land")) == "complete"


@pytest.mark.slow
def test_scaling_benchmark_quick_runs():
    """benchmarks/scaling.py --quick runs end to end and prints its fitted exponents (the figures
    themselves are measured by running the benchmark, not asserted here)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "scaling.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "fitted exponent of time" in p.stdout and "peak RSS" in p.stdout
