"""Turn a layer's output into a ``(N, C, h, w)`` grid: conv maps, channels-last maps and token sequences.

Auto rules (``reshape=None``):

- 4-D ``(N, C, h, w)`` is used as is, unless its layout only makes sense channels-last: the ratio
  ``shape[1] / shape[2]`` matches the input's ``H / W`` while ``shape[2] / shape[3]`` does not (torchvision's
  Swin stages output ``(N, h, w, C)``), then it is permuted. When both fit (e.g. ``(N, 7, 7, 7)``) the
  channels-first reading wins; pass ``reshape="channels_last"`` to force the other.
- 3-D tokens ``(N, T, D)``: a ``sqrt(T) x sqrt(T)`` grid, or ``sqrt(T-1)`` after dropping a leading class
  token.

``reshape`` overrides: ``"channels_last"``, ``"channels_first"``, an ``(h, w)`` tuple for tokens (the last
``h * w`` tokens form the grid; leading extra tokens such as class/distillation tokens are dropped), or a
callable mapping the layer output to ``(N, C, h, w)`` (applied to activations and gradients alike, as
pytorch-grad-cam's ``reshape_transform``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ...core.errors import LayerError, ParameterError

ReshapeSpec = None | str | tuple[int, int] | Callable[[torch.Tensor], torch.Tensor]


def _square(n: int) -> int | None:
    s = math.isqrt(n) if n > 0 else 0
    return s if s > 1 and s * s == n else None


def _fits(a: int, b: int, ratio: float) -> bool:
    return b > 0 and abs(a / b - ratio) <= 0.25 * ratio


def check_reshape(spec: Any) -> None:
    """Raise ParameterError for a ``reshape`` value that is none of the accepted forms."""
    if spec is None or callable(spec) or spec in ("channels_last", "channels_first"):
        return
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(v, int) and v > 0 for v in spec):
        return
    raise ParameterError(
        f"reshape must be None (automatic), 'channels_last', 'channels_first', an (h, w) tuple of token grid "
        f"sizes, or a callable returning (N, C, h, w); got {spec!r}"
    )


def layout_of(shape: tuple[int, ...], input_hw: tuple[int, int], spec: ReshapeSpec = None) -> str | None:
    """How an output of ``shape`` becomes a grid: 'channels_first', 'channels_last', 'tokens' or None."""
    if callable(spec) and not isinstance(spec, str):
        return "callable"
    if spec in ("channels_first", "channels_last"):
        return spec if len(shape) == 4 else None
    if isinstance(spec, (tuple, list)):
        return "tokens" if len(shape) == 3 and shape[1] >= spec[0] * spec[1] else None
    if len(shape) == 4:
        ratio = input_hw[0] / max(1, input_hw[1])
        if not _fits(shape[2], shape[3], ratio) and _fits(shape[1], shape[2], ratio):
            return "channels_last"
        return "channels_first"
    if len(shape) == 3 and (_square(shape[1]) or _square(shape[1] - 1)):
        return "tokens"
    return None


def to_grid(
    t: torch.Tensor, input_hw: tuple[int, int], spec: ReshapeSpec = None, name: str = "layer"
) -> torch.Tensor:
    """``t`` (a layer output or its gradient) as ``(N, C, h, w)``; LayerError names the shape otherwise."""
    shape = tuple(t.shape)
    kind = layout_of(shape, input_hw, spec)
    if kind == "callable":
        out = spec(t)  # type: ignore[operator]
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise LayerError(f"reshape({name} output {shape}) must return (N, C, h, w); it returned {got}")
        return out
    if kind == "channels_first":
        return t
    if kind == "channels_last":
        return t.permute(0, 3, 1, 2)
    if kind == "tokens":
        if isinstance(spec, (tuple, list)):
            h, w = int(spec[0]), int(spec[1])
        else:
            s = _square(shape[1]) or _square(shape[1] - 1)
            h = w = int(s)  # type: ignore[arg-type]
        grid = t[:, shape[1] - h * w:]
        return grid.reshape(shape[0], h, w, shape[2]).permute(0, 3, 1, 2)
    raise LayerError(
        f"layer {name!r} outputs shape {shape}, which is not a spatial map: CAMs need (N, C, h, w), "
        "(N, h, w, C) or tokens (N, T, D) with T or T-1 a square number. Pass reshape=(h, w) for tokens, "
        "reshape='channels_last', or a callable returning (N, C, h, w); or choose another layer."
    )


def grid_index(
    sample_shape: tuple[int, ...], input_hw: tuple[int, int], spec: ReshapeSpec, name: str
) -> torch.Tensor:
    """``(C, h, w)`` flat positions, in one sample's raw output, of each grid cell (for writing back)."""
    idx = torch.arange(math.prod(sample_shape[1:]), dtype=torch.long).view(1, *sample_shape[1:])
    return to_grid(idx, input_hw, spec, name)[0]
