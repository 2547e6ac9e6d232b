"""Transformation robustness: random small changes applied to the image at every optimisation step.

Mordvintsev, Olah & Tyka 2015 (DeepDream jitter) and Olah et al. 2017, "Feature Visualization", Distill:
features that survive padding, jitter, scaling and rotation are features of the model, not adversarial
high-frequency patterns. Each transform takes ``(x, generator)``; the random draws come from that seeded
CPU generator (one draw per step, shared by the batch), the image stays on its device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..core.errors import ParameterError

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(values: Sequence[float], gen: torch.Generator) -> float:
    return float(values[int(torch.randint(len(values), (1,), generator=gen))])


class Pad:
    """Pad by ``width`` pixels on each side (``mode="constant"`` with ``value``, or ``"reflect"``)."""

    def __init__(self, width: int, mode: str = "constant", value: float = 0.5) -> None:
        if mode not in ("constant", "reflect", "replicate"):
            raise ParameterError(f"pad mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
        self.width, self.mode, self.value = int(width), mode, float(value)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, [self.width] * 4, mode="constant", value=self.value)
        return F.pad(x, [self.width] * 4, mode=self.mode)


class Jitter:
    """Random crop that shifts the image by up to ``d - 1`` pixels in x and y (the image shrinks by d-1)."""

    def __init__(self, d: int) -> None:
        if d < 1:
            raise ParameterError(f"jitter needs d >= 1 pixels, got {d!r}")
        self.d = int(d)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.d == 1:
            return x
        dy, dx = (int(v) for v in torch.randint(self.d, (2,), generator=gen))
        h, w = x.shape[-2:]
        return x[..., dy : h - (self.d - 1) + dy, dx : w - (self.d - 1) + dx]


class RandomScale:
    """Resize by a factor drawn from ``scales`` (bilinear)."""

    def __init__(self, scales: Sequence[float]) -> None:
        if not scales or any(s <= 0 for s in scales):
            raise ParameterError("random scale needs a non-empty list of positive factors")
        self.scales = tuple(float(s) for s in scales)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = _choice(self.scales, gen)
        if s == 1.0:
            return x
        h, w = x.shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles``; corners filled by reflection."""

    def __init__(self, angles: Sequence[float]) -> None:
        if not angles:
            raise ParameterError("random rotation needs a non-empty list of angles (degrees)")
        self.angles = tuple(float(a) for a in angles)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = math.radians(_choice(self.angles, gen))
        if a == 0.0:
            return x
        c, s = math.cos(a), math.sin(a)
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, gen)
        return x


def pad(width: int, mode: str = "constant", value: float = 0.5) -> Pad:
    return Pad(width, mode, value)


def jitter(d: int) -> Jitter:
    return Jitter(d)


def random_scale(scales: Sequence[float]) -> RandomScale:
    return RandomScale(scales)


def random_rotate(angles: Sequence[float]) -> RandomRotate:
    return RandomRotate(angles)


def standard_transforms(size: int = 128) -> list[Transform]:
    """lucid's standard robustness set, with pad and jitter scaled to the image side (12 and 8 px at 128).

    Pad, jitter, scale by 0.9-1.1, rotate by -10..10 degrees (zero more likely), fine jitter.
    """
    k = max(size / 128.0, 0.25)
    big, small = max(2, round(8 * k)), max(2, round(4 * k))
    return [
        Pad(max(1, round(12 * k)), "constant", 0.5),
        Jitter(big),
        RandomScale([1 + (i - 5) / 50 for i in range(11)]),
        RandomRotate(list(range(-10, 11)) + [0] * 5),
        Jitter(small),
    ]


def resolve_transforms(transforms: object, size: int) -> Compose:
    """``"standard"``, ``None``/``()`` (none), or a sequence of transform callables."""
    if transforms == "standard":
        return Compose(standard_transforms(size))
    if transforms is None:
        return Compose([])
    if callable(transforms):
        return Compose([transforms])  # type: ignore[list-item]
    if isinstance(transforms, (list, tuple)) and all(callable(t) for t in transforms):
        return Compose(transforms)
    raise ParameterError(
        "transforms must be 'standard', None, or a list of callables (x, generator) -> x, "
        "e.g. [xw.featurevis.transforms.jitter(8)]"
    )
