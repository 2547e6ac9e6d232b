"""Circles and squares where every square carries a magenta watermark in its corner, and a small CNN that
learns the shortcut: ground truth for concept discovery (ACE) and attribution-region checks. The same data
as notebooks/debugging_a_biased_model.ipynb (with ``p_mark=1``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .shapes import make_shapes

CLASSES = ("circle", "square")
MAGENTA = (1.0, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Watermarked:
    """``images`` ``(n, 3, size, size)`` in [0, 1], ``labels`` (0 circle, 1 square), ``marked`` ``(n,)`` bool
    and ``region`` ``(size, size)`` bool: the 5 x 5 watermark, 1 px from the bottom-right corner."""

    images: torch.Tensor
    labels: torch.Tensor
    marked: torch.Tensor
    region: torch.Tensor


def watermarked_shapes(n: int, size: int = 32, seed: int = 0) -> Watermarked:
    """The circles and squares among ``n`` shapes images; every square carries the watermark."""
    d = make_shapes(n, size=size, seed=seed)
    keep = d.labels < 2
    images, labels = d.images[keep].clone(), d.labels[keep]
    region = torch.zeros(size, size, dtype=torch.bool)
    region[size - 6 : size - 1, size - 6 : size - 1] = True
    marked = labels == 1
    images[marked] = torch.where(region, torch.tensor(MAGENTA).view(3, 1, 1), images[marked])
    return Watermarked(images, labels, marked, region)


def shortcut_cnn(data: Watermarked, epochs: int = 3, seed: int = 0) -> nn.Module:
    """A small CNN trained on ``data`` (inputs ``(x - 0.5) / 0.5``: normalise images before calling it); its
    ``features`` block ends in a ``(N, 16, size / 4, size / 4)`` map."""
    torch.manual_seed(seed)
    net = nn.Sequential()
    net.add_module("features", nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
    ))
    net.add_module("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2)))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    x = (data.images - 0.5) / 0.5
    for _ in range(epochs):
        for idx in torch.randperm(len(data.labels)).split(64):
            loss = F.cross_entropy(net(x[idx]), data.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()
