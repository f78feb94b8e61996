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
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

from ftcloud.retrieve.base import Retrieval, as_ft

__all__ = ["AutoencoderRetrieval", "WINDOW", "windows"]

WINDOW = 5
MARGIN = 1.0
PEAK_WINTER = (1, 2)
PEAK_SUMMER = (7, 8)
STEM = "ft_autoencoder"


def _fill_gaps(x: np.ndarray, limit: int = 3) -> np.ndarray:
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
        self.metrics: dict = {}

    # -- data ---------------------------------------------------------------------------------
    def _series(self, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(pass, time, 2, n) gap-filled TB, and the (pass, time, n) mask of days with their own TB."""
        tb = np.stack([np.asarray(ds[v].transpose("pass", "time", "y", "x").values, "f4") for v in ("tbh", "tbv")], 2)
        p, t = tb.shape[:2]
        tb = tb.reshape(p, t, 2, -1)
        own = np.isfinite(tb).all(axis=2)
        return np.stack([_fill_gaps(tb[i]) for i in range(p)]), own

    def window_errors(self, ds: xr.Dataset) -> xr.DataArray:
        """The reconstruction error of every pixel-day's trailing window (pass, time, y, x), NaN where none."""

        tb, own = self._series(ds)
        out = np.full(own.shape, np.nan, "f4")
        for i in range(tb.shape[0]):
            w = windows(tb[i], self.window)
            ok = np.isfinite(w).all(axis=(2, 3)) & own[i]
            if ok.any():
                out[i][ok] = _batched(self.model.error, w[ok])
        like = ds["tbh"].transpose("pass", "time", "y", "x")
        return like.copy(data=out.reshape(like.shape))

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        import torch

        from ftcloud.errors import ValidationError

        self._check(ds)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        tb, own = self._series(ds)
        month = ds["time"].dt.month.values
        wins, labels = [], []
        for i in range(tb.shape[0]):
            w = windows(tb[i], self.window)
            ok = np.isfinite(w).all(axis=(2, 3)) & own[i]
            for months, lab in ((PEAK_WINTER, 0), (PEAK_SUMMER, 1)):
                sel = ok & np.isin(month, months)[:, None]
                wins.append(w[sel])
                labels.append(np.full(int(sel.sum()), lab, np.int8))
        X, y = np.concatenate(wins), np.concatenate(labels)
        if (y == 0).sum() < 50 or (y == 1).sum() < 50:
            raise ValidationError(
                "autoencoder: the fit period needs TB windows in peak winter (Jan-Feb) and peak summer (Jul-Aug); "
                f"it has {(y == 0).sum()} and {(y == 1).sum()}"
            )
        if len(y) > self.max_samples:
            keep = np.sort(rng.choice(len(y), self.max_samples, replace=False))
            X, y = X[keep], y[keep]
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
    def from_export(cls, model_dir: str) -> AutoencoderRetrieval:
        """The exported autoencoder, its TorchScript file loaded only when its SHA-256 matches the card."""
        from ftcloud.errors import ValidationError
        from ftcloud.model.export import load_module, sha256_file

        card_path = os.path.join(model_dir, STEM + ".json")
        try:
            with open(card_path) as f:
                card = json.load(f)
            entry = card["files"]["torchscript"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValidationError(f"{card_path}: not a readable autoencoder card ({type(e).__name__})") from None
        path = os.path.join(model_dir, os.path.basename(str(entry["name"])))
        if not os.path.isfile(path) or sha256_file(path) != entry.get("sha256"):
            raise ValidationError(f"{path}: missing, or its SHA-256 does not match the card's; refusing to load it")
        out = cls(window=int(card["inputs"]["window"]))
        out.model = load_module(path, "torchscript")
        out.path, out.sha256, out.metrics = path, entry["sha256"], card.get("metrics", {})
        return out

    # -- predict ------------------------------------------------------------------------------
    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        from ftcloud.errors import ValidationError

        self._check(ds)
        if self.model is None:
            raise ValidationError("autoencoder: predict before fit")
        window = self.window
        model = self.model
        path, sha = self.path, self.sha256

        def block(h, v):  # (pass, y, x, time) -> p_frozen, one chunk of pixels with its whole series

            m = _cached(path, sha) if path else model
            tb = np.stack([np.moveaxis(h, -1, 1), np.moveaxis(v, -1, 1)], 2)  # (pass, time, 2, y, x)
            p_, t_ = tb.shape[:2]
            shp = tb.shape[3:]
            tb = tb.reshape(p_, t_, 2, -1).astype("f4")
            out = np.full((p_, t_, tb.shape[-1]), np.nan, "f4")
            for i in range(p_):
                own = np.isfinite(tb[i]).all(axis=1)
                w = windows(_fill_gaps(tb[i]), window)
                ok = np.isfinite(w).all(axis=(2, 3)) & own
                if ok.any():
                    out[i][ok] = _batched(m, w[ok])
            return np.moveaxis(out.reshape(p_, t_, *shp), 1, -1)

        h = ds["tbh"].transpose("pass", "time", "y", "x")
        v = ds["tbv"].transpose("pass", "time", "y", "x")
        if h.chunks is not None:
            h, v = h.chunk({"time": -1}), v.chunk({"time": -1})
        p = xr.apply_ufunc(
            block,
            h,
            v,
            input_core_dims=[["time"], ["time"]],
            output_core_dims=[["time"]],
            dask="parallelized",
            output_dtypes=[np.float32],
        ).transpose("pass", "time", "y", "x")
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


_MODULES: dict = {}


def _cached(path: str, sha256: str):
    """The module at ``path``, loaded once per process (dask tasks share it) after its SHA-256 matched."""
    key = (path, sha256)
    if key not in _MODULES:
        from ftcloud.errors import ValidationError
        from ftcloud.model.export import load_module, sha256_file

        if sha256_file(path) != sha256:
            raise ValidationError(f"{path}: its SHA-256 does not match the card's; refusing to load it")
        _MODULES[key] = load_module(path, "torchscript")
    return _MODULES[key]
