"""Extremely randomized trees (ERT; the TPDC Qinghai-Tibet FT record): scikit-learn's
``ExtraTreesClassifier`` on multi-channel TB, terrain and land-surface-model soil temperature and moisture,
trained on a target FT product.

The TPDC record (``tpdc_ert_ft_dataset.txt``): AMSR-E/MWRI multi-channel TB + terrain + soil properties +
GLDAS soil temperature/moisture; target the SMOS FT product; a random 70 % / 15 % / 15 % split of the
samples; > 86 % overall accuracy on all three. Here: the store's multi-frequency TB, its statics (elevation,
terrain complexity, open water) and ERA5-Land ``stl1``/``swvl1`` at the hour before the overpass; target
SMAP_E_FT (the SMOS stand-in). The split is by pixel-day, as the seed describes: neighbouring days of one
pixel land in different splits, so the test accuracy is optimistic for new years or places (the report says
so; ``ftcloud validate`` scores the product on the held-out test period instead).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ftcloud.retrieve.base import Retrieval, as_ft, load_verified
from ftcloud.retrieve.sampling import sample_pixel_days

__all__ = ["ERT_FEATURES", "ERTRetrieval", "STEM", "split_70_15_15"]

#: the exported trees' file stem (``ert_model.pkl`` and its card ``ert_model.json``)
STEM = "ert_model"

ERT_FEATURES = (
    *(f"TB{f}{p}" for f in ("06.9", "10.7", "18.7", "23.8", "36.5", "89.0") for p in "HV"),
    "stl1",
    "swvl1",
    "elevation",
    "tci",
    "aow",
)


def split_70_15_15(n: int, seed: int) -> np.ndarray:
    """Split labels 0 train / 1 validation / 2 test for ``n`` samples: a seeded random permutation cut at
    70 % and 85 % (the TPDC record's ratios).

    >>> s = split_70_15_15(20, 0)
    >>> [int((s == k).sum()) for k in (0, 1, 2)]
    [14, 3, 3]
    """
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, np.int8)
    a, b = int(round(0.70 * n)), int(round(0.85 * n))
    out[order[:a]], out[order[a:b]], out[order[b:]] = 0, 1, 2
    return out


class ERTRetrieval(Retrieval):
    """ExtraTreesClassifier on ``features``; ``fit`` reports the accuracy on each split and the importances."""

    method, product = "ert", "ERT_FT"
    source = "extremely randomized trees (scikit-learn ExtraTreesClassifier) on TB, terrain and ERA5-Land soil"

    def __init__(
        self,
        features=ERT_FEATURES,
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_samples: int = 300_000,
        seed: int = 0,
    ):
        self.features = tuple(features)
        self.inputs = self.features
        self.n_estimators, self.min_samples_leaf = int(n_estimators), int(min_samples_leaf)
        self.max_samples, self.seed = int(max_samples), int(seed)
        self.model = None
        self.metrics: dict = {}
        # where predict's tasks load the fitted trees from (set by export/from_export): an fsspec URL, its
        # SHA-256 and storage options; None: the trees travel in the task graph (small models, tests)
        self.path = self.sha256 = None
        self.storage_options: dict | None = None

    def fit(self, ds: xr.Dataset, target: xr.DataArray | None = None):
        from sklearn.ensemble import ExtraTreesClassifier

        from ftcloud.errors import ValidationError

        self._check(ds)
        if target is None:
            raise ValidationError("ert: training the trees needs a target FT (SMAP_E_FT in the store)")
        X, y, _ = sample_pixel_days(ds, self.features, target, max_samples=self.max_samples, seed=self.seed)
        idx = np.arange(y.size)
        if idx.size < 100 or len(np.unique(y[idx])) < 2:
            raise ValidationError(
                f"ert: {idx.size} valid samples with both classes are needed; the fit period has too few"
            )
        split = split_70_15_15(idx.size, self.seed)
        self.model = ExtraTreesClassifier(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=1
        )
        tr = idx[split == 0]
        self.model.fit(X[tr], y[tr])
        acc = {}
        for k, name in enumerate(("train", "validation", "test")):
            s = idx[split == k]
            acc[name] = {"accuracy": float((self.model.predict(X[s]) == y[s]).mean()), "n": int(s.size)}
        self.metrics = {
            "split": "random 70/15/15 of valid pixel-days (seeded)",
            "seed": self.seed,
            "accuracy": acc,
            "feature_importances": dict(
                sorted(zip(self.features, map(float, self.model.feature_importances_)), key=lambda kv: -kv[1])
            ),
        }
        return self

    # -- export -------------------------------------------------------------------------------
    def export(self, model_dir: str) -> dict:
        """The fitted trees as a pickle and a JSON card with its SHA-256 (loaded only when it matches)."""
        import json
        import os
        import pickle

        import sklearn

        from ftcloud.errors import ValidationError

        if self.model is None:
            raise ValidationError("ert: export before fit")
        os.makedirs(model_dir, exist_ok=True)
        path = os.path.join(model_dir, STEM + ".pkl.zlib")
        with open(path + ".tmp", "wb") as f:  # pickled straight into the compressor: no second copy of the trees
            w = _ZlibWriter(f)
            pickle.dump(self.model, w, protocol=5)
            w.close()
        os.replace(path + ".tmp", path)
        card = {
            "model": "scikit-learn ExtraTreesClassifier (ftcloud ERT family), pickled (protocol 5), zlib-compressed",
            "sklearn_version": sklearn.__version__,
            "features": list(self.features),
            "metrics": self.metrics,
            "files": {"pickle": {"name": STEM + ".pkl.zlib", "sha256": w.sha256.hexdigest()}},
        }
        with open(os.path.join(model_dir, STEM + ".json.tmp"), "w") as f:
            json.dump(card, f, indent=2)
        os.replace(os.path.join(model_dir, STEM + ".json.tmp"), os.path.join(model_dir, STEM + ".json"))
        self.path, self.sha256 = path, card["files"]["pickle"]["sha256"]
        return card

    @classmethod
    def from_export(cls, model_dir: str, storage_options: dict | None = None) -> ERTRetrieval:
        """The exported trees of ``model_dir`` (a local folder or URL): the card is read, and predict's tasks
        load the pickle only after its SHA-256 matches the card's."""
        from ftcloud.errors import ValidationError
        from ftcloud.io.stores import join, read_json

        card_url = join(model_dir, STEM + ".json")
        card = read_json(card_url, storage_options)
        try:
            entry = card["files"]["pickle"]
            features = tuple(card["features"])
        except (TypeError, ValueError, KeyError) as e:
            raise ValidationError(f"{card_url}: not a readable ERT card ({type(e).__name__})") from None
        out = cls(features=features)
        out.path, out.sha256 = join(model_dir, str(entry["name"]).rsplit("/", 1)[-1]), str(entry["sha256"])
        out.storage_options, out.metrics = storage_options, card.get("metrics", {})
        out.model = load_verified(out.path, out.sha256, _unpickle, storage_options, fresh=True)  # checked now:
        return out  # a changed file fails here, in one line

    # -- predict ------------------------------------------------------------------------------
    def predict(self, ds: xr.Dataset) -> xr.DataArray:
        """FT of every pixel-day with finite features, chunk-wise: each task loads the exported, verified trees
        once per worker process (:func:`~ftcloud.retrieve.base.load_verified`), so the graph stays small."""
        from ftcloud.errors import ValidationError

        self._check(ds)
        if self.model is None and self.path is None:
            raise ValidationError("ert: predict before fit")
        url, sha, so = self.path, self.sha256, self.storage_options
        local = None if url else self.model  # unexported trees travel in the graph (small models, tests)

        def block(*arrays):
            model = local if local is not None else load_verified(url, sha, _unpickle, so)
            X = np.stack([np.asarray(a, "f4").ravel() for a in arrays], axis=1)
            ok = np.isfinite(X).all(axis=1)
            out = np.full(X.shape[0], 255, np.uint8)
            if ok.any():
                out[ok] = model.predict(X[ok]).astype(np.uint8)
            return out.reshape(arrays[0].shape)

        feats = self.features
        like = ds[[f for f in feats if f.startswith("TB")][0]]
        args = [ds[f].broadcast_like(like).transpose(*like.dims) for f in feats]
        if like.chunks is not None:
            args = [a.chunk(dict(zip(like.dims, like.chunks))) for a in args]
        codes = xr.apply_ufunc(block, *args, dask="parallelized", output_dtypes=[np.uint8])
        return as_ft(codes == 1, codes <= 1, self.product, self.source)


def _unpickle(data: bytes):
    """The trees from the verified bytes of :meth:`ERTRetrieval.export` (zlib-compressed pickle)."""
    import pickle
    import zlib

    return pickle.loads(zlib.decompress(data))


class _ZlibWriter:
    """A binary file wrapper that zlib-compresses (level 1) what is written and hashes the compressed bytes."""

    def __init__(self, f):
        import hashlib
        import zlib

        self.f, self.z, self.sha256 = f, zlib.compressobj(1), hashlib.sha256()

    def write(self, b) -> int:
        mv = memoryview(b)  # pickle protocol 5 also writes PickleBuffers (large arrays), without a len()
        c = self.z.compress(mv)
        self.f.write(c)
        self.sha256.update(c)
        return mv.nbytes

    def close(self) -> None:
        c = self.z.flush()
        self.f.write(c)
        self.sha256.update(c)
