"""One pangeo-forge recipe per source: a FilePattern, ftcloud's opener, and StoreToZarr.

``SourceRecipe`` is the plan (which files, which opener, which group, which chunks); it is a
plain object that can be inspected and tested without Beam. ``SourceRecipe.transform()``
turns it into the Beam ``PTransform`` that the top-level ``feedstock/*.py`` modules expose and
that :func:`ftcloud.workflows.ingest.ingest` runs with Beam's local runner. The same transforms run
unchanged on a distributed runner (see deploy/README.md).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ftcloud.core.grid import GridWindow
from ftcloud.io.stores import filesystem
from ftcloud.sources import era5land, imerg, insitu, statics, targets, tb
from ftcloud.sources.common import (
    TIME_ENCODING,
    TIME_ENCODING_30MIN,
    chunk_plan,
    daily_index,
    import_beam,
    months_between,
    open_bytes,
)
from ftcloud.sources.packing import PREDICTOR_PACKING
from ftcloud import layout
from ftcloud.study import PASSES

GROUPS = layout.GROUPS
SOURCES = tuple(GROUPS)

# Progress hooks: name -> callable(n). Filled by ftcloud.workflows.ingest around a local run; Beam workers
# in other processes see it empty, so counting costs nothing on a distributed runner.
PROGRESS: dict[str, Callable] = {}


def _open_counted(url, *, name, opener):
    ds = opener(url)
    hook = PROGRESS.get(name)
    if hook is not None:
        hook(1)
    return ds


@dataclass
class SourceRecipe:
    """Everything one source's recipe needs; ``opener(url)`` returns one xarray fragment."""

    name: str
    pattern: object  # pangeo_forge_recipes.patterns.FilePattern
    opener: Callable
    target_chunks: dict
    time_encoding: dict | None = field(default_factory=lambda: dict(TIME_ENCODING))
    attrs: dict = field(default_factory=dict)
    # the region plan (ftcloud.sources.regions): the output's concat coordinate and, per input
    # (in ``urls`` order), the [start, stop) positions its fragment fills; None = one item
    concat_dim: str = "time"
    index: object = None
    spans: list | None = None
    # CF packing of data variables (ftcloud.sources.packing): name -> Packing; None = as opened.
    # Applied by the region writer; the pangeo-forge StoreToZarr writer (the benchmarks' baseline)
    # writes the variables as opened (float32).
    packing: dict | None = None
    # spatial work items (regions writer): tiles of ``tile`` x ``tile`` cells of ``window``, each
    # opened by ``item_opener(url, start, stop, rows, cols)`` for index positions [start, stop)
    # (within the url's span) and window rows/cols [a, b); None = items along concat_dim only
    tile: int | None = None
    window: object = None
    item_opener: Callable | None = None
    # the real files behind synthetic keys (``...#2016``): what the pre-flight checks and fingerprints
    files: list | None = None

    @property
    def group(self) -> str:
        return GROUPS[self.name]

    @property
    def urls(self) -> list[str]:
        return [url for _, url in self.pattern.items()]

    def transform(self, target_root: str, storage_options: dict | None = None, group: str | None = None):
        """The Beam PTransform: Create(items) | open+preprocess | StoreToZarr | consolidate coords.
        ``group``: where under ``target_root`` to write (default: the source's group)."""
        beam = import_beam()
        from pangeo_forge_recipes.storage import FSSpecTarget
        from pangeo_forge_recipes.transforms import ConsolidateDimensionCoordinates, StoreToZarr

        fs, root_path = filesystem(target_root, storage_options)
        group = group or self.group
        parent, store_name = group.rsplit("/", 1) if "/" in group else ("", group)
        target = FSSpecTarget(fs=fs, root_path=f"{root_path}/{parent}".rstrip("/"))
        items = list(self.pattern.items())
        opener = functools.partial(_open_counted, name=self.name, opener=self.opener)
        # the encoding given to to_zarr replaces the template's, so it must carry the chunks too
        encoding = (
            {"time": {**self.time_encoding, "chunks": (self.target_chunks["time"],)}} if self.time_encoding else {}
        )
        store = StoreToZarr(
            combine_dims=self.pattern.combine_dim_keys,
            store_name=store_name,
            target_root=target,
            target_chunks=self.target_chunks,
            attrs=self.attrs,  # no ftcloud_status yet: a group without it reads as incomplete
            encoding=encoding,
        )
        label = self.name

        class _Recipe(beam.PTransform):
            def expand(self, pbegin):
                out = (
                    pbegin
                    | f"{label}: files" >> beam.Create(items)
                    | f"{label}: open" >> beam.MapTuple(lambda idx, url: (idx, opener(url)))
                    | f"{label}: store" >> store
                )
                if "time" in encoding:
                    out = out | f"{label}: coords" >> ConsolidateDimensionCoordinates()
                return out

        return _Recipe()


# --------------------------------------------------------------------------------------
# Per-source plans


def _span(index: pd.DatetimeIndex, a: pd.Timestamp, b: pd.Timestamp) -> tuple[int, int]:
    """[start, stop) positions of the days a..b in ``index``."""
    return int(index.searchsorted(a)), int(index.searchsorted(b, side="right"))


def _pattern(fmt, name: str, keys: list, nitems=None, merge: bool = False):
    import_beam()  # pangeo-forge imports Beam
    from pangeo_forge_recipes.patterns import ConcatDim, FilePattern, MergeDim

    dim = MergeDim(name, keys) if merge else ConcatDim(name, keys, nitems_per_file=nitems)
    return FilePattern(fmt, dim)


def _open_era5(url, *, months, window, start, end, storage_options):
    return era5land.preprocess_month(url, months[url], window, start, end, storage_options)


def _open_era5_item(url, a, b, rows, cols, *, months, index, window, storage_options):
    sub = window.sub(slice(*rows), slice(*cols))
    return era5land.preprocess_month(url, months[url], sub, index[a], index[b - 1], storage_options)


#: ERA5-Land work items are tiles of this many cells a side (x 32 days): memory per item is
#: bounded by the tile, whatever the region (benchmarks/scaling.py and the README's China run)
ERA5_TILE = 512


def era5land_recipe(
    source: str, window: GridWindow, start, end, chunks: dict, storage_options=None, tile: int | None = ERA5_TILE
) -> SourceRecipe:
    months = months_between(start, end)
    by_url = {era5land.era5_url(source, m): m for m in months}
    pattern = _pattern(lambda time: era5land.era5_url(source, time), "time", months)
    opener = functools.partial(
        _open_era5, months=by_url, window=window, start=start, end=end, storage_options=storage_options
    )
    index = daily_index(start, end)
    sizes = {"time": len(index), "pass": 2, "y": window.shape[0], "x": window.shape[1]}
    spans = [
        _span(index, max(m, pd.Timestamp(start)), min(m + pd.offsets.MonthEnd(0), pd.Timestamp(end))) for m in months
    ]
    item_opener = functools.partial(
        _open_era5_item, months=by_url, index=index, window=window, storage_options=storage_options
    )
    return SourceRecipe(
        "era5land",
        pattern,
        opener,
        chunk_plan(sizes, chunks),
        index=index,
        spans=spans,
        packing=dict(PREDICTOR_PACKING),
        tile=tile,
        window=window,
        item_opener=item_opener,
    )


def _open_imerg(key, *, days, source, window, storage_options):
    return imerg.imerg_day(source, days[key], window, storage_options)


def imerg_recipe(source: str, window: GridWindow, start, end, chunks: dict, storage_options=None) -> SourceRecipe:
    days = daily_index(start, end)
    by_key = {f"{source}/imerg#{d:%Y-%m-%d}": d for d in days}
    pattern = _pattern(lambda time: f"{source}/imerg#{time:%Y-%m-%d}", "time", list(days), nitems=1)
    opener = functools.partial(_open_imerg, days=by_key, source=source, window=window, storage_options=storage_options)
    return SourceRecipe(
        "imerg",
        pattern,
        opener,
        chunk_plan({"time": len(days), "pass": 2, "y": window.shape[0], "x": window.shape[1]}, chunks),
        index=days,
        spans=[(i, i + 1) for i in range(len(days))],
    )


def _open_smap(url, *, days, window, storage_options):
    return targets.preprocess_smap(url, days[url], window, storage_options)


def _smap_granule_recipe(name, open_fn, source, window, start, end, sizes: dict, chunks, storage_options, **kw):
    """A recipe over the daily SMAP granules of [start, end] (one input and one work item a day)."""
    days = daily_index(start, end)
    by_url = {targets.smap_url(source, d): d for d in days}
    pattern = _pattern(lambda time: targets.smap_url(source, time), "time", list(days), nitems=1)
    opener = functools.partial(open_fn, days=by_url, window=window, storage_options=storage_options)
    return SourceRecipe(
        name,
        pattern,
        opener,
        chunk_plan({"time": len(days), **sizes, "y": window.shape[0], "x": window.shape[1]}, chunks),
        index=days,
        spans=[(i, i + 1) for i in range(len(days))],
        **kw,
    )


def smap_recipe(source: str, window: GridWindow, start, end, chunks: dict, storage_options=None) -> SourceRecipe:
    return _smap_granule_recipe("smap_e_ft", _open_smap, source, window, start, end, {}, chunks, storage_options)


def _yearly_spans(years, start, end) -> tuple[pd.DatetimeIndex, list]:
    """The daily index of [start, end] and each year's [start, stop) positions in it (one input per year)."""
    index = daily_index(start, end)
    spans = [
        _span(
            index,
            max(pd.Timestamp(f"{y}-01-01"), pd.Timestamp(start)),
            min(pd.Timestamp(f"{y}-12-31"), pd.Timestamp(end)),
        )
        for y in years
    ]
    return index, spans


def _open_esdr(url, *, years, window, start, end, storage_options):
    return targets.preprocess_esdr(url, years[url], window, start, end, storage_options)


def esdr_recipe(source: str, window: GridWindow, start, end, chunks: dict, storage_options=None) -> SourceRecipe:
    years = list(range(pd.Timestamp(start).year, pd.Timestamp(end).year + 1))
    by_url = {targets.esdr_url(source, y): y for y in years}
    pattern = _pattern(lambda time: targets.esdr_url(source, time), "time", years)
    opener = functools.partial(
        _open_esdr, years=by_url, window=window, start=start, end=end, storage_options=storage_options
    )
    index, spans = _yearly_spans(years, start, end)
    return SourceRecipe(
        "esdr_ft",
        pattern,
        opener,
        chunk_plan({"time": len(index), "y": window.shape[0], "x": window.shape[1]}, chunks),
        index=index,
        spans=spans,
    )


def first_smap_url(source: str, start, end, storage_options=None) -> str:
    """The first SMAP granule that exists in [start, end] (its ancillary layers are static)."""
    fs, _ = filesystem(source, storage_options)
    for d in daily_index(start, end):
        url = targets.smap_url(source, d)
        if fs.exists(filesystem(url, storage_options)[1]):
            return url
    return targets.smap_url(source, pd.Timestamp(start))  # the opener will report it missing


def _open_statics(key, *, blocks, smap_url, aux_url, window, storage_options):
    rows = blocks[key]
    return statics.statics_from_sources(smap_url, aux_url, window, storage_options, rows=rows)


def statics_recipe(
    source: str, window: GridWindow, smap_url: str, storage_options=None, tile: int = 128
) -> SourceRecipe:
    """Static layers, written in row blocks of ``tile`` (pangeo-forge needs a concat dimension)."""
    aux_url = f"{source.rstrip('/')}/auxiliary/auxiliary_9km.nc"
    starts = list(range(0, window.shape[0], tile))
    blocks = {f"{source}/statics#rows{r}": slice(r, min(r + tile, window.shape[0])) for r in starts}
    pattern = _pattern(lambda y: f"{source}/statics#rows{y}", "y", starts)
    opener = functools.partial(
        _open_statics, blocks=blocks, smap_url=smap_url, aux_url=aux_url, window=window, storage_options=storage_options
    )
    chunks = chunk_plan({"y": window.shape[0], "x": window.shape[1]}, {"y": tile, "x": tile})
    return SourceRecipe("statics", pattern, opener, chunks, time_encoding=None, concat_dim="y")


def _open_station(url, *, meta, times, window, storage_options):
    row = meta[meta["url"] == url]
    series = insitu.read_network_station(url, times, storage_options)[None]
    return insitu.networks_dataset(row.drop(columns="url"), series, times, window)


def networks_recipe(
    source: str, window: GridWindow, start, end, chunks: dict, storage_options=None
) -> SourceRecipe | None:
    meta_url = f"{source.rstrip('/')}/insitu/networks/stations.csv"
    fs, path = filesystem(meta_url, storage_options)
    if not fs.exists(path):
        return None
    meta = pd.read_csv(io.BytesIO(open_bytes(meta_url, storage_options, "in-situ station list")))
    if meta.empty:
        return None
    meta["url"] = [
        f"{source.rstrip('/')}/insitu/networks/{n}/{s}.csv" for n, s in zip(meta["network"], meta["station"])
    ]
    s = max(pd.Timestamp(start), pd.Timestamp("2018-01-01"))
    e = min(pd.Timestamp(end) + pd.Timedelta(hours=23, minutes=30), pd.Timestamp("2020-12-31 23:30"))
    if s > e:
        return None
    times = pd.date_range(s, e, freq="30min")
    pattern = _pattern(lambda station: station, "station", list(meta["url"]), nitems=1)
    opener = functools.partial(_open_station, meta=meta, times=times, window=window, storage_options=storage_options)
    return SourceRecipe(
        "networks",
        pattern,
        opener,
        chunk_plan({"station": len(meta), "time": len(times)}, {"station": 1, **chunks}),
        time_encoding=dict(TIME_ENCODING_30MIN),
        concat_dim="station",
    )


def _open_cma(_key, *, source, days, window, storage_options):
    root = source.rstrip("/")
    return insitu.read_cma(
        f"{root}/insitu/cma/stations.csv", f"{root}/insitu/cma/t0cm_daily.csv", days, window, storage_options
    )


def cma_recipe(source: str, window: GridWindow, start, end, storage_options=None) -> SourceRecipe | None:
    fs, path = filesystem(f"{source.rstrip('/')}/insitu/cma/stations.csv", storage_options)
    if not fs.exists(path):
        return None
    days = daily_index(start, end)
    pattern = _pattern(lambda station: f"{source}/insitu/cma#{station}", "station", ["all"])
    opener = functools.partial(_open_cma, source=source, days=days, window=window, storage_options=storage_options)
    return SourceRecipe("cma", pattern, opener, {"time": len(days)}, concat_dim="station")


def _open_smap_tb(url, *, days, window, storage_options):
    return tb.preprocess_smap_tb(url, days[url], window, storage_options)


def tb_smap_recipe(source: str, window: GridWindow, start, end, chunks: dict, storage_options=None, probe=True):
    """SMAP L-band TB H/V (``predictors/tb_smap``) from the granules' ``tbh_mean``/``tbv_mean``; None when the
    first granule of the period carries no TB (the source has none). ``probe=False`` (the dry run) assumes
    the source has TB and reads nothing."""
    if probe and not tb.smap_has_tb(first_smap_url(source, start, end, storage_options), storage_options):
        return None
    return _smap_granule_recipe(
        "tb_smap",
        _open_smap_tb,
        source,
        window,
        start,
        end,
        {"pass": 2},
        chunks,
        storage_options,
        packing=tb.TB_PACKING_SMAP,
    )


def _open_multifreq(key, *, years, source, window, start, end, storage_options):
    return tb.preprocess_multifreq_year(source, years[key], window, start, end, storage_options)


def _open_multifreq_item(key, a, b, rows, cols, *, years, index, source, window, storage_options):
    sub = window.sub(slice(*rows), slice(*cols))
    return tb.preprocess_multifreq_year(source, years[key], sub, index[a], index[b - 1], storage_options)


#: multi-frequency TB work items: tiles of this many cells a side x one time chunk (24 channel-passes:
#: about 200 MB of float32 per item at 256 x 32 days, whatever the region or the period)
TB_TILE = 256


def tb_multifreq_recipe(
    source: str,
    window: GridWindow,
    start,
    end,
    chunks: dict,
    storage_options=None,
    tile: int | None = TB_TILE,
    probe: bool = True,
):
    """The multi-frequency TB record (``predictors/tb_multifreq``): one input per year of files, one work item
    per time chunk and tile (it reads only its days and cells); None when the source has no ``tb_multifreq/``.
    ``probe=False`` (the dry run) assumes it has and lists nothing."""
    if probe:
        fs, path = filesystem(f"{source.rstrip('/')}/tb_multifreq", storage_options)
        if not fs.exists(path):
            return None
    years = list(range(pd.Timestamp(start).year, pd.Timestamp(end).year + 1))
    keys = {f"{source.rstrip('/')}/tb_multifreq#{y}": y for y in years}
    pattern = _pattern(lambda time: f"{source.rstrip('/')}/tb_multifreq#{time}", "time", years)
    opener = functools.partial(
        _open_multifreq,
        years=keys,
        source=source,
        window=window,
        start=start,
        end=end,
        storage_options=storage_options,
    )
    index, spans = _yearly_spans(years, start, end)
    item_opener = functools.partial(
        _open_multifreq_item, years=keys, index=index, source=source, window=window, storage_options=storage_options
    )
    return SourceRecipe(
        "tb_multifreq",
        pattern,
        opener,
        chunk_plan({"time": len(index), "pass": 2, "y": window.shape[0], "x": window.shape[1]}, chunks),
        index=index,
        spans=spans,
        packing=tb.TB_PACKING_MULTIFREQ,
        tile=tile,
        window=window,
        item_opener=item_opener,
        files=[tb.multifreq_url(source, y, ch, p) for y in years for ch in tb.MULTIFREQ_CHANNELS for p in PASSES],
    )


# --------------------------------------------------------------------------------------
# the registry: source name -> the recipe of a plan (None: nothing to ingest for this plan)


@dataclass(frozen=True)
class PlanRequest:
    """What a plan asks of every source: the period, the targets' first day, chunks, IMERG's own period."""

    source: str
    window: GridWindow
    start: object  # as given (a date string or Timestamp): recipes fingerprint it
    end: object
    targets_start: pd.Timestamp
    chunks: dict
    storage_options: dict | None = None
    imerg: tuple | None = None
    #: False in the dry run: optional sources are assumed present, nothing is opened or listed
    probe: bool = True


def _plan_imerg(r: PlanRequest) -> SourceRecipe | None:
    if not (r.imerg and r.imerg[0]):
        return None
    s = max(pd.Timestamp(r.imerg[0]), pd.Timestamp(r.start))
    e = min(pd.Timestamp(r.imerg[1] or r.end), pd.Timestamp(r.end))
    return imerg_recipe(r.source, r.window, s, e, r.chunks["predictors"], r.storage_options) if s <= e else None


def _plan_statics(r: PlanRequest) -> SourceRecipe:
    first = first_smap_url(r.source, r.targets_start, r.end, r.storage_options)
    return statics_recipe(r.source, r.window, first, r.storage_options)


#: one entry per source, in ingest order (== SOURCES)
REGISTRY: dict[str, Callable[[PlanRequest], SourceRecipe | None]] = {
    "era5land": lambda r: era5land_recipe(
        r.source, r.window, r.start, r.end, r.chunks["predictors"], r.storage_options
    ),
    "imerg": _plan_imerg,
    "smap_e_ft": lambda r: (
        smap_recipe(r.source, r.window, r.targets_start, r.end, r.chunks["targets"], r.storage_options)
        if r.targets_start <= pd.Timestamp(r.end)
        else None
    ),
    "esdr_ft": lambda r: (
        esdr_recipe(r.source, r.window, r.targets_start, r.end, r.chunks["targets"], r.storage_options)
        if r.targets_start <= pd.Timestamp(r.end)
        else None
    ),
    "statics": _plan_statics,
    "networks": lambda r: networks_recipe(
        r.source, r.window, r.start, r.end, r.chunks.get("insitu", {}), r.storage_options
    ),
    "cma": lambda r: cma_recipe(r.source, r.window, r.start, r.end, r.storage_options),
    "tb_smap": lambda r: (
        tb_smap_recipe(
            r.source, r.window, r.targets_start, r.end, r.chunks["predictors"], r.storage_options, probe=r.probe
        )
        if r.targets_start <= pd.Timestamp(r.end)
        else None
    ),
    "tb_multifreq": lambda r: (
        tb_multifreq_recipe(
            r.source, r.window, r.targets_start, r.end, r.chunks["predictors"], r.storage_options, probe=r.probe
        )
        if r.targets_start <= pd.Timestamp(r.end)
        else None
    ),
}
assert tuple(REGISTRY) == SOURCES, "REGISTRY and layout.GROUPS must list the same sources in the same order"
