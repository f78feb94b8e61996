"""Chunk-wise inference of the exported model with dask, into a CF FT product on zarr.

The plan (:class:`InferencePlan`) is a small frozen dataclass, saved with the product:

* the model runs on **fixed tiles** of ``tile x tile`` cells plus a halo of the model's
  receptive field, aligned to the window's origin, and on **fixed batches** of
  ``batch_days`` days aligned to the period's first day (the last batch padded). Every tile
  tensor is therefore the same whatever the dask chunking, so two chunkings give identical
  bytes (``tests/integration/test_inference.py``); dask chunks in y/x must be multiples of ``tile``.
* each dask task (``dask.array.map_blocks`` over the output's chunks, locating itself with
  ``block_info``) reads its block plus a halo of the model's receptive field straight from the
  zarr store; beyond the window edge the input is NaN, which the model reads as the training
  mean (the pixel's own output is still valid if its own inputs are);
* each worker process loads the model once (``_MODEL_CACHE``, keyed by file and checksum)
  and keeps it; tasks carry only the model directory, never the weights;
* the GPU is used when the worker has one (``torch.cuda.is_available()``), the CPU otherwise.

Output ``ft`` uint8 (pass, time, y, x): 0 thawed, 1 frozen, 255 missing, optional
``p_frozen``, CF flags, ``grid_mapping`` and provenance. The product is written beside its
name (``.NAME.ftcloud-new``), template first, then region by region (one time chunk of one pass
at a time, each recorded by a small object once written), marked complete there and swapped in
(:mod:`ftcloud.io.transaction`). A killed run resumes exactly the regions recorded under the same
identity (days, passes, plan, model files, contents of the store groups read); any other
identity starts afresh; a complete product is skipped only for the same identity.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass

import dask
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ftcloud.errors import ValidationError
from ftcloud.io.stores import get_mapper, join, mark_complete, mark_incomplete, open_group, put_whole, store_status
from ftcloud.core.metadata import (
    FT_ENCODING,
    FT_MISSING,
    cf_globals,
    describe_coordinates,
    ft_attrs,
    history_stamp,
    software_versions,
)
from ftcloud.model.data import DYNAMIC_VARS, STATIC_VARS, open_inputs
from ftcloud.sources.packing import decode
from ftcloud.core.timeutil import PASSES, check_pass
from ftcloud.study import TRAINING
from ftcloud import layout

log = logging.getLogger(__name__)

_MODEL_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class InferencePlan:
    """How inference is cut up. ``tile`` (rows, cols) of None means: the space chunk, clipped to
    the window (one tile per block); it is resolved by :meth:`resolve` and saved with the product."""

    tile: tuple[int, int] | None = None
    halo: int = 3
    batch_days: int = TRAINING["predict_batch_days"]
    time_chunk: int = 32
    space_chunk: int = 128
    fmt: str = "export"  # torch.export program: 1.1x TorchScript's speed here and no deprecation warnings
    write_probability: bool = False
    region_chunks: int = 8  # time chunks per written region (the unit of resume)
    torch_threads: int | None = 1  # per task; dask runs one task per core. None = torch's default
    precision: str = "fp32"  # "bf16": autocast (benchmarks/inference.py measures speed and label agreement)
    resources: dict | None = None  # dask resources per task, e.g. {"GPU": 1} on a gateway cluster with GPU workers

    def __post_init__(self):
        if self.time_chunk % self.batch_days:
            raise ValidationError(
                f"time_chunk ({self.time_chunk}) must be a multiple of batch_days ({self.batch_days})"
            )
        if self.tile is not None:
            object.__setattr__(
                self, "tile", tuple(int(t) for t in (self.tile if np.ndim(self.tile) else (self.tile, self.tile)))
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValidationError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")

    def resolve(self, shape: tuple[int, int], halo: int) -> InferencePlan:
        """Fix tile and halo for a window of ``shape`` (y, x) and a model receptive field ``halo``.

        Along an axis cut into several blocks, the space chunk must be a multiple of the tile
        so that tiles sit at the same place whatever the chunking.
        """
        tile = self.tile or (min(self.space_chunk, shape[0]), min(self.space_chunk, shape[1]))
        for t, n in zip(tile, shape):
            if n > self.space_chunk and self.space_chunk % t:
                raise ValidationError(f"space_chunk ({self.space_chunk}) must be a multiple of the tile {tile}")
        return InferencePlan(**{**asdict(self), "tile": tile, "halo": max(self.halo, halo)})

    def to_json(self) -> str:
        d = asdict(self)
        d["tile"] = list(self.tile) if self.tile else None
        return json.dumps(d, sort_keys=True)


def _device():
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def model_payload(model_dir: str, pass_: str, fmt: str) -> dict:
    """The verified model file's bytes and SHA-256, to travel to the workers with the graph.

    Workers of a remote cluster (dask-gateway) do not see this machine's files; the model is a
    few hundred kB, so it goes into the task graph once (one key shared by every block) and
    each worker process loads it once."""
    from ftcloud.model.export import verified_path

    path, card = verified_path(model_dir, pass_, fmt)
    with open(path, "rb") as f:
        data = f.read()
    return {
        "pass": pass_,
        "fmt": fmt,
        "sha256": card["files"][fmt]["sha256"],
        "name": os.path.basename(path),
        "bytes": data,
    }


def cached_model(model, pass_: str | None = None, fmt: str | None = None):
    """The model of this worker process: loaded on first use, then kept.

    ``model`` is a model folder (with ``pass_`` and ``fmt``; the file is checksum-verified) or
    a :func:`model_payload` (its bytes are checked against their SHA-256 before torch reads them)."""
    if isinstance(model, dict):
        key = ("payload", model["pass"], model["fmt"], model["sha256"])
    else:
        from ftcloud.model.export import read_card

        card = read_card(model, pass_)
        key = (model, pass_, fmt, card["files"][fmt]["sha256"])
    with _CACHE_LOCK:
        if key not in _MODEL_CACHE:
            if isinstance(model, dict):
                module = load_payload(model)
            else:
                from ftcloud.model.export import load_model

                module, _ = load_model(model, pass_, fmt)
            dev = _device()
            _MODEL_CACHE[key] = (module.to(dev) if hasattr(module, "to") else module, dev)
        return _MODEL_CACHE[key]


def load_payload(payload: dict):
    """torch module from :func:`model_payload` bytes, refused unless their SHA-256 matches."""
    import hashlib
    import io

    got = hashlib.sha256(payload["bytes"]).hexdigest()
    if got != payload["sha256"]:
        raise ValidationError(
            f"model {payload['name']}: received bytes have SHA-256 {got[:16]}..., the card says "
            f"{payload['sha256'][:16]}...; refusing to load them"
        )
    from ftcloud.model.export import load_module

    return load_module(io.BytesIO(payload["bytes"]), payload["fmt"])


def run_tiles(
    model, device, x: np.ndarray, tile: tuple[int, int], halo: int, batch_days: int, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``model`` to one overlapped block ``x`` (days, step, chan, Y, X).

    ``x`` holds the block's core plus ``halo`` cells on every side (NaN beyond the window).
    The core is cut into ``tile`` (rows, cols) tiles starting at the core's first row/col (blocks
    start at multiples of the tile in the window, so tiles are aligned globally), each tile is
    run with its halo as a fixed-size tensor, days in fixed batches. Returns ft (uint8) and
    p_frozen (float32) of the core, (days, Y - 2 halo, X - 2 halo).
    """
    import torch

    nd, ns, nc, Y, X = x.shape
    cy, cx = Y - 2 * halo, X - 2 * halo
    ft = np.full((nd, cy, cx), FT_MISSING, "u1")
    pf = np.full((nd, cy, cx), np.nan, "f4")
    xb = np.empty((batch_days, ns, nc, tile[0] + 2 * halo, tile[1] + 2 * halo), "f4")
    for ty in range(0, cy, tile[0]):
        h = min(tile[0], cy - ty)
        for tx in range(0, cx, tile[1]):
            w = min(tile[1], cx - tx)
            for b in range(0, nd, batch_days):
                n = min(batch_days, nd - b)
                xb.fill(np.nan)
                xb[:n, ..., : h + 2 * halo, : w + 2 * halo] = x[
                    b : b + n, ..., ty : ty + h + 2 * halo, tx : tx + w + 2 * halo
                ]
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    f, p = model(torch.from_numpy(xb).to(device))
                ft[b : b + n, ty : ty + h, tx : tx + w] = f[:n, halo : halo + h, halo : halo + w].cpu().numpy()
                pf[b : b + n, ty : ty + h, tx : tx + w] = p[:n, halo : halo + h, halo : halo + w].float().cpu().numpy()
    return ft, pf


@functools.lru_cache(maxsize=16)
def _open_arrays(store: str, so_json: str) -> dict:
    """zarr arrays of the predictors and statics, opened once per worker process."""
    so = json.loads(so_json)
    pred = zarr.open_group(get_mapper(join(store, layout.ERA5LAND), so), mode="r")
    st = zarr.open_group(get_mapper(join(store, layout.STATICS), so), mode="r")
    out = {v: pred[v] for v in DYNAMIC_VARS}
    out.update({v: st[v] for v in STATIC_VARS})
    return out


def read_block(store: str, so_json: str, pass_idx: int, t: slice, rows: slice, cols: slice, halo: int) -> np.ndarray:
    """Inputs of one block with its halo: (days, step, 8, rows + 2 halo, cols + 2 halo) float32,
    NaN beyond the window. Reads the zarr arrays directly and decodes their CF packing."""
    arrs = _open_arrays(store, so_json)
    ny, nx = arrs["lat"].shape
    r0, r1 = rows.start - halo, rows.stop + halo
    c0, c1 = cols.start - halo, cols.stop + halo
    rr = slice(max(r0, 0), min(r1, ny))
    cc = slice(max(c0, 0), min(c1, nx))
    dst_r = slice(rr.start - r0, rr.stop - r0)
    dst_c = slice(cc.start - c0, cc.stop - c0)
    nd = t.stop - t.start
    nsteps = arrs["stl1"].shape[2]
    out = np.full((nd, nsteps, len(DYNAMIC_VARS) + len(STATIC_VARS), r1 - r0, c1 - c0), np.nan, "f4")
    for k, v in enumerate(DYNAMIC_VARS):
        a = arrs[v]  # CF-packed int16 (ftcloud.sources.packing) or float32: decoded as xarray does
        out[:, :, k, dst_r, dst_c] = decode(a[t, pass_idx, :, rr, cc], a.attrs, a.fill_value)
    for k, v in enumerate(STATIC_VARS, start=len(DYNAMIC_VARS)):
        out[:, :, k, dst_r, dst_c] = arrs[v][rr, cc][None, None]
    return out


def _block_task(
    payload: dict, *, store: str, so_json: str, pass_idx: int, t_offset: int, plan: InferencePlan, block_info=None
) -> np.ndarray:
    """dask task for one output block (time, 2, y, x): FT code and frozen probability.

    The block's location comes from ``block_info``; the task reads its own inputs (plus the
    halo) from the store, so only small arguments travel with it."""
    (t0, t1), _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
    x = read_block(
        store, so_json, pass_idx, slice(t_offset + t0, t_offset + t1), slice(y0, y1), slice(x0, x1), plan.halo
    )
    model, device = cached_model(payload)
    if plan.torch_threads and device.type == "cpu":
        import torch

        torch.set_num_threads(plan.torch_threads)
    ft, pf = run_tiles(model, device, x, plan.tile, plan.halo, plan.batch_days, plan.precision)
    return np.stack([ft.astype("f4"), pf], axis=1)


def predict_pass_array(store: str, model_dir: str, pass_: str, times, plan: InferencePlan, storage_options=None):
    """Lazy (time, y, x) uint8 FT and float32 p_frozen for one pass and the given (consecutive) days."""
    from ftcloud.model.export import check_store_matches_card, read_card

    check_pass(pass_)
    card = read_card(model_dir, pass_)
    pred, statics = open_inputs(store, pass_, storage_options)
    check_store_matches_card(card, pred, statics, dict(statics.attrs), pass_, f"{store}")
    if card.get("halo", 0) > plan.halo:
        raise ValidationError(f"plan halo {plan.halo} is smaller than the model's receptive field {card['halo']}")
    store_times = pd.DatetimeIndex(pred["time"].values)
    times = pd.DatetimeIndex(times)
    t_offset = int(store_times.get_loc(times[0]))
    if not (store_times[t_offset : t_offset + len(times)] == times).all():
        raise ValidationError(
            f"{store}: predictor days {times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d} are not all in the store"
        )
    pass_idx = list(open_group(store, layout.ERA5LAND, storage_options)["pass"].values).index(pass_)
    ny, nx = statics.sizes["y"], statics.sizes["x"]
    sc, tc = plan.space_chunk, plan.time_chunk
    chunks = (
        tuple(min(tc, len(times) - i) for i in range(0, len(times), tc)),
        (2,),
        tuple(min(sc, ny - i) for i in range(0, ny, sc)),
        tuple(min(sc, nx - i) for i in range(0, nx, sc)),
    )
    with dask.annotate(resources=plan.resources) if plan.resources else contextlib.nullcontext():
        both = _map_predict(store, storage_options, model_dir, pass_, pass_idx, t_offset, plan, chunks, len(times))
    return both[:, 0].astype("u1"), both[:, 1], card


def _map_predict(store, storage_options, model_dir, pass_, pass_idx, t_offset, plan, chunks, n_times):
    import dask.array as da

    payload = model_payload(model_dir, pass_, plan.fmt)
    model = dask.delayed(payload, pure=True, name=f"ftcloud-model-{pass_}-{payload['sha256'][:16]}")
    return da.map_blocks(
        _block_task,
        model,
        store=store,
        so_json=json.dumps(storage_options or {}, sort_keys=True),
        pass_idx=pass_idx,
        t_offset=t_offset,
        plan=plan,
        chunks=chunks,
        dtype="f4",
        meta=np.empty((0, 0, 0, 0), "f4"),
        name=f"ftcloud-predict-{pass_}-{dask.base.tokenize(store, model_dir, plan, t_offset, n_times)}",
    )


def product_template(window_ds: xr.Dataset, times, passes, plan: InferencePlan, attrs: dict) -> xr.Dataset:
    import dask.array as da

    ny, nx = window_ds.sizes["y"], window_ds.sizes["x"]
    shape = (len(passes), len(times), ny, nx)
    chunks = (1, plan.time_chunk, plan.space_chunk, plan.space_chunk)
    ds = xr.Dataset(
        {"ft": (("pass", "time", "y", "x"), da.full(shape, FT_MISSING, dtype="u1", chunks=chunks))},
        coords={
            "pass": ("pass", list(passes)),
            "time": ("time", pd.DatetimeIndex(times).values),
            "y": window_ds["y"],
            "x": window_ds["x"],
            "lat": window_ds["lat"],
            "lon": window_ds["lon"],
            "crs": window_ds["crs"],
        },
    )
    ds["ft"].attrs = ft_attrs(
        "fused soil freeze/thaw state (ConvLSTM_FT)",
        "ftcloud ConvLSTM decision-level fusion of SMAP_E_FT and ESDR_FT heads",
    )
    ds["ft"].encoding = {**FT_ENCODING, "chunks": chunks}
    if plan.write_probability:
        ds["p_frozen"] = (("pass", "time", "y", "x"), da.full(shape, np.nan, dtype="f4", chunks=chunks))
        ds["p_frozen"].attrs = {
            "long_name": "fused frozen probability",
            "units": "1",
            "grid_mapping": "crs",
            "coordinates": "lat lon",
        }
        ds["p_frozen"].encoding = {"chunks": chunks}
    ds["time"].attrs = {"standard_name": "time", "long_name": "local solar date of the overpass", "axis": "T"}
    ds["time"].encoding = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    ds.attrs = attrs
    return describe_coordinates(ds)


def _span(text) -> tuple[int, int] | None:
    try:
        a, b = str(text).split(":")
        return int(a), int(b)
    except (ValueError, AttributeError):
        return None


def check_window_covered(card: dict, window_attrs: dict, where: str, transfer: bool = False) -> dict | None:
    """The store's window must lie inside the window the model was trained on (its card's
    ``grid``), unless ``transfer``; returns what the product records about a transfer, or None."""
    grid = card.get("grid") or {}
    own = [_span(grid.get(k)) for k in ("ease2_window_rows", "ease2_window_cols")]
    got = [_span(window_attrs.get(k)) for k in ("ease2_window_rows", "ease2_window_cols")]
    if None in own or None in got:
        return None  # an older card or a store without window attributes: nothing to compare
    inside = all(o[0] <= g[0] and g[1] <= o[1] for o, g in zip(own, got))
    if inside:
        return None
    trained = f"{grid.get('region')!r} rows {grid['ease2_window_rows']} cols {grid['ease2_window_cols']}"
    asked = (
        f"{window_attrs.get('region')!r} rows {window_attrs['ease2_window_rows']} "
        f"cols {window_attrs['ease2_window_cols']}"
    )
    if not transfer:
        raise ValidationError(
            f"{where}: window {asked} is not inside the window the {card.get('pass')} model was "
            f"trained on ({trained}); pass --transfer to apply it outside its training window "
            "(the product records that)"
        )
    return {"trained_window": trained, "applied_window": asked}


def _times_digest(times: pd.DatetimeIndex) -> str:
    import hashlib

    days = (times.values.astype("datetime64[D]").astype("int64")).tobytes()
    return hashlib.sha256(days).hexdigest()


def product_identity(
    store: str, cards: dict, plan: InferencePlan, times, passes, storage_options=None, transfer: dict | None = None
) -> dict:
    """Everything a product's values depend on: the exact days, the passes, the plan, each pass's
    model (SHA-256 of the file used) and the content of the store groups read."""
    from ftcloud.io.stores import content_id

    times = pd.DatetimeIndex(times)
    return {
        "days": {
            "first": str(times[0].date()),
            "last": str(times[-1].date()),
            "n": len(times),
            "sha256": _times_digest(times),
        },
        "passes": list(passes),
        "plan": json.loads(plan.to_json()),
        "model_sha256": {p: c["files"][plan.fmt]["sha256"] for p, c in cards.items()},
        "inputs": {g: content_id(join(store, g), storage_options) for g in (layout.ERA5LAND, layout.STATICS)},
        "transfer": transfer,
    }


def _identity_sha(identity: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


PROGRESS_DIR = ".ftcloud-progress"


def _progress_url(stage: str, p_i: int, t0: int) -> str:
    return join(stage, PROGRESS_DIR, f"p{p_i}-t{t0:06d}.json")


def _regions_done(stage: str, so, ident: str) -> set:
    """Regions recorded as written under this identity (unreadable or foreign records: redone)."""
    from ftcloud.io.stores import filesystem, read_json

    fs, path = filesystem(join(stage, PROGRESS_DIR), so)
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return set()
    done = set()
    for name in names:
        if not str(name).endswith(".json"):
            continue
        doc = read_json(join(stage, PROGRESS_DIR, str(name).rsplit("/", 1)[-1]), so)
        if doc and doc.get("identity") == ident:
            done.add((int(doc["pass"]), int(doc["t0"])))
    return done


def _stage_matches(stage: str, so, ident: str, times, passes, statics, plan: InferencePlan) -> bool:
    """A staged copy is resumed only if it reads back as the product this run would write: its
    attributes parse and carry the identity (which holds the plan), ``ft`` has the expected shape, and its
    time axis is exactly ``times``. Anything else (a half-written key, another layout) is redone."""
    try:
        g = zarr.open_group(get_mapper(stage, so), mode="r")
        if g.attrs.asdict().get("ftcloud_identity") != ident:
            return False
        shape = (len(passes), len(times), statics.sizes["y"], statics.sizes["x"])
        if g["ft"].shape != shape:
            return False
        days = xr.open_zarr(get_mapper(stage, so), consolidated=False)["time"].values
        return len(days) == len(times) and bool((pd.DatetimeIndex(days) == pd.DatetimeIndex(times)).all())
    except Exception as e:  # noqa: BLE001 - unreadable in any way: start afresh
        from ftcloud.io.secrets import redact_url

        log.warning("%s: staged copy unreadable (%s); starting afresh", redact_url(stage), str(e).splitlines()[0][:120])
        return False


def predict(
    store: str | layout.Store,
    model_dir: str,
    out: str | layout.Store,
    *,
    start=None,
    end=None,
    passes=PASSES,
    plan: InferencePlan = InferencePlan(),
    storage_options=None,
    progress: bool = True,
    client=None,
    transfer: bool = False,
) -> dict:
    """Predict FT for every day in [start, end] and every pass into ``out`` (a zarr group URL).

    ``store`` and ``out``: a URL (reached with ``storage_options``) or a :class:`~ftcloud.layout.Store`
    that carries its own options (e.g. a product written to another bucket than the inputs).

    Transactional (:mod:`ftcloud.io.transaction`): everything is verified first (the store's
    groups complete, both model files against their card's SHA-256, the window inside the
    model's training window unless ``transfer``); the product is then written beside ``out``,
    region by region (each recorded when written), marked complete there and swapped in, so a
    complete ``out`` is never destroyed by a run that fails. ``out`` is skipped only when it is
    complete for exactly the same identity (days, passes, plan, models, input contents); a
    killed run resumes only regions recorded under that identity. One writer at a time holds
    the output's lease (:mod:`ftcloud.io.lease`).
    """
    from tqdm.auto import tqdm

    from ftcloud.io.lease import lease
    from ftcloud.io.secrets import redact_url
    from ftcloud.io.stores import require_bucket, status_record
    from ftcloud.io.transaction import check_replaceable, discard, promote, recover, staging_url
    from ftcloud.model import _require_torch
    from ftcloud.model.export import read_card, verified_path

    _require_torch("ftcloud predict")

    out_store = layout.as_store(out, storage_options)
    in_store = layout.as_store(store, storage_options)
    store, storage_options = in_store.url, in_store.storage_options
    out, out_storage_options = out_store.url, out_store.storage_options

    era = open_group(store, layout.ERA5LAND, storage_options)
    statics = open_group(store, layout.STATICS, storage_options)
    times = pd.DatetimeIndex(era["time"].values)
    if start:
        times = times[times >= pd.Timestamp(start)]
    if end:
        times = times[times <= pd.Timestamp(end)]
    if len(times) == 0:
        raise ValidationError(f"{redact_url(store)}: no predictor days in {start}..{end}")
    cards = {p: read_card(model_dir, p) for p in passes}
    for p in passes:  # every model file checked before anything is written
        verified_path(model_dir, p, plan.fmt)
    transfers = {
        p: check_window_covered(c, dict(era.attrs), f"{redact_url(store)}", transfer) for p, c in cards.items()
    }
    transfers = {p: t for p, t in transfers.items() if t} or None
    plan = plan.resolve((statics.sizes["y"], statics.sizes["x"]), max(c.get("halo", 0) for c in cards.values()))
    identity = product_identity(store, cards, plan, times, passes, storage_options, transfers)
    ident = _identity_sha(identity)
    attrs = {
        **cf_globals("ftcloud fused soil freeze/thaw product (ConvLSTM_FT)"),
        "history": history_stamp(f"predict from {redact_url(store)}"),
        "source_store": redact_url(store),
        "model_sha256": json.dumps(identity["model_sha256"]),
        "inference_plan": plan.to_json(),
        "ftcloud_identity": ident,
        "software": json.dumps(software_versions()),
        **{k: v for k, v in era.attrs.items() if k.startswith("ease2_") or k == "region"},
    }
    if transfers:
        attrs["ftcloud_model_transfer"] = json.dumps(transfers, sort_keys=True)
    arrays = {
        p_i: predict_pass_array(store, model_dir, pass_, times, plan, storage_options)
        for p_i, pass_ in enumerate(passes)
    }

    def same(url) -> bool:
        rec = status_record(url, out_storage_options) or {}
        return rec.get("identity") == ident

    if store_status(out, out_storage_options) == "complete" and same(out):
        log.info("%s is complete for these inputs; nothing to do", redact_url(out))
        return {"out": out, "regions": 0, "skipped": True}
    require_bucket(out, out_storage_options)
    check_replaceable(out, out_storage_options)
    with lease(out, out_storage_options, "predict") as held:
        recover(out, out_storage_options)
        if store_status(out, out_storage_options) == "complete" and same(out):
            return {"out": out, "regions": 0, "skipped": True}
        stage = staging_url(out)
        s_status = store_status(stage, out_storage_options)
        if (
            s_status is not None
            and same(stage)
            and _stage_matches(stage, out_storage_options, ident, times, passes, statics, plan)
        ):
            done = _regions_done(stage, out_storage_options, ident)
            if s_status == "complete":
                promote(stage, out, out_storage_options)
                return {"out": out, "regions": 0, "skipped": True}
            log.info("%s: resuming, %d regions already written for these inputs", redact_url(out), len(done))
        else:
            discard(stage, out_storage_options)  # another identity, or debris: start afresh
            tmpl = product_template(statics, times, passes, plan, attrs)
            tmpl.to_zarr(get_mapper(stage, out_storage_options), mode="w", compute=False, consolidated=False)
            mark_incomplete(stage, out_storage_options, record={"identity": ident})
            done = set()
        g = zarr.open_group(get_mapper(stage, out_storage_options), mode="r+")
        step = plan.time_chunk * plan.region_chunks
        regions = [(p, t0) for p in range(len(passes)) for t0 in range(0, len(times), step)]
        todo = [r for r in regions if r not in done]
        bar = tqdm(
            total=len(regions), initial=len(regions) - len(todo), desc="predict", unit="region", disable=not progress
        )
        t_start = time.perf_counter()
        for p_i, t0 in todo:
            t1 = min(t0 + step, len(times))
            ft, pf, _ = arrays[p_i]
            piece = {"ft": ft[t0:t1]}
            if plan.write_probability:
                piece["p_frozen"] = pf[t0:t1]
            vals = dask.compute(*piece.values()) if client is None else client.compute(list(piece.values()), sync=True)
            held.still_held()  # a writer that stalled past its lease writes nothing more
            for (name, _), v in zip(piece.items(), vals):
                g[name][p_i, t0:t1] = v
            put_whole(
                _progress_url(stage, p_i, t0),
                json.dumps({"identity": ident, "pass": p_i, "t0": t0}).encode(),
                out_storage_options,
            )
            bar.update(1)
        bar.close()
        held.check()
        now = product_identity(store, cards, plan, times, passes, storage_options, transfers)["inputs"]
        if now != identity["inputs"]:  # the store was re-ingested while this run read it
            discard(stage, out_storage_options)
            raise ValidationError(
                f"{redact_url(store)}: the input groups changed while predicting (re-ingested?); "
                "the mixed result was discarded: run predict again"
            )
        mark_complete(stage, out_storage_options, record={"identity": ident, "identity_doc": identity})
        discard(join(stage, PROGRESS_DIR), out_storage_options)  # a complete copy needs no progress records
        promote(stage, out, out_storage_options)
    return {
        "out": out,
        "regions": len(todo),
        "seconds": time.perf_counter() - t_start,
        "days": len(times),
        "passes": list(passes),
    }
