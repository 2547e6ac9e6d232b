"""Shared pieces of the optimisation methods: layer taps, automatic feature layers, margins, blur."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import LayerError, ModelError
from ...core.layers import get_layer, layer_name, map_layers
from ...core.state import Hooks
from ...core.targets import scores_from_output
from ..base import Method


class ImageOptimisation(Method):
    """Base of this family: image methods whose unsigned map comes from an optimisation through the model."""

    family = "optimisation"
    tabular_strategy = None  # images only: ``modalities`` follows from the hooks (methods/base.py)
    default_reduce = "mean"
    signed = False


def as_module(model: Any, method: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ModelError(f"{method} reads the model's internal layers and needs a torch.nn.Module; "
                         f"got {type(model).__name__}")
    return model


def block_maps(model: nn.Module, inputs: torch.Tensor) -> list[tuple[str, tuple[int, int]]]:
    """``(name, grid)`` of the spatial block outputs (trunk maps on the input grid the output depends on,
    :func:`~xaiwidgets.core.layers.map_layers`), in execution order; found by one forward and backward on
    a copy of the first input."""
    sample = inputs[:1].detach().clone().requires_grad_(True)
    hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
    found = map_layers(model, lambda: model(sample), hw)
    blocks = [(m.name, m.grid) for m in found if m.block and m.outermost == m.name]
    return blocks or [(m.name, m.grid) for m in found]


def resolve_layer_names(model: nn.Module, layers: Any) -> list[str]:
    """``layers`` (a dotted name, a module, or a sequence of them) as dotted names; unknown names raise
    :class:`LayerError` with the closest existing ones."""
    items = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    names = []
    for item in items:
        module = get_layer(model, item)
        names.append(item if isinstance(item, str) else layer_name(model, module))
    return names


class Tap:
    """Forward hooks keeping the output of each named layer of the current forward. Downstream modules
    receive a copy, so an in-place operation after the layer (``ReLU(inplace=True)``, ``out += x``)
    cannot change what was kept."""

    def __init__(self, model: nn.Module, names: Sequence[str], hooks: Hooks) -> None:
        self.names = list(names)
        self.outputs: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        for name in self.names:
            hooks.add(get_layer(model, name).register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(_m: nn.Module, _a: object, out: object) -> torch.Tensor:
            if not isinstance(out, torch.Tensor):
                raise LayerError(f"layer {name!r} returns {type(out).__name__}, not a tensor; choose a layer that "
                                 "outputs a feature map")
            self.outputs[name].append(out)
            return out.clone()

        return hook

    def run(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(scores (N, C), [layer outputs])`` of one forward on ``x``."""
        for name in self.names:
            self.outputs[name].clear()
        scores = scores_from_output(model(x), x.shape[0])
        feats = []
        for name in self.names:
            got = self.outputs[name]
            if len(got) != 1:
                what = "was not called" if not got else f"was called {len(got)} times"
                raise LayerError(f"layer {name!r} {what} in the forward pass; choose layers used exactly once")
            feats.append(got[0])
        return scores, feats


def margin(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``f_t - max_{l != t} f_l`` per row."""
    if scores.shape[1] < 2:
        raise ModelError("a margin needs at least two classes; the model returns one score")
    own = scores.gather(1, target[:, None]).squeeze(1)
    others = scores.scatter(1, target[:, None], float("-inf")).amax(1)
    return own - others


def _symmetric_index(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices of a length-``n`` axis padded by ``radius`` with whole-sample reflection (``d c b a | a b c d``,
    scipy.ndimage's ``reflect``), for any radius."""
    idx = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_blur(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, 1, H, W)`` maps as ``scipy.ndimage.gaussian_filter(sigma=sigma)``
    (mode ``reflect``, kernel radius ``int(truncate * sigma + 0.5)``); ``sigma=0`` returns the maps."""
    if sigma <= 0:
        return maps
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, device=maps.device, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(maps.dtype)
    h, w = maps.shape[-2:]
    out = maps.index_select(-2, _symmetric_index(h, radius, maps.device))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    out = out.index_select(-1, _symmetric_index(w, radius, maps.device))
    return F.conv2d(out, kernel.view(1, 1, 1, -1))


def spread(items: Sequence[Any], k: int) -> list[Any]:
    """``k`` items evenly spread over ``items`` (first to last; all when there are at most ``k``)."""
    n = len(items)
    if n <= k:
        return list(items)
    picks = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [n - 1]
    return [items[i] for i in picks]
