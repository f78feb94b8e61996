"""Model files: byte-reproducible exports, robust cards, a report that never crashes on undefined values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ftcloud.errors import ValidationError  # noqa: E402
from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig  # noqa: E402
from ftcloud.model.export import ModelCardError, export_model, load_model, read_card, verified_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("ft_convlstm_AM.ts.pt", "ft_convlstm_AM.pt2")


def _model():
    torch.manual_seed(1)
    net = DualHeadConvLSTM(ModelConfig(hidden=(4,))).eval()
    return FusedFTModel(net, torch.linspace(0, 1, 8), torch.linspace(1, 2, 8)).eval()


class _no_raise:
    """Ignore warnings (torch 2.13 deprecates TorchScript) inside the block."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        return False


# a fresh interpreter exporting the same model as _model(), under a chosen string-hash seed
CHILD = """
import sys, warnings
warnings.simplefilter("ignore")
import torch
from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig
from ftcloud.model.export import export_model
torch.manual_seed(1)
net = DualHeadConvLSTM(ModelConfig(hidden=(4,))).eval()
export_model(FusedFTModel(net, torch.linspace(0, 1, 8), torch.linspace(1, 2, 8)).eval(), sys.argv[1], "AM", {"halo": 3})
"""


def _export_in_child(out: Path, hash_seed: str) -> None:
    env = dict(
        os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_exports_are_byte_identical_across_processes_hash_seeds_and_history(tmp_path):
    _export_in_child(tmp_path / "a", "1")
    _export_in_child(tmp_path / "b", "2")
    # this process has scripted other modules before (and its own hash seed): types cached, names mangled
    with _no_raise():
        torch.jit.script(torch.nn.Conv2d(3, 5, 7))
        torch.jit.script(
            FusedFTModel(DualHeadConvLSTM(ModelConfig(hidden=(6,), kernel=5)), torch.zeros(8), torch.ones(8))
        )
    card_c = export_model(_model(), str(tmp_path / "c"), "AM", {"halo": 3})
    for name in NAMES:
        a, b, c = ((tmp_path / d / name).read_bytes() for d in "abc")
        assert a == b, f"{name}: two fresh processes (hash seeds 1, 2) wrote different bytes"
        assert a == c, f"{name}: an export after other scripting in the same process differs"
    # the card's SHA-256 are those of the files, so they are reproducible too
    card_a = read_card(str(tmp_path / "a"), "AM")
    assert card_a["files"] == card_c["files"]
    # no source path of this machine inside the torch.export program
    assert str(ROOT).encode() not in (tmp_path / "a" / NAMES[1]).read_bytes()


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_reproducible_files_load_and_match_the_eager_model(tmp_path):
    m = _model()
    export_model(m, str(tmp_path), "AM", {"halo": 3})
    x = torch.randn(2, 3, 8, 10, 12)
    x[0, 1, 2, 3, 3] = float("nan")
    with torch.no_grad():
        ref_ft, ref_p = m(x)
    # plain torch loaders on the files, and ftcloud's loader after the SHA-256 check
    with _no_raise():
        ts = torch.jit.load(str(tmp_path / NAMES[0]))
    ep = torch.export.load(str(tmp_path / NAMES[1])).module()
    for mod in (
        ts,
        ep,
        load_model(str(tmp_path), "AM", "torchscript")[0],
        load_model(str(tmp_path), "AM", "export")[0],
    ):
        with torch.no_grad():
            ft, p = mod(x)
        np.testing.assert_array_equal(ft.numpy(), ref_ft.numpy())
        np.testing.assert_allclose(p.numpy(), ref_p.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)


def test_a_model_that_does_not_pickle_is_still_exported_with_a_warning(tmp_path):
    class Local(FusedFTModel):  # a class local to a function cannot be pickled for the fresh interpreter
        pass

    m = Local(DualHeadConvLSTM(ModelConfig(hidden=(4,))), torch.zeros(8), torch.ones(8)).eval()
    with pytest.warns(RuntimeWarning, match="scripted in this process"):
        export_model(m, str(tmp_path), "AM", {"halo": 3})
    mod, _ = load_model(str(tmp_path), "AM", "torchscript")
    x = torch.randn(1, 3, 8, 6, 6)
    with torch.no_grad():
        assert torch.equal(mod(x)[0], m(x)[0])
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


# --------------------------------------------------------------------------------------
# Model cards: one line for every defect, file names confined to the model folder


@pytest.fixture(scope="module")
def _exported_once(tmp_path_factory):
    d = tmp_path_factory.mktemp("export") / "model"
    card = export_model(_model(), str(d), "AM", {"halo": 3})
    return d, card


@pytest.fixture
def exported(_exported_once, tmp_path):
    """A private copy of one export (the tests below damage its card; exports are byte-identical
    run to run, tested above, so a copy stands for a fresh export and costs no second export)."""
    import copy
    import shutil

    src, card = _exported_once
    d = tmp_path / "model"
    shutil.copytree(src, d)
    return d, copy.deepcopy(card)


def _write_card(d: Path, text: str | bytes) -> Path:
    p = d / "ft_convlstm_AM.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _assert_one_line(e, card_path: Path, *words):
    msg = str(e.value)
    assert isinstance(e.value, ValidationError) and len(msg.splitlines()) == 1, msg
    assert str(card_path) in msg, msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", ("not valid JSON", "line 1")),
        ("[1, 2]", ("JSON list, not an object",)),
        (b'{"files": "\xff"}', ("not UTF-8 text",)),
        ("", ("not valid JSON",)),
    ],
)
def test_a_card_that_is_not_a_json_object_is_one_line(exported, text, words):
    d, _ = exported
    p = _write_card(d, text)
    for call in (lambda: read_card(str(d), "AM"), lambda: load_model(str(d), "AM", "export")):
        with pytest.raises(ModelCardError) as e:
            call()
        _assert_one_line(e, p, *words)


def test_a_card_without_files_is_one_line(exported):
    d, card = exported
    p = _write_card(d, json.dumps({k: v for k, v in card.items() if k != "files"}))
    with pytest.raises(ModelCardError) as e:
        verified_path(str(d), "AM", "torchscript")
    _assert_one_line(e, p, "no 'files' object")
    p = _write_card(d, json.dumps({**card, "files": {"torchscript": card["files"]["torchscript"]}}))
    with pytest.raises(ModelCardError) as e:
        verified_path(str(d), "AM", "torchscript")
    _assert_one_line(e, p, "no export file")
    bad_sha = {**card["files"], "export": {"name": card["files"]["export"]["name"]}}
    p = _write_card(d, json.dumps({**card, "files": bad_sha}))
    with pytest.raises(ModelCardError) as e:
        verified_path(str(d), "AM", "export")
    _assert_one_line(e, p, "files.export has no SHA-256")


@pytest.mark.parametrize("where", ["parent", "absolute", "subfolder", "dotdot"])
def test_card_file_names_are_confined_to_the_model_folder(exported, tmp_path, where):
    """A card naming a file elsewhere is refused even when that file's SHA-256 matches the card."""
    d, card = exported
    outside = tmp_path / "x.pt2"
    outside.write_bytes((d / card["files"]["export"]["name"]).read_bytes())
    (d / "sub").mkdir()
    (d / "sub" / "x.pt2").write_bytes(outside.read_bytes())
    name = {"parent": "../x.pt2", "absolute": str(outside), "subfolder": "sub/x.pt2", "dotdot": ".."}[where]
    files = {**card["files"], "export": {**card["files"]["export"], "name": name}}
    p = _write_card(d, json.dumps({**card, "files": files}))
    with pytest.raises(ModelCardError) as e:
        load_model(str(d), "AM", "export")
    _assert_one_line(e, p, "files.export", "not a plain file name in the model folder")


def test_the_intact_card_still_loads(exported):
    d, card = exported
    path, got = verified_path(str(d), "AM", "export")
    assert path == os.path.join(str(d), card["files"]["export"]["name"]) and got["files"] == card["files"]


def test_cli_predict_with_a_broken_card_is_one_line_and_exit_2(tiny_store, exported, tmp_path, capsys):
    from ftcloud.cli import main

    d, card = exported
    export_model(_model(), str(d), "PM", {"halo": 3})
    _write_card(
        d, json.dumps({**card, "files": {**card["files"], "export": {**card["files"]["export"], "name": "../x.pt2"}}})
    )
    rc = main(["predict", "--store", tiny_store, "--model", str(d), "--out", str(tmp_path / "ft.zarr"), "--pass", "AM"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "not a plain file name" in err, err


# --------------------------------------------------------------------------------------
# The report: undefined values are n/a, the files are replaced atomically


def _row(product, **kw):
    return {
        "product": product,
        "CA_O": 0.9,
        "CA_O_lo": 0.85,
        "CA_O_hi": 0.95,
        "CA_F": 0.8,
        "CA_T": 0.95,
        "n": 1000,
        "n_F": 300,
        "n_T": 700,
        **kw,
    }


PRODUCTS = ("smap_head", "esdr_head", "fused", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")


def _block(**fused):
    return {
        "table": [_row(p, **(fused if p == "fused" else {})) for p in PRODUCTS],
        "gains": [{"product": p, "gain": 0.01, "gain_lo": None, "gain_hi": None} for p in PRODUCTS if p != "fused"],
    }


def _card(**fused):
    """A card whose test window (Apr-Jun) has no frozen season, with undefined values in it."""
    common = {"all": _block(**fused), "transition": _block(), "thawed": _block(n_F=None, CA_F=None)}
    return {
        "pass": "AM",
        "architecture": {"hidden": [4]},
        "halo": 3,
        "training": {
            "store": "s.zarr",
            "target_period": ["2015-04-01", "2018-06-30"],
            "best_epoch": None,
            "history": [],
            "seconds": None,
        },
        "metrics": {
            "period": ["2018-04-01", "2018-06-30"],
            "common_vs_truth": common,
            "common_vs_SMAP_E_FT": {"all": _block(CA_O=None, n=None)},
        },
    }


def test_report_prints_na_for_undefined_values():
    from ftcloud.report.model import gains_table, headline, headline_text, markdown

    card = _card(n=None, CA_O_lo=None, CA_O_hi=None)
    md = markdown(card)
    assert "best epoch n/a of 0, n/a s" in md
    fused_all = [ln for ln in md.splitlines() if ln.startswith("| all | ConvLSTM_FT (fused) |")]
    assert fused_all and fused_all[0].endswith("| n/a |") and "[n/a, n/a]" in fused_all[0]
    # the season the test window lacks is a row of n/a, and said in words
    assert "| frozen | every product | n/a |" in md
    assert "n/a: the test period (2018-04-01 .. 2018-06-30) has no day in the frozen season (Dec-Jan)." in md
    line = headline_text("AM", headline(card))
    assert "on n/a common pixel-days" in line and "Dec-Jan: n/a (no test day in this season)" in line
    assert len(gains_table(card)) == 3 * 5


def test_report_of_a_card_without_any_score_is_written(tmp_path):
    from ftcloud.report.model import write_report

    card = _card()
    card["metrics"] = {"period": [], "common_vs_truth": {}}
    write_report(card, str(tmp_path), "AM")
    md = (tmp_path / "report_AM.md").read_text()
    assert md.startswith("# ConvLSTM FT model, pass AM") and "Against" not in md
    assert (tmp_path / "accuracy_AM.png").stat().st_size > 0


def test_report_files_are_replaced_atomically(tmp_path, monkeypatch):
    from ftcloud.report import model as report

    report.write_report(_card(), str(tmp_path), "AM")
    md, png = (tmp_path / "report_AM.md").read_bytes(), (tmp_path / "accuracy_AM.png").read_bytes()
    assert b"n/a" in md and png[:4] == b"\x89PNG"

    def broken(card, path):
        with open(path, "wb") as f:
            f.write(b"half a chart")
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "bar_chart", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_report(_card(), str(tmp_path), "AM")
    assert (tmp_path / "accuracy_AM.png").read_bytes() == png  # the previous chart, not half a new one
    assert sorted(os.listdir(tmp_path)) == ["accuracy_AM.png", "report_AM.md"]
    monkeypatch.setattr(report, "markdown", lambda card: 1 / 0)
    (tmp_path / "report_AM.md").unlink()
    with pytest.raises(ZeroDivisionError):
        report.write_report(_card(), str(tmp_path), "AM")
    assert not (tmp_path / "report_AM.md").exists()  # no 0-byte report


def test_a_test_split_without_a_season_warns_once_before_training(caplog):
    import pandas as pd

    from ftcloud.model.training import check_splits

    times = pd.date_range("2015-04-01", "2018-06-30")
    with caplog.at_level("WARNING", logger="ftcloud.model.training"):
        train, val, test = check_splits(times)  # the paper's splits on a store that ends in June 2018
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "\n" not in msgs[0], msgs
    assert msgs[0] == (
        "test split 2018-04-01..2020-12-31 holds 91 days of the store (2018-04-01..2018-06-30) and no "
        "frozen (Dec-Jan) day: scored n/a in the report"
    )
    assert test.sum() == 91 and train.any() and val.any()
    caplog.clear()
    with caplog.at_level("WARNING", logger="ftcloud.model.training"):
        check_splits(pd.date_range("2015-04-01", "2020-12-31"))
    assert not caplog.records
    with pytest.raises(ValidationError, match="does not cover the training, validation and test splits"):
        check_splits(pd.date_range("2015-04-01", "2018-03-31"))
