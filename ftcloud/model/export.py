"""Export a trained pass model (TorchScript and ``torch.export``) with its JSON card; load it back safely.

The model directory for one pass holds::

    ft_convlstm_AM.ts.pt     TorchScript: torch.jit.load() runs it without ftcloud installed
    ft_convlstm_AM.pt2       torch.export program (torch.export.load(...).module())
    ft_convlstm_AM.json      the card: inputs (order, units), steps, statics, normalisation, class
                             codes, grid, training period, metrics, torch version, SHA-256 of each file

Loading checks each file's SHA-256 against the card before torch reads a byte of it, and
:func:`check_store_matches_card` checks that a store's predictors are what the card says.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings

import numpy as np

from ftcloud.errors import ValidationError
from ftcloud.model.data import CHANNELS, UNITS

CARD_VERSION = 1


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _paths(model_dir: str, pass_: str) -> dict:
    base = os.path.join(model_dir, f"ft_convlstm_{pass_}")
    return {"torchscript": base + ".ts.pt", "export": base + ".pt2", "card": base + ".json"}


def export_model(model, model_dir: str, pass_: str, card_fields: dict, example_shape=(2, 3, 8, 24, 24)) -> dict:
    """Write TorchScript, torch.export program and card for one pass; returns the card."""
    import torch

    os.makedirs(model_dir, exist_ok=True)
    p = _paths(model_dir, pass_)
    model = model.eval()
    example = torch.zeros(example_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        scripted = torch.jit.script(model)
        scripted.save(p["torchscript"] + ".tmp")
    os.replace(p["torchscript"] + ".tmp", p["torchscript"])
    batch = torch.export.Dim("batch", min=1, max=4096)
    ny = torch.export.Dim("y", min=4, max=4096)
    nx = torch.export.Dim("x", min=4, max=4096)
    ep = torch.export.export(model, (example,), dynamic_shapes=({0: batch, 3: ny, 4: nx},))
    tmp_pt2 = p["export"][: -len(".pt2")] + ".tmp.pt2"  # torch wants the .pt2 suffix
    torch.export.save(ep, tmp_pt2)
    os.replace(tmp_pt2, p["export"])
    card = {
        "card_version": CARD_VERSION,
        "model": "ftcloud dual-head ConvLSTM with decision-level softmax fusion",
        "pass": pass_,
        "inputs": {
            "shape": "(batch, step, channel, y, x) float32, physical units; NaN anywhere in a pixel's inputs gives 255",
            "channels": list(CHANNELS),
            "units": {c: UNITS[c] for c in CHANNELS},
            "steps_local_hours": {"AM": [3, 4, 5], "PM": [15, 16, 17]}[pass_],
            "static_layers": ["tci", "aow", "lat", "lon"],
            "store_groups": {"dynamic": "predictors/era5land", "static": "statics"},
        },
        "outputs": {
            "ft": "uint8 (batch, y, x): 0 thawed, 1 frozen, 255 missing",
            "p_frozen": "float32 (batch, y, x): frozen probability of the head whose decision is taken",
        },
        "class_codes": {"thawed": 0, "frozen": 1, "missing": 255},
        "normalisation": {"mean": [float(v) for v in np.asarray(model.mean).ravel()], "std": [float(v) for v in np.asarray(model.std).ravel()]},
        "torch_version": torch.__version__,
        "files": {
            "torchscript": {"name": os.path.basename(p["torchscript"]), "sha256": sha256_file(p["torchscript"])},
            "export": {"name": os.path.basename(p["export"]), "sha256": sha256_file(p["export"])},
        },
        **card_fields,
    }
    tmp = p["card"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(card, f, indent=2, default=str)
    os.replace(tmp, p["card"])
    return card


def read_card(model_dir: str, pass_: str) -> dict:
    p = _paths(model_dir, pass_)["card"]
    if not os.path.exists(p):
        raise ValidationError(f"{p}: model card not found (expected beside the exported model; run `ftcloud train`)")
    with open(p) as f:
        return json.load(f)


def verified_path(model_dir: str, pass_: str, fmt: str) -> tuple[str, dict]:
    """Path of the model file after its SHA-256 matched the card."""
    card = read_card(model_dir, pass_)
    key = {"torchscript": "torchscript", "export": "export"}[fmt]
    entry = card["files"][key]
    path = os.path.join(model_dir, entry["name"])
    if not os.path.exists(path):
        raise ValidationError(f"{path}: model file named by the card is missing")
    got = sha256_file(path)
    if got != entry["sha256"]:
        raise ValidationError(
            f"{path}: SHA-256 {got[:16]}... does not match the card's {entry['sha256'][:16]}...; "
            "the file was changed or corrupted after export. Refusing to load it."
        )
    return path, card


def load_module(f, fmt: str):
    """torch module from a verified model file (a path or a binary file object) of format ``fmt``."""
    import torch

    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(f, map_location="cpu")
    return torch.export.load(f).module()


def load_model(model_dir: str, pass_: str, fmt: str = "torchscript"):
    """Load a verified model as a callable ``x -> (ft, p_frozen)``; returns (module, card)."""
    path, card = verified_path(model_dir, pass_, fmt)
    return load_module(path, fmt), card


def check_store_matches_card(card: dict, pred, statics, window_attrs: dict, pass_: str, where: str) -> None:
    """Predictor names, units, grid and pass of a store must be what the model was trained on."""
    if card["pass"] != pass_:
        raise ValidationError(f"{where}: the model was trained for pass {card['pass']}, not {pass_}")
    for c in card["inputs"]["channels"]:
        ds = statics if c in card["inputs"]["static_layers"] else pred
        if c not in ds.variables:
            raise ValidationError(f"{where}: predictor {c!r} named by the model card is not in the store")
        u = ds[c].attrs.get("units")
        if u != card["inputs"]["units"][c]:
            raise ValidationError(f"{where}: predictor {c!r} has units {u!r}, the model card expects {card['inputs']['units'][c]!r}")
    grid = card.get("grid", {})
    if grid.get("ease2_grid") and grid.get("ease2_grid") != window_attrs.get("ease2_grid"):
        raise ValidationError(f"{where}: store grid {window_attrs.get('ease2_grid')!r} differs from the model's {grid.get('ease2_grid')!r}")
