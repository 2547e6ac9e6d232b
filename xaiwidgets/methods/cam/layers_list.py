"""The layers a CAM can explain, for the widget's layer picker."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...core.errors import ModelError
from ...core.state import Hooks, preserved
from .grid import layout_of, to_grid


def spatial_layers(model: Any, inputs: torch.Tensor, reshape: Any = None) -> list[str]:
    """Dotted names of the layers whose output is a spatial grid, in execution order (last is deepest).

    A layer qualifies when it is called exactly once per forward and its output is ``(N, C, h, w)``,
    ``(N, h, w, C)`` or square tokens ``(N, T, D)`` (see :mod:`.grid`) with ``h * w > 1``. One forward on
    the first sample of ``inputs``; the model is left unchanged.
    """
    from ...core.adapters import unwrap_model

    model, _ = unwrap_model(model)
    if not isinstance(model, nn.Module):
        raise ModelError("spatial_layers needs a torch.nn.Module")
    x = inputs if inputs.dim() == 4 else inputs.unsqueeze(0)
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    order: list[str] = []
    shapes: dict[str, tuple[int, ...] | None] = {}
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(_m: nn.Module, _a: object, out: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in shapes:
                order.append(name)
            shapes[name] = tuple(out.shape) if isinstance(out, torch.Tensor) else None

        return hook

    with preserved(model), Hooks() as hooks, torch.no_grad():
        for name, module in model.named_modules():
            if name:
                hooks.add(module.register_forward_hook(make_hook(name)))
        model(x[:1])
    names = []
    for name in order:
        shape = shapes[name]
        if calls[name] != 1 or shape is None or layout_of(shape, hw, reshape) is None:
            continue
        grid_shape = to_grid(torch.empty(shape, device="meta"), hw, reshape, name).shape
        if math.prod(grid_shape[2:]) > 1:
            names.append(name)
    return names
