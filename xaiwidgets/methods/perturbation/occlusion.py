"""Occlusion (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks",
arXiv:1311.2901).

A window slides over the input with a stride; each position is replaced by the baseline and the drop of
the target score, ``f(x) - f(x_occluded)``, is credited to every element under the window. Elements
covered by several windows get the mean of their windows' drops. Window positions follow captum's
``Occlusion``: ``ceil((D - w) / s) + 1`` positions per axis starting at ``0, s, 2s, ...``, the last window
cropped at the border, so the result equals captum's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.batching import ChunkPlanner, Retry, row_bytes
from ...core.errors import ParameterError
from ...core.progress import Progress
from ...core.targets import TargetLike
from ..base import Method
from ..baselines import resolve_baseline
from ..registry import register
from ._common import check_batch_size, scores_and_target
from .features import target_values


def _as_tuple(value: Any, name: str) -> tuple[int, ...]:
    items = (value,) if isinstance(value, int) else tuple(value)
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
        raise ParameterError(f"{name} must be a positive integer or a tuple of positive integers, got {value!r}")
    return items


def window_geometry(shape: tuple[int, ...], window: Any, stride: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Full-rank ``(window, stride)`` over ``shape`` (one input, channels first).

    An int or a tuple over the trailing (spatial) axes covers every channel: ``window=16`` on ``(3, H, W)``
    is ``(3, 16, 16)``; a tuple of ``len(shape)`` is used as is (captum's ``sliding_window_shapes``).
    """
    rank = len(shape)
    spatial = rank - 1 if rank >= 2 else rank
    w = _as_tuple(window, "window")
    if len(w) == 1 and spatial > 1:
        w = w * spatial
    if len(w) == spatial and spatial < rank:
        w = (shape[0], *w)
    if len(w) != rank:
        raise ParameterError(
            f"window {window!r} does not fit inputs of shape (N, {', '.join(map(str, shape))}); give an int, "
            f"{spatial} spatial sizes, or {rank} sizes"
        )
    s = _as_tuple(stride, "stride")
    if len(s) == 1 and rank > 1:
        s = s * spatial if spatial < rank else s * rank
    if len(s) == spatial and spatial < rank:
        s = (1, *s)
    if len(s) != rank:
        raise ParameterError(f"stride {stride!r} does not match the window {w}; give an int or {spatial} sizes")
    for d, (size, wd, sd) in enumerate(zip(shape, w, s)):
        if wd > size:
            raise ParameterError(f"window {w} is larger than the input {shape} on axis {d + 1}; make it smaller")
        if sd > wd and wd != size:
            raise ParameterError(
                f"stride {s} is larger than the window {w} on axis {d + 1}, so some elements would never be "
                "occluded; use a stride no larger than the window"
            )
    return w, s


def window_indicators(
    shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...], device, dtype=torch.float32
) -> list:
    """Per axis, a ``(positions, size)`` 0/1 matrix (``dtype``): which elements the k-th window position covers."""
    out = []
    for size, w, s in zip(shape, window, stride):
        n = math.ceil((size - w) / s) + 1
        start = torch.arange(n, device=device)[:, None] * s
        idx = torch.arange(size, device=device)[None, :]
        out.append(((idx >= start) & (idx < start + w)).to(dtype))
    return out


@register
class Occlusion(Method):
    """Occlusion with a sliding window; every window evaluated, ``batch_size`` windows per model call (None:
    the size measured fastest)."""

    name = "occlusion"
    family = "perturbation"
    reference = "Zeiler & Fergus 2014, arXiv:1311.2901"
    default_reduce = "sum"
    defaults: ClassVar[dict[str, Any]] = {"window": None, "stride": None, "baseline": 0.0, "batch_size": None}

    @staticmethod
    def _resolve(inputs: torch.Tensor, params: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        shape = tuple(inputs.shape[1:])
        window = params["window"]
        if window is None:
            window = max(1, min(shape[-2:]) // 14) if inputs.dim() == 4 else 1
        stride = params["stride"]
        if stride is None:
            ws = _as_tuple(window, "window")
            stride = tuple(max(1, v // 2) for v in ws) if len(ws) > 1 else max(1, ws[0] // 2)
        return window_geometry(shape, window, stride)

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_batch_size(params)
        self._resolve(inputs, params)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        window, stride = self._resolve(inputs, params)
        shape = tuple(inputs.shape[1:])
        scores, resolved = scores_and_target(self.model, inputs, target)
        baseline = resolve_baseline(params["baseline"], inputs, self.classifier)
        acc_dtype = torch.promote_types(inputs.dtype, torch.float32)  # float64 inputs stay float64
        ind = window_indicators(shape, window, stride, inputs.device, acc_dtype)
        counts = tuple(i.shape[0] for i in ind)
        total = math.prod(counts)
        # a window over every channel: one (B, 1, ...) mask broadcast over the channels
        full_channels = len(shape) > 1 and counts[0] == 1 and bool(ind[0].all())
        mask_axes = [torch.ones_like(ind[0][:, :1]), *ind[1:]] if full_channels else ind
        planner = ChunkPlanner(row_bytes(inputs), inputs.device, params["batch_size"])
        buffer = torch.empty(0, dtype=inputs.dtype, device=inputs.device)
        values = torch.empty_like(inputs)
        for n in range(inputs.shape[0]):
            x, b = inputs[n : n + 1], baseline[n : n + 1]
            drops = []
            start = 0
            while start < total:
                size = planner.next(total - start)
                flat = torch.arange(start, start + size, device=inputs.device)
                if buffer.shape[0] < size:
                    buffer = torch.empty((size, *shape), dtype=inputs.dtype, device=inputs.device)
                mask = self._masks(mask_axes, counts, flat)
                occluded = torch.mul(x, 1 - mask, out=buffer[:size]).addcmul_(b, mask)  # x (1 - m) + b m
                try:
                    f = planner.run(size, lambda k, o=occluded, t=int(resolved[n]): target_values(self.model, o, t, k))
                except Retry:
                    buffer = buffer[:0]
                    continue
                drops.append(scores[n] - f)
                start += size
                progress.update(n * total + start, inputs.shape[0] * total, self.name)
            diff = torch.cat(drops).view(counts).to(acc_dtype)
            # sum over windows of drop * mask, contracted axis by axis; divided by the number of windows
            acc = diff
            for axis in ind:
                acc = torch.tensordot(acc, axis, dims=([0], [0]))
            cover = ind[0].sum(0)
            for axis in ind[1:]:
                cover = cover[..., None] * axis.sum(0)
            values[n] = (acc / cover).to(inputs.dtype)
        return Attribution(
            values=values,
            method=self.name,
            target=resolved,
            scores=scores,
            extras={"window": window, "stride": stride, "n_windows": total},
        )

    @staticmethod
    def _masks(ind: list[torch.Tensor], counts: tuple[int, ...], flat: torch.Tensor) -> torch.Tensor:
        """Masks ``(B, ...)`` for flat window indices (C order over the axes' positions)."""
        mask = None
        rem = flat
        idx = []
        for c in reversed(counts):
            idx.append(rem % c)
            rem = rem // c
        idx.reverse()
        for d, (axis, k) in enumerate(zip(ind, idx)):
            rows = axis[k]  # (B, size_d)
            shape = [rows.shape[0]] + [1] * len(ind)
            shape[d + 1] = rows.shape[1]
            rows = rows.view(shape)
            mask = rows if mask is None else mask * rows
        return mask
