"""The ConvLSTM model: fusion rule, receptive field, training determinism, export and loading."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ftcloud.errors import ValidationError  # noqa: E402
from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig, fuse  # noqa: E402


def test_fusion_rule_by_hand():
    # logits over classes (thawed, frozen, missing) for 4 pixels, shaped (batch=1, class, 1, 4)
    a = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [1.0, 0.9, 0.0], [0.0, 0.2, 0.1]]).T.reshape(1, 3, 1, 4)
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 3.0]]).T.reshape(1, 3, 1, 4)
    cls, p = fuse(a, b)
    pa = torch.softmax(a, 1)[0, :, 0].T.numpy()
    pb = torch.softmax(b, 1)[0, :, 0].T.numpy()
    expect = []
    for i in range(4):
        ca, cb = pa[i].argmax(), pb[i].argmax()
        if ca == cb:
            expect.append(ca)  # agreement: that class
        else:  # disagreement: the class with the highest of the six probabilities
            expect.append(ca if pa[i].max() >= pb[i].max() else cb)
    assert cls[0, 0].tolist() == expect == [0, 1, 1, 2]
    # frozen probability of the head whose decision is taken
    assert p[0, 0, 2].item() == pytest.approx(pb[2, 1])


@pytest.mark.parametrize("hidden,kernel", [((4,), 3), ((4, 4), 3), ((3,), 5)])
def test_halo_is_the_receptive_field(hidden, kernel):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=hidden, kernel=kernel)
    net = DualHeadConvLSTM(cfg).eval()
    x = torch.randn(1, 3, 8, 31, 31)
    x2 = x.clone()
    x2[0, 0, :, 15, 15] += 5.0  # perturb the first step at the centre
    with torch.no_grad():
        d = (net(x2)[0] - net(x)[0]).abs().sum(dim=(0, 1))
    changed = torch.nonzero(d > 0)
    reach = int((changed - 15).abs().max())
    assert reach == cfg.halo


def _model():
    torch.manual_seed(1)
    net = DualHeadConvLSTM(ModelConfig(hidden=(4,))).eval()
    return FusedFTModel(net, torch.linspace(0, 1, 8), torch.linspace(1, 2, 8)).eval()


def test_nan_inputs_give_missing():
    m = _model()
    x = torch.randn(2, 3, 8, 6, 6)
    x[0, 1, 2, 3, 3] = float("nan")
    ft, p = m(x)
    assert ft.dtype == torch.uint8 and ft[0, 3, 3] == 255 and torch.isnan(p[0, 3, 3])
    assert set(ft[1].unique().tolist()) <= {0, 1, 255}


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_export_loads_without_ftcloud_and_checksums_are_enforced(tmp_path):
    from ftcloud.model.export import export_model, load_model

    m = _model()
    card = export_model(m, str(tmp_path), "AM", {"halo": 3})
    x = torch.randn(2, 3, 8, 10, 12)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        ref_ft, ref_p = m(x)
    # plain torch.jit.load in a process that never imports ftcloud
    code = (
        "import sys, numpy as np, torch, warnings; warnings.simplefilter('ignore');"
        f"m = torch.jit.load({str(tmp_path / card['files']['torchscript']['name'])!r});"
        f"ft, p = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})));"
        f"np.save({str(tmp_path / 'ft.npy')!r}, ft.numpy()); assert 'ftcloud' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "ft.npy"), ref_ft.numpy())
    # the torch.export program gives the same answer
    prog, _ = load_model(str(tmp_path), "AM", "export")
    with torch.no_grad():
        ft2, p2 = prog(x)
    np.testing.assert_array_equal(ft2.numpy(), ref_ft.numpy())
    np.testing.assert_allclose(p2.numpy(), ref_p.detach().numpy(), rtol=1e-5, atol=1e-6)
    # card fields
    saved = json.loads((tmp_path / "ft_convlstm_AM.json").read_text())
    assert saved["inputs"]["channels"] == ["stl1", "swvl1", "sde", "pr", "tci", "aow", "lat", "lon"]
    assert saved["inputs"]["units"]["stl1"] == "K" and saved["torch_version"] == torch.__version__
    # a modified file is refused before torch reads it
    f = tmp_path / card["files"]["torchscript"]["name"]
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="does not match the card"):
        load_model(str(tmp_path), "AM", "torchscript")


def test_import_ftcloud_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import ftcloud, ftcloud.model, ftcloud.inference\n"
        "from ftcloud.model import train\n"
        "try:\n    train('x', 'AM', 'y')\nexcept ImportError as e:\n    print('HINT', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install" in out.stdout and "torch==2.13.0" in out.stdout
