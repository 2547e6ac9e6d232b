"""The conservation guard: every LRP and DeepLIFT result checks its own bookkeeping.

LRP (what is checked, precisely). Relevance starts as ``f_t(x)`` at the explained output. A rule may let
part of it go: the epsilon, gamma, z+ and alpha-beta rules give a bias (and a constant added, e.g. a
position embedding) its share ``b_j / stab(z_j) R_j``, the stabiliser absorbs a little, flat and w^2 do
not conserve at all. Each rule's own loss is *measured* where it runs (``sum R_out - sum R_in`` of every
explained layer and intercepted operation, see :mod:`.ops`), so the check is independent of the rule set:

    sum_i R_i(input) = f_t(x) - sum over rules (sum R_out - sum R_in)          (the ledger)

holds exactly (up to float32 rounding) when relevance is created or lost *nowhere else*, i.e. when every
operation between the rules moves relevance without scaling it. A residual add not split, a product's
gradient, a layer whose gradient is not a relevance rule break it. Tolerance: ``rtol`` (1e-4) times the
largest L1 norm of relevance met on the way (float32 rounding grows with the magnitudes summed, not with
the net result). ``extras["conservation"]`` records both sides, what the rules absorbed, the residual, the
tolerance and the verdict; when the ledger fails, one more forward and backward pass with a hook on every
autograd node finds the first operation (from the output) whose outgoing relevance differs from its
incoming relevance and names it with the module that runs it.

DeepLIFT: summation-to-delta, ``sum_i C_i = f_t(x) - f_t(x0)``, within ``rtol`` (1e-4) of
``|f_t(x)| + |f_t(x0)| + sum_i |C_i|``; on failure, the first operation on two input-dependent tensors or
nonlinearity without a multiplier is named.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ...core.errors import ModelError, ParameterError

Tensor = torch.Tensor
MODES = ("warn", "raise", "off")
RTOL = 1e-4


class ConservationWarning(UserWarning):
    """Relevance (LRP) or contributions (DeepLIFT) are not conserved where the rules say they should be."""


def check_mode(value: Any) -> str:
    if value not in MODES:
        raise ParameterError(f"conservation must be one of {', '.join(map(repr, MODES))}; got {value!r}")
    return value


class Ledger:
    """Relevance bookkeeping of one LRP pass: what every rule received and handed on (batch totals)."""

    def __init__(self, per_layer: bool = False) -> None:
        self.absorbed = 0.0
        self.scale = 0.0
        self.per_layer = per_layer
        self.layers: dict[str, Tensor] = {}
        self._calls: dict[str, int] = {}
        self._parts: list[Tensor] = []

    def record(self, name: str, upper: Tensor, lower: Tensor | list[Tensor]) -> None:
        """One rule's step: ``upper`` relevance at its output, ``lower`` at its input(s)."""
        lowers = lower if isinstance(lower, list) else [lower]
        if not (len(lowers) == 1 and lowers[0] is upper):  # a pass rule hands on exactly what it gets
            handed_on = sum((t.sum() for t in lowers), upper.new_zeros(()))
            self._parts.append(torch.stack([upper.sum() - handed_on, torch.linalg.vector_norm(upper, 1)]).detach())
        if self.per_layer:
            self._calls[name] = self._calls.get(name, 0) + 1
            key = name if self._calls[name] == 1 else f"{name}[{self._calls[name]}]"
            n = upper.shape[0] if upper.dim() else 1
            self.layers[key] = sum(t.detach().reshape(n, -1).sum(1) for t in lowers if t.numel() % n == 0)

    def close(self) -> None:
        if self._parts:
            parts = torch.stack(self._parts).double()
            self.absorbed = float(parts[:, 0].sum())
            self.scale = float(parts[:, 1].max())


def verdict(start: Tensor, relevance: Tensor, ledger: Ledger, rtol: float = RTOL) -> dict[str, Any]:
    """The ledger's check (module docstring); batch totals, float64 accumulation."""
    ledger.close()
    total_start = float(start.double().sum())
    total_input = float(relevance.double().sum())
    expected = total_start - ledger.absorbed
    scale = max(ledger.scale, float(start.double().abs().sum()), float(relevance.double().abs().sum()))
    residual = total_input - expected
    tolerance = rtol * scale
    return {
        "checked": "sum R(input) = f_t(x) - absorbed by the rules (batch totals)",
        "absorbed": ledger.absorbed, "expected": expected, "input_total": total_input, "residual": residual,
        "tolerance": tolerance, "rtol": rtol, "conserved": abs(residual) <= tolerance,
    }


# ----------------------------------------------------------------------------------------------------------
# finding where relevance stopped being conserved
# ----------------------------------------------------------------------------------------------------------
class _Where(TorchFunctionMode):
    """Maps the autograd node of every result computed during the forward to the innermost module running."""

    def __init__(self, stack: list[str], nodes: dict[Any, str]) -> None:
        super().__init__()
        self.stack, self.nodes = stack, nodes

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        node = getattr(out, "grad_fn", None) if isinstance(out, Tensor) else None
        if node is not None and node not in self.nodes:
            self.nodes[node] = self.stack[-1] if self.stack else "(model)"
        return out


def _module_stack(model: nn.Module, stack: list[str]) -> list:
    handles = []
    for name, module in model.named_modules():
        def push(m, inputs, name=name):
            stack.append(name or "(model)")

        def pop(m, inputs, output):
            if stack:
                stack.pop()

        handles.append(module.register_forward_pre_hook(push))
        handles.append(module.register_forward_hook(pop, always_call=True))
    return handles


def _graph(root: Any) -> list:
    seen, order, todo = set(), [], [root]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        order.append(node)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return order


_RULE_NODES = ("_RuleFunctionBackward", "_LinearisedBackward", "AccumulateGrad")


def locate(
    model: nn.Module, run_forward: Callable[[], tuple[Tensor, Tensor, Tensor]], scale: float, rtol: float = RTOL
) -> dict[str, Any] | None:
    """Re-run ``run_forward() -> (x, scores, start)`` and find the first autograd node (from the output) that
    does not hand on what it receives. ``None`` if every node balances."""
    stack: list[str] = []
    nodes: dict[Any, str] = {}
    handles = _module_stack(model, stack)
    try:
        with _Where(stack, nodes):
            x, scores, start = run_forward()
    finally:
        for handle in handles:
            handle.remove()
    found: list[tuple[float, Any, float, float]] = []

    def watch(node: Any):
        def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
            incoming = sum(float(g.double().sum()) for g in grad_outputs if g is not None)
            outgoing = sum(float(g.double().sum()) for g in grad_inputs if g is not None)
            found.append((abs(outgoing - incoming), node, incoming, outgoing))

        return hook

    node_handles = [node.register_hook(watch(node)) for node in _graph(scores.grad_fn)
                    if type(node).__name__ not in _RULE_NODES]
    try:
        torch.autograd.grad(scores, x, start, allow_unused=True)
    finally:
        for handle in node_handles:
            handle.remove()
    if not found:
        return None
    bad = [row for row in found if row[0] > rtol * scale]
    gap, node, incoming, outgoing = bad[0] if bad else max(found, key=lambda row: row[0])
    if not bad and gap == 0:
        return None
    return {"operation": type(node).__name__.removesuffix("Backward0").removesuffix("Backward1"),
            "module": _owner(node, nodes), "incoming": incoming, "outgoing": outgoing}


def _owner(node: Any, nodes: dict[Any, str]) -> str:
    if node in nodes:
        return nodes[node]
    for other in _graph(node):  # the nearest mapped node on the input side
        if other in nodes:
            return nodes[other]
    return "(model)"


def describe(where: dict[str, Any] | None) -> str:
    if where is None:
        return "no single operation accounts for it (rounding spread over many)"
    return (f"the first operation that does not hand on the relevance it receives (from the output) is "
            f"{where['operation']!r} in module {where['module']!r} (in {where['incoming']:.4g}, out "
            f"{where['outgoing']:.4g})")


def report(mode: str, message: str) -> None:
    if mode == "raise":
        raise ModelError(message)
    if mode == "warn":
        warnings.warn(message, ConservationWarning, stacklevel=5)


# ----------------------------------------------------------------------------------------------------------
# DeepLIFT: summation-to-delta, and the first operation without a multiplier
# ----------------------------------------------------------------------------------------------------------
def delta_check(values: Tensor, fx: Tensor, f0: Tensor, delta: Tensor, rtol: float = RTOL) -> dict[str, Any]:
    """Per sample: ``|delta| <= rtol * (|f(x)| + |f(x0)| + sum |C|)``."""
    scale = fx.abs() + f0.abs() + values.detach().flatten(1).abs().sum(1)
    tolerance = rtol * scale
    return {"checked": "sum C = f_t(x) - f_t(x0) per sample", "tolerance": tolerance, "rtol": rtol,
            "conserved": bool((delta.abs() <= tolerance).all())}


class _Nonlinear(TorchFunctionMode):
    """Records calls that DeepLIFT leaves with their gradient although they are not linear in the input."""

    def __init__(self, stack: list[str], found: list[tuple[str, str]]) -> None:
        super().__init__()
        self.stack, self.found = stack, found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.found:
            kind = _deeplift_kind(func, args, kwargs)
            if kind:
                self.found.append((kind, self.stack[-1] if self.stack else "(model)"))
        return func(*args, **kwargs)


def _deeplift_kind(func: Any, args: tuple, kwargs: dict) -> str | None:
    """The operation's name if it is neither linear in the input nor given a multiplier."""
    from .ops import DIV, MATMUL, MUL, NONLINEAR, SDPA, SOFTMAX, _name, _slots

    try:
        table = next((t for t in (MUL, MATMUL, DIV, NONLINEAR, SOFTMAX, SDPA) if func in t), None)
    except TypeError:
        return None
    if table is None:
        return None
    slots, tensors = _slots(args, kwargs)
    if not tensors:
        return None
    if table is MUL or table is MATMUL:
        flagged = len(tensors) > 2  # two: DeepLIFT's product rule (ops._Bilinear)
    elif table is DIV:
        flagged = len(tensors) >= 2 or slots[0] != ("a", 0)
    else:
        flagged = True
    return _name(func) if flagged else None


def first_nonlinear(model: nn.Module, run_forward: Callable[[], Any]) -> tuple[str, str] | None:
    """``(operation, module)`` of the first call on input-dependent tensors that has no DeepLIFT multiplier."""
    stack: list[str] = []
    found: list[tuple[str, str]] = []
    handles = _module_stack(model, stack)
    try:
        with _Nonlinear(stack, found):
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None
