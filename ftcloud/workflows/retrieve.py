"""``ftcloud retrieve``: one retrieval family of :mod:`ftcloud.retrieve` from the store's brightness
temperatures into an FT product zarr (``ft (pass, time, y, x)``, the ConvLSTM product's layout, so
``ftcloud validate``/``trends`` read it), written beside and swapped in (:mod:`ftcloud.io.transaction`).

The family learns (references, discriminant functions, trees) on the fit period, by default every day of
the store before the paper's test split (2018-04-01), and predicts every day; the product's
``ftcloud_retrieval`` attribute (one JSON) records the method, its parameters, the fit period and its fit
metrics (ERT: the 70/15/15 accuracies and the feature importances).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
import xarray as xr

from ftcloud import layout
from ftcloud.errors import MissingVariableError, ValidationError
from ftcloud.io.secrets import redact_url
from ftcloud.layout import Store, as_store
from ftcloud.study import TEST_PERIOD

log = logging.getLogger(__name__)

__all__ = ["METHODS", "methods_for", "retrieval_inputs", "retrieve"]

#: method name -> (the family's class path, the store groups it reads, the extra package it needs)
METHODS = {
    "npr": ("ftcloud.retrieve.threshold:NPRRetrieval", (layout.TB_SMAP,), None),
    "msta": ("ftcloud.retrieve.threshold:MSTARetrieval", (layout.TB_MULTIFREQ,), None),
    "dia": ("ftcloud.retrieve.threshold:DIARetrieval", (layout.TB_MULTIFREQ,), None),
    "dfa": ("ftcloud.retrieve.dfa:DFARetrieval", (layout.TB_MULTIFREQ, layout.SMAP_E_FT), None),
    "ert": (
        "ftcloud.retrieve.ert:ERTRetrieval",
        (layout.TB_MULTIFREQ, layout.SMAP_E_FT, layout.ERA5LAND, layout.STATICS),
        "sklearn",
    ),
    "autoencoder": ("ftcloud.retrieve.autoencoder:AutoencoderRetrieval", (layout.TB_SMAP,), "torch"),
}
#: where a learned family's exported model lives inside its product (the autoencoder's TorchScript, torch.export
#: and SHA-256 card: ``AutoencoderRetrieval.from_export(PRODUCT/model)``)
MODEL_DIR = "model"
#: the ERA5-Land step the ERT reads (the hour before the overpass: 05 h / 17 h local solar time)
ERA5_STEP = 2


def _family(method: str):
    import importlib

    mod, _, cls = METHODS[method][0].partition(":")
    return getattr(importlib.import_module(mod), cls)


def methods_for(store: str | Store, storage_options: dict | None = None, *, installed_only: bool = True) -> list[str]:
    """The methods whose inputs the store holds (and, with ``installed_only``, whose packages are installed), in
    :data:`METHODS` order."""
    import importlib.util

    from ftcloud.io.stores import store_status

    st = as_store(store, storage_options)
    out = []
    for m, (_, groups, pkg) in METHODS.items():
        if all(store_status(st.group(g), st.storage_options) == "complete" for g in groups) and (
            pkg is None or not installed_only or importlib.util.find_spec(pkg) is not None
        ):
            out.append(m)
    return out


def retrieval_inputs(store: Store, method: str) -> tuple[xr.Dataset, xr.DataArray | None]:
    """The inputs (``(pass, time, y, x)`` variables, lazy) and the target FT (or None) of ``method``."""
    groups = METHODS[method][1]
    parts = []
    if layout.TB_SMAP in groups:
        parts.append(store.open(layout.TB_SMAP)[["tbh", "tbv"]])
    if layout.TB_MULTIFREQ in groups:
        parts.append(store.open(layout.TB_MULTIFREQ).drop_vars("crs", errors="ignore"))
    ds = xr.merge([p.drop_vars([c for c in ("lat", "lon", "crs") if c in p.coords]) for p in parts])
    ds = ds.transpose("pass", "time", "y", "x")
    times = ds["time"]
    if layout.ERA5LAND in groups:
        era = store.open(layout.ERA5LAND).isel(step=ERA5_STEP)[["stl1", "swvl1"]]
        era = era.drop_vars([c for c in era.coords if c not in ("pass", "time", "y", "x")])
        ds = ds.assign({k: era[k].sel(time=times).transpose("pass", "time", "y", "x") for k in ("stl1", "swvl1")})
    if layout.STATICS in groups:
        st = store.open(layout.STATICS)
        for k in ("elevation", "tci", "aow"):
            if k not in st:
                raise MissingVariableError(f"{store.group(layout.STATICS)}: no {k!r}, which {method} needs")
            ds[k] = st[k].drop_vars([c for c in st[k].coords if c not in ("y", "x")])
    target = None
    if layout.SMAP_E_FT in groups:
        t = store.open(layout.SMAP_E_FT)["smap_e_ft"].transpose("pass", "time", "y", "x")
        target = t.reindex(time=times.values, fill_value=255).drop_vars(
            [c for c in t.coords if c not in ("pass", "time", "y", "x")]
        )
    return ds, target


def _fit_days(times: pd.DatetimeIndex, fit_period) -> pd.DatetimeIndex:
    if fit_period is not None:
        a, b = (pd.Timestamp(x) for x in fit_period)
        sel = times[(times >= a) & (times <= b)]
        if sel.empty:
            raise ValidationError(
                f"retrieve: the fit period {fit_period[0]} .. {fit_period[1]} holds no day of the store "
                f"({times[0]:%Y-%m-%d} .. {times[-1]:%Y-%m-%d})"
            )
        return sel
    before = times[times < pd.Timestamp(TEST_PERIOD[0])]
    if before.size >= 60:
        return before
    log.warning(
        "retrieve: fewer than 60 days before the test split (%s); fitting on every day of the store",
        TEST_PERIOD[0],
    )
    return times


def retrieve(
    store: str | Store,
    method: str,
    out: str | Store,
    *,
    fit_period: tuple[str, str] | None = None,
    storage_options: dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fit ``method`` and write its FT product to ``out``; returns a summary (method, days, fit metrics)."""
    from ftcloud.core.metadata import FT_ENCODING, cf_globals, describe_coordinates, history_stamp
    from ftcloud.io.stores import get_mapper, mark_complete
    from ftcloud.io.transaction import check_replaceable, discard, promote, recover, staging_url
    from ftcloud.workflows._common import _Stages

    if method not in METHODS:
        raise ValidationError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    pkg = METHODS[method][2]
    if pkg is not None:
        import importlib.util

        if importlib.util.find_spec(pkg) is None:
            raise ValidationError(f"--method {method} needs the {pkg} package: pip install 'ftcloud[retrieve]'")
    st, dst = as_store(store, storage_options), as_store(out, storage_options)
    t0 = time.perf_counter()
    stages = _Stages(["open", "fit", "predict"], f"retrieve {method}", progress)
    stages.start("open")
    ds, target = retrieval_inputs(st, method)
    times = pd.DatetimeIndex(ds["time"].values)
    fit_days = _fit_days(times, fit_period)
    stages.done("open")
    stages.start("fit")
    kwargs = {"seed": seed} if method in ("dfa", "ert", "autoencoder") else {}
    family = _family(method)(**kwargs)
    fit_ds = ds.sel(time=fit_days)
    fit_target = None if target is None else target.sel(time=fit_days)
    family.fit(fit_ds, fit_target)  # streamed from the store in blocks of days (memory: a block, not the period)
    model_card, model_tmp = None, None
    try:
        if hasattr(family, "export"):  # ERT's trees, the autoencoder's module: exported with a checksummed card;
            model_tmp = tempfile.mkdtemp(prefix=f"ftcloud-{method}-")  # predict's tasks load the verified file from
            card_ = family.export(model_tmp)  # the staged product's MODEL_DIR (a remote worker reads it there too)
            model_card = {"folder": MODEL_DIR, "files": card_["files"]}
        stages.done("fit")
        stages.start("predict")
        check_replaceable(dst.url, dst.storage_options)
        recover(dst.url, dst.storage_options)
        stage = staging_url(dst.url)
        discard(stage, dst.storage_options)
        if model_tmp is not None:
            from ftcloud.io.stores import join

            family.path = join(stage, MODEL_DIR, os.path.basename(family.path))
            family.storage_options = dst.storage_options
            # this process's tasks take the fitted object it just exported (no second copy of ERT's trees); a
            # cluster's workers read and verify the file; forgotten once the product is written
            from ftcloud.retrieve.base import remember

            remember(family.path, family.sha256, family.model)
            family.model = None
        ft = family.predict(ds).transpose("pass", "time", "y", "x")
        like = st.open(METHODS[method][1][0])
        coords = {k: like[k] for k in ("lat", "lon") if k in like.coords}
        card = {
            "method": method,
            "product": family.product,
            "source": family.source,
            "fit_period": [f"{fit_days[0]:%Y-%m-%d}", f"{fit_days[-1]:%Y-%m-%d}"],
            "fit_days": int(fit_days.size),
            "parameters": _parameters(family),
            "metrics": getattr(family, "metrics", {}) or {},
            **({"model": model_card} if model_card else {}),
        }
        prod = xr.Dataset({"ft": ft}).assign_coords(coords)
        prod["crs"] = like["crs"] if "crs" in like else xr.DataArray(np.int32(0))
        prod = describe_coordinates(prod.set_coords("crs"))
        prod["ft"].attrs["grid_mapping"] = "crs"
        # zarr chunks: 64 days of one pass by the store's tiles (each task writes whole chunks of its own tile)
        tchunk = min(64, ft.sizes["time"])
        cy, cx = (ft.chunks[2][0], ft.chunks[3][0]) if ft.chunks is not None else (ft.sizes["y"], ft.sizes["x"])
        prod["ft"].encoding = {**FT_ENCODING, "chunks": (1, tchunk, cy, cx)}
        for k in ("lat", "lon"):  # the store's own chunking of its 2-D coordinates does not travel
            if k in prod.coords:
                prod[k].encoding = {}
        prod.attrs = {
            **cf_globals(f"soil freeze/thaw state retrieved by {family.product} (ftcloud retrieve --method {method})"),
            "history": history_stamp(f"retrieve {method} from {redact_url(st.url)}"),
            "ftcloud_retrieval": json.dumps(card),
        }
        write = prod.chunk({"pass": 1, "time": tchunk, "y": cy, "x": cx}).to_zarr(
            get_mapper(stage, dst.storage_options), mode="w", consolidated=True, compute=False
        )
        if model_tmp is not None:  # after the skeleton (mode="w" clears the folder), before the tasks that read it
            from ftcloud.io.stores import filesystem, join

            fs, folder = filesystem(join(stage, MODEL_DIR), dst.storage_options)
            fs.makedirs(folder, exist_ok=True)  # a local folder; nothing on an object store
            for name in sorted(os.listdir(model_tmp)):
                fs.put(os.path.join(model_tmp, name), f"{folder}/{name}")
        write.compute()
        mark_complete(stage, dst.storage_options, record={"method": method})
        promote(stage, dst.url, dst.storage_options)
    finally:  # the local export and this process's copy of the model go, whatever happened
        if model_tmp is not None:
            shutil.rmtree(model_tmp, ignore_errors=True)
            from ftcloud.retrieve.base import forget

            forget(family.path, family.sha256)
    stages.done("predict")
    stages.close()
    return {
        "out": redact_url(dst.url),
        "method": method,
        "product": family.product,
        "days": int(times.size),
        "fit_period": card["fit_period"],
        "metrics": card["metrics"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _parameters(family) -> dict:
    out = {}
    for k, v in vars(family).items():
        if k in (
            "model",
            "metrics",
            "ref_frozen",
            "ref_thawed",
            "W",
            "c",
            "inputs",
            "path",
            "sha256",
            "storage_options",
        ):
            continue
        if isinstance(v, xr.DataArray):
            v = "per pixel" if v.ndim else float(v)
        if isinstance(v, (tuple, list)):
            v = list(v)
        if isinstance(v, (int, float, str, list, bool)) or v is None:
            out[k] = v
    if getattr(family, "W", None) is not None:
        out["discriminant_weights"] = np.asarray(family.W).round(6).tolist()
        out["discriminant_constants"] = np.asarray(family.c).round(6).tolist()
    return out
