"""Context managers that always leave the user's model as they found it."""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

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


def _hook_keys(module: nn.Module) -> dict[str, frozenset]:
    """The ids of the hooks ``module`` holds, per hook dict (for tests that check nothing was left)."""
    state = module.__dict__
    return {name: frozenset(state[name]) for name in _HOOK_DICTS if name in state}


def _remove_hooks_since(modules: list[nn.Module], first_id: int) -> None:
    """Delete every hook of ``modules`` registered with a handle id >= ``first_id``.

    Module hooks are stored under their handle's id, which torch takes from one global counter
    (``RemovableHandle.next_id``), so the hooks added since a moment are exactly those with an id at or
    above the counter's value then. Dicts are read from ``__dict__`` (no ``nn.Module.__getattr__``).
    """
    for module in modules:
        state = module.__dict__
        for name in _HOOK_DICTS:
            store = state.get(name)
            if store:
                stale = [key for key in store if isinstance(key, int) and key >= first_id]
                for key in stale:
                    del store[key]


_MODEL_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock that serialises computations on ``model`` (one per module object).

    Held by :func:`preserved` for its whole block: anything that installs hooks or changes module state
    runs inside it, so two computations on one model (a widget's worker thread and a notebook cell) run
    one after the other and each sees the model as the user left it. Weakly keyed: the lock does not
    keep the model alive.
    """
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def preserved(model: object) -> Iterator[None]:
    """Hold the model's lock; restore ``training`` flags, ``requires_grad``, ``inplace`` flags, hooks and
    running buffers on exit.

    The block runs under :func:`model_lock`, so no other computation on the same model interleaves its
    hooks or state changes with this one (re-entrant: nested blocks in one thread are fine). Hooks
    registered inside the block and still present on exit are removed; flags changed inside the block
    are set back. Buffers of modules in training mode (batch-norm running statistics, which every forward
    pass in training mode updates) are restored to their values on entry. This runs also when the block
    raises.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    with model_lock(model), _restored(model):
        yield


@contextlib.contextmanager
def _restored(model: nn.Module) -> Iterator[None]:
    """The restoring part of :func:`preserved` (the caller holds the model's lock)."""
    modules = list(model.modules())
    training = [m.training for m in modules]
    inplace = [m.__dict__.get("inplace") for m in modules]  # a plain attribute where it exists (ReLU & co)
    first_hook_id = RemovableHandle.next_id
    params = list(model.parameters())
    requires_grad = [p.requires_grad for p in params]
    # a forward in training mode updates batch-norm running stats (and num_batches_tracked) in place
    buffers = [
        (module, name, buf, buf.detach().clone())
        for module in modules
        if module.training
        for name, buf in module.__dict__.get("_buffers", {}).items()
        if isinstance(buf, torch.Tensor)
    ]
    try:
        yield
    finally:
        for module, flag, ip in zip(modules, training, inplace):
            if module.training != flag:
                module.training = flag
            if ip is not None and module.__dict__.get("inplace") != ip:
                module.inplace = ip
        _remove_hooks_since(modules, first_hook_id)
        with torch.no_grad():
            for module, name, buf, saved in buffers:
                if module.__dict__["_buffers"].get(name) is not buf:
                    module.__dict__["_buffers"][name] = buf
                if not torch.equal(buf, saved):
                    buf.copy_(saved)
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
