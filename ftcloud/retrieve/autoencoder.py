"""The convolutional autoencoder that treats thaw as an anomaly (``related_abstracts.txt``, first abstract):
reconstruct short SMAP TB series; a contrastive loss makes the reconstruction good in peak winter (frozen:
"normal") and bad in peak summer (thawed: "anomaly"); the frozen probability follows from the error.

* input: the trailing ``window`` days (default 5) of TB H and V ending on the day, per pixel and pass,
  standardised with the fit period's mean and std (gaps of up to 3 days filled by interpolation in time;
  a day without its own TB is missing, as in the SMAP product);
* network: Conv1d 2->8 (k 3) -> ReLU -> Conv1d 8->2 (k 1, the bottleneck) -> ReLU -> Conv1d 2->8 (k 3) ->
  ReLU -> Conv1d 8->2 (k 3); error = mean squared reconstruction error of the window;
* loss: ``mean(err_winter) + mean(relu(margin - err_summer))`` over windows ending in January-February and
  July-August of the fit period (the abstract's peak winter / peak summer; the margin 1.0 is assumed);
* probability: ``p_frozen = sigmoid((log thr - log err) / s)`` with ``thr`` the geometric mean of the fit
  period's median winter and summer errors and ``s`` a quarter of their log distance; frozen where p > 0.5.

The network and the calibration are one module, exported like the ConvLSTM (TorchScript and torch.export,
a JSON card with both files' SHA-256; loaded only when the checksum matches) and applied chunk-wise with
dask (each task loads the verified module once per process).

Memory is bounded by a block of days, never by the period or the region: ``fit`` streams the fit period in
time blocks and keeps a uniform sample of windows (bottom-k on hashed keys, :mod:`.sampling`); ``predict``
maps over the store's chunks with a halo of ``window - 1 + GAP_LIMIT`` days before each chunk, which makes
every chunk's windows exactly those of the whole series (a filled day lies at most ``GAP_LIMIT`` days after
an observed one, and a window is used only where its last day is observed).
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

from ftcloud.retrieve.base import Retrieval, as_ft, load_verified

__all__ = ["AutoencoderRetrieval", "WINDOW", "windows"]

WINDOW = 5
MARGIN = 1.0
PEAK_WINTER = (1, 2)
PEAK_SUMMER = (7, 8)
STEM = "ft_autoencoder"
#: the longest run of missing days filled by interpolation inside a window
GAP_LIMIT = 3


def _fill_gaps(x: np.ndarray, limit: int = GAP_LIMIT) -> np.ndarray:
    """Linear interpolation along axis 0 across gaps of at most ``limit`` days (longer gaps stay NaN)."""
    import pandas as pd

    flat = x.reshape(x.shape[0], -1)
    df = pd.DataFrame(flat)
    filled = df.interpolate(axis=0, limit=limit, limit_area="inside").to_numpy()
    return filled.reshape(x.shape)


def windows(tb: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Trailing windows: ``tb`` (time, 2, n) -> (time, n, 2, window); the first ``window - 1`` days NaN.

    >>> w = windows(np.arange(6, dtype="f4").reshape(3, 2, 1), window=2)
    >>> w.shape, w[1, 0].tolist()
    ((3, 1, 2, 2), [[0.0, 2.0], [1.0, 3.0]])
    """
    t, c, n = tb.shape
    out = np.full((t, n, c, window), np.nan, "f4")
    for k in range(window):
        lag = window - 1 - k
        out[lag:, :, :, k] = np.moveaxis(tb[: t - lag], 1, 2) if lag else np.moveaxis(tb, 1, 2)
    return out


def _network():
    from ftcloud.retrieve._ae_net import AE  # torch only here: the other families need none

    return AE()


class AutoencoderRetrieval(Retrieval):
    """Thaw as an anomaly of a TB-window autoencoder (SMAP ``tbh``/``tbv``); ``fit`` trains and calibrates it,
    ``export``/``from_export`` write and read it with a checksummed card."""

    method, product, inputs = "autoencoder", "AE_FT", ("tbh", "tbv")
    source = "convolutional autoencoder, thaw as anomaly, contrastive loss (SMAP L-band TB windows)"

    def __init__(self, window: int = WINDOW, epochs: int = 30, max_samples: int = 40_000, seed: int = 0):
        self.window, self.epochs, self.max_samples, self.seed = int(window), int(epochs), int(max_samples), int(seed)
        self.model = None
        self.path = None  # the verified TorchScript file predict loads (set by export/from_export) ...
        self.sha256 = None  # ... and its SHA-256, checked again wherever a task loads it
        self.storage_options: dict | None = None  # (the path is an fsspec URL: a remote worker reads it)
        self.metrics: dict = {}

    # -- data ---------------------------------------------------------------------------------
    @property
    def halo(self) -> int:
        """Days before a block that make its windows exact: ``window - 1 + GAP_LIMIT``."""
        return self.window - 1 + GAP_LIMIT

    def window_errors(self, ds: xr.Dataset) -> xr.DataArray:
        """The reconstruction error of every pixel-day's trailing window (pass, time, y, x), NaN where none;
        lazy and chunk-wise where ``ds`` is dask-backed (as :meth:`predict`)."""
        from ftcloud.errors import ValidationError

        if self.model is None:
            raise ValidationError("autoencoder: window errors before fit")
        model, window = self.model, self.window
        return self._map(ds, lambda h, v: _block_apply(model.error, h, v, window))

    def _map(self, ds: xr.Dataset, fn) -> xr.DataArray:
        """``fn(h, v)`` on (pass, time, y, x) blocks of TB H and V, each with the halo days before it."""
        h = ds["tbh"].transpose("pass", "time", "y", "x")
        v = ds["tbv"].transpose("pass", "time", "y", "x")
        if h.chunks is None:
            data = fn(np.asarray(h.values, "f4"), np.asarray(v.values, "f4"))
        else:
            import dask.array as da

            tchunks = h.chunks[1]
            if len(tchunks) > 1 and min(tchunks[:-1]) < self.halo:  # a halo must fit in the previous chunk
                h, v = h.chunk({"time": max(32, self.halo)}), v.chunk({"time": max(32, self.halo)})
            v = v.chunk(dict(zip(v.dims, h.chunks)))
            data = da.map_overlap(
                lambda a, b: fn(np.asarray(a, "f4"), np.asarray(b, "f4")),
                h.data,
                v.data,
                depth={1: (self.halo, 0)},
                boundary="none",
                trim=True,
                dtype="f4",
                meta=np.empty((0, 0, 0, 0), "f4"),
            )
        return h.copy(data=data).rename("p")

    def _sample_windows(self, ds: xr.Dataset, rng_seed: int, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """A uniform sample (at most ``max_samples``) of the fit period's valid windows ending in peak winter
        (label 0) or peak summer (label 1), streamed in blocks of days with their halo (by bands of rows or
        columns where a chunk of days is over the budget): (X (n, 2, window), y)."""
        from ftcloud.retrieve.sampling import BLOCK_BYTES, INDEX_BYTES, blocks, splitmix64

        h = ds["tbh"].transpose("time", "pass", "y", "x")
        v = ds["tbv"].transpose("time", "pass", "y", "x")
        n_days, n_pass, ny, nx = h.shape
        # bytes per cell-day of a block: H and V, their gap-filled copies and the windows of its peak days
        day_ranges, row_ranges, col_ranges = blocks(h, 4 * (2 + 2 + 2 * self.window) + INDEX_BYTES, BLOCK_BYTES)
        months = ds["time"].dt.month.values
        label_of = np.full(13, -1, np.int8)
        label_of[list(PEAK_WINTER)], label_of[list(PEAK_SUMMER)] = 0, 1
        keys = np.empty(0, "u8")
        X = np.empty((0, 2, self.window), "f4")
        y = np.empty(0, "i1")
        for a, b in day_ranges:
            lab = label_of[months[a:b]]
            if progress is not None:
                progress(b - a)
            if not (lab >= 0).any():
                continue
            a0 = max(0, a - self.halo)
            days = np.flatnonzero(lab >= 0) + (a - a0)  # the block's peak days, in the halo'd block
            days = days[days >= self.window - 1]
            if days.size == 0:
                continue
            for (r0, r1), (c0, c1) in ((r, c) for r in row_ranges for c in col_ranges):
                sel = {"time": slice(a0, b), "y": slice(r0, r1), "x": slice(c0, c1)}
                tb = np.stack([np.asarray(x.isel(sel).values, "f4") for x in (h, v)], axis=2)  # (t, p, 2, y, x)
                tb = np.moveaxis(tb, 1, 0).reshape(n_pass, b - a0, 2, -1)  # (pass, time, 2, cells of the band)
                for i in range(n_pass):
                    own = np.isfinite(tb[i]).all(axis=1)
                    w = _windows_at(_fill_gaps(tb[i]), days, self.window)  # (ndays, cells, 2, window)
                    ok = np.isfinite(w).all(axis=(2, 3)) & own[days]
                    d_idx, px = np.nonzero(ok)
                    # the window's position in the whole (time, pass, y, x) array: a key independent of the block
                    gidx = np.ravel_multi_index(
                        (days[d_idx] + a0, np.full(px.size, i), px // (c1 - c0) + r0, px % (c1 - c0) + c0),
                        (n_days, n_pass, ny, nx),
                    )
                    k = splitmix64(gidx.astype("u8"), rng_seed)
                    if keys.size >= self.max_samples:  # only windows below the current k-th key can enter
                        below = k < keys.max()
                        d_idx, px, k = d_idx[below], px[below], k[below]
                    keys = np.concatenate([keys, k])
                    X = np.concatenate([X, w[d_idx, px]])
                    y = np.concatenate([y, label_of[months[days[d_idx] + a0]]])
                    if keys.size > self.max_samples:
                        keep = np.argpartition(keys, self.max_samples - 1)[: self.max_samples]
                        keys, X, y = keys[keep], X[keep], y[keep]
                    del w
        order = np.argsort(keys, kind="stable")
        return X[order], y[order]

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        import torch

        from ftcloud.errors import ValidationError

        self._check(ds)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        X, y = self._sample_windows(ds, self.seed)
        if (y == 0).sum() < 50 or (y == 1).sum() < 50:
            raise ValidationError(
                "autoencoder: the fit period needs TB windows in peak winter (Jan-Feb) and peak summer (Jul-Aug); "
                f"it has {(y == 0).sum()} and {(y == 1).sum()}"
            )
        model = _network()
        flat = X.transpose(1, 0, 2).reshape(2, -1)
        model.mean.copy_(torch.tensor(flat.mean(axis=1)))
        model.std.copy_(torch.tensor(flat.std(axis=1) + 1e-3))
        xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype("f4"))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        n = len(y)
        for _ in range(self.epochs):
            order = torch.from_numpy(rng.permutation(n))
            for b in range(0, n, 1024):
                idx = order[b : b + 1024]
                err = model.error(xt[idx])
                yb = yt[idx]
                loss = (err * (1 - yb)).sum() / max(float((1 - yb).sum()), 1.0) + (
                    torch.relu(MARGIN - err) * yb
                ).sum() / max(float(yb.sum()), 1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            err = model.error(xt).numpy()
        mw, ms = float(np.median(err[y == 0])), float(np.median(err[y == 1]))
        log_thr = 0.5 * (np.log(mw + 1e-6) + np.log(ms + 1e-6))
        scale = max(abs(np.log(ms + 1e-6) - np.log(mw + 1e-6)) / 4, 1e-3)
        model.log_thr.fill_(float(log_thr))
        model.scale.fill_(float(scale))
        self.model = model
        self.metrics = {
            "fit_windows": {"peak_winter": int((y == 0).sum()), "peak_summer": int((y == 1).sum())},
            "median_error": {"peak_winter": mw, "peak_summer": ms},
            "threshold_error": float(np.exp(log_thr)),
        }
        return self

    # -- export -------------------------------------------------------------------------------
    def export(self, model_dir: str) -> dict:
        """TorchScript and torch.export files plus a JSON card with their SHA-256 (as the ConvLSTM's)."""
        import torch

        from ftcloud.model.export import save_torchscript, sha256_file

        os.makedirs(model_dir, exist_ok=True)
        base = os.path.join(model_dir, STEM)
        save_torchscript(self.model, base + ".ts.pt")
        ep = torch.export.export(
            self.model,
            (torch.zeros(4, 2, self.window) + 250.0,),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 20)},),
        )
        for node in ep.graph.nodes:
            node.meta.pop("stack_trace", None)
        torch.export.save(ep, base + ".tmp.pt2")
        os.replace(base + ".tmp.pt2", base + ".pt2")
        card = {
            "model": "ftcloud TB-window convolutional autoencoder, thaw as anomaly",
            "inputs": {"shape": "(batch, 2, window) float32 TB in K: H, V", "window": self.window},
            "outputs": {"p_frozen": "float32 (batch,)"},
            "metrics": self.metrics,
            "torch_version": torch.__version__,
            "files": {
                "torchscript": {"name": STEM + ".ts.pt", "sha256": sha256_file(base + ".ts.pt")},
                "export": {"name": STEM + ".pt2", "sha256": sha256_file(base + ".pt2")},
            },
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(card, f, indent=2)
        os.replace(base + ".json.tmp", base + ".json")
        self.path, self.sha256 = base + ".ts.pt", card["files"]["torchscript"]["sha256"]
        return card

    @classmethod
    def from_export(cls, model_dir: str, storage_options: dict | None = None) -> AutoencoderRetrieval:
        """The exported autoencoder of ``model_dir`` (a local folder or any fsspec URL), its TorchScript file
        loaded only when its SHA-256 matches the card's."""
        from ftcloud.errors import ValidationError
        from ftcloud.io.stores import join, read_json

        card_url = join(model_dir, STEM + ".json")
        card = read_json(card_url, storage_options)
        try:
            entry = card["files"]["torchscript"]
            window = int(card["inputs"]["window"])
        except (TypeError, ValueError, KeyError) as e:
            raise ValidationError(f"{card_url}: not a readable autoencoder card ({type(e).__name__})") from None
        out = cls(window=window)
        out.path = join(model_dir, os.path.basename(str(entry["name"])))
        out.sha256, out.storage_options, out.metrics = str(entry["sha256"]), storage_options, card.get("metrics", {})
        try:
            out.model = load_verified(out.path, out.sha256, _load_torchscript, storage_options, fresh=True)
        except FileNotFoundError:
            raise ValidationError(f"{out.path}: missing; the card names it") from None
        return out

    # -- predict ------------------------------------------------------------------------------
    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        from ftcloud.errors import ValidationError

        self._check(ds)
        if self.model is None and self.path is None:
            raise ValidationError("autoencoder: predict before fit")
        window, url, sha, so = self.window, self.path, self.sha256, self.storage_options
        local = None if url else self.model  # an unexported module travels in the graph (tests)

        def block(h, v):
            m = local if local is not None else load_verified(url, sha, _load_torchscript, so)
            return _block_apply(m, h, v, window)

        p = self._map(ds, block)
        return as_ft(p > 0.5, p.notnull(), self.product, self.source)


#: windows per forward pass: bounds the activations' memory (a whole demo window at once took 5.5 GB)
BATCH = 65_536


def _batched(fn, w: np.ndarray) -> np.ndarray:
    """``fn`` over ``w`` (n, 2, window) in batches of :data:`BATCH`, without gradients."""
    import torch

    out = np.empty(len(w), "f4")
    with torch.no_grad():
        for a in range(0, len(w), BATCH):
            out[a : a + BATCH] = fn(torch.from_numpy(np.ascontiguousarray(w[a : a + BATCH]))).numpy()
    return out


def _load_torchscript(data: bytes):
    """A TorchScript module from verified bytes (:func:`~ftcloud.retrieve.base.load_verified`)."""
    import io

    from ftcloud.model.export import load_module

    return load_module(io.BytesIO(data), "torchscript")


def _windows_at(tb: np.ndarray, days: np.ndarray, window: int) -> np.ndarray:
    """The trailing windows ending on ``days`` (each >= window - 1) of ``tb`` (time, 2, n): (ndays, n, 2, window).

    >>> w = _windows_at(np.arange(6, dtype="f4").reshape(3, 2, 1), np.array([1, 2]), window=2)
    >>> w.shape, w[0, 0].tolist()
    ((2, 1, 2, 2), [[0.0, 2.0], [1.0, 3.0]])
    """
    lags = np.arange(-window + 1, 1)
    return np.moveaxis(tb[days[:, None] + lags[None, :]], (1, 2, 3), (3, 2, 1))  # (nd, w, 2, n) -> (nd, n, 2, w)


def _block_apply(fn, h: np.ndarray, v: np.ndarray, window: int) -> np.ndarray:
    """``fn`` ((batch, 2, window) TB -> (batch,)) on every observed day's gap-filled trailing window of the
    (pass, time, y, x) blocks ``h`` and ``v``; NaN where a day has no TB of its own or no full window."""
    tb = np.stack([h, v], axis=2)  # (pass, time, 2, y, x)
    p_, t_ = tb.shape[:2]
    shp = tb.shape[3:]
    tb = tb.reshape(p_, t_, 2, -1).astype("f4", copy=False)
    out = np.full((p_, t_, tb.shape[-1]), np.nan, "f4")
    days = np.arange(window - 1, t_)
    for i in range(p_):
        if days.size == 0:
            break
        own = np.isfinite(tb[i]).all(axis=1)
        filled = _fill_gaps(tb[i])
        for d0 in range(0, days.size, 8):  # a few days at a time: windows are window x the block
            dd = days[d0 : d0 + 8]
            w = _windows_at(filled, dd, window)
            ok = np.isfinite(w).all(axis=(2, 3)) & own[dd]
            if ok.any():
                res = out[i][dd]
                res[ok] = _batched(fn, w[ok])
                out[i][dd] = res
    return out.reshape(p_, t_, *shp)
