"""Bounded-memory writing of a source recipe: the zarr skeleton once, then idempotent regions.

pangeo-forge-recipes' ``StoreToZarr`` combines every file's fragment into the output chunks
inside the runner; on Beam's DirectRunner that shuffle lives in memory (the ingest of the
41-year demo peaked at 14.7 GB, about 17x the bytes written). Here the writing stage follows
xarray-beam's pattern instead (``setup_zarr`` then region writes):

1. **Plan** (:func:`work_items`): the recipe's FilePattern lists the inputs and each input's
   span along the concat dimension (``SourceRecipe.spans``); a *work item* is one output chunk
   along that dimension (e.g. 32 days of predictors) with the inputs that overlap it.
2. **Skeleton** (:func:`write_skeleton`): one input is opened for the structure (variables,
   dtypes, attributes, the coordinates that do not vary along the concat dimension); the full
   concat coordinate comes from the plan; everything is written with ``compute=False``, so no
   data array is materialised.
3. **Regions** (:func:`write_item`): a work item opens only its inputs, selects exactly its
   positions (a missing day is an error that names it) and writes ``to_zarr(region=...)``.
   Items write disjoint chunks, so they can run in any order and in parallel, and a re-run of
   an item rewrites the same bytes. After a region is written a small marker object records it
   (``.ftcloud_regions/<k>``, keyed by the plan's fingerprint): a resumed ingest skips exactly
   the regions whose marker matches the same plan.

Memory is bounded by one work item: its output chunk plus the inputs that overlap it (for
ERA5-Land with 32-day chunks, at most two monthly files of the region), never by the period.
Recipes whose whole output is small (statics, in-situ tables) are written as one item.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.core.metadata import describe_coordinates
from ftcloud.errors import TimeAxisError
from ftcloud.io.stores import filesystem, get_mapper, join, put_whole
from ftcloud.sources import packing

log = logging.getLogger(__name__)

MARKERS = ".ftcloud_regions"
PLAN_ATTR = "ftcloud_plan"

__all__ = [
    "WorkItem",
    "work_items",
    "plan_fingerprint",
    "write_skeleton",
    "write_item",
    "write_whole",
    "done_items",
    "write_recipe",
    "MARKERS",
]


@dataclass(frozen=True)
class WorkItem:
    """One output region along the concat dimension and the inputs it needs."""

    recipe: str
    index: int
    dim: str | None  # None: the whole output in one item
    start: int
    stop: int
    urls: tuple
    # a spatial tile of the window, [start, stop) rows and cols; None: the whole window
    rows: tuple | None = None
    cols: tuple | None = None


def work_items(recipe) -> list[WorkItem]:
    """The work items of ``recipe``: one per output chunk along its concat dimension and, for a
    recipe with a ``tile`` (cells, a multiple of its y/x chunks), per tile of the window."""
    urls = recipe.urls
    if recipe.spans is None or recipe.index is None:
        return [WorkItem(recipe.name, 0, None, 0, 0, tuple(urls))]
    dim = recipe.concat_dim
    n = len(recipe.index)
    size = int(recipe.target_chunks.get(dim, n))
    tiles = [(None, None)]
    if getattr(recipe, "tile", None) and getattr(recipe, "item_opener", None) is not None:
        ny, nx = recipe.window.shape
        # the tile in each dimension: the largest multiple of that dimension's chunk not above
        # ``tile`` (at least one chunk), so that no two items ever write the same chunk
        ty, tx = (
            max(c, (int(recipe.tile) // c) * c)
            for c in (int(recipe.target_chunks.get("y", ny)), int(recipe.target_chunks.get("x", nx)))
        )
        tiles = [((r, min(r + ty, ny)), (c, min(c + tx, nx))) for r in range(0, ny, ty) for c in range(0, nx, tx)]
    items = []
    for a in range(0, n, size):
        b = min(a + size, n)
        need = tuple(u for u, (s0, s1) in zip(urls, recipe.spans) if s0 < b and s1 > a)
        for rows, cols in tiles:
            items.append(WorkItem(recipe.name, len(items), dim, a, b, need, rows, cols))
    return items


def plan_fingerprint(recipe, items: list[WorkItem], sources: dict | None = None) -> str:
    """SHA-256 of what the output depends on: inputs (and, with ``sources``, each input's size and
    modification stamp, so a resume never mixes regions of a changed file), spans, chunks, concat
    coordinate, encoding."""
    doc = {
        "sources": sorted((sources or {}).items()),
        "recipe": recipe.name,
        "items": [
            [it.start, it.stop, list(it.urls)] + ([list(it.rows), list(it.cols)] if it.rows else []) for it in items
        ],
        "chunks": recipe.target_chunks,
        "index": [str(v) for v in (recipe.index if recipe.index is not None else [])],
        "time_encoding": recipe.time_encoding,
        "attrs": recipe.attrs,
        "packing": {k: [p.scale_factor, p.add_offset] for k, p in sorted((recipe.packing or {}).items())},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _combine(recipe, urls) -> xr.Dataset:
    """The inputs' fragments concatenated along the concat dimension. Variables without that
    dimension (2-D lat/lon, crs, statics) are kept from the first fragment only and dropped
    from the others as they are opened: a year of daily granules holds one copy, not 365."""
    dim = recipe.concat_dim
    parts = []
    for k, u in enumerate(urls):
        ds = recipe.opener(u)
        if k:
            ds = ds.drop_vars([n for n, v in ds.variables.items() if dim not in v.dims and n not in ds.dims])
        parts.append(ds)
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override", combine_attrs="override")


def _encoding(ds: xr.Dataset, recipe) -> dict:
    enc = {}
    chunks = recipe.target_chunks
    for name, v in ds.variables.items():
        e = {
            k: v.encoding[k]
            for k in ("dtype", "_FillValue", "scale_factor", "add_offset", "units", "calendar")
            if k in v.encoding
        }
        if name in ds.data_vars and v.ndim:
            e["chunks"] = tuple(int(min(chunks.get(d, s), s)) for d, s in zip(v.dims, v.shape))
        if name == "time" and recipe.time_encoding:
            e = {**recipe.time_encoding, "chunks": (int(chunks.get("time", v.shape[0])),)}
        if name in (recipe.packing or {}):
            e = {**e, **packing.encoding(name, recipe.packing)}
        if e:
            enc[name] = e
    return enc


def write_skeleton(recipe, url: str, storage_options: dict | None, fingerprint: str) -> xr.Dataset:
    """Write the group's metadata and every coordinate; data arrays stay unwritten (fill value).

    Returns the (lazy) template that was written.
    """
    import dask.array as da

    items = work_items(recipe)
    dim = recipe.concat_dim
    if items[0].rows is not None:  # one day of the whole window is enough for the metadata
        ny, nx = recipe.window.shape
        first = recipe.item_opener(items[0].urls[0], recipe.spans[0][0], recipe.spans[0][0] + 1, (0, ny), (0, nx))
    else:
        first = _combine(recipe, items[0].urls)
    n = len(recipe.index)
    tmpl = xr.Dataset(attrs={**first.attrs, **recipe.attrs, PLAN_ATTR: fingerprint})
    for name, v in first.coords.items():
        if dim not in v.dims:
            tmpl.coords[name] = v
    tmpl.coords[dim] = xr.Variable((dim,), np.asarray(recipe.index), attrs=first[dim].attrs)
    for name, v in first.data_vars.items():
        if dim not in v.dims:
            tmpl[name] = v
            continue
        shape = tuple(n if d == dim else s for d, s in zip(v.dims, v.shape))
        chunks = tuple(int(min(recipe.target_chunks.get(d, s), s)) for d, s in zip(v.dims, shape))
        tmpl[name] = xr.Variable(
            v.dims, da.zeros(shape, dtype=v.dtype, chunks=chunks), attrs=v.attrs, encoding=v.encoding
        )
    describe_coordinates(tmpl)  # CF: every dimension coordinate says what it is
    enc = _encoding(tmpl, recipe)
    for name in tmpl.variables:
        tmpl[name].encoding = {}
    tmpl.to_zarr(get_mapper(url, storage_options), mode="w", compute=False, encoding=enc, consolidated=False)
    # the plan goes into the status record only now, after every coordinate and array header was
    # written: a resume trusts a skeleton only if this record names its plan
    from ftcloud.io.stores import mark_incomplete

    fixed = tmpl.drop_vars([n for n, v in tmpl.variables.items() if dim in v.dims and n != dim])
    mark_incomplete(url, storage_options, record={"plan": fingerprint, "skeleton": _digest(fixed)})
    return tmpl


def _digest(ds: xr.Dataset) -> str:
    """SHA-256 of the values of a dataset's variables (names, dtypes, shapes, bytes), loaded."""
    h = hashlib.sha256()
    for name in sorted(ds.variables, key=str):
        v = np.ascontiguousarray(ds[name].values)
        if v.dtype.kind == "O":
            v = np.asarray(v.astype(str))
        h.update(f"{name}\0{v.dtype.str}\0{v.shape}\0".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def write_whole(recipe, url: str, storage_options: dict | None, fingerprint: str) -> str:
    """A recipe without regions (small outputs): combine every input and write the group once.
    Returns the digest of what was written."""
    _deterministic_codecs()
    ds = _combine(recipe, recipe.urls).load()
    packing.check_physical(ds, f"{recipe.name} ({', '.join(recipe.urls[:1])}{' ...' if len(recipe.urls) > 1 else ''})")
    digest = _digest(ds)
    ds.attrs = {**ds.attrs, **recipe.attrs, PLAN_ATTR: fingerprint}
    describe_coordinates(ds)
    enc = _encoding(ds, recipe)
    for name in ds.variables:
        ds[name].encoding = {}
    ds.to_zarr(get_mapper(url, storage_options), mode="w", encoding=enc, consolidated=False)
    return digest


def _deterministic_codecs() -> None:
    """Blosc compresses a chunk's blocks on several threads and stores them in the order they
    finish: the same values then give different bytes run to run. One thread per chunk keeps
    re-runs (and resumed, distributed or tiled ingests) byte-identical; items run in parallel
    anyway."""
    from ftcloud.io.stores import deterministic_codecs

    deterministic_codecs()


def _marker(url: str, k: int) -> str:
    return join(url, MARKERS, f"{k:06d}.json")


def _source_of(recipe, item: WorkItem, local: int) -> str:
    """The input file that holds position ``local`` of a work item, and its coordinate value."""
    k = item.start + int(local)
    value = recipe.index[k] if recipe.index is not None else k
    for url, (s0, s1) in zip(recipe.urls, recipe.spans or []):
        if s0 <= k < s1:
            return f"{url} ({recipe.concat_dim} {str(value)[:10]})"
    return f"{recipe.name} ({recipe.concat_dim} {str(value)[:10]})"


def write_item(recipe, item: WorkItem, url: str, storage_options: dict | None, fingerprint: str) -> int:
    """Open the item's inputs, take exactly its positions and write its region; then its marker."""
    _deterministic_codecs()
    dim = recipe.concat_dim
    want = pd.Index(recipe.index[item.start : item.stop], name=dim)
    region = {dim: slice(item.start, item.stop)}
    if item.rows is not None:
        # a tile: each input opened for the item's positions and tile only (memory: the item)
        spans = dict(zip(recipe.urls, recipe.spans))
        parts = [
            recipe.item_opener(u, max(item.start, spans[u][0]), min(item.stop, spans[u][1]), item.rows, item.cols)
            for u in item.urls
        ]
        ds = (
            parts[0]
            if len(parts) == 1
            else xr.concat(
                parts, dim=dim, data_vars="minimal", coords="minimal", compat="override", combine_attrs="override"
            )
        )
        region.update(y=slice(*item.rows), x=slice(*item.cols))
    else:
        ds = _combine(recipe, item.urls)
    got = pd.Index(ds[dim].values)
    missing = want.difference(got)
    if len(missing):
        raise TimeAxisError(
            f"{recipe.name}: the inputs {', '.join(item.urls[:2])}{' ...' if len(item.urls) > 2 else ''} "
            f"give no {dim} {missing[0]} (expected {len(want)} values from {want[0]} to {want[-1]})"
        )
    ds = ds.sel({dim: want})
    ds = ds.drop_vars([n for n, v in ds.variables.items() if dim not in v.dims]).load()
    packing.check_physical(ds, lambda pos: _source_of(recipe, item, pos.get(dim, 0)))
    packing.check_packable(ds, recipe.packing, lambda pos: _source_of(recipe, item, pos.get(dim, 0)))
    digest = _digest(ds)
    for name in ds.variables:
        ds[name].encoding = {}
    ds.to_zarr(get_mapper(url, storage_options), region=region, consolidated=False)
    # one small object written whole (write-then-rename locally, one PUT on an object store)
    put_whole(
        _marker(url, item.index),
        json.dumps(
            {
                "plan": fingerprint,
                "index": item.index,
                "start": item.start,
                "stop": item.stop,
                "rows": item.rows,
                "cols": item.cols,
                "sha256": digest,
            }
        ).encode(),
        storage_options,
    )
    return item.stop - item.start


def done_items(url: str, storage_options: dict | None, fingerprint: str) -> dict[int, str]:
    """The regions already written under the same plan (markers that match it): index -> digest."""
    fs, path = filesystem(join(url, MARKERS), storage_options)
    done = {}
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return done
    for p in names:
        try:
            with fs.open(p, "r") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue  # a half-written marker: the region is redone
        if doc.get("plan") == fingerprint and doc.get("sha256"):
            done[int(doc["index"])] = str(doc["sha256"])
    return done


def clear_markers(url: str, storage_options: dict | None) -> None:
    fs, path = filesystem(join(url, MARKERS), storage_options)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _existing_plan(url: str, storage_options: dict | None) -> dict:
    """The status record of a staged group whose skeleton was written whole (it names the plan
    and the skeleton's digest), or an empty dict."""
    from ftcloud.io.stores import status_record

    rec = status_record(url, storage_options) or {}
    return rec if rec.get("plan") and rec.get("skeleton") and rec.get("status") == "incomplete" else {}


def _write_one(item: WorkItem, *, recipe, url, storage_options, fingerprint) -> int:
    n = write_item(recipe, item, url, storage_options, fingerprint)
    if item.rows is not None:  # tiles open their inputs without the counting opener
        from ftcloud.sources.pipelines import PROGRESS

        hook = PROGRESS.get(recipe.name)
        if hook is not None:
            hook(len(item.urls))
    return n


def write_recipe(
    recipe,
    url: str,
    storage_options: dict | None = None,
    *,
    runner: str = "DirectRunner",
    workers: int = 1,
    runner_options: dict | None = None,
    client=None,
    on_item=None,
    sources: dict | None = None,
) -> dict:
    """Write ``recipe`` into the zarr group ``url``: skeleton, then the work items on a Beam runner,
    or, with ``client`` (a ``distributed.Client``: a LocalCluster, a dask-gateway cluster), as
    dask tasks on that cluster (Beam's DaskRunner cannot pass a gateway's TLS credentials).

    A group that already carries this plan's fingerprint is resumed: only the regions without a
    matching marker are written. ``sources``: url -> size/modification stamp, part of the plan.
    Returns ``{"items", "skipped", "fingerprint", "content"}``; ``content`` is the SHA-256 of the
    plan and every region's values: equal exactly when the written data are equal.
    """
    import functools

    from ftcloud.sources.common import run_beam

    items = work_items(recipe)
    fp = plan_fingerprint(recipe, items, sources)
    if items[0].dim is None:
        digest = write_whole(recipe, url, storage_options, fp)
        return {"items": 1, "skipped": 0, "fingerprint": fp, "content": _content(recipe, items, {0: digest})}
    rec = _existing_plan(url, storage_options)
    if rec.get("plan") == fp:
        done = done_items(url, storage_options, fp)
        skeleton = rec["skeleton"]
        log.info("%s: resuming, %d of %d regions already written under this plan", recipe.name, len(done), len(items))
    else:
        write_skeleton(recipe, url, storage_options, fp)  # mode "w": also removes old markers
        skeleton = _existing_plan(url, storage_options)["skeleton"]
        done = {}
    todo = [it for it in items if it.index not in done]
    if todo and client is not None:
        from distributed import as_completed

        from ftcloud.sources.pipelines import PROGRESS

        PROGRESS.pop(recipe.name, None)  # counted here, per finished item (workers may share this process)

        fn = functools.partial(_write_one, recipe=recipe, url=url, storage_options=storage_options, fingerprint=fp)
        futures = client.map(fn, todo, key=[f"ingest-{recipe.name}-{fp[:8]}-{it.index}" for it in todo], retries=1)
        by_key = {f.key: it for f, it in zip(futures, todo)}
        try:
            for fut in as_completed(futures):
                fut.result()  # re-raises the item's ftcloud error with its message
                if on_item is not None:
                    on_item(by_key[fut.key])
        finally:
            for fut in futures:
                fut.cancel()
    elif todo:
        from ftcloud.sources.common import import_beam

        beam = import_beam()
        fn = functools.partial(_write_one, recipe=recipe, url=url, storage_options=storage_options, fingerprint=fp)
        label = recipe.name
        run_beam(
            lambda p: p | f"{label}: regions" >> beam.Create(todo) | f"{label}: write" >> beam.Map(fn),
            runner=runner,
            workers=workers,
            options=runner_options,
        )
    digests = done_items(url, storage_options, fp)
    missing = [it.index for it in items if it.index not in digests]
    if missing:
        raise TimeAxisError(f"{recipe.name}: regions {missing[:5]} of {url} have no record after writing; not complete")
    return {
        "items": len(items),
        "skipped": len(items) - len(todo),
        "fingerprint": fp,
        "content": _content(recipe, items, digests, skeleton),
    }


def _content(recipe, items: list[WorkItem], digests: dict, skeleton: str | None = None) -> str:
    """SHA-256 of what a reader of the group gets: layout (chunks, concat coordinate, encoding,
    attributes, packing), each region's place and the digest of its values. Unlike the plan's
    fingerprint it leaves out where the inputs were, so the same data ingested from another
    copy of the sources (or into another store) has the same content id."""
    doc = {
        "recipe": recipe.name,
        "skeleton": skeleton,  # the variables that do not vary along the concat dimension (lat, lon, crs, ...)
        "regions": [[it.start, it.stop, list(it.rows or ()), list(it.cols or ()), digests[it.index]] for it in items],
        "chunks": recipe.target_chunks,
        "index": [str(v) for v in (recipe.index if recipe.index is not None else [])],
        "time_encoding": recipe.time_encoding,
        "attrs": recipe.attrs,
        "packing": {k: [p.scale_factor, p.add_offset] for k, p in sorted((recipe.packing or {}).items())},
    }
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
