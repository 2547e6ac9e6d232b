"""The layers a CAM can explain, for the widget's layer picker."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...core.errors import ModelError
from ...core.grid import layout_of, to_grid
from ...core.layers import map_layers
from ...core.state import Hooks, preserved


def _module_and_sample(model: Any, inputs: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    from ...core.adapters import unwrap_model

    model, _ = unwrap_model(model)
    if not isinstance(model, nn.Module):
        raise ModelError("spatial_layers needs a torch.nn.Module")
    x = inputs if inputs.dim() == 4 else inputs.unsqueeze(0)
    return model, x[:1]


def layer_choices(model: Any, inputs: torch.Tensor) -> list[dict[str, Any]]:
    """The layers a CAM can explain, found by behaviour (:func:`~xaiwidgets.core.layers.map_layers`): block
    outputs first, then the other layers, each in execution order (last is deepest).

    Each entry: ``name``, ``shape`` (the output's, one sample), ``grid`` ``(h, w)``, ``block`` (on the trunk:
    every path from the input to the output passes through it: stage and residual-block outputs; one name per
    tensor, the outermost module's) and ``default`` (what the CAMs explain without ``layer=``; no row has it
    when that is a module's input, e.g. "input of _avg_pooling" on EfficientNet, which no name selects).
    """
    from .base import default_layer

    model, x = _module_and_sample(model, inputs)
    sample = x.detach().clone()
    if sample.is_floating_point():
        sample.requires_grad_(True)
    found = map_layers(model, lambda: model(sample), (int(x.shape[-2]), int(x.shape[-1])))
    try:
        default = default_layer(model, x).name
    except Exception:  # no default (the picker still lists what exists)
        default = ""
    rows = [{"name": m.name, "shape": list(m.shape), "grid": list(m.grid),
             "block": m.block and m.outermost == m.name, "default": m.name == default} for m in found]
    return [r for r in rows if r["block"]] + [r for r in rows if not r["block"]]


def spatial_layers(model: Any, inputs: torch.Tensor, reshape: Any = None) -> list[str]:
    """Dotted names of the layers whose output is a spatial grid: block outputs first, then the others,
    each in execution order (see :func:`layer_choices`). Attention internals and maps whose cells the output
    does not depend on are left out.

    With ``reshape`` (a layout or token grid forced by the caller), every module called once whose output
    that reshape turns into a grid with ``h * w > 1`` is listed, in execution order. One forward on the
    first sample of ``inputs``; the model is left unchanged.
    """
    if reshape is None:
        return [r["name"] for r in layer_choices(model, inputs)]
    model, x = _module_and_sample(model, inputs)
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
        model(x)
    names = []
    for name in order:
        shape = shapes[name]
        if calls[name] != 1 or shape is None or layout_of(shape, hw, reshape) is None:
            continue
        grid_shape = to_grid(torch.empty(shape, device="meta"), hw, reshape, name).shape
        if math.prod(grid_shape[2:]) > 1:
            names.append(name)
    return names
