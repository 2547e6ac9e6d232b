"""Context managers that always leave the user's model as they found it."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def _hook_keys(module: nn.Module) -> tuple[tuple[dict, frozenset], ...]:
    """Each hook dict of ``module`` with the keys it holds now (read from ``__dict__``: no attribute lookup
    through ``nn.Module.__getattr__``)."""
    state = module.__dict__
    return tuple((state[name], frozenset(state[name])) for name in _HOOK_DICTS if name in state)


@contextlib.contextmanager
def preserved(model: object) -> Iterator[None]:
    """Restore ``training`` flags, ``requires_grad``, ``inplace`` flags and hooks of every submodule.

    Hooks registered inside the block and still present on exit are removed; flags changed inside the
    block are set back. This runs also when the block raises.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    modules = list(model.modules())
    training = [m.training for m in modules]
    inplace = [m.__dict__.get("inplace") for m in modules]  # a plain attribute where it exists (ReLU & co)
    hooks = [_hook_keys(m) for m in modules]
    params = list(model.parameters())
    requires_grad = [p.requires_grad for p in params]
    try:
        yield
    finally:
        for module, flag, ip, keys in zip(modules, training, inplace, hooks):
            if module.training != flag:
                module.training = flag
            if ip is not None and module.__dict__.get("inplace") != ip:
                module.inplace = ip
            for store, before in keys:
                if len(store) != len(before) or any(key not in before for key in store):
                    for key in [k for k in store if k not in before]:
                        del store[key]
        for param, flag in zip(params, requires_grad):
            if param.requires_grad != flag:
                param.requires_grad_(flag)


class Hooks:
    """Collects hook handles and removes them all on exit (``with Hooks() as hooks: hooks.add(...)``)."""

    def __init__(self) -> None:
        self._handles: list = []

    def add(self, handle) -> None:
        self._handles.append(handle)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@contextlib.contextmanager
def frozen_parameters(model: object) -> Iterator[None]:
    """Turn off ``requires_grad`` on the parameters (input gradients only, faster); restored on exit."""
    if not isinstance(model, nn.Module):
        yield
        return
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def warn_if_training(model: object) -> None:
    """Warn when a model in training mode with dropout or batch norm is explained (results are random)."""
    mode_dependent = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
    if isinstance(model, nn.Module) and model.training and any(
        isinstance(m, mode_dependent) and m.training for m in model.modules()
    ):
        warnings.warn(
            "the model is in training mode: dropout and batch-norm statistics make explanations random. "
            "Call model.eval() first.",
            stacklevel=4,
        )


def tensors_alive() -> int:
    """Number of torch tensors reachable by the garbage collector (for leak tests)."""
    import gc

    count = 0
    for obj in gc.get_objects():
        try:
            if torch.is_tensor(obj):
                count += 1
        except Exception:  # some objects raise on inspection
            pass
    return count
