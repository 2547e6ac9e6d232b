"""Objectives for activation maximisation, evaluated on layer outputs captured by forward hooks.

An :class:`Objective` maps the captured activations (and the model output) to one value per batch
element; :func:`~xaiwidgets.featurevis.maximize` ascends their sum. Objectives compose with ``+``, ``-``
and scalar ``*``. Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill
(doi:10.23915/distill.00007); DeepDream: Mordvintsev, Olah & Tyka 2015; diversity: Olah et al. 2017
(Gram-matrix cosine dissimilarity across the batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..core.errors import LayerError, ParameterError

#: Key of the model output in the activation dictionary.
OUTPUT = "__output__"

LayerSpec = str | nn.Module
Fn = Callable[[dict, int], torch.Tensor]


class Objective:
    """A differentiable score per batch element, to be maximised.

    ``fn(acts, batch)`` returns a ``(batch,)`` tensor; ``acts`` maps each layer of ``layers`` (and
    :data:`OUTPUT` when ``needs_output``) to its output. ``batch`` is the preferred batch size (e.g. the
    number of channels of :func:`channel_objectives`), or None.
    """

    def __init__(
        self, fn: Fn, layers: Sequence[LayerSpec] = (), *, needs_output: bool = False, name: str = "",
        batch: int | None = None,
    ) -> None:
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.needs_output = needs_output
        self.name = name or "objective"
        self.batch = batch

    def __call__(self, acts: dict, batch: int) -> torch.Tensor:
        return self.fn(acts, batch)

    def _combine(self, other: Objective, sign: float) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        batches = {b for b in (self.batch, other.batch) if b is not None}
        if len(batches) > 1:
            raise ParameterError(f"cannot combine objectives for batches of {sorted(batches)} images")
        op = "+" if sign > 0 else "-"
        return Objective(
            lambda acts, b: self.fn(acts, b) + sign * other.fn(acts, b), self.layers + other.layers,
            needs_output=self.needs_output or other.needs_output, name=f"({self.name} {op} {other.name})",
            batch=next(iter(batches), None),
        )

    def __add__(self, other: Objective) -> Objective:
        return self._combine(other, 1.0)

    def __radd__(self, other: object) -> Objective:
        if other == 0:  # sum([...]) starts at 0
            return self
        return NotImplemented

    def __sub__(self, other: Objective) -> Objective:
        return self._combine(other, -1.0)

    def __mul__(self, k: float) -> Objective:
        if not isinstance(k, (int, float)) or isinstance(k, bool):
            raise ParameterError("objectives can only be multiplied by a number")
        return Objective(
            lambda acts, b: k * self.fn(acts, b), self.layers, needs_output=self.needs_output,
            name=f"{k:g} * {self.name}", batch=self.batch,
        )

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _layer_label(layer: LayerSpec) -> str:
    return layer if isinstance(layer, str) else type(layer).__name__


def _check_channel(act: torch.Tensor, channel: int, layer: LayerSpec) -> None:
    if act.dim() not in (2, 4):
        raise LayerError(
            f"layer {_layer_label(layer)!r} outputs shape {tuple(act.shape)}; channel objectives need "
            "(N, C, h, w) or (N, C) outputs — choose a convolutional or linear layer"
        )
    if not 0 <= channel < act.shape[1]:
        raise ParameterError(
            f"channel {channel} is out of range: layer {_layer_label(layer)!r} has {act.shape[1]} channels "
            f"(0-{act.shape[1] - 1})"
        )


def _batch_mask(values: torch.Tensor, batch: int | None) -> torch.Tensor:
    if batch is None:
        return values
    if not 0 <= batch < values.shape[0]:
        raise ParameterError(f"batch index {batch} is out of range for a batch of {values.shape[0]} images")
    mask = torch.zeros_like(values)
    mask[batch] = 1.0
    return values * mask


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an int, got {value!r}")
    return value


def channel(layer: LayerSpec, channel: int, *, batch: int | None = None) -> Objective:
    """Mean activation of ``channel`` of ``layer`` over all positions."""
    c = _int("channel", channel)

    def fn(acts: dict, b: int) -> torch.Tensor:
        act = acts[layer]
        _check_channel(act, c, layer)
        a = act[:, c]
        return _batch_mask(a.flatten(1).mean(1) if a.dim() > 1 else a, batch)

    return Objective(fn, [layer], name=f"channel({_layer_label(layer)}:{c})")


def neuron(
    layer: LayerSpec, channel: int, x: int | None = None, y: int | None = None, *, batch: int | None = None
) -> Objective:
    """Activation of ``channel`` at map position ``(y, x)`` (the centre of the map when omitted)."""
    c = _int("channel", channel)

    def fn(acts: dict, b: int) -> torch.Tensor:
        act = acts[layer]
        _check_channel(act, c, layer)
        if act.dim() != 4:
            raise LayerError(f"neuron objectives need a spatial (N, C, h, w) layer; {_layer_label(layer)!r} "
                             "has none — use channel() instead")
        h, w = act.shape[-2:]
        yy = h // 2 if y is None else y
        xx = w // 2 if x is None else x
        if not (0 <= yy < h and 0 <= xx < w):
            raise ParameterError(f"neuron position (y={yy}, x={xx}) is outside the {h}x{w} map of "
                                 f"{_layer_label(layer)!r}")
        return _batch_mask(act[:, c, yy, xx], batch)

    return Objective(fn, [layer], name=f"neuron({_layer_label(layer)}:{c})")


def layer(layer: LayerSpec, *, batch: int | None = None) -> Objective:
    """DeepDream: the mean squared activation of the whole layer."""

    def fn(acts: dict, b: int) -> torch.Tensor:
        return _batch_mask(acts[layer].pow(2).flatten(1).mean(1), batch)

    return Objective(fn, [layer], name=f"deepdream({_layer_label(layer)})")


def class_logit(index: int, *, batch: int | None = None) -> Objective:
    """The model's output score for class ``index`` (a logit, before any softmax)."""
    i = _int("class index", index)

    def fn(acts: dict, b: int) -> torch.Tensor:
        out = acts[OUTPUT]
        if out.dim() != 2:
            raise ParameterError(f"class_logit needs (N, classes) model outputs, got {tuple(out.shape)}")
        if not 0 <= i < out.shape[1]:
            raise ParameterError(f"class index {i} is out of range: the model has {out.shape[1]} outputs")
        return _batch_mask(out[:, i], batch)

    return Objective(fn, needs_output=True, name=f"class_logit({i})")


def direction(layer: LayerSpec, vector: torch.Tensor | Sequence[float], *, batch: int | None = None) -> Objective:
    """Mean over positions of the dot product between the activation vector and ``vector``."""
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(acts: dict, b: int) -> torch.Tensor:
        act = acts[layer]
        if act.shape[1] != v.numel():
            raise ParameterError(f"direction has {v.numel()} entries but layer {_layer_label(layer)!r} has "
                                 f"{act.shape[1]} channels")
        vv = v.to(act.device, act.dtype).view(1, -1, *([1] * (act.dim() - 2)))
        return _batch_mask((act * vv).sum(1).flatten(1).mean(1) if act.dim() > 2 else (act * vv).sum(1), batch)

    return Objective(fn, [layer], name=f"direction({_layer_label(layer)})")


def diversity(layer: LayerSpec) -> Objective:
    """Minus the cosine similarity of each image's Gram matrix to the others' (Olah et al. 2017).

    The values sum to lucid's batch diversity term ``-sum_{i != j} cos(G_i, G_j) / B``.
    """

    def fn(acts: dict, b: int) -> torch.Tensor:
        act = acts[layer]
        if act.dim() != 4 or act.shape[0] < 2:
            raise ParameterError("diversity needs a spatial layer and a batch of at least 2 images")
        f = act.flatten(2)
        gram = torch.nn.functional.normalize(torch.bmm(f, f.transpose(1, 2)).flatten(1), dim=1)
        sim = gram @ gram.T
        return -(sim.sum(1) - sim.diagonal()) / act.shape[0]

    return Objective(fn, [layer], name=f"diversity({_layer_label(layer)})")


def channel_objectives(layer: LayerSpec, channels: Sequence[int]) -> Objective:
    """One channel objective per batch element: image ``i`` maximises ``channels[i]`` (one batched run)."""
    chans = [_int("channel", c) for c in channels]
    if not chans:
        raise ParameterError("channel_objectives needs at least one channel")

    def fn(acts: dict, b: int) -> torch.Tensor:
        act = acts[layer]
        if b != len(chans):
            raise ParameterError(f"channel_objectives for {len(chans)} channels needs batch={len(chans)}, got {b}")
        for c in (min(chans), max(chans)):
            _check_channel(act, c, layer)
        idx = torch.tensor(chans, device=act.device)
        sel = act[torch.arange(b, device=act.device), idx]
        return sel.flatten(1).mean(1) if sel.dim() > 1 else sel

    return Objective(fn, [layer], name=f"channels({_layer_label(layer)}:{len(chans)})", batch=len(chans))
