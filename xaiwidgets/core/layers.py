"""Layer lookup by dotted name, and automatic choice of the last spatial layer."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
from torch import nn

from .errors import LayerError


def get_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule named ``layer`` (dotted path, e.g. ``"layer4.1.conv2"``) or ``layer`` itself.

    Unknown names raise :class:`LayerError` listing the closest existing names.
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise LayerError("the layer module passed is not part of this model; pass one of its submodules")
        return layer
    if not isinstance(layer, str):
        raise LayerError(f"layer must be a dotted module name or a module, got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer in modules:
        return modules[layer]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    top = ", ".join(n for n, _ in model.named_children())
    raise LayerError(f"the model has no layer named {layer!r}.{hint} Top-level layers: {top}.")


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """The dotted name of ``layer`` inside ``model``."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise LayerError("layer is not part of the model")


def find_last_spatial_layer(model: nn.Module, run_forward: Callable[[], object]) -> str:
    """The name of the last module (in execution order) that outputs an ``(N, C, h, w)`` map with h*w > 1.

    Modules called more than once per forward (shared activations such as a reused ReLU) are skipped, so
    the chosen layer's activation is unambiguous. ``run_forward`` runs the model once on a sample input.
    """
    finished: list[tuple[str, tuple[int, ...]]] = []
    calls: dict[str, int] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                finished.append((name, tuple(output.shape)))

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(make_hook(name)))
    try:
        with torch.no_grad():
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
    for name, shape in reversed(finished):
        if calls.get(name) == 1 and len(shape) == 4 and shape[2] * shape[3] > 1:
            return name
    raise LayerError(
        "found no layer with a spatial (N, C, h, w) output; pass layer='<dotted name>' "
        "(and reshape=... for token outputs)"
    )
