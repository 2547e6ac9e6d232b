"""Baselines (references) for path and expectation methods: resolve a name, number or tensor.

- ``"black"``: zeros of the input's shape, *in input space as given*. For inputs normalised with
  ImageNet mean/std, zero is the dataset-mean colour (a dull grey), not black pixels; to use true black
  pass the normalised black image, e.g. ``classifier.preprocess(np.zeros((224, 224, 3), np.uint8))``,
  or a number such as ``-2.1`` (min of normalised ImageNet inputs).
- ``"blur"``: the input blurred with a Gaussian of sigma ``max(H, W) / 16`` pixels (reflect padding),
  keeping colours but removing edges (Sturmfels, Lundberg & Lee 2020, "Visualizing the Impact of Feature
  Attribution Baselines", Distill).
- ``"uniform"``: uniform noise between each image's min and max (seeded).
- ``"gaussian"``: the input plus Gaussian noise of sigma ``0.1 * (max - min)`` per image, clipped to the
  image's range (seeded; Sturmfels et al. 2020).
- a number: a constant tensor of that value.
- a tensor: broadcast to the inputs; accepted shapes ``()``, ``(C, H, W)``, ``(1, C, H, W)`` or
  ``(N, C, H, W)`` (for images; in general the input shape without or with a batch of 1 or N).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.errors import ParameterError

BaselineLike = str | float | int | torch.Tensor | None
NAMES = ("black", "blur", "uniform", "gaussian")


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


def _per_image_range(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = inputs.reshape(inputs.shape[0], -1)
    shape = (-1,) + (1,) * (inputs.dim() - 1)
    return flat.amin(1).view(shape), flat.amax(1).view(shape)


def gaussian_blur(inputs: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` inputs (reflect padding, kernel radius 3 sigma)."""
    if inputs.dim() != 4:
        raise ParameterError(f"baseline='blur' needs image inputs (N, C, H, W); got {tuple(inputs.shape)}")
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, inputs.shape[-1] - 1, inputs.shape[-2] - 1)
    if radius < 1:
        return inputs.clone()
    t = torch.arange(-radius, radius + 1, dtype=inputs.dtype, device=inputs.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = inputs.shape[1]
    x = F.pad(inputs, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def require_finite(baseline: object) -> None:
    """Raise ParameterError for a number or tensor baseline holding NaN or infinity (it would make every
    attribution NaN without a word); names and other types pass through to the caller's own checks."""
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not math.isfinite(baseline):
            raise ParameterError(f"baseline must be a finite number, got {baseline!r}")
    elif isinstance(baseline, torch.Tensor) and not bool(torch.isfinite(baseline).all()):
        raise ParameterError("the baseline tensor contains NaN or infinite values; pass a finite baseline")


def resolve_baseline(
    baseline: BaselineLike, inputs: torch.Tensor, *, seed: int | None = 0, background: bool = False
) -> torch.Tensor:
    """The baseline for ``inputs`` as a tensor on their device and dtype.

    Returns ``(N, ...)`` like ``inputs``; with ``background=True`` a tensor baseline may instead be a
    background set ``(B, ...)`` of any size ``B`` (expected gradients draws from it).
    """
    if baseline is None:
        baseline = "black"
    if isinstance(baseline, str):
        if baseline == "black":
            return torch.zeros_like(inputs)
        if baseline == "blur":
            return gaussian_blur(inputs, max(inputs.shape[-2:]) / 16.0)
        lo, hi = _per_image_range(inputs)
        gen = _generator(seed, inputs.device)
        if baseline == "uniform":
            u = torch.rand(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype)
            return lo + u * (hi - lo)
        if baseline == "gaussian":
            z = torch.randn(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype)
            return torch.minimum(torch.maximum(inputs + 0.1 * (hi - lo) * z, lo), hi)
        raise ParameterError(
            f"unknown baseline {baseline!r}; use one of {', '.join(map(repr, NAMES))}, a number or a tensor"
        )
    if isinstance(baseline, bool):
        raise ParameterError("baseline must be a name, a number or a tensor, not a bool")
    require_finite(baseline)
    if isinstance(baseline, (int, float)):
        return torch.full_like(inputs, float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise ParameterError(
            f"baseline must be one of {', '.join(map(repr, NAMES))}, a number or a tensor; "
            f"got {type(baseline).__name__}"
        )
    b = baseline.detach().to(device=inputs.device, dtype=inputs.dtype)
    sample_shape = tuple(inputs.shape[1:])
    n = inputs.shape[0]
    if b.dim() == 0:
        return b.expand_as(inputs).clone()
    if tuple(b.shape) == sample_shape:
        return b.unsqueeze(0).expand_as(inputs).clone()
    if b.dim() == inputs.dim() and tuple(b.shape[1:]) == sample_shape:
        if background:
            return b.clone()
        if b.shape[0] == 1:
            return b.expand_as(inputs).clone()
        if b.shape[0] == n:
            return b.clone()
    what = "(B, " if background else f"(1 or {n}, "
    raise ParameterError(
        f"baseline has shape {tuple(b.shape)} but the inputs have shape {tuple(inputs.shape)}; give a "
        f"baseline of shape {sample_shape} or {what}{', '.join(map(str, sample_shape))}), a number, or a name"
    )
