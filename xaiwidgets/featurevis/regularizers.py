"""Regularisers for activation maximisation.

- :func:`l2` — Simonyan, Vedaldi & Zisserman 2013, "Deep Inside Convolutional Networks", arXiv:1312.6034
  (an L2 penalty on the image).
- :func:`blur_every`, :func:`clip_small_pixels`, :func:`clip_small_contributions` — Yosinski, Clune,
  Nguyen, Fuchs & Lipson 2015, "Understanding Neural Networks Through Deep Visualization",
  arXiv:1506.06579 (Gaussian blur every k steps, zeroing pixels of small norm or small contribution);
  they edit the pixel parameters and need ``param="pixel"``.
- :func:`clip_small_gradients` zeros the smallest gradient entries (any parametrisation).
- :func:`total_variation` — Mahendran & Vedaldi 2015, "Understanding Deep Image Representations by
  Inverting Them", arXiv:1412.0035; :func:`frequency_penalty` penalises the energy above a Gaussian
  low-pass (Olah et al. 2017, "Feature Visualization", Distill, frequency penalisation).

A regulariser may add a per-image ``penalty(image)`` to the loss, edit the gradient
(``on_gradient``), or edit the parameters after each optimiser step (``after_step``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.errors import ParameterError


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflect padding (radius 3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    radius_y, radius_x = min(radius, x.shape[-2] - 1), min(radius, x.shape[-1] - 1)
    x = F.pad(x, [radius_x, radius_x, radius_y, radius_y], mode="reflect")
    kx = k[radius - radius_x : radius + radius_x + 1]
    ky = k[radius - radius_y : radius + radius_y + 1]
    x = F.conv2d(x, (kx / kx.sum()).view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, (ky / ky.sum()).view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class Regularizer:
    """Base class: every hook is a no-op. ``pixel_only`` regularisers edit pixel parameters."""

    pixel_only = False

    def penalty(self, image: torch.Tensor) -> torch.Tensor | None:
        return None

    def on_gradient(self, grad: torch.Tensor, param: object) -> torch.Tensor:
        return grad

    def after_step(self, param: object, step: int) -> None:
        return None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _percentile(value: float) -> float:
    if not (isinstance(value, (int, float)) and 0 <= value < 100):
        raise ParameterError(f"percentile must be in [0, 100), got {value!r}")
    return float(value)


class L2(Regularizer):
    def __init__(self, weight: float) -> None:
        self.weight = _positive("l2 weight", weight)

    def penalty(self, image: torch.Tensor) -> torch.Tensor:
        return self.weight * (image - 0.5).pow(2).mean((1, 2, 3))


class TotalVariation(Regularizer):
    def __init__(self, weight: float, beta: float = 2.0) -> None:
        self.weight, self.beta = _positive("total variation weight", weight), _positive("beta", beta)

    def penalty(self, image: torch.Tensor) -> torch.Tensor:
        dy = image[..., 1:, :-1] - image[..., :-1, :-1]
        dx = image[..., :-1, 1:] - image[..., :-1, :-1]
        return self.weight * (dx * dx + dy * dy + 1e-8).pow(self.beta / 2).mean((1, 2, 3))


class FrequencyPenalty(Regularizer):
    def __init__(self, weight: float, sigma: float = 1.0) -> None:
        self.weight, self.sigma = _positive("frequency penalty weight", weight), _positive("sigma", sigma)

    def penalty(self, image: torch.Tensor) -> torch.Tensor:
        return self.weight * (image - gaussian_blur(image, self.sigma)).pow(2).mean((1, 2, 3))


class BlurEvery(Regularizer):
    pixel_only = True

    def __init__(self, every: int, sigma: float = 0.5) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ParameterError(f"blur_every needs a positive int step interval, got {every!r}")
        self.every, self.sigma = every, _positive("blur sigma", sigma)

    def after_step(self, param, step: int) -> None:
        if (step + 1) % self.every == 0:
            param.tensor.copy_(gaussian_blur(param.tensor, self.sigma))


class ClipSmallPixels(Regularizer):
    """Zero (grey after the sigmoid) the pixels whose colour-vector norm is below the percentile."""

    pixel_only = True

    def __init__(self, percentile: float) -> None:
        self.percentile = _percentile(percentile)

    def after_step(self, param, step: int) -> None:
        norm = param.tensor.norm(dim=1, keepdim=True)
        cut = torch.quantile(norm.flatten(1), self.percentile / 100, dim=1).view(-1, 1, 1, 1)
        param.tensor.mul_((norm >= cut).to(param.tensor.dtype))


class ClipSmallContributions(Regularizer):
    """Zero the pixels whose contribution ``|sum_c x * grad|`` is below the percentile (Yosinski)."""

    pixel_only = True

    def __init__(self, percentile: float) -> None:
        self.percentile = _percentile(percentile)
        self._grad: torch.Tensor | None = None

    def on_gradient(self, grad: torch.Tensor, param) -> torch.Tensor:
        self._grad = grad
        return grad

    def after_step(self, param, step: int) -> None:
        if self._grad is None:
            return
        contrib = (param.tensor * self._grad).sum(1, keepdim=True).abs()
        cut = torch.quantile(contrib.flatten(1), self.percentile / 100, dim=1).view(-1, 1, 1, 1)
        param.tensor.mul_((contrib >= cut).to(param.tensor.dtype))
        self._grad = None


class ClipSmallGradients(Regularizer):
    """Zero the gradient entries whose magnitude is below the per-image percentile."""

    def __init__(self, percentile: float) -> None:
        self.percentile = _percentile(percentile)

    def on_gradient(self, grad: torch.Tensor, param) -> torch.Tensor:
        mag = grad.abs().flatten(1)
        cut = torch.quantile(mag, self.percentile / 100, dim=1).view(-1, *([1] * (grad.dim() - 1)))
        return grad * (grad.abs() >= cut).to(grad.dtype)


def l2(weight: float = 1e-2) -> L2:
    return L2(weight)


def total_variation(weight: float = 1e-1, beta: float = 2.0) -> TotalVariation:
    return TotalVariation(weight, beta)


def frequency_penalty(weight: float = 1.0, sigma: float = 1.0) -> FrequencyPenalty:
    return FrequencyPenalty(weight, sigma)


def blur_every(every: int = 4, sigma: float = 0.5) -> BlurEvery:
    return BlurEvery(every, sigma)


def clip_small_pixels(percentile: float = 10.0) -> ClipSmallPixels:
    return ClipSmallPixels(percentile)


def clip_small_contributions(percentile: float = 10.0) -> ClipSmallContributions:
    return ClipSmallContributions(percentile)


def clip_small_gradients(percentile: float = 10.0) -> ClipSmallGradients:
    return ClipSmallGradients(percentile)
