"""Layer lookup by dotted name, and automatic choice of the last spatial layer."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
from torch import nn

from .errors import LayerError
from .state import preserved


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


def _record_calls(model: nn.Module, run_forward: Callable[[], object]) -> tuple[list, dict[str, int]]:
    """Each module call of one forward, in finishing order: ``(name, first input, output)``.

    Runs under the model's lock (:func:`~.state.preserved`): no other computation's hooks or in-place
    changes can disturb the pass that the layer choice is read from.
    """
    finished: list[tuple[str, object, object]] = []
    calls: dict[str, int] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, args: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            finished.append((name, args[0] if args else None, output))

        return hook

    with preserved(model):
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(make_hook(name)))
        try:
            with torch.no_grad():
                run_forward()
        finally:
            for handle in handles:
                handle.remove()
    return finished, calls


def _spatial(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[2] * t.shape[3] > 1


#: pooling to a fixed output size only resamples the map for the head (torchvision's VGG/AlexNet
#: ``avgpool`` turns a 2x2 map at 64x64 into 7x7): never the feature map a CAM should explain
_RESAMPLERS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _resamplers(model: nn.Module) -> set[str]:
    return {name for name, module in model.named_modules() if isinstance(module, _RESAMPLERS)}


def _last_spatial_index(finished: list, calls: dict[str, int], skip: set[str] = frozenset()) -> int:
    for i in range(len(finished) - 1, -1, -1):
        name, _inp, out = finished[i]
        if calls.get(name) == 1 and name not in skip and _spatial(out):
            return i
    raise LayerError(
        "found no layer with a spatial (N, C, h, w) output; pass layer='<dotted name>' "
        "(and reshape=... for token outputs)"
    )


def find_last_spatial_layer(model: nn.Module, run_forward: Callable[[], object]) -> str:
    """The name of the last module (in execution order) that outputs an ``(N, C, h, w)`` map with h*w > 1.

    Adaptive pooling layers (``nn.AdaptiveAvgPool2d``/``nn.AdaptiveMaxPool2d``) are skipped: they resample
    the map to the head's fixed size (VGG's ``avgpool``: 2x2 -> 7x7 at 64x64), so the map before them is
    the one explained, as pytorch-grad-cam users pick ``features[-1]``.

    Modules called more than once per forward (shared activations such as a reused ReLU) are skipped, so
    the chosen layer's activation is unambiguous. ``run_forward`` runs the model once on a sample input.
    """
    finished, calls = _record_calls(model, run_forward)
    return finished[_last_spatial_index(finished, calls, _resamplers(model))][0]


def find_feature_map(model: nn.Module, run_forward: Callable[[], object]) -> tuple[str, bool]:
    """The model's last spatial feature map as ``(module name, use_input)``: what a CAM should explain.

    Usually the output of :func:`find_last_spatial_layer`. When the model applies an activation to that
    output through a shared module or a functional call (EfficientNet's reused ``ReLU6``, ``F.relu`` in a
    ``forward``), the post-activation map is no module's output; it is then taken as the first input of
    the next module that receives a map of the same shape (typically the global pooling), so CAMs see
    the rectified features rather than the pre-activation batch norm.
    """
    finished, calls = _record_calls(model, run_forward)
    index = _last_spatial_index(finished, calls, _resamplers(model))
    name, _inp, out = finished[index]
    for later, inp, _out in finished[index + 1:]:
        if not _spatial(inp) or calls.get(later) != 1:
            continue  # shared modules (a reused activation) are no place to hook
        if inp is out or inp.shape != out.shape:
            break
        return later, True
    return name, False
