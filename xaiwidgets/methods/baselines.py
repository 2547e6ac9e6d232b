"""Baselines (references): the one resolver of a baseline name, number, tensor or callable.

Every method and metric that takes a ``baseline`` (Integrated Gradients, Expected Gradients, DeepLIFT,
occlusion, RISE, extremal perturbation, LIME / KernelSHAP / Shapley sampling on images, the perturbation
metrics, completeness and selectivity) resolves it here, so a name means the same thing everywhere.
Names are *in the model's input space*: when the model is an :class:`~xaiwidgets.core.adapters.ImageClassifier`
that normalises pixels by ``mean``/``std``, "black" is black pixels after that normalisation.

=============  ============================================================================================
name           meaning (``x``: the inputs ``(N, ...)`` as the model receives them)
=============  ============================================================================================
``"black"``    images ``(N, C, H, W)`` of an ImageClassifier: black pixels, ``(0 - mean_c) / std_c`` per
               channel; any other model or input shape (rows, embeddings): the zero input, as ``"zeros"``
``"zeros"``    the literal zero tensor (also what ``None`` and ``0`` give); with ImageNet normalisation it
               is the dataset-mean colour, a dull grey, not black
``"mean"``     images: each image's per-channel mean over its pixels; other shapes: the mean over the batch
               of each element (per feature for rows ``(N, d)``; needs at least 2 rows)
``"blur"``     images only: a Gaussian blur of each image, sigma ``max(H, W) / 20`` pixels (11.2 px at 224),
               kernel radius ``int(3 sigma)`` capped at the image side minus 1, reflect padding (Fong &
               Vedaldi 2017; Sturmfels, Lundberg & Lee 2020, Distill)
``"uniform"``  independent ``U(lo, hi)`` per element, ``lo``/``hi`` the min and max of that input over all
               its elements (seeded; Samek et al. 2017; Sturmfels et al. 2020)
``"gaussian"`` the input plus ``N(0, (0.1 (hi - lo))^2)`` per element, clipped to ``[lo, hi]`` of that
               input (seeded; Sturmfels et al. 2020)
a number       a constant tensor of that value in the model's input space (no normalisation applied)
a tensor       ``(...)`` broadcast to the inputs: one value, one input's shape, ``(1 or N, ...)``; where the
               method averages over references (Expected Gradients, KernelSHAP), a background ``(B, ...)``
a callable     ``baseline(x)`` returns a number, array or tensor, resolved as above
=============  ============================================================================================

Random names draw on the CPU from ``torch.Generator().manual_seed(seed)`` (the same values on every
device; ``seed=None`` draws from torch's global generator). Texts are resolved by the text modality
before this (token kinds ``"pad"``, ``"mask"``, ``"unk"``, ``"zeros"`` of
:meth:`~xaiwidgets.core.text.TextClassifier.baseline_embeddings`); tabular models default to the mean of
their background rows (:mod:`.modalities.tabular`). The same table is in docs/baselines.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import ParameterError

BaselineLike = str | float | int | torch.Tensor | np.ndarray | Callable[[torch.Tensor], Any] | None
NAMES = ("black", "zeros", "mean", "blur", "uniform", "gaussian")
#: sigma of ``"blur"`` as a fraction of the longer image side
BLUR_FRACTION = 1 / 20
#: sigma of ``"gaussian"`` as a fraction of each input's value range
GAUSSIAN_FRACTION = 0.1


def _generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def _draw(kind: str, inputs: torch.Tensor, seed: int | None) -> torch.Tensor:
    """``rand``/``randn`` of the inputs' shape drawn on the CPU (float32), on the inputs' device and dtype."""
    draw = torch.rand if kind == "uniform" else torch.randn
    return draw(inputs.shape, generator=_generator(seed), dtype=torch.float32).to(inputs.device, inputs.dtype)


def _per_input_range(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = inputs.reshape(inputs.shape[0], -1)
    shape = (-1,) + (1,) * (inputs.dim() - 1)
    return flat.amin(1).view(shape), flat.amax(1).view(shape)


def normalisation(classifier: Any, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` of shape ``(1, C, 1, 1)`` with which ``classifier`` normalises image ``inputs``, or
    None (no ImageClassifier, no mean/std, or inputs that are not ``(N, C, H, W)`` images)."""
    mean, std = getattr(classifier, "mean", None), getattr(classifier, "std", None)
    if inputs.dim() != 4 or (mean is None and std is None):
        return None
    c = inputs.shape[1]
    stats = []
    for values, neutral in ((mean, 0.0), (std, 1.0)):
        values = (neutral,) if values is None else tuple(values)
        if len(values) not in (1, c):
            raise ParameterError(
                f"the classifier normalises {len(values)} channels (mean {mean}, std {std}) but the inputs have "
                f"{c}; give ImageClassifier(mean=..., std=...) for the model's channels, or a number or tensor "
                "baseline"
            )
        stats.append(torch.tensor(values, dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1))
    return stats[0], stats[1]


def gaussian_blur(inputs: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` inputs (reflect padding, kernel radius ``int(3 sigma)``
    and at least 1, capped at the shorter side minus 1)."""
    if inputs.dim() != 4:
        raise ParameterError(
            f"baseline='blur' needs image inputs (N, C, H, W); got {tuple(inputs.shape)}: pass a number or a tensor"
        )
    radius = min(max(1, int(3 * sigma)), inputs.shape[-1] - 1, inputs.shape[-2] - 1)
    if radius < 1:
        return inputs.clone()
    t = torch.arange(-radius, radius + 1, dtype=inputs.dtype, device=inputs.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = inputs.shape[1]
    x = F.pad(inputs, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_sigma(inputs: torch.Tensor) -> float:
    """The sigma of ``"blur"`` for these images: ``max(H, W) / 20`` pixels."""
    return max(inputs.shape[-2:]) * BLUR_FRACTION


def require_finite(baseline: object) -> None:
    """Raise ParameterError for a number or tensor baseline holding NaN or infinity (it would make every
    attribution NaN without a word); names and other types pass through to the caller's own checks."""
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not math.isfinite(baseline):
            raise ParameterError(f"baseline must be a finite number, got {baseline!r}")
    elif isinstance(baseline, torch.Tensor) and not bool(torch.isfinite(baseline).all()):
        raise ParameterError("the baseline tensor contains NaN or infinite values; pass a finite baseline")


def _named(name: str, x: torch.Tensor, classifier: Any, seed: int | None) -> torch.Tensor:
    if name == "black":
        stats = normalisation(classifier, x)
        if stats is not None:
            mean, std = stats
            return ((0 - mean) / std).expand_as(x).clone()
        return torch.zeros_like(x)
    if name == "zeros":
        return torch.zeros_like(x)
    if name == "mean":
        if x.dim() == 4:
            return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
        if x.shape[0] < 2:
            raise ParameterError(
                f"baseline='mean' of inputs {tuple(x.shape)} is the mean over the batch, and one input's mean is "
                "the input itself (every attribution 0); pass the mean of a background set as a tensor"
            )
        return x.mean(0, keepdim=True).expand_as(x).clone()
    if name == "blur":
        return gaussian_blur(x, blur_sigma(x))
    if name in ("uniform", "gaussian"):
        lo, hi = _per_input_range(x)
        if name == "uniform":
            return lo + _draw(name, x, seed) * (hi - lo)
        noisy = x + GAUSSIAN_FRACTION * (hi - lo) * _draw(name, x, seed)
        return torch.minimum(torch.maximum(noisy, lo), hi)
    raise _unknown(name)


def _unknown(name: str) -> ParameterError:
    return ParameterError(
        f"unknown baseline {name!r}; use one of {', '.join(map(repr, NAMES))}, a number, a tensor or a callable"
    )


def _is_function(value: Any) -> bool:
    return callable(value) and not isinstance(value, (torch.Tensor, np.ndarray))


def _explicit(value: Any, x: torch.Tensor, background: bool) -> torch.Tensor:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number, np.ndarray, torch.Tensor)):
        raise ParameterError(
            f"baseline must be one of {', '.join(map(repr, NAMES))}, a number, a tensor or a callable; "
            f"got {type(value).__name__}"
        )
    require_finite(value)
    if isinstance(value, (int, float)):
        return torch.full_like(x, float(value))
    b = torch.as_tensor(value).detach().to(device=x.device, dtype=x.dtype)
    require_finite(b)
    sample_shape = tuple(x.shape[1:])
    if background and b.dim() == x.dim() and tuple(b.shape[1:]) == sample_shape:
        return b.clone()
    try:
        return torch.broadcast_to(b, x.shape).clone()
    except RuntimeError:
        pass
    sample = ", ".join(map(str, sample_shape))
    what = (f"(B, {sample}) (a background set)" if background
            else f"(1 or {x.shape[0]}, {sample}) (one baseline per input)")
    raise ParameterError(
        f"baseline has shape {tuple(b.shape)}, which does not broadcast to the inputs {tuple(x.shape)}; give a "
        f"baseline of shape {sample_shape} or {what}, a number or a name"
    )


def resolve_baseline(
    baseline: BaselineLike,
    inputs: torch.Tensor,
    classifier: Any = None,
    *,
    seed: int | None = 0,
    background: bool = False,
) -> torch.Tensor:
    """The baseline for ``inputs`` ``(N, ...)`` as a detached tensor on their device and dtype.

    ``classifier``: the model's :class:`~xaiwidgets.core.adapters.ImageClassifier` (its ``mean``/``std``
    say where black pixels are) or None. ``seed``: the random names' seed. Returns ``(N, ...)`` like
    ``inputs``; with ``background=True`` a tensor ``(B, ...)`` of one input's shape is returned as the
    background set it is. Names (see the module docstring, or docs/baselines.md):

    - ``"black"``: black pixels in the model's input space, ``(0 - mean) / std`` per channel for an
      ImageClassifier's images; zeros for any other model or input shape;
    - ``"zeros"`` (and ``None``): the zero tensor;
    - ``"mean"``: each image's per-channel mean; for other shapes the batch mean of each element;
    - ``"blur"``: each image blurred with a Gaussian of sigma ``max(H, W) / 20`` pixels;
    - ``"uniform"``: ``U(min, max)`` of each input, per element (seeded);
    - ``"gaussian"``: the input plus Gaussian noise of sigma ``0.1 (max - min)``, clipped to that range.

    A number is a constant, a tensor or array is broadcast, a callable ``baseline(inputs)`` returns one of
    those. Raises :class:`~xaiwidgets.core.errors.ParameterError` for unknown names, bad shapes, NaN.
    """
    if baseline is None:
        baseline = "zeros"
    if isinstance(baseline, str):
        return _named(baseline, inputs, classifier, seed)
    if _is_function(baseline):
        value = baseline(inputs)
        if isinstance(value, str) or _is_function(value):
            raise ParameterError("a baseline callable must return a number, an array or a tensor, not a name")
        return _explicit(value, inputs, background)
    return _explicit(baseline, inputs, background)


def check_baseline(baseline: Any, inputs: torch.Tensor, *, background: bool = False) -> None:
    """Raise ParameterError for an unknown name or a number/tensor that does not fit ``inputs`` (cheap,
    before any work: names are not computed and callables not called)."""
    if isinstance(baseline, str):
        if baseline not in NAMES:
            raise _unknown(baseline)
    elif baseline is not None and not _is_function(baseline):
        _explicit(baseline, inputs[:1] if not isinstance(baseline, (torch.Tensor, np.ndarray)) else inputs, background)


def deprecated_resolver(old: str, *, background: bool = False) -> Callable[..., torch.Tensor]:
    """A stand-in for a removed per-module ``resolve_baseline`` (``(baseline, inputs, classifier, seed)``):
    warns with a DeprecationWarning naming :func:`resolve_baseline` and calls it."""

    def resolve(baseline: Any, inputs: torch.Tensor, classifier: Any = None, seed: int | None = 0) -> torch.Tensor:
        warnings.warn(
            f"{old} is deprecated; use xaiwidgets.methods.baselines.resolve_baseline(baseline, inputs, classifier, "
            "seed=...), which gives every baseline name one meaning (docs/baselines.md)",
            DeprecationWarning, stacklevel=2,
        )
        return resolve_baseline(baseline, inputs, classifier, seed=seed, background=background)

    resolve.__name__ = resolve.__qualname__ = "resolve_baseline"
    resolve.__doc__ = f"Deprecated: use :func:`xaiwidgets.methods.baselines.resolve_baseline` ({old})."
    return resolve
