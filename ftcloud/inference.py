"""Chunk-wise inference of the exported model with dask, into a CF FT product on zarr.

The plan (:class:`InferencePlan`) is a small frozen dataclass, saved with the product:

* the model runs on **fixed tiles** of ``tile x tile`` cells plus a halo of the model's
  receptive field, aligned to the window's origin, and on **fixed batches** of
  ``batch_days`` days aligned to the period's first day (the last batch padded). Every tile
  tensor is therefore the same whatever the dask chunking, so two chunkings give identical
  bytes (``tests/test_inference.py``); dask chunks in y/x must be multiples of ``tile``.
* each dask task gets its block plus the halo (``dask.array.overlap`` with
  ``boundary="none"``; beyond the window edge the input is NaN, which the model reads as the
  training mean and flags as missing only where the pixel itself has no data);
* each worker process loads the model once (``_MODEL_CACHE``, keyed by file and checksum)
  and keeps it; tasks carry only the model directory, never the weights;
* the GPU is used when the worker has one (``torch.cuda.is_available()``), the CPU otherwise.

Output ``ft`` uint8 (pass, time, y, x): 0 thawed, 1 frozen, 255 missing, optional
``p_frozen``, CF flags, ``grid_mapping`` and provenance. The store is written template
first, then region by region (one time chunk of one pass at a time); finished regions are
recorded in the store, so a killed run resumes without recomputing them, and the store is
marked complete only when every region is there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass

import dask
import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import ValidationError
from ftcloud.io.stores import get_mapper, join, mark_complete, open_group, store_status
from ftcloud.metadata import FT_MISSING, ft_attrs, history_stamp, software_versions
from ftcloud.model.data import DYNAMIC_VARS, STATIC_VARS, open_inputs
from ftcloud.timeutil import PASSES, check_pass

log = logging.getLogger(__name__)

_MODEL_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
PROGRESS_ATTR = "ftcloud_regions_done"


@dataclass(frozen=True)
class InferencePlan:
    """How inference is cut up. ``tile`` (rows, cols) of None means: the space chunk, clipped to
    the window (one tile per block); it is resolved by :meth:`resolve` and saved with the product."""

    tile: tuple[int, int] | None = None
    halo: int = 3
    batch_days: int = 16
    time_chunk: int = 32
    space_chunk: int = 128
    fmt: str = "torchscript"
    write_probability: bool = True

    def __post_init__(self):
        if self.time_chunk % self.batch_days:
            raise ValidationError(f"time_chunk ({self.time_chunk}) must be a multiple of batch_days ({self.batch_days})")
        if self.tile is not None:
            object.__setattr__(self, "tile", tuple(int(t) for t in (self.tile if np.ndim(self.tile) else (self.tile, self.tile))))

    def resolve(self, shape: tuple[int, int], halo: int) -> "InferencePlan":
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


def cached_model(model_dir: str, pass_: str, fmt: str):
    """The model of this worker process: loaded (checksum-verified) on first use, then kept."""
    from ftcloud.model.export import load_model, read_card

    card = read_card(model_dir, pass_)
    key = (model_dir, pass_, fmt, card["files"][fmt]["sha256"])
    with _CACHE_LOCK:
        if key not in _MODEL_CACHE:
            module, _ = load_model(model_dir, pass_, fmt)
            dev = _device()
            _MODEL_CACHE[key] = (module.to(dev) if hasattr(module, "to") else module, dev)
        return _MODEL_CACHE[key]


def run_tiles(model, device, x: np.ndarray, tile: tuple[int, int], halo: int, batch_days: int) -> tuple[np.ndarray, np.ndarray]:
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
                xb[:n, ..., : h + 2 * halo, : w + 2 * halo] = x[b : b + n, ..., ty : ty + h + 2 * halo, tx : tx + w + 2 * halo]
                with torch.no_grad():
                    f, p = model(torch.from_numpy(xb).to(device))
                ft[b : b + n, ty : ty + h, tx : tx + w] = f[:n, halo : halo + h, halo : halo + w].cpu().numpy()
                pf[b : b + n, ty : ty + h, tx : tx + w] = p[:n, halo : halo + h, halo : halo + w].cpu().numpy()
    return ft, pf


def _block_fn(block: np.ndarray, *, model_dir: str, pass_: str, plan: InferencePlan) -> np.ndarray:
    """dask task: FT code and frozen probability of one overlapped block, as (time, 2, y, x).

    The ``step`` axis of the input block (one chunk) becomes the axis of the two outputs."""
    model, device = cached_model(model_dir, pass_, plan.fmt)
    ft, pf = run_tiles(model, device, block, plan.tile, plan.halo, plan.batch_days)
    return np.stack([ft.astype("f4"), pf], axis=1)


def predict_pass_array(store: str, model_dir: str, pass_: str, times, plan: InferencePlan, storage_options=None):
    """Lazy (time, y, x) uint8 FT and float32 p_frozen for one pass and the given days."""
    import dask.array as da

    from ftcloud.model.export import check_store_matches_card, read_card

    check_pass(pass_)
    card = read_card(model_dir, pass_)
    pred, statics = open_inputs(store, pass_, storage_options)
    check_store_matches_card(card, pred, statics, dict(statics.attrs), pass_, f"{store}")
    if card.get("halo", 0) > plan.halo:
        raise ValidationError(f"plan halo {plan.halo} is smaller than the model's receptive field {card['halo']}")
    pred = pred.sel(time=times)
    dyn = [pred[v].data.astype("f4") for v in DYNAMIC_VARS]  # (time, step, y, x)
    nt, ns, ny, nx = dyn[0].shape
    st = [da.broadcast_to(da.from_array(np.asarray(statics[v].values, "f4"))[None, None], (nt, ns, ny, nx)) for v in STATIC_VARS]
    sc = plan.space_chunk
    x = da.stack(dyn + st, axis=2).rechunk((plan.time_chunk, ns, len(dyn) + len(st), sc, sc))
    h = plan.halo
    xo = da.overlap.overlap(x, depth={0: 0, 1: 0, 2: 0, 3: h, 4: h}, boundary={0: "none", 1: "none", 2: "none", 3: np.nan, 4: np.nan})
    # overlap() may merge a last chunk smaller than the halo into its neighbour, so the output
    # chunks come from the overlapped array (every block has the halo on both sides); block
    # starts stay multiples of the space chunk, so tiles stay aligned
    core = [tuple(c - 2 * h for c in xo.chunks[a]) for a in (3, 4)]
    both = da.map_blocks(
        _block_fn, xo, model_dir=model_dir, pass_=pass_, plan=plan,
        drop_axis=[2], chunks=(xo.chunks[0], (2,), *core), dtype="f4",
        name=f"ftcloud-predict-{pass_}",
    )
    return both[:, 0].astype("u1"), both[:, 1], card


def product_template(window_ds: xr.Dataset, times, passes, plan: InferencePlan, attrs: dict) -> xr.Dataset:
    import dask.array as da

    ny, nx = window_ds.sizes["y"], window_ds.sizes["x"]
    shape = (len(passes), len(times), ny, nx)
    chunks = (1, plan.time_chunk, plan.space_chunk, plan.space_chunk)
    ds = xr.Dataset(
        {"ft": (("pass", "time", "y", "x"), da.full(shape, FT_MISSING, dtype="u1", chunks=chunks))},
        coords={"pass": ("pass", list(passes)), "time": ("time", pd.DatetimeIndex(times).values),
                "y": window_ds["y"], "x": window_ds["x"], "lat": window_ds["lat"], "lon": window_ds["lon"],
                "crs": window_ds["crs"]},
    )
    ds["ft"].attrs = ft_attrs("fused soil freeze/thaw state (ConvLSTM_FT)", "ftcloud ConvLSTM decision-level fusion of SMAP_E_FT and ESDR_FT heads")
    ds["ft"].encoding = {"_FillValue": None, "chunks": chunks}
    if plan.write_probability:
        ds["p_frozen"] = (("pass", "time", "y", "x"), da.full(shape, np.nan, dtype="f4", chunks=chunks))
        ds["p_frozen"].attrs = {"long_name": "fused frozen probability", "units": "1", "grid_mapping": "crs", "coordinates": "lat lon"}
        ds["p_frozen"].encoding = {"chunks": chunks}
    ds["time"].attrs = {"standard_name": "time", "long_name": "local solar date of the overpass", "axis": "T"}
    ds["time"].encoding = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    ds.attrs = attrs
    return ds


def predict(
    store: str,
    model_dir: str,
    out: str,
    *,
    start=None,
    end=None,
    passes=PASSES,
    plan: InferencePlan = InferencePlan(),
    storage_options=None,
    out_storage_options=None,
    progress: bool = True,
    client=None,
) -> dict:
    """Predict FT for every day in [start, end] and every pass into ``out`` (a zarr group URL)."""
    from tqdm.auto import tqdm

    from ftcloud.model.export import read_card

    era = open_group(store, "predictors/era5land", storage_options)
    statics = open_group(store, "statics", storage_options)
    times = pd.DatetimeIndex(era["time"].values)
    if start:
        times = times[times >= pd.Timestamp(start)]
    if end:
        times = times[times <= pd.Timestamp(end)]
    if len(times) == 0:
        raise ValidationError(f"{store}: no predictor days in {start}..{end}")
    cards = {p: read_card(model_dir, p) for p in passes}
    plan = plan.resolve((statics.sizes["y"], statics.sizes["x"]), max(c.get("halo", 0) for c in cards.values()))
    attrs = {
        "title": "ftcloud fused soil freeze/thaw product (ConvLSTM_FT)",
        "Conventions": "CF-1.8",
        "history": history_stamp(f"predict from {store}"),
        "source_store": store,
        "model_sha256": json.dumps({p: c["files"][plan.fmt]["sha256"] for p, c in cards.items()}),
        "inference_plan": plan.to_json(),
        "software": json.dumps(software_versions()),
        **{k: v for k, v in era.attrs.items() if k.startswith("ease2_") or k == "region"},
    }
    mapper = get_mapper(out, out_storage_options)
    status = store_status(out, out_storage_options)
    done: list = []
    if status is not None:
        import zarr

        g = zarr.open_group(mapper, mode="r")
        same = g.attrs.get("inference_plan") == attrs["inference_plan"] and g.attrs.get("model_sha256") == attrs["model_sha256"] \
            and g.attrs.get("source_store") == store and "time" in g and g["time"].shape[0] == len(times)
        if same:
            if status == "complete":
                log.info("%s is complete for these inputs; nothing to do", out)
                return {"out": out, "regions": 0, "skipped": True}
            done = json.loads(g.attrs.get(PROGRESS_ATTR, "[]"))
        else:
            status = None
    tmpl = product_template(statics, times, passes, plan, attrs)
    if status is None:
        tmpl.to_zarr(mapper, mode="w", compute=False, consolidated=False)
    import zarr

    g = zarr.open_group(mapper, mode="r+")
    regions = [(p, t0) for p in range(len(passes)) for t0 in range(0, len(times), plan.time_chunk)]
    todo = [r for r in regions if list(r) not in done]
    bar = tqdm(total=len(regions), initial=len(regions) - len(todo), desc="predict", unit="region", disable=not progress)
    t_start = time.perf_counter()
    arrays = {}
    for p_i, pass_ in enumerate(passes):
        arrays[p_i] = predict_pass_array(store, model_dir, pass_, times, plan, storage_options)
    for p_i, t0 in todo:
        t1 = min(t0 + plan.time_chunk, len(times))
        ft, pf, _ = arrays[p_i]
        piece = {"ft": ft[t0:t1]}
        if plan.write_probability:
            piece["p_frozen"] = pf[t0:t1]
        vals = dask.compute(*piece.values()) if client is None else client.compute(list(piece.values()), sync=True)
        for (name, _), v in zip(piece.items(), vals):
            g[name][p_i, t0:t1] = v
        done.append([p_i, t0])
        g.attrs[PROGRESS_ATTR] = json.dumps(done)
        bar.update(1)
    bar.close()
    mark_complete(out, out_storage_options)
    return {"out": out, "regions": len(todo), "seconds": time.perf_counter() - t_start, "days": len(times), "passes": list(passes)}
