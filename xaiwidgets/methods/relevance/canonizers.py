"""Canonizers: rewrite a model for the LRP computation only, and always restore it.

- batch-norm merge: an eval-mode BatchNorm directly after a conv/linear layer is folded into that layer
  (``W' = W s``, ``b' = (b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``) and computes the
  identity meanwhile (Montavon et al. 2019; zennit's ``SequentialMergeBatchNorm``). A batch-norm subclass
  that also does more (timm's ``BatchNormAct2d``: normalise, drop, activate) keeps the rest of its forward,
  only its ``F.batch_norm`` becomes the identity. The user's parameter objects are never written to: the
  merged ones are swapped in and the originals swapped back.
- skip connections of torchvision's ResNet ``BasicBlock``/``Bottleneck`` and of EfficientNet's
  ``MBConvBlock`` become an explicit :class:`Sum` module over the stacked branches, so the sum gets the
  norm rule and the relevance is split in proportion to each branch's contribution (zennit's
  ``ResNetCanonizer``). Other residual additions need no canonizer: :mod:`.ops` splits them the same way
  wherever they happen. More block canonizers: :func:`register_canonizer`.

Everything is undone on exit, also when the computation raises.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ...core.errors import ModelError, ParameterError

LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class Sum(nn.Module):
    """Sum over the last axis: ``Sum()(torch.stack([a, b], -1)) == a + b``, as a module rules can hook."""

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        return stacked.sum(-1)


@dataclass
class Canonized:
    """What a canonisation changed: the merged batch norms (now identities) and the added sums."""

    merged: dict[nn.Module, nn.Module] = field(default_factory=dict)  # batch norm -> its linear layer
    sums: list[nn.Module] = field(default_factory=list)


def _units(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Leaves in definition order, linear layers and batch norms counted as leaves (a batch norm fused with
    its activation, as timm's ``BatchNormAct2d``, has the activation as a child)."""
    for name, child in module.named_children():
        if isinstance(child, (*LINEAR_TYPES, *BATCHNORM_TYPES)) or not any(True for _ in child.children()):
            yield name, child
        else:
            for sub, leaf in _units(child):
                yield f"{name}.{sub}", leaf


def _identity_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


class Patcher:
    """Records every change so that ``undo`` puts back the exact objects (parameters, forwards, children).
    Canonizers change the model only through it."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set_param(self, module: nn.Module, key: str, value: torch.Tensor) -> None:
        store = module._parameters
        had, old = key in store, store.get(key)
        store[key] = nn.Parameter(value.detach(), requires_grad=False)

        def undo() -> None:
            if had:
                store[key] = old
            else:
                del store[key]

        self._undo.append(undo)

    def set_forward(self, module: nn.Module, function: Callable) -> None:
        had, old = "forward" in module.__dict__, module.__dict__.get("forward")
        module.__dict__["forward"] = types.MethodType(function, module)

        def undo() -> None:
            if had:
                module.__dict__["forward"] = old
            else:
                module.__dict__.pop("forward", None)

        self._undo.append(undo)

    def add_child(self, module: nn.Module, key: str, child: nn.Module) -> None:
        if key in module._modules:
            raise ModelError(f"cannot canonise {type(module).__name__}: it already has a child {key!r}")
        module._modules[key] = child
        self._undo.append(lambda: module._modules.pop(key, None))

    def hook(self, handle) -> None:
        self._undo.append(handle.remove)

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def _merge_batchnorms(model: nn.Module, patch: Patcher, state: Canonized) -> None:
    last: tuple[str, nn.Module] | None = None
    for name, unit in _units(model):
        if (
            last is not None and isinstance(unit, BATCHNORM_TYPES) and isinstance(last[1], LINEAR_TYPES)
            and not unit.training and unit.running_mean is not None and unit not in state.merged
            and _out_features(last[1]) == unit.num_features
        ):
            _merge(last[1], unit, patch)
            state.merged[unit] = last[1]
            _verify_order(last[0], last[1], name, unit, patch)
        last = (name, unit)


def _out_features(layer: nn.Module) -> int | None:
    """Output width of a linear or convolution layer (None if it has none)."""
    return getattr(layer, "out_features" if isinstance(layer, nn.Linear) else "out_channels", None)


@torch.no_grad()
def _merge(linear: nn.Module, bn: nn.Module, patch: Patcher) -> None:
    scale = (bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps
    )
    shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    weight = linear.weight
    bias = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
    patch.set_param(linear, "weight", weight * scale.view(-1, *([1] * (weight.dim() - 1))))
    patch.set_param(linear, "bias", (bias - bn.running_mean) * scale + shift)
    plain = type(bn).forward is nn.modules.batchnorm._BatchNorm.forward
    patch.set_forward(bn, _identity_forward if plain else _normalisation_skipped)


class _SkipBatchNorm(TorchFunctionMode):
    """``F.batch_norm`` of one module's statistics is the identity (its normalisation is merged)."""

    def __init__(self, bn: nn.Module) -> None:
        super().__init__()
        self.bn = bn

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm and (args[1:2] or [kwargs.get("running_mean")])[0] is self.bn.running_mean:
            return args[0] if args else kwargs["input"]
        return func(*args, **kwargs)


def _normalisation_skipped(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """A batch-norm subclass that does more (timm's ``BatchNormAct2d``: normalise, drop, activate): its own
    forward with the normalisation, now merged into the layer before, as the identity."""
    with _SkipBatchNorm(self):
        return type(self).forward(self, *args, **kwargs)


def _verify_order(linear_name: str, linear: nn.Module, bn_name: str, bn: nn.Module, patch: Patcher) -> None:
    """The merge is right only if the batch norm consumes the linear layer's output: check it on the fly."""
    seen: dict[str, torch.Tensor] = {}

    def remember(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen["out"] = output

    def check(module: nn.Module, inputs: tuple) -> None:
        out, x = seen.get("out"), inputs[0]
        # the rule hooks hand on a copy of the layer's output: same values, other storage
        if out is None or out.shape != x.shape or (out.data_ptr() != x.data_ptr() and not torch.equal(out, x)):
            raise ModelError(
                f"batch norm {bn_name!r} is defined right after {linear_name!r} but does not take its output "
                "in the forward pass, so it cannot be merged; pass canonize=False (relevance then passes "
                "through the batch norm unchanged, as in zennit)"
            )

    patch.hook(linear.register_forward_hook(remember, prepend=True))
    patch.hook(bn.register_forward_pre_hook(check))


# ----------------------------------------------------------------------------------------------------------
# skip connections as explicit sums
# ----------------------------------------------------------------------------------------------------------
def _basic_block_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu(self.canonizer_sum(torch.stack([identity, out], dim=-1)))


def _bottleneck_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(self.canonizer_sum(torch.stack([identity, out], dim=-1)))


def _mbconv_forward(self: nn.Module, inputs: torch.Tensor, drop_connect_rate: float | None = None) -> torch.Tensor:
    x = inputs
    if self._block_args.expand_ratio != 1:
        x = self._swish(self._bn0(self._expand_conv(inputs)))
    x = self._swish(self._bn1(self._depthwise_conv(x)))
    if self.has_se:
        squeezed = self._se_expand(self._swish(self._se_reduce(nn.functional.adaptive_avg_pool2d(x, 1))))
        x = torch.sigmoid(squeezed) * x
    x = self._bn2(self._project_conv(x))
    args = self._block_args
    if self.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
        if drop_connect_rate and self.training:
            raise ModelError("LRP needs the model in eval mode (drop connect is random); call model.eval()")
        x = self.canonizer_sum(torch.stack([inputs, x], dim=-1))
    return x


def _skip_forward(module: nn.Module) -> Callable | None:
    try:
        from torchvision.models.resnet import BasicBlock, Bottleneck
    except ImportError:  # pragma: no cover - torchvision is a dependency
        BasicBlock = Bottleneck = ()
    if BasicBlock and isinstance(module, BasicBlock):
        return _basic_block_forward
    if Bottleneck and isinstance(module, Bottleneck):
        return _bottleneck_forward
    if type(module).__name__ == "MBConvBlock" and hasattr(module, "_block_args") and hasattr(module, "_swish"):
        return _mbconv_forward
    return None


def _explicit_sums(model: nn.Module, patch: Patcher, state: Canonized) -> None:
    for module in list(model.modules()):
        forward = _skip_forward(module)
        if forward is not None:
            total = Sum()
            patch.add_child(module, "canonizer_sum", total)
            patch.set_forward(module, forward)
            state.sums.append(total)


Canonizer = Callable[[nn.Module, Patcher, Canonized], None]
#: block canonizers run by ``canonize=True``, in order, before the batch-norm merge (which always runs last)
CANONIZERS: list[Canonizer] = [_explicit_sums]


def register_canonizer(canonizer: Canonizer) -> Canonizer:
    """Register ``canonizer(model, patch, state)`` for every LRP call with ``canonize=True`` (usable as a
    decorator). It rewrites blocks of ``model`` only through ``patch`` (:class:`Patcher`: ``set_forward``,
    ``set_param``, ``add_child``, ``hook``), so every change is undone after the call; see docs/relevance.md.
    Residual additions need no canonizer (they are split wherever they happen, :mod:`.ops`)."""
    if not callable(canonizer):
        raise TypeError("a canonizer is a callable (model, patch, state) -> None")
    if canonizer not in CANONIZERS:
        CANONIZERS.append(canonizer)
    return canonizer


@contextlib.contextmanager
def canonized(model: nn.Module, enabled: bool | Sequence[Canonizer] = True) -> Iterator[Canonized]:
    """Canonise ``model`` inside the block and restore it on exit: the registered canonizers (``enabled=True``)
    or the registered ones plus those given (a sequence), then the batch-norm merge; ``False``: nothing."""
    state = Canonized()
    patch = Patcher()
    extra = list(enabled) if isinstance(enabled, (list, tuple)) else []
    if extra and not all(callable(c) for c in extra):
        raise ParameterError("canonize must be True, False or a list of canonizers (model, patch, state) -> None")
    try:
        if enabled is not False and enabled is not None:
            for canonizer in [*CANONIZERS, *extra]:
                canonizer(model, patch, state)
            _merge_batchnorms(model, patch, state)
        yield state
    finally:
        patch.undo()
