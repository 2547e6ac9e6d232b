"""Guided backpropagation and DeconvNet (Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for
Simplicity: The All Convolutional Net", arXiv:1412.6806; Zeiler & Fergus 2014, arXiv:1311.2901).

Both replace the backward pass of every ReLU-type activation:

- ``guided_backprop``: ``grad_in = max(grad_out, 0) * 1[0 < x < upper]`` (the ordinary local gradient,
  then only positive signals pass);
- ``deconvnet``: ``grad_in = max(grad_out, 0)`` (the forward input is ignored).

ReLU6 and other upper clamps (``hardtanh(0, u)``, ``clamp(0, u)``): the upper clamp is treated like the
lower one by ``guided_backprop`` (no gradient where ``x >= u``, as the ordinary gradient of ReLU6), and
ignored by ``deconvnet``, which uses no forward information at all.

What is handled: the activations are intercepted with a ``TorchFunctionMode`` during the forward pass, so
modules and functional calls alike are covered: ``nn.ReLU`` (also ``inplace=True``), ``nn.ReLU6``,
``nn.Hardtanh(0, u)``, ``F.relu``/``F.relu_``/``F.relu6``/``F.hardtanh(x, 0, u)``, ``torch.relu``/
``torch.relu_``, ``Tensor.relu``/``relu_``, and ``clamp``/``clamp_min`` with ``min=0`` (in-place variants
write their result back into the input, as the original would). Nothing in the model is swapped or
patched. Not handled: other activations (GELU, SiLU, ELU, LeakyReLU, Hardswish, ...) keep their ordinary
gradient and produce a warning naming them; a model with no ReLU-type call at all raises ModelError;
TorchScript modules (which bypass Python dispatch) raise ModelError. (captum modifies only ``nn.ReLU``
modules and silently leaves ReLU6 and functional ReLUs unchanged.)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ...core.attribution import Attribution
from ...core.errors import ModelError
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores
from .._autograd import selected_scores_and_grad
from ..base import Method
from ..registry import register

RULES = ("guided", "deconv")


class _ModifiedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, upper: float | None, rule: str) -> torch.Tensor:
        out = x.clamp(0.0, upper) if upper is not None else x.clamp_min(0.0)
        ctx.rule, ctx.upper = rule, upper
        if rule == "guided":
            ctx.save_for_backward(out)  # 0 < x < upper  <=>  0 < out < upper
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        grad = grad.clamp_min(0.0)
        if ctx.rule == "guided":
            (out,) = ctx.saved_tensors
            if ctx.upper is None:
                grad = torch.ops.aten.threshold_backward(grad, out, 0.0)
            else:
                grad = torch.ops.aten.hardtanh_backward(grad, out, 0.0, float(ctx.upper))
        return grad, None, None


def _arg(args: tuple, kwargs: dict, pos: int, name: str, default: Any) -> Any:
    if len(args) > pos:
        return args[pos]
    return kwargs.get(name, default)


def _relu(args: tuple, kwargs: dict) -> tuple[float | None, bool] | None:
    return None, bool(_arg(args, kwargs, 1, "inplace", False))


def _relu6(args: tuple, kwargs: dict) -> tuple[float | None, bool] | None:
    return 6.0, bool(_arg(args, kwargs, 1, "inplace", False))


def _hardtanh(args: tuple, kwargs: dict) -> tuple[float | None, bool] | None:
    lo = _arg(args, kwargs, 1, "min_val", -1.0)
    if lo != 0:
        return None  # a true hardtanh, not a ReLU
    return float(_arg(args, kwargs, 2, "max_val", 1.0)), bool(_arg(args, kwargs, 3, "inplace", False))


def _clamp(inplace: bool):
    def parse(args: tuple, kwargs: dict) -> tuple[float | None, bool] | None:
        lo = _arg(args, kwargs, 1, "min", None)
        hi = _arg(args, kwargs, 2, "max", None)
        if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor) or lo != 0:
            return None
        return (None if hi is None else float(hi)), inplace

    return parse


def _fixed(upper: float | None, inplace: bool):
    return lambda args, kwargs: (upper, inplace)


_HANDLED = {
    F.relu: _relu, F.relu6: _relu6, F.hardtanh: _hardtanh,
    F.relu_: _fixed(None, True), F.hardtanh_: lambda a, k: _hardtanh((a[0], *a[1:3], True), k),
    torch.relu: _fixed(None, False), torch.relu_: _fixed(None, True),
    torch.Tensor.relu: _fixed(None, False), torch.Tensor.relu_: _fixed(None, True),
    torch.clamp: _clamp(False), torch.clip: _clamp(False), torch.Tensor.clamp: _clamp(False),
    torch.Tensor.clip: _clamp(False), torch.Tensor.clamp_: _clamp(True), torch.Tensor.clip_: _clamp(True),
    torch.clamp_min: lambda a, k: _clamp(False)((a[0], _arg(a, k, 1, "min", None)), {}),
    torch.Tensor.clamp_min: lambda a, k: _clamp(False)((a[0], _arg(a, k, 1, "min", None)), {}),
    torch.Tensor.clamp_min_: lambda a, k: _clamp(True)((a[0], _arg(a, k, 1, "min", None)), {}),
}
_OTHER_ACTIVATIONS = {
    F.gelu: "gelu", F.silu: "silu", F.elu: "elu", F.selu: "selu", F.celu: "celu", F.leaky_relu: "leaky_relu",
    F.hardswish: "hardswish", F.mish: "mish", F.softplus: "softplus", F.prelu: "prelu", F.rrelu: "rrelu",
    F.hardtanh: "hardtanh",
}


class ModifiedReLUMode(TorchFunctionMode):
    """Routes every ReLU-type call through :class:`_ModifiedReLU` with ``rule`` and counts what it saw."""

    def __init__(self, rule: str) -> None:
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}")
        self.rule = rule
        self.handled = 0
        self.unhandled: dict[str, int] = {}

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        parse = _HANDLED.get(func)
        spec = parse(args, kwargs) if parse is not None else None
        if spec is None:
            other = _OTHER_ACTIVATIONS.get(func)
            if other is not None:
                self.unhandled[other] = self.unhandled.get(other, 0) + 1
            return func(*args, **kwargs)
        upper, inplace = spec
        x = args[0]
        if not x.requires_grad:
            return func(*args, **kwargs)
        self.handled += 1
        out = _ModifiedReLU.apply(x, upper, self.rule)
        if inplace:
            return x.copy_(out)
        return out


@contextlib.contextmanager
def modified_relu_gradients(model: Any, rule: str) -> Iterator[ModifiedReLUMode]:
    """Context in which ReLU-type activations backpropagate by ``rule`` (``"guided"`` or ``"deconv"``)."""
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelError(
            "guided_backprop/deconvnet cannot modify ReLUs inside a TorchScript model; pass the eager "
            "nn.Module (before torch.jit.script/trace)"
        )
    with ModifiedReLUMode(rule) as mode:
        yield mode


def modified_gradient(model: Any, inputs: torch.Tensor, target: TargetLike, rule: str, name: str):
    """``(grad, scores, target)`` with modified ReLU backward passes; checks that a ReLU was seen."""
    with modified_relu_gradients(model, rule) as mode:
        grad, scores, resolved = selected_scores_and_grad(model, inputs, target)
    if mode.handled == 0:
        raise ModelError(
            f"{name} changes the gradients of ReLU-type activations, but this model made no ReLU, ReLU6, "
            "hardtanh(0, u) or clamp(min=0) call"
            + (f" (it uses {', '.join(sorted(mode.unhandled))})" if mode.unhandled else "")
            + "; the result would be the plain gradient. Use method='gradient' or 'smoothgrad' instead."
        )
    if mode.unhandled:
        warnings.warn(
            f"{name}: these activations keep their ordinary gradient (only ReLU-type activations are "
            f"modified): {', '.join(f'{k} x{v}' for k, v in sorted(mode.unhandled.items()))}",
            stacklevel=3,
        )
    return grad, scores, resolved


class _ModifiedReLUMethod(Method):
    family = "gradient"
    rule = "guided"

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        grad, scores, resolved = modified_gradient(self.model, inputs, target, self.rule, self.name)
        return Attribution(values=grad.detach(), method=self.name, target=resolved,
                           scores=gather_scores(scores, resolved))


@register
class GuidedBackprop(_ModifiedReLUMethod):
    """Gradient with ReLU backward passes that let only positive signals through where the input was active
    (Springenberg et al. 2015, arXiv:1412.6806). See the module docstring for what is handled."""

    name = "guided_backprop"
    reference = "Springenberg et al. 2015, arXiv:1412.6806"


@register
class Deconvnet(_ModifiedReLUMethod):
    """Gradient with ReLU backward passes replaced by a ReLU of the incoming gradient (Zeiler & Fergus 2014,
    arXiv:1311.2901, as formulated by Springenberg et al. 2015)."""

    name = "deconvnet"
    reference = "Zeiler & Fergus 2014, arXiv:1311.2901; Springenberg et al. 2015, arXiv:1412.6806"
    rule = "deconv"


