"""Run every source recipe into one store root: ``ftcloud ingest --source DIR_OR_URL --store URL``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ftcloud.errors import SourceFileError, TimeAxisError, ValidationError, require
from ftcloud.core.grid import GridWindow, region_window
from ftcloud.io.lease import lease
from ftcloud.io.secrets import redact_url
from ftcloud.io.stores import ensure_parent_groups, filesystem, join, mark_complete, open_group, require_bucket
from ftcloud.io.transaction import discard, promote, recover, staging_url
from ftcloud.layout import Store, as_store
from ftcloud.core.metadata import cf_globals, history_stamp, software_versions
from ftcloud.sources import pipelines
from ftcloud.sources.common import daily_index
from ftcloud.sources.regions import clear_markers, work_items, write_recipe

log = logging.getLogger(__name__)

REQUIRED = ("era5land", "smap_e_ft", "esdr_ft", "statics")


@dataclass
class IngestResult:
    store: str
    window: GridWindow
    start: str
    end: str
    groups: dict = field(default_factory=dict)  # name -> {"files", "bytes", "seconds", "group"}

    def summary(self) -> str:
        lines = [
            f"store {self.store}  ({self.window.name}: {self.window.shape[0]} x {self.window.shape[1]} cells, "
            f"{self.start}..{self.end})"
        ]
        for name, g in self.groups.items():
            lines.append(f"  {g['group']:<22} {g['files']:>7} files {g['bytes'] / 1e6:9.1f} MB {g['seconds']:7.1f} s")
        return "\n".join(lines)


def twin_parameters(source: str, storage_options: dict | None = None) -> dict | None:
    """The twin's parameters.json, if ``source`` is a twin output folder."""
    fs, path = filesystem(join(source, "truth", "parameters.json"), storage_options)
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        return json.load(f)


def twin_defaults(params: dict | None) -> dict:
    """Region, period, targets start and IMERG window recorded by the twin (empty if none)."""
    if not params:
        return {}
    period = params.get("period", {})
    region = params.get("region", {})
    return {
        "region": region.get("name") if isinstance(region, dict) else region,
        "start": period.get("start"),
        "end": period.get("end"),
        "targets_start": period.get("targets_start"),
        "imerg": period.get("imerg"),
    }


def _sizes(urls: list[str], storage_options) -> tuple[int, list[str], dict]:
    """Total bytes, missing urls, and url -> "size:stamp" (the stamp: ETag or modification time)."""
    total, missing, stamps = 0, [], {}
    if not urls:
        return 0, missing, stamps
    fs, _ = filesystem(urls[0], storage_options)
    for u in urls:
        p = filesystem(u, storage_options)[1]
        try:
            info = fs.info(p)
        except (FileNotFoundError, OSError):
            missing.append(u)
            continue
        total += int(info.get("size") or 0)
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
        stamps[redact_url(u)] = f"{info.get('size')}:{stamp}"
    return total, missing, stamps


def plan(
    source: str,
    window: GridWindow,
    start,
    end,
    targets_start,
    chunks: dict,
    sources=None,
    storage_options=None,
    imerg: tuple | None = None,
    probe: bool = True,
) -> list[pipelines.SourceRecipe]:
    """The recipes to run, in order; optional sources without files are left out (``probe=False``, the dry
    run: the TB sources are assumed present and nothing is opened)."""
    sources = tuple(sources or pipelines.SOURCES)
    unknown = [n for n in sources if n not in pipelines.REGISTRY]
    if unknown:
        raise ValidationError(
            f"unknown source(s) {', '.join(map(repr, unknown))}; known: {', '.join(pipelines.SOURCES)}"
        )
    request = pipelines.PlanRequest(
        source,
        window,
        start,
        end,
        max(pd.Timestamp(start), pd.Timestamp(targets_start)),
        chunks,
        storage_options,
        imerg,
        probe,
    )
    out = []
    for name in sources:
        recipe = pipelines.REGISTRY[name](request)
        if recipe is not None:
            out.append(recipe)
    return out


def verify_time_axis(root: str, group: str, expected: pd.DatetimeIndex, storage_options=None) -> None:
    """The written time axis of ``root/group`` must be exactly the expected days, each once, in order."""
    ds = open_group(root, group, storage_options, require_complete=False)
    got = pd.DatetimeIndex(ds["time"].values)
    if len(got) != len(expected) or not (got == expected).all():
        extra = got.difference(expected)
        missing = expected.difference(got)
        raise TimeAxisError(
            f"{redact_url(join(root, group))}: time axis does not round-trip: {len(got)} stamps written, "
            f"{len(expected)} expected"
            + (f"; first unexpected {extra[0]}" if len(extra) else "")
            + (f"; first missing {missing[0]}" if len(missing) else "")
        )


def _verify_window(root: str, group: str, window, storage_options=None) -> None:
    """Every gridded group must hold exactly the window's cells, in the window's order."""
    ds = open_group(root, group, storage_options, require_complete=False)
    if "y" not in ds.dims or "x" not in ds.dims:
        return
    if (
        (ds.sizes["y"], ds.sizes["x"]) != tuple(window.shape)
        or not np.allclose(ds["y"].values, window.y)
        or not np.allclose(ds["x"].values, window.x)
    ):
        raise ValidationError(
            f"{redact_url(join(root, group))}: holds {ds.sizes['y']} x {ds.sizes['x']} cells, expected the "
            f"{window.shape[0]} x {window.shape[1]} cells of the window, in order; not marked complete"
        )


def ingest(
    source: str | Store,
    store: str | Store,
    *,
    region: str | GridWindow | None = None,
    start=None,
    end=None,
    targets_start=None,
    sources=None,
    chunks: dict | None = None,
    storage_options: dict | None = None,
    imerg: tuple | None = None,
    runner: str = "DirectRunner",
    workers: int = 1,
    dask_address: str | None = None,
    client=None,
    writer: str = "regions",
    progress: bool = True,
) -> IngestResult:
    """Run the recipes of every source found under ``source`` into groups under ``store``.

    ``source`` and ``store``: a URL (reached with ``storage_options``) or a
    :class:`~ftcloud.layout.Store` that carries its own options (e.g. public sources read
    anonymously into a private bucket).

    Region and period default to the twin's parameters when ``source`` is a twin folder,
    else to the packaged configuration. Each group is written as a skeleton, then region by
    region (:mod:`ftcloud.sources.regions`: memory bounded by one output chunk and the inputs
    it needs), on Beam's DirectRunner or, with ``dask_address`` (a scheduler's ``tcp://``
    address), on Beam's DaskRunner; it is marked complete only after every region was written
    and its time axis was checked against the expected days. An interrupted ingest resumes:
    regions written under the same plan are not written again. ``writer="pangeo-forge"``
    runs the recipes' own ``StoreToZarr`` transform instead (the previous writer: it holds the
    whole rechunk in memory on the DirectRunner; kept as the benchmarks' baseline).
    With ``client`` (a ``distributed.Client``, e.g. the run's dask-gateway cluster) the work
    items run as dask tasks on that cluster instead of through Beam.
    """
    from ftcloud.config import get_options

    require("ingest", feature="ftcloud ingest", load=False)  # Beam, pangeo-forge, cfgrib...: looked up, not imported
    src = as_store(source, storage_options)
    source, source_storage_options = src.url, src.storage_options
    dst = as_store(store, storage_options)
    store, storage_options = dst.url, dst.storage_options
    opts = get_options()
    params = twin_defaults(twin_parameters(source, source_storage_options))
    region = region or params.get("region") or opts["region"]
    start = pd.Timestamp(start or params.get("start") or opts["start"]).strftime("%Y-%m-%d")
    end = pd.Timestamp(end or params.get("end") or opts["end"]).strftime("%Y-%m-%d")
    targets_start = targets_start or params.get("targets_start") or opts["targets_start"]
    if imerg is None and params.get("imerg"):
        imerg = tuple(params["imerg"])
    if pd.Timestamp(end) < pd.Timestamp(start):
        raise ValidationError(f"ingest: end {end} is before start {start}; nothing was written")
    chunks = chunks or opts["chunks"]
    filesystem(store, storage_options)  # an unknown scheme or a credential option: refused before any reading
    window = region_window(region)
    recipes = plan(source, window, start, end, targets_start, chunks, sources, source_storage_options, imerg)

    # pre-flight: every expected file of a required source must exist before anything is written
    sizes, stamps = {}, {}
    for r in recipes:
        urls = r.files if r.files is not None else [u for u in r.urls if "#" not in u]
        nbytes, missing, stamps[r.name] = _sizes(urls, source_storage_options)
        if missing and r.name in REQUIRED + ("imerg", "tb_smap", "tb_multifreq"):  # TB: once the source has them
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise SourceFileError(
                f"{r.name}: source file {redact_url(missing[0])} is missing{more}; nothing was "
                f"written to {redact_url(store)}"
            )
        sizes[r.name] = nbytes

    result = IngestResult(store, window, start, end)
    require_bucket(store, storage_options)
    runner_options = None
    if dask_address:
        runner, runner_options = "DaskRunner", {"dask_client_address": dask_address}
    with lease(store, storage_options, "ingest") as held:
        ensure_parent_groups(store, "x", storage_options)
        for n, r in enumerate(recipes, 1):
            result.groups[r.name] = _ingest_one(
                r,
                n,
                len(recipes),
                source,
                store,
                window,
                start,
                end,
                targets_start,
                imerg,
                storage_options,
                runner,
                workers,
                runner_options,
                client,
                writer,
                progress,
                stamps.get(r.name),
                held,
            )
            result.groups[r.name]["bytes"] = sizes.get(r.name, 0)
    return result


def _ingest_one(
    r,
    n,
    n_recipes,
    source,
    store,
    window,
    start,
    end,
    targets_start,
    imerg,
    storage_options,
    runner,
    workers,
    runner_options,
    client,
    writer,
    progress,
    stamps,
    held,
) -> dict:
    """One recipe into a staging copy of its group, checked, marked complete there, then swapped in
    (:mod:`ftcloud.io.transaction`): a complete group is never destroyed by a failing re-ingest."""
    url = join(store, r.group)
    ensure_parent_groups(store, r.group, storage_options)
    recover(url, storage_options)
    stage = staging_url(url)
    stage_group = stage[len(str(store).rstrip("/")) + 1 :]
    t0 = time.perf_counter()
    items = work_items(r)
    log.info("ingest %s: %d inputs, %d work items -> %s", r.name, len(r.urls), len(items), redact_url(url))
    bar = tqdm(
        total=sum(len(it.urls) for it in items),
        desc=f"ingest {n}/{n_recipes} {r.name}",
        unit="file",
        disable=not progress,
    )
    pipelines.PROGRESS[r.name] = bar.update
    try:
        if writer == "pangeo-forge":
            from ftcloud.sources.common import run_beam

            discard(stage, storage_options)
            run_beam(
                lambda p, r=r: p | r.transform(store, storage_options, group=stage_group),
                runner=runner,
                workers=workers,
                options=runner_options,
            )
            wr = {"items": len(r.urls), "skipped": 0, "content": "run:" + uuid.uuid4().hex}
        elif writer == "regions":
            wr = write_recipe(
                r,
                stage,
                storage_options,
                runner=runner,
                workers=workers,
                runner_options=runner_options,
                client=client,
                on_item=lambda it, bar=bar: bar.update(len(it.urls)),
                sources=stamps,
            )
        else:
            raise ValidationError(f"ingest: writer {writer!r} is not one of 'regions', 'pangeo-forge'")
    finally:
        pipelines.PROGRESS.pop(r.name, None)
        bar.close()
    if r.time_encoding and r.name not in ("networks",):
        expected = _expected_days(r, start, end, targets_start, imerg)
        verify_time_axis(store, stage_group, expected, storage_options)
    _verify_window(store, stage_group, window, storage_options)
    clear_markers(stage, storage_options)
    held.check()
    mark_complete(
        stage,
        storage_options,
        extra={
            "history": history_stamp(f"ingest {r.name} from {redact_url(source)}"),
            "ftcloud_source": redact_url(source),
            "ftcloud_recipe": r.name,
            "ftcloud_period": f"{start}/{end}",
            "ftcloud_software": json.dumps(software_versions()),
            **cf_globals(f"ftcloud store group {r.group} ({r.name}) on EASE-Grid 2.0"),
            **window.to_attrs(),
        },
        record={"content": wr["content"], "recipe": r.name},
    )
    promote(stage, url, storage_options)
    return {
        "group": r.group,
        "files": len(r.files) if r.files is not None else len(r.urls),
        "seconds": time.perf_counter() - t0,
        "work_items": wr["items"],
        "resumed_items": wr["skipped"],
    }


def _expected_days(r: pipelines.SourceRecipe, start, end, targets_start, imerg) -> pd.DatetimeIndex:
    if r.name in ("smap_e_ft", "esdr_ft", "tb_smap", "tb_multifreq"):  # the targets' period
        return daily_index(max(pd.Timestamp(start), pd.Timestamp(targets_start)), end)
    if r.name == "imerg":
        return daily_index(
            max(pd.Timestamp(imerg[0]), pd.Timestamp(start)), min(pd.Timestamp(imerg[1] or end), pd.Timestamp(end))
        )
    return daily_index(start, end)
