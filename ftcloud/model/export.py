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
import subprocess
import sys
import warnings

import numpy as np

from ftcloud import layout
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
    base = os.path.join(model_dir, f"{layout.MODEL_STEM}_{pass_}")
    return {"torchscript": base + ".ts.pt", "export": base + ".pt2", "card": base + ".json"}


#: scripts and saves a pickled eager model in a fresh interpreter (argv: eager file, TorchScript file)
_SCRIPT_CHILD = """
import sys, warnings
import torch
warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
model = torch.load(sys.argv[1], map_location="cpu", weights_only=False).eval()
torch.jit.script(model).save(sys.argv[2])
"""


def _script_in_process(model, path: str) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        torch.jit.script(model).save(path)


def save_torchscript(model, path: str) -> None:
    """Save ``model`` as TorchScript at ``path`` (atomically), byte-identical for the same weights.

    ``torch.jit.script`` run in this process is not reproducible byte for byte: it collects a
    module's constants in a Python ``set`` (``torch.jit._recursive``), so the order of the
    ``Final`` attributes in the generated code follows the per-process string-hash seed; and it
    reuses the types of modules scripted earlier in the process, so class names get
    ``___torch_mangle_<n>`` suffixes that depend on what ran before. (The ``.data/serialization_id``
    record is derived from the records' CRCs and the zip timestamps are fixed, so they follow.)
    The model is therefore scripted in a fresh interpreter with ``PYTHONHASHSEED=0``. If that
    cannot run (e.g. a model class that does not pickle), it is scripted here, with a warning.
    """
    import torch

    tmp, eager = path + ".tmp", path + ".eager.tmp"
    why = None
    try:
        torch.save(model, eager)
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT_CHILD, eager, tmp], env=env, capture_output=True, text=True, timeout=900
        )
        if proc.returncode != 0 or not os.path.exists(tmp):
            why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    except Exception as e:  # noqa: BLE001 - any failure of the child falls back to scripting here
        why = f"{type(e).__name__}: {e}"
    finally:
        if os.path.exists(eager):
            os.remove(eager)
    if why is not None:
        warnings.warn(
            f"{path}: TorchScript scripted in this process ({why}); its bytes may differ between runs",
            RuntimeWarning,
            stacklevel=2,
        )
        _script_in_process(model, tmp)
    os.replace(tmp, path)


def export_model(model, model_dir: str, pass_: str, card_fields: dict, example_shape=(2, 3, 8, 24, 24)) -> dict:
    """Write TorchScript, torch.export program and card for one pass; returns the card."""
    import torch

    os.makedirs(model_dir, exist_ok=True)
    p = _paths(model_dir, pass_)
    model = model.eval()
    example = torch.zeros(example_shape)
    save_torchscript(model, p["torchscript"])
    batch = torch.export.Dim("batch", min=1, max=4096)
    ny = torch.export.Dim("y", min=4, max=4096)
    nx = torch.export.Dim("x", min=4, max=4096)
    ep = torch.export.export(model, (example,), dynamic_shapes=({0: batch, 3: ny, 4: nx},))
    for node in ep.graph.nodes:  # source file paths of this machine: the bytes would depend on the install
        node.meta.pop("stack_trace", None)
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
            "store_groups": {"dynamic": layout.ERA5LAND, "static": layout.STATICS},
        },
        "outputs": {
            "ft": "uint8 (batch, y, x): 0 thawed, 1 frozen, 255 missing",
            "p_frozen": "float32 (batch, y, x): frozen probability of the head whose decision is taken",
        },
        "class_codes": {"thawed": 0, "frozen": 1, "missing": 255},
        "normalisation": {
            "mean": [float(v) for v in np.asarray(model.mean).ravel()],
            "std": [float(v) for v in np.asarray(model.std).ravel()],
        },
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


class ModelCardError(ValidationError):
    """A model card that is not JSON, lacks a required field or names files outside its folder."""


#: the files a card lists, keyed as in ``card["files"]``
FILE_KEYS = ("torchscript", "export")


def _card_file_name(p: str, key: str, entry) -> str:
    """The plain file name of one ``files`` entry, confined to the card's folder."""
    if not isinstance(entry, dict):
        raise ModelCardError(f"{p}: files.{key} is not an object with 'name' and 'sha256'")
    name, sha = entry.get("name"), entry.get("sha256")
    if not isinstance(name, str) or not name:
        raise ModelCardError(f"{p}: files.{key} has no file name")
    seps = {"/", "\\"} | ({os.sep, os.altsep} - {None})
    if any(c in name for c in seps) or name in (".", "..") or os.path.isabs(name) or "\0" in name:
        raise ModelCardError(
            f"{p}: files.{key} name {name!r} is not a plain file name in the model folder "
            "(paths, '..' and absolute names are refused)"
        )
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ModelCardError(f"{p}: files.{key} has no SHA-256 (64 lowercase hex digits)")
    return name


def read_card(model_dir: str, pass_: str) -> dict:
    """The card of one pass, checked: a JSON object with ``pass``, ``inputs`` and ``files`` (each file
    a plain name in ``model_dir`` with its SHA-256); any defect is one :class:`ModelCardError` line."""
    p = _paths(model_dir, pass_)["card"]
    if not os.path.exists(p):
        raise ValidationError(f"{p}: model card not found (expected beside the exported model; run `ftcloud train`)")
    try:
        with open(p, encoding="utf-8") as f:
            card = json.load(f)
    except UnicodeDecodeError as e:
        raise ModelCardError(f"{p}: model card is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ModelCardError(
            f"{p}: model card is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except OSError as e:
        raise ModelCardError(f"{p}: model card cannot be read ({e.strerror or e})") from None
    if not isinstance(card, dict):
        raise ModelCardError(f"{p}: model card is a JSON {type(card).__name__}, not an object")
    files = card.get("files")
    if not isinstance(files, dict):
        raise ModelCardError(f"{p}: model card has no 'files' object (names and SHA-256 of the model files)")
    for key in FILE_KEYS:
        if key not in files:
            raise ModelCardError(f"{p}: model card lists no {key} file under 'files'")
        _card_file_name(p, key, files[key])
    if card.get("pass") != pass_:
        raise ModelCardError(f"{p}: model card is for pass {card.get('pass')!r}, not {pass_!r}")
    inputs = card.get("inputs")
    if not isinstance(inputs, dict) or not all(
        isinstance(inputs.get(k), t) for k, t in (("channels", list), ("units", dict), ("static_layers", list))
    ):
        raise ModelCardError(f"{p}: model card has no 'inputs' object with channels, units and static_layers")
    return card


def verified_path(model_dir: str, pass_: str, fmt: str) -> tuple[str, dict]:
    """Path of the model file after its SHA-256 matched the card."""
    if fmt not in FILE_KEYS:
        raise ValidationError(f"unknown model format {fmt!r}; use {' or '.join(FILE_KEYS)}")
    card = read_card(model_dir, pass_)
    entry = card["files"][fmt]
    path = os.path.join(model_dir, entry["name"])  # a plain name (read_card), so inside model_dir
    if not os.path.isfile(path):
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
            raise ValidationError(
                f"{where}: predictor {c!r} has units {u!r}, the model card expects {card['inputs']['units'][c]!r}"
            )
    grid = card.get("grid", {})
    if grid.get("ease2_grid") and grid.get("ease2_grid") != window_attrs.get("ease2_grid"):
        raise ValidationError(
            f"{where}: store grid {window_attrs.get('ease2_grid')!r} differs from the model's "
            f"{grid.get('ease2_grid')!r}"
        )
