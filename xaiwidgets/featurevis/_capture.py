"""Forward hooks that capture named layer outputs, with an early stop once all of them have fired.

A module called several times per forward (a shared activation) is captured at its last call, or at its
first when the forward stops early; hook a module that runs once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..core.adapters import IMAGENET_MEAN, IMAGENET_STD, unwrap_model
from ..core.errors import ModelError, ParameterError
from ..core.layers import get_layer
from ..core.state import Hooks


class _Stop(Exception):
    """Raised from a hook to skip the rest of the forward pass (the later layers are not needed)."""


def _first_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    if hasattr(output, "logits") and isinstance(output.logits, torch.Tensor):
        return output.logits
    raise ModelError(f"a hooked layer returned {type(output).__name__}, not a tensor")


class Capture:
    """``acts[spec]`` holds the output of each layer of the last forward; ``run(x)`` returns the model output
    (``None`` when the forward stopped early after the last needed layer)."""

    def __init__(self, model: nn.Module, layers: Sequence[object], hooks: Hooks, *, stop_early: bool) -> None:
        self.model = model
        self.acts: dict = {}
        self.stop_early = stop_early and bool(layers)
        self._specs = list(layers)
        for spec in self._specs:
            module = get_layer(model, spec)  # raises LayerError with close names
            hooks.add(module.register_forward_hook(self._hook(spec)))

    def _hook(self, spec: object):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            self.acts[spec] = _first_tensor(output)
            if self.stop_early and all(s in self.acts for s in self._specs):
                raise _Stop

        return hook

    def run(self, x: torch.Tensor) -> torch.Tensor | None:
        self.acts = {}
        try:
            out = self.model(x)
        except _Stop:
            return None
        missing = [s for s in self._specs if s not in self.acts]
        if missing:
            raise ModelError(f"layer(s) {missing!r} did not run in the forward pass; choose layers the model uses")
        return _first_tensor(out)


@contextlib.contextmanager
def capture(model: nn.Module, layers: Sequence[object], *, stop_early: bool = True) -> Iterator[Capture]:
    """Hooks on ``layers`` for the duration of the block (always removed)."""
    with Hooks() as hooks:
        yield Capture(model, layers, hooks, stop_early=stop_early)


def resolve_model(model: object) -> tuple[nn.Module, object]:
    """``(nn.Module, adapter or None)``; feature visualisation needs an ``nn.Module`` to hook."""
    module, adapter = unwrap_model(model)
    if not isinstance(module, nn.Module):
        raise ModelError("feature visualisation hooks layers: pass a torch.nn.Module (or an ImageClassifier of one)")
    return module, adapter


def normalizer(adapter: object, normalize: object, device: torch.device):
    """A function mapping [0, 1] images to model inputs.

    ``normalize=True`` uses the adapter's mean/std (ImageNet statistics for a bare module, as torchvision
    models expect); ``False`` feeds [0, 1] images; a pair ``(mean, std)`` of 3-sequences is used as given.
    """
    if normalize is False or normalize is None:
        return lambda x: x
    if normalize is True:
        mean = getattr(adapter, "mean", None) if adapter is not None else IMAGENET_MEAN
        std = getattr(adapter, "std", None) if adapter is not None else IMAGENET_STD
        if adapter is not None and mean is None and std is None:
            return lambda x: x
        mean, std = mean or (0.0, 0.0, 0.0), std or (1.0, 1.0, 1.0)
    elif isinstance(normalize, (tuple, list)) and len(normalize) == 2:
        mean, std = normalize
    else:
        raise ParameterError("normalize must be True, False, or a pair (mean, std) of per-channel sequences")
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return lambda x: (x - m) / s
