"""The autoencoder's network (a module-level class, so that it pickles and is scripted reproducibly)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AE"]


class AE(nn.Module):
    """TB window autoencoder with its error-to-probability calibration (one exportable module)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(8, 2, 1),
            nn.ReLU(),
            nn.Conv1d(2, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(8, 2, 3, padding=1),
        )
        self.register_buffer("mean", torch.zeros(2))
        self.register_buffer("std", torch.ones(2))
        self.register_buffer("log_thr", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    @torch.jit.export
    def error(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error of each standardised (batch, 2, window) TB window."""
        z = (x - self.mean[None, :, None]) / self.std[None, :, None]
        return ((self.net(z) - z) ** 2).mean(dim=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 2, window) TB in K -> frozen probability (batch,)."""
        err = self.error(x)
        return torch.sigmoid((self.log_thr - torch.log(err + 1e-6)) / self.scale)
