"""Image parametrisations: pixel or Fourier (1/f-scaled) bases, decorrelated colour, sigmoid output.

Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill (doi:10.23915/distill.00007):
optimising in a decorrelated space (Fourier coefficients scaled by 1/f, colours in the whitened ImageNet
colour basis) preconditions gradient ascent and gives images with natural-image statistics instead of
high-frequency noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core.errors import ParameterError

#: Cholesky factor ``L`` of the ImageNet RGB colour covariance ``C = L L^T`` (pixel values in [0, 1]),
#: the covariance as published with lucid. Any square root of ``C`` decorrelates the colours; lucid stores
#: the symmetric (SVD) root, we store the lower-triangular one.
IMAGENET_COLOR_CHOLESKY = (
    (0.2759, 0.0000, 0.0000),
    (0.2508, 0.1117, 0.0000),
    (0.2273, 0.1288, 0.1168),
)

#: lucid's empirical damping of the Fourier image ("increasing this reduces saturation").
_FFT_DAMPING = 4.0

PARAMS = ("fft", "pixel")


def color_matrix(device: torch.device | str | None = None) -> torch.Tensor:
    """The colour-correlation root, scaled so its largest column has unit norm (as lucid)."""
    m = torch.tensor(IMAGENET_COLOR_CHOLESKY, dtype=torch.float32, device=device)
    return m / m.norm(dim=0).max()


def decorrelate_colors(raw: torch.Tensor) -> torch.Tensor:
    """Map ``(B, 3, H, W)`` values from the decorrelated colour basis to RGB (before the sigmoid)."""
    return torch.einsum("ij,bjhw->bihw", color_matrix(raw.device).to(raw.dtype), raw)


def fft_frequencies(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(h, w // 2 + 1)`` radial frequencies (cycles per pixel) of the real 2-D FFT grid."""
    fy = torch.fft.fftfreq(h, device=device).view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=device).view(1, -1)
    return torch.sqrt(fx * fx + fy * fy)


class ImageParam:
    """A differentiable image: ``params`` are optimised, ``image()`` gives ``(B, 3, H, W)`` in [0, 1].

    ``raw()`` is the image before colour mixing and the sigmoid (the space in which the Yosinski
    regularisers act for the pixel parametrisation).
    """

    def __init__(
        self, kind: str, tensor: torch.Tensor, size: tuple[int, int], decorrelate: bool,
        spatial: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.kind = kind
        self.tensor = tensor
        self.size = size
        self.decorrelate = decorrelate
        self._spatial = spatial

    @property
    def params(self) -> list[torch.Tensor]:
        return [self.tensor]

    def raw(self) -> torch.Tensor:
        return self._spatial(self.tensor)

    def image(self) -> torch.Tensor:
        raw = self.raw()
        if self.decorrelate:
            raw = decorrelate_colors(raw)
        return torch.sigmoid(raw)

    __call__ = image


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 8 for s in hw):
        raise ParameterError(f"size must be an int >= 8 or a pair (height, width) of such ints, got {size!r}")
    return hw  # type: ignore[return-value]


def pixel_image(
    batch: int, size: int | tuple[int, int], *, sd: float = 0.01, decorrelate: bool = False,
    generator: torch.Generator | None = None, device: torch.device | str | None = None,
) -> ImageParam:
    """One free parameter per pixel and channel, initialised ``N(0, sd^2)`` (grey after the sigmoid)."""
    h, w = _check_size(size)
    t = (torch.randn(batch, 3, h, w, generator=generator) * sd).to(device).requires_grad_(True)
    return ImageParam("pixel", t, (h, w), decorrelate, lambda x: x)


def fft_image(
    batch: int, size: int | tuple[int, int], *, sd: float = 0.01, decay_power: float = 1.0,
    decorrelate: bool = True, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> ImageParam:
    """Real-FFT coefficients scaled by ``1 / max(f, 1/max(h, w)) ** decay_power`` (1/f spectrum).

    The inverse transform is orthonormal, so each coefficient's unit step changes the image by the
    same energy, damped by the 1/f scale: low frequencies move fastest.
    """
    h, w = _check_size(size)
    freqs = fft_frequencies(h, w)
    scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
    scale = scale.to(device).view(1, 1, *freqs.shape, 1)
    t = (torch.randn(batch, 3, *freqs.shape, 2, generator=generator) * sd).to(device).requires_grad_(True)

    def spatial(coeffs: torch.Tensor) -> torch.Tensor:
        spectrum = torch.view_as_complex((coeffs * scale).contiguous())
        return torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / _FFT_DAMPING

    return ImageParam("fft", t, (h, w), decorrelate, spatial)


def image_param(
    kind: str = "fft", *, batch: int = 1, size: int | tuple[int, int] = 128, decorrelate: bool = True,
    sd: float = 0.01, seed: int | None = 0, device: torch.device | str | None = None,
) -> ImageParam:
    """The parametrisation ``kind`` (``"fft"`` or ``"pixel"``), seeded."""
    if kind not in PARAMS:
        raise ParameterError(f"param must be one of {', '.join(repr(p) for p in PARAMS)}, got {kind!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ParameterError(f"batch must be a positive int, got {batch!r}")
    if not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0):
        raise ParameterError(f"sd (the initial noise scale) must be a positive number, got {sd!r}")
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    make = fft_image if kind == "fft" else pixel_image
    return make(batch, size, sd=sd, decorrelate=decorrelate, generator=gen, device=device)
