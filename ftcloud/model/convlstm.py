"""The dual-head ConvLSTM with decision-level softmax fusion (Cui et al. 2024, SPEC section 4).

Input per pixel-day: three hourly steps (AM 03 -> 04 -> 05 h, PM 15 -> 16 -> 17 h) of eight
channels, the four dynamic predictors (stl1, swvl1, sde, pr) and the four static layers
(TCI, AOW, LAT, LON) fed again at every step, over a spatial patch: ``(batch, 3, 8, y, x)``.
Each hidden layer has three connected ConvLSTM cells (one per step, sharing weights); the
last hidden state of the top layer feeds two 1x1 heads that score three classes
(0 thawed, 1 frozen, 2 missing): one trained on SMAP_E_FT, one on ESDR_FT.

Fusion (per pixel): where the two heads pick the same class, output it; where they disagree,
turn both heads' scores into probabilities with softmax and output the class with the
highest probability among the six.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ftcloud.errors import require

torch = require("torch", "torch", feature="ftcloud's ConvLSTM model", note="torch==2.13.0, the CPU build")
nn = torch.nn

N_CLASSES = 3
CLASS_THAWED, CLASS_FROZEN, CLASS_MISSING = 0, 1, 2
DYNAMIC = ("stl1", "swvl1", "sde", "pr")
STATIC = ("tci", "aow", "lat", "lon")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; saved in the model card and used to rebuild the network."""

    hidden: tuple[int, ...] = (12,)
    kernel: int = 3
    n_dynamic: int = len(DYNAMIC)
    n_static: int = len(STATIC)
    steps: int = 3

    @property
    def in_channels(self) -> int:
        return self.n_dynamic + self.n_static

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels.

        Cell (layer l, step t) convolves the layer below at step t and its own state from
        step t-1, each adding kernel//2: reach(l, t) = max(reach(l-1, t), reach(l, t-1)) + r,
        which gives (layers + steps - 1) * r for the top layer's last step.
        """
        return (len(self.hidden) + self.steps - 1) * (self.kernel // 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: gates from a convolution over [input, hidden state]."""

    def __init__(self, in_ch: int, hidden: int, kernel: int):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(in_ch + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.conv(torch.cat([x, h], dim=1))
        i, f, o, g = torch.chunk(gates, 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class DualHeadConvLSTM(nn.Module):
    """Stacked ConvLSTM over the steps, two 3-class heads. Returns (logits_smap, logits_esdr)."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        cells = []
        ch = config.in_channels
        for hid in config.hidden:
            cells.append(ConvLSTMCell(ch, hid, config.kernel))
            ch = hid
        self.cells = nn.ModuleList(cells)
        self.head_smap = nn.Conv2d(ch, N_CLASSES, 1)
        self.head_esdr = nn.Conv2d(ch, N_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (batch, steps, channels, y, x)
        b, t, _, ny, nx = x.shape
        seq = [x[:, k] for k in range(t)]
        for cell in self.cells:
            h = x.new_zeros(b, cell.hidden, ny, nx)
            c = x.new_zeros(b, cell.hidden, ny, nx)
            out = []
            for k in range(t):
                h, c = cell(seq[k], h, c)
                out.append(h)
            seq = out
        last = seq[-1]
        return self.head_smap(last), self.head_esdr(last)


def fuse(logits_a: torch.Tensor, logits_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decision-level fusion over the class dimension (dim 1).

    Returns (class, fused frozen probability): the class both heads agree on, else the class
    of the highest softmax probability of either head; the frozen probability is the one of
    the head whose decision is taken.
    """
    pa = torch.softmax(logits_a, dim=1)
    pb = torch.softmax(logits_b, dim=1)
    ma, ca = pa.max(dim=1)
    mb, cb = pb.max(dim=1)
    take_a = (ca == cb) | (ma >= mb)
    cls = torch.where(take_a, ca, cb)
    p_frozen = torch.where(take_a, pa[:, 1], pb[:, 1])  # class 1 = frozen (literal for TorchScript)
    return cls, p_frozen


class FusedFTModel(nn.Module):
    """What is exported: raw predictors in, FT codes out.

    Input ``x`` (batch, steps, 8, y, x) in physical units in the card's channel order;
    normalisation is inside the module so a user of the exported file cannot forget it.
    Output: ``ft`` uint8 (batch, y, x) with 0 thawed, 1 frozen, 255 missing, and the fused
    frozen probability (float32). NaN inputs give 255.
    """

    def __init__(self, net: DualHeadConvLSTM, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.reshape(1, 1, -1, 1, 1).to(torch.float32))
        self.register_buffer("std", std.reshape(1, 1, -1, 1, 1).to(torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = torch.isfinite(x).all(dim=2).all(dim=1)  # (batch, y, x)
        z = (x - self.mean) / self.std
        z = torch.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
        la, lb = self.net(z)
        cls, p = fuse(la, lb)
        ft = torch.where(cls == 2, torch.full_like(cls, 255), cls)  # class 2 = missing -> 255
        ft = torch.where(valid, ft, torch.full_like(ft, 255)).to(torch.uint8)
        p = torch.where(valid, p, torch.full_like(p, float("nan")))
        return ft, p
