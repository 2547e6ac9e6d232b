"""Turn a layer's output into a ``(N, C, h, w)`` grid: conv maps, channels-last maps and token sequences.

Auto rules (``reshape=None``):

- 4-D ``(N, C, h, w)`` is used as is, unless its layout only makes sense channels-last: ``(h, w)`` is no
  downsampling of the input grid (:func:`on_input_grid`) while ``(shape[1], shape[2])`` is (torchvision's and
  timm's Swin stages output ``(N, h, w, C)``), then it is permuted. When both fit (e.g. ``(N, 7, 7, 7)``)
  the channels-first reading wins; pass ``reshape="channels_last"`` to force the other.
- 3-D tokens ``(N, T, D)``: the last ``h * w`` tokens form an ``h x w`` grid that downsamples the input
  grid, after at most :data:`MAX_EXTRA_TOKENS` leading extra tokens (class, distillation, register
  tokens), fewest extra tokens first (:func:`token_grid`); square grids of ``T`` or ``T - 1`` tokens are
  accepted whatever the input's shape.

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

from .errors import LayerError, ParameterError

ReshapeSpec = None | str | tuple[int, int] | Callable[[torch.Tensor], torch.Tensor]


def _square(n: int) -> int | None:
    s = math.isqrt(n) if n > 0 else 0
    return s if s > 1 and s * s == n else None


#: leading non-grid tokens a token sequence may carry (class + distillation + register tokens)
MAX_EXTRA_TOKENS = 8


def on_input_grid(h: int, w: int, input_hw: tuple[int, int]) -> bool:
    """Whether an ``h x w`` grid is the input's ``H x W`` grid downsampled by one stride ``s`` (each side
    ``H / s`` up to the rounding of padded convolutions, i.e. within 1 cell), with more than one cell.

    A conv or patch-embedding map qualifies (7x7 at 224 px, 8x8 at 225 px with ceil rounding, 2x3 at
    64x96); an attention tensor read as a map does not ((heads=3, tokens=17, head_dim=64) at 64 px would
    need strides 3.8 and 1).
    """
    big_h, big_w = input_hw
    if h < 1 or w < 1 or h * w < 2 or h > big_h or w > big_w:
        return False
    lo = max(big_h / (h + 1), big_w / (w + 1))
    hi = min(big_h / (h - 1) if h > 1 else math.inf, big_w / (w - 1) if w > 1 else math.inf)
    return lo <= hi


def _skew(h: int, w: int, input_hw: tuple[int, int]) -> float:
    return abs(math.log((h / w) / (input_hw[0] / max(1, input_hw[1]))))


def token_grid(tokens: int, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """``(h, w)`` such that the last ``h * w`` of ``tokens`` form a grid on the input (fewest extra leading
    tokens first, at most :data:`MAX_EXTRA_TOKENS`), or None."""
    big_h, big_w = input_hw
    for extra in range(min(MAX_EXTRA_TOKENS, tokens - 2) + 1):
        n = tokens - extra
        guess = round(math.sqrt(n * big_h / max(1, big_w)))
        for h in sorted({guess, guess - 1, guess + 1}, key=lambda v: abs(v - guess)):
            if h >= 1 and n % h == 0 and on_input_grid(h, n // h, input_hw):
                return h, n // h
    return None


def grid_of(shape: tuple[int, ...], input_hw: tuple[int, int], batch: int | None = None) -> str | None:
    """The strict reading of a tensor shape as a map on the input grid, for choosing layers automatically:
    'channels_first', 'channels_last', 'tokens' or None (also None when the batch size differs)."""
    if batch is not None and (len(shape) < 3 or shape[0] != batch):
        return None
    if len(shape) == 4:
        first, last = on_input_grid(shape[2], shape[3], input_hw), on_input_grid(shape[1], shape[2], input_hw)
        if first and last:  # both readings fit: the one with the input's aspect ratio (a tie: channels first)
            return "channels_last" if _skew(shape[1], shape[2], input_hw) < _skew(shape[2], shape[3], input_hw) \
                else "channels_first"
        return "channels_first" if first else "channels_last" if last else None
    if len(shape) == 3:
        return "tokens" if token_grid(shape[1], input_hw) is not None else None
    return None


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
        return grid_of(shape, input_hw) or "channels_first"
    if len(shape) == 3 and (token_grid(shape[1], input_hw) or _square(shape[1]) or _square(shape[1] - 1)):
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
            found = token_grid(shape[1], input_hw)
            s = _square(shape[1]) or _square(shape[1] - 1)
            h, w = found if found is not None else (int(s), int(s))  # type: ignore[arg-type]
        grid = t[:, shape[1] - h * w:]
        return grid.reshape(shape[0], h, w, shape[2]).permute(0, 3, 1, 2)
    raise LayerError(
        f"layer {name!r} outputs shape {shape}, which is not a spatial map: CAMs need (N, C, h, w), "
        "(N, h, w, C) or tokens (N, T, D) whose last h*w tokens form a grid on the input. Pass reshape=(h, w) "
        "for tokens, "
        "reshape='channels_last', or a callable returning (N, C, h, w); or choose another layer."
    )


def grid_index(
    sample_shape: tuple[int, ...], input_hw: tuple[int, int], spec: ReshapeSpec, name: str
) -> torch.Tensor:
    """``(C, h, w)`` flat positions, in one sample's raw output, of each grid cell (for writing back)."""
    idx = torch.arange(math.prod(sample_shape[1:]), dtype=torch.long).view(1, *sample_shape[1:])
    return to_grid(idx, input_hw, spec, name)[0]
