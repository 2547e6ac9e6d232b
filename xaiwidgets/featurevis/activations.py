"""The feature maps of one layer for one image, and a grid image of them for display."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..core.device import model_device
from ..core.errors import InputError, ParameterError
from ..core.state import preserved
from ._capture import capture, resolve_model


def _as_batch(image: Any, adapter: object, device: torch.device) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        if adapter is None:
            raise InputError("pass the image as a model-ready tensor (C, H, W) or (1, C, H, W), or use an "
                             "ImageClassifier adapter to preprocess raw images")
        image = adapter.preprocess(image)
    x = image.unsqueeze(0) if image.dim() == 3 else image
    if x.dim() != 4:
        raise InputError(f"expected one image (C, H, W) or a batch (N, C, H, W), got shape {tuple(image.shape)}")
    if not torch.isfinite(x).all():
        raise InputError("the image contains NaN or inf values")
    return x.to(device)


def activations(model: Any, layer: str | torch.nn.Module, image: Any) -> torch.Tensor:
    """The output of ``layer`` for one image as ``(C, h, w)`` (``(N, C, h, w)`` for a batch), on the CPU.

    ``image`` is a model-ready tensor, or a raw image (array, PIL) when ``model`` is an ImageClassifier.
    """
    module, adapter = resolve_model(model)
    x = _as_batch(image, adapter, model_device(module))
    with preserved(module), capture(module, [layer]) as cap, torch.no_grad():
        module.eval()
        cap.run(x)
        act = cap.acts[layer]
    act = act.detach().float().cpu()
    return act[0] if (isinstance(image, torch.Tensor) and image.dim() == 3) or (
        not isinstance(image, torch.Tensor) and act.shape[0] == 1) else act


def activation_grid(
    maps: torch.Tensor, *, ncols: int | None = None, pad: int = 1, per_channel: bool = True
) -> torch.Tensor:
    """Tile ``(C, h, w)`` feature maps into one ``(rows*(h+pad)-pad, cols*(w+pad)-pad)`` image in [0, 1].

    Each map is min-max scaled on its own (``per_channel``) or all with one common range; the gutters
    between tiles are 1 (white).
    """
    if maps.dim() != 3:
        raise ParameterError(f"activation_grid needs (C, h, w) maps, got shape {tuple(maps.shape)}")
    c, h, w = maps.shape
    ncols = ncols or math.ceil(math.sqrt(c))
    if ncols < 1:
        raise ParameterError(f"ncols must be positive, got {ncols!r}")
    nrows = math.ceil(c / ncols)
    m = maps.detach().float()
    dims = (1, 2) if per_channel else (0, 1, 2)
    lo, hi = m.amin(dims, keepdim=True), m.amax(dims, keepdim=True)
    m = (m - lo) / (hi - lo).clamp_min(1e-12)
    grid = torch.ones(nrows * (h + pad) - pad, ncols * (w + pad) - pad, dtype=m.dtype)
    for i in range(c):
        r, q = divmod(i, ncols)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = m[i]
    return grid
