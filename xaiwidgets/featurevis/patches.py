"""Maximally activating image patches of a channel over a data set, cropped to the receptive field.

Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", arXiv:1311.2901 (top
activations and their image patches); Olah et al. 2017, "Feature Visualization", Distill (data set
examples). The receptive field is found from gradients (see :func:`receptive_field`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..core.batching import ChunkPlanner, Retry, row_bytes
from ..core.device import model_device
from ..core.errors import InputError, LayerError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ._capture import capture, resolve_model


@dataclass(frozen=True)
class ReceptiveField:
    """Map position ``(i, j)`` sees input rows ``offset[0] + i*stride[0]`` to that ``+ size[0]`` (exclusive),
    columns likewise; boxes may extend past the image border (padding)."""

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]
    map_size: tuple[int, int]

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of position ``(i, j)``, unclipped, exclusive ends."""
        y0 = self.offset[0] + i * self.stride[0]
        x0 = self.offset[1] + j * self.stride[1]
        return x0, y0, x0 + self.size[1], y0 + self.size[0]


def _support(mass: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box of the nonzero entries of an ``(H, W)`` map of summed absolute gradients."""
    nz = mass > 0
    rows, cols = nz.any(1).nonzero().flatten(), nz.any(0).nonzero().flatten()
    if rows.numel() == 0:
        raise LayerError("the layer's output does not depend on the input; choose another layer")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def receptive_field(
    model: Any, layer: str | torch.nn.Module, input_shape: tuple[int, ...], *, n_probes: int = 8, seed: int = 0
) -> ReceptiveField:
    """The receptive field of ``layer``'s positions for inputs of ``input_shape`` ``(C, H, W)``.

    Gradient-based: the support of ``d act[:, :, i, j] / d input`` for ``n_probes`` random normal inputs
    (summed absolute gradients over probes and channels), at the central position and its diagonal
    neighbour (their offset gives the stride). For conv/pool stacks this is the exact theoretical field
    unless every probe and channel has a zero derivative at a border pixel (dead ReLUs, max-pool
    arg-max never on that pixel), which the random probes make vanishingly unlikely; for other modules
    (attention, global pooling) it is the set of pixels the position actually depends on.
    """
    module, _ = resolve_model(model)
    device = model_device(module)
    gen = torch.Generator().manual_seed(seed)
    probes = torch.randn(n_probes, *input_shape, generator=gen).to(device)
    # the probes go through the model in chunks that fit the memory budget (a full-size forward+backward of
    # EfficientNet-Lite0 keeps ~80 MiB per probe); the support is a union over probes, so chunking is exact
    planner = ChunkPlanner(row_bytes(probes), device)
    masses: list[torch.Tensor] = []
    h = w = 0
    with preserved(module), capture(module, [layer]) as cap:
        module.eval()
        start = 0
        while start < n_probes:
            rows = planner.next(n_probes - start)
            try:
                (h, w), part = planner.run(rows, lambda r, a=start: _gradient_mass(cap, layer, probes[a : a + r]))
            except Retry:
                continue
            masses = [m + p for m, p in zip(masses, part)] if masses else part
            start += rows
    ci, cj = (h - 1) // 2, (w - 1) // 2
    boxes = [_support(m) for m in masses]
    y0, y1, x0, x1 = boxes[0]
    if len(boxes) > 1:
        stride = (boxes[1][0] - y0 or 1, boxes[1][2] - x0 or 1)
        stride = (max(1, stride[0]), max(1, stride[1]))
    else:
        stride = (max(1, input_shape[1] // h), max(1, input_shape[2] // w))
    return ReceptiveField(size=(y1 - y0, x1 - x0), stride=stride, offset=(y0 - ci * stride[0], x0 - cj * stride[1]),
                          map_size=(h, w))


def _layer_output(cap: Any, layer: str | torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    cap.run(x)
    return cap.acts[layer]


def _gradient_mass(cap: Any, layer: str | torch.nn.Module, probes: torch.Tensor
                   ) -> tuple[tuple[int, int], list[torch.Tensor]]:
    """The layer's map size and, for its central position and the diagonal neighbour, ``|d act / d input|``
    summed over probes and channels ``(H, W)``."""
    x = probes.detach().requires_grad_(True)
    cap.run(x)
    act = cap.acts[layer]
    if act.dim() != 4:
        raise LayerError(f"layer output has shape {tuple(act.shape)}; top patches need a spatial (N, C, h, w) layer")
    h, w = act.shape[-2:]
    ci, cj = (h - 1) // 2, (w - 1) // 2
    positions = [(ci, cj)] + ([(ci + 1, cj + 1)] if h > 1 and w > 1 else [])
    masses = []
    for k, (i, j) in enumerate(positions):
        (g,) = torch.autograd.grad(act[:, :, i, j].sum(), x, retain_graph=k + 1 < len(positions))
        masses.append(g.abs().sum((0, 1)))
    return (int(h), int(w)), masses


@dataclass(eq=False)
class TopPatches:
    """``patches``: ``(k, C, size_y, size_x)`` crops of the receptive field (zero outside the image);
    ``boxes``: ``(k, 4)`` ``(x0, y0, x1, y1)`` clipped to the image; ``indices``: ``(k,)`` image indices;
    ``positions``: ``(k, 2)`` ``(i, j)`` map positions; ``values``: ``(k,)`` activations, best first."""

    patches: torch.Tensor
    boxes: torch.Tensor
    indices: torch.Tensor
    positions: torch.Tensor
    values: torch.Tensor
    receptive_field: ReceptiveField
    layer: str
    channel: int


def _check_args(images: object, k: object, batch_size: object, channels: list[object]) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise InputError("images must be a model-ready (N, C, H, W) tensor")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"k must be a positive int, got {k!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ParameterError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if not channels:
        raise ParameterError("give at least one channel")
    for c in channels:
        if isinstance(c, bool) or not isinstance(c, int):
            raise ParameterError(f"channel must be an int, got {c!r}")


def _channel_maxima(
    module: torch.nn.Module, layer: str | torch.nn.Module, channels: list[int], images: torch.Tensor,
    batch_size: int | None, prog: Progress,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, the maximum over positions ``(N, C')`` and its ``(i, j)`` ``(N, C', 2)``."""
    device = model_device(module)
    n = images.shape[0]
    idx = torch.tensor(channels)
    best_vals, best_pos = [], []
    with preserved(module), capture(module, [layer]) as cap, torch.no_grad():
        module.eval()
        planner = ChunkPlanner(row_bytes(images), device, batch_size)
        a = 0
        while a < n:
            b = a + planner.next(n - a)
            try:
                act = planner.run(b - a, lambda _r, a=a, b=b: _layer_output(cap, layer, images[a:b].to(device)))
            except Retry:
                continue
            if act.dim() != 4:
                raise LayerError(f"layer output has shape {tuple(act.shape)}; top patches need a spatial layer")
            bad = [c for c in channels if not 0 <= c < act.shape[1]]
            if bad:
                raise ParameterError(f"channel {bad[0]} is out of range: the layer has {act.shape[1]} channels "
                                     f"(0-{act.shape[1] - 1})")
            m = act[:, idx.to(act.device)].flatten(2)
            v, p = m.max(2)
            best_vals.append(v.float().cpu())
            best_pos.append(torch.stack([p // act.shape[-1], p % act.shape[-1]], 2).cpu())
            prog.update(b, n, "top patches")
            a = b
    prog.close()
    return torch.cat(best_vals), torch.cat(best_pos)


def _crop(images: torch.Tensor, rf: ReceptiveField, vals: torch.Tensor, pos: torch.Tensor, k: int, layer: str,
          channel: int) -> TopPatches:
    k = min(k, vals.shape[0])
    top_v, top_i = vals.topk(k)
    sy, sx = rf.size
    padded = F.pad(images[top_i].detach().cpu(), [sx, sx, sy, sy])
    patches, boxes = [], []
    for r, idx in enumerate(top_i.tolist()):
        x0, y0, x1, y1 = rf.box(int(pos[idx, 0]), int(pos[idx, 1]))
        patches.append(padded[r, :, y0 + sy : y1 + sy, x0 + sx : x1 + sx])
        boxes.append([max(0, x0), max(0, y0), min(images.shape[-1], x1), min(images.shape[-2], y1)])
    return TopPatches(
        patches=torch.stack(patches), boxes=torch.tensor(boxes, dtype=torch.long), indices=top_i,
        positions=pos[top_i], values=top_v, receptive_field=rf, layer=layer, channel=channel,
    )


def top_patches(
    model: Any, layer: str | torch.nn.Module, channel: int, images: torch.Tensor, *, k: int = 9,
    batch_size: int | None = None, progress: Progress | bool | None = None,
) -> TopPatches:
    """The ``k`` images (one position each, their maximum) that activate ``channel`` of ``layer`` most.

    ``images``: model-ready ``(N, C, H, W)`` tensor; evaluated in chunks of ``batch_size`` (None: sized by the
    memory budget, see ``core.batching``) on the model's device, stopping each forward at ``layer``.
    """
    return top_patches_per_channel(model, layer, [channel], images, k=k, batch_size=batch_size,
                                   progress=progress)[channel]


def top_patches_per_channel(
    model: Any, layer: str | torch.nn.Module, channels: Sequence[int], images: torch.Tensor, *, k: int = 9,
    batch_size: int | None = None, progress: Progress | bool | None = None,
) -> dict[int, TopPatches]:
    """:func:`top_patches` for several channels of ``layer`` from ONE pass over ``images``
    (a gallery's data-set examples): ``{channel: TopPatches}``."""
    module, _ = resolve_model(model)
    chans = list(channels) if isinstance(channels, Sequence) else [channels]
    _check_args(images, k, batch_size, chans)
    chans = list(dict.fromkeys(chans))
    vals, pos = _channel_maxima(module, layer, chans, images, batch_size, as_progress(progress))
    rf = receptive_field(module, layer, tuple(images.shape[1:]))
    name = layer if isinstance(layer, str) else type(layer).__name__
    return {c: _crop(images, rf, vals[:, i], pos[:, i], k, name, c) for i, c in enumerate(chans)}
