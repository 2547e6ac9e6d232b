"""A synthetic image classification data set with ground truth: one shape per image on a textured background.

Every image holds exactly one object (a circle, square, triangle or cross) at a random position, scale,
rotation and colour; its pixel mask and bounding box are returned with the images, so localisation metrics
(pointing game, energy in the box, ...) have an exact answer. Generated in torch, deterministically from
the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.errors import ParameterError

#: The class names, in label order.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

_CHUNK = 256  # images drawn per generator; image i depends only on (seed, i // _CHUNK, i % _CHUNK)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, eq=False)
class ShapesData:
    """Images with their labels and ground-truth object masks and boxes.

    ``images``: ``(n, 3, size, size)`` float32 in [0, 1]; ``labels``: ``(n,)`` long, indices into
    ``classes``; ``masks``: ``(n, size, size)`` bool, True on the object's pixels; ``boxes``: ``(n, 4)``
    long ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive (the mask's bounding box).
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    classes: tuple[str, ...] = SHAPE_CLASSES

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _chunk_seed(seed: int, chunk: int) -> int:
    """A 63-bit seed for chunk ``chunk`` of data set ``seed`` (splitmix64 finaliser over both)."""
    z = ((seed & _MASK64) * 0x9E3779B97F4A7C15 + chunk * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def _shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(m, 4, s, s)`` inside-tests of the four shapes in local coordinates (unit radius, centred)."""
    au, av = u.abs(), v.abs()
    circle = u * u + v * v <= 1.0
    square = torch.maximum(au, av) <= 0.78  # corners at radius 1.10
    # equilateral triangle with vertices at radius 1: (0, -1), (+-sqrt(3)/2, 1/2)
    triangle = (v <= 0.5) & (math.sqrt(3.0) * au - v <= 1.0)
    cross = ((au <= 0.3) & (av <= 0.92)) | ((av <= 0.3) & (au <= 0.92))
    return torch.stack([circle, square, triangle, cross], 1)


def _make_chunk(m: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    n_classes = len(SHAPE_CLASSES)
    labels = torch.randint(n_classes, (m,), generator=gen)
    # geometry: radius 12-28 % of the side, centre so that the shape (extent <= 1.10 r) stays inside
    radius = size * (0.12 + 0.16 * torch.rand(m, generator=gen))
    margin = 1.12 * radius + 1.0
    cx = margin + (size - 1 - 2 * margin) * torch.rand(m, generator=gen)
    cy = margin + (size - 1 - 2 * margin) * torch.rand(m, generator=gen)
    angle = 2 * math.pi * torch.rand(m, generator=gen)
    # colours: object channels in [0.55, 1], background in [0, 0.35]; half the images swap dark/light
    obj_colour = 0.55 + 0.45 * torch.rand(m, 3, generator=gen)
    bg_colour = 0.35 * torch.rand(m, 3, generator=gen)
    invert = torch.rand(m, generator=gen) < 0.5
    # texture: a smooth random colour field plus pixel noise
    field = F.interpolate(
        torch.randn(m, 3, 6, 6, generator=gen), size=(size, size), mode="bilinear", align_corners=False
    )
    noise = torch.rand(m, 3, size, size, generator=gen) - 0.5

    coords = torch.arange(size, dtype=torch.float32)
    dx = (coords.view(1, 1, size) - cx.view(m, 1, 1)) / radius.view(m, 1, 1)
    dy = (coords.view(1, size, 1) - cy.view(m, 1, 1)) / radius.view(m, 1, 1)
    cos, sin = angle.cos().view(m, 1, 1), angle.sin().view(m, 1, 1)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    masks = _shape_masks(u, v)[torch.arange(m), labels]

    background = bg_colour.view(m, 3, 1, 1) + 0.08 * field
    images = torch.where(masks.unsqueeze(1), obj_colour.view(m, 3, 1, 1), background) + 0.12 * noise
    images = images.clamp(0.0, 1.0)
    images = torch.where(invert.view(m, 1, 1, 1), 1.0 - images, images)
    return images, labels, masks


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(n, 4)`` bounding boxes ``(x0, y0, x1, y1)``, exclusive ends, of non-empty ``(n, h, w)`` masks."""
    h, w = masks.shape[1:]
    cols, rows = masks.any(1), masks.any(2)  # (n, w), (n, h)
    xs, ys = torch.arange(w), torch.arange(h)
    big = max(h, w)
    x0 = torch.where(cols, xs, big).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1) + 1
    y0 = torch.where(rows, ys, big).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1) + 1
    return torch.stack([x0, y0, x1, y1], 1).long()


def make_shapes(n: int, size: int = 64, seed: int = 0) -> ShapesData:
    """``n`` synthetic images of one shape each, with labels, masks and boxes (see :class:`ShapesData`).

    Deterministic: the same ``(n, size, seed)`` gives identical tensors, and ``make_shapes(k, size, seed)``
    equals the first ``k`` samples of ``make_shapes(n, size, seed)`` for ``k <= n``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ParameterError(f"n must be a non-negative int (the number of images), got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ParameterError(f"size must be an int >= 16 (the image side in pixels), got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterError(f"seed must be an int, got {seed!r}")
    parts = []
    for chunk, start in enumerate(range(0, n, _CHUNK)):
        m = min(_CHUNK, n - start)
        gen = torch.Generator().manual_seed(_chunk_seed(seed, chunk))
        full = _make_chunk(_CHUNK, size, gen)  # always draw a full chunk so prefixes agree
        parts.append(tuple(t[:m] for t in full))
    if parts:
        images, labels, masks = (torch.cat(ts, 0) for ts in zip(*parts))
    else:
        images = torch.zeros(0, 3, size, size)
        labels = torch.zeros(0, dtype=torch.long)
        masks = torch.zeros(0, size, size, dtype=torch.bool)
    return ShapesData(
        images=images.contiguous().float(),
        labels=labels.long(),
        masks=masks.contiguous(),
        boxes=_boxes(masks),
        classes=SHAPE_CLASSES,
    )
