"""Relevance through the operations a model performs outside its layers, found by what they compute.

Residual additions (``a + b``, ``torch.add``, ``out += identity`` in any block class), layer scales
(``gamma * x``), squeeze-excitation gates, mean pooling written as ``x.mean((2, 3))``, functional
activations (``F.gelu``, ``x.sigmoid()``), functional norms and attention (``q @ k.T``, ``softmax``,
``F.scaled_dot_product_attention``) are intercepted by a :class:`~torch.overrides.TorchFunctionMode` during
the forward pass, whatever module performs them. Each gets the relevance rule of its kind:

- **linear in its input-dependent operands** (sums, differences, scaling by a constant, mean/sum/average
  pooling): the epsilon rule applied to the operation, ``R_p = p * J_p^T (R / stab(y))`` for every
  input-dependent operand ``p``. At a residual add this splits ``R`` in proportion to each branch's
  contribution (zennit's merged-residual canonizers, Bach et al. 2015); a constant added (a bias, a position
  embedding) absorbs its share, a constant factor passes relevance unchanged, a constant concatenated (a
  class token) keeps its share (recorded, as a bias's).
- **products of two input-dependent operands**: a broadcast factor (a squeeze-excitation gate of shape
  (N, C, 1, 1)) is a gate and gets none (signal-take-all, Arras et al. 2017, arXiv:1706.07206); equal shapes
  share equally (AttnLRP's uniform rule, Achtibat et al. 2024, arXiv:2402.05602); a quotient's denominator
  gets none.
- **attention**: softmax outputs are treated as constants where they weigh values (``attn @ v``, and the
  whole of ``F.scaled_dot_product_attention``): all relevance goes to the values (CP-LRP, Ali et al. 2022,
  arXiv:2202.07304).
- **element-wise activations and norms** pass relevance unchanged (as zennit's ``Pass`` on activations; the
  identity rule of AttnLRP for layer norms), except a batch norm with running statistics that was not merged
  into a layer before it: that is an affine map and gets the epsilon rule like one (zennit passes it).

Operations not listed keep their gradient; the ones that move values without scaling them (reshapes,
slicing, concatenation, max pooling, padding) conserve relevance that way. Everything else is caught by the
conservation guard (:mod:`.guard`).

DeepLIFT uses the same interception: every element-wise nonlinearity gets the rescale rule, whatever
module (or none) calls it, and a product of two input-dependent operands (a gate, ``x * sigmoid(x)``
written out) the exact product rule of :class:`_Bilinear`; other operations keep their gradient (linear
ones are exact that way, the rest is caught by the summation-to-delta check).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .rules import divide

Tensor = torch.Tensor
Recorder = Callable[[str, Tensor, "Tensor | list[Tensor]"], None]


def _table(*names: str) -> dict[Any, str]:
    """``{callable: name}`` for ``torch.X``, ``torch.Tensor.X`` and ``F.X`` where they exist."""
    out: dict[Any, str] = {}
    for name in names:
        for owner in (torch, torch.Tensor, F, torch.special):
            fn = getattr(owner, name, None)
            if fn is not None:
                out[fn] = name
    return out


ADD = _table("add", "add_", "__add__", "__radd__", "__iadd__")
SUB = _table("sub", "sub_", "subtract", "__sub__", "__isub__", "rsub", "__rsub__")
MUL = _table("mul", "mul_", "multiply", "__mul__", "__rmul__", "__imul__")
DIV = _table("div", "div_", "divide", "true_divide", "__truediv__", "__itruediv__")
REDUCE = _table(
    "mean", "sum", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
)
#: concatenation with a constant (a class token): the constant's share of relevance is recorded as absorbed
CONCAT = _table("cat", "concat", "concatenate", "stack", "hstack", "vstack")
MATMUL = _table("matmul", "__matmul__", "bmm", "einsum")
SOFTMAX = _table("softmax", "_softmax")
#: element-wise nonlinearities, by the functional call that computes them (modules call these too)
ELEMENTWISE = _table(
    "relu", "relu_", "relu6", "gelu", "silu", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardsigmoid",
    "hardtanh", "hardtanh_", "elu", "elu_", "leaky_relu", "leaky_relu_", "mish", "softplus", "selu", "celu",
    "clamp", "clamp_", "clamp_min", "clamp_min_", "clip", "expit", "erf", "logsigmoid", "softsign", "tanhshrink",
    "prelu", "threshold", "rrelu", "glu",
)
ELEMENTWISE.pop(getattr(F, "glu", None), None)  # glu halves its input: a product, not element-wise
NORMS = _table("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize")
SDPA = _table("scaled_dot_product_attention")
#: not linear and not element-wise: DeepLIFT keeps their gradient, which breaks summation-to-delta
NONLINEAR = _table(
    "__rtruediv__", "exp", "log", "pow", "__pow__", "sqrt", "rsqrt",
    "layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize", "cumsum", "prod", "max", "amax", "logsumexp",
)
DROPOUT = _table("dropout", "feature_alpha_dropout", "alpha_dropout", "dropout1d", "dropout2d", "dropout3d")


def _inplace(func: Any, name: str, kwargs: dict) -> bool:
    return (name.endswith("_") and not name.endswith("__")) or name.startswith("__i") or bool(kwargs.get("inplace"))


def _outplace(func: Any, name: str, kwargs: dict) -> tuple[Any, dict]:
    """The out-of-place variant of an in-place call."""
    if kwargs.get("inplace"):
        return func, {**kwargs, "inplace": False}
    base = name[3:-2] if name.startswith("__i") else name.rstrip("_")
    base = {"truediv": "div"}.get(base, base)
    for owner in (torch, F, torch.Tensor):
        if getattr(owner, base, None) is not None:
            return getattr(owner, base), kwargs
    return func, kwargs  # pragma: no cover - every in-place name in the tables has an out-of-place twin


def on_path(t: Any) -> bool:
    """An input-dependent tensor: it requires a gradient, and is neither a parameter nor computed from
    parameters and constants alone (tagged by :func:`_constant_call` as the forward runs). The user's
    ``requires_grad`` flags are never changed, so a parameter's flag says nothing about the input."""
    return (isinstance(t, Tensor) and t.requires_grad and not isinstance(t, nn.Parameter)
            and not getattr(t, "_xw_constant", False))


def _constant_call(func: Any, args: tuple, kwargs: dict) -> Any:
    """Run a call with no input-dependent operand; tag its outputs as constants of the pass (e.g. a
    position embedding expanded, a standardised weight), so they never count as input-dependent."""
    out = func(*args, **kwargs)
    for t in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(t, Tensor) and t.requires_grad and not isinstance(t, nn.Parameter):
            t._xw_constant = True
    return out


@dataclass
class _Call:
    """One intercepted call: ``func(*args, **kwargs)`` with the input-dependent tensors at ``slots``."""

    func: Any
    args: tuple
    kwargs: dict
    slots: list[tuple[str, int | str]]

    def __call__(self, tensors: tuple[Tensor, ...]) -> Tensor:
        args, kwargs = list(self.args), dict(self.kwargs)
        for (kind, key), t in zip(self.slots, tensors):
            if kind == "a":
                args[key] = t
            elif kind == "l":  # a tensor inside a list argument (einsum operands)
                index, inner = key
                args[index] = list(args[index])
                args[index][inner] = t
            else:
                kwargs[key] = t
        with torch._C.DisableTorchFunction():
            return self.func(*args, **kwargs)


def _slots(args: tuple, kwargs: dict) -> tuple[list, list[Tensor]]:
    slots, tensors = [], []
    for i, a in enumerate(args):
        if on_path(a):
            slots.append(("a", i))
            tensors.append(a)
        elif isinstance(a, (list, tuple)):
            for j, b in enumerate(a):
                if on_path(b):
                    slots.append(("l", (i, j)))
                    tensors.append(b)
    for k, v in kwargs.items():
        if on_path(v):
            slots.append(("k", k))
            tensors.append(v)
    return slots, tensors


class _Linearised(torch.autograd.Function):
    """Values of ``call``; backward ``R_p = w_p * p * J_p^T (R / stab(y))`` per input-dependent operand
    (stabiliser 0: LRP-0, see :func:`.rules.divide`)."""

    @staticmethod
    def forward(ctx, call: _Call, weights: tuple, stabilizer: float, label: str, record: Recorder | None,
                *tensors: Tensor) -> Tensor:
        ctx.call, ctx.weights, ctx.stabilizer, ctx.label, ctx.record = call, weights, stabilizer, label, record
        ctx.save_for_backward(*tensors)
        with torch.no_grad():
            return call(tensors)

    @staticmethod
    def backward(ctx, r: Tensor):
        tensors = ctx.saved_tensors
        live = [i for i, w in enumerate(ctx.weights) if w != 0]
        out: list[Tensor | None] = [None] * len(tensors)
        with torch.enable_grad():
            xs = [t.detach().requires_grad_(True) for t in tensors]
            y = ctx.call(tuple(xs))
            g = divide(r, y.detach(), ctx.stabilizer)
            grads = torch.autograd.grad(y, [xs[i] for i in live], g, allow_unused=True)
        for i, grad in zip(live, grads):
            if grad is not None:
                out[i] = ctx.weights[i] * tensors[i] * grad
        if ctx.record is not None:
            ctx.record(ctx.label, r, [o for o in out if o is not None])
        return (None, None, None, None, None, *out)


class _PassOp(torch.autograd.Function):
    """Values of ``call``; relevance passes to the (one) input unchanged."""

    @staticmethod
    def forward(ctx, call: _Call, x: Tensor) -> Tensor:
        with torch.no_grad():
            return call((x,))

    @staticmethod
    def backward(ctx, r: Tensor):
        return None, r


def _product_weights(func: Any, name: str, tensors: list[Tensor], tagged: set[int]) -> tuple[float, ...]:
    """Who takes the relevance of a product of input-dependent operands (see the module docstring)."""
    gates = [id(t) in tagged for t in tensors]
    if name in ("mul", "mul_", "multiply", "__mul__", "__rmul__", "__imul__") and len(tensors) == 2:
        a, b = tensors
        if a.numel() != b.numel():
            gates = [a.numel() < b.numel(), b.numel() < a.numel()]
    free = [not g for g in gates]
    k = sum(free)
    if k == 0:  # all gates: share equally
        return tuple(1.0 / len(tensors) for _ in tensors)
    return tuple((1.0 / k) if f else 0.0 for f in free)


class RelevanceOps(TorchFunctionMode):
    """The LRP treatment of operations performed outside the explained layers (module docstring)."""

    def __init__(self, stabilizer: float = 1e-6, record: Recorder | None = None) -> None:
        super().__init__()
        self.stabilizer = float(stabilizer)
        self.record = record
        self.softmax_outputs: set[int] = set()
        self._keep: list[Tensor] = []  # keeps tagged tensors alive so their ids stay unique
        self.counts: dict[str, int] = {}

    def _label(self, name: str) -> str:
        name = name.strip("_") or name
        self.counts[name] = self.counts.get(name, 0) + 1
        return f"<{name} {self.counts[name]}>"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        slots, tensors = _slots(args, kwargs)
        if not tensors:
            return _constant_call(func, args, kwargs)
        kind = _kind(func)
        if kind is None:
            return func(*args, **kwargs)
        name = _name(func)
        if name in DIV.values() and len(tensors) == 1 and slots[0] != ("a", 0):
            return func(*args, **kwargs)  # c / x is not linear in x: keeps its gradient (the guard watches)
        if kind == "concat":
            parts = args[0] if args else kwargs.get("tensors", ())
            if all(on_path(t) for t in parts):
                return func(*args, **kwargs)  # conserves by its gradient
            kind = "linear"
        if kind == "dropout":
            out = func(*args, **kwargs)
            if id(tensors[0]) in self.softmax_outputs:
                self._tag(out)
            return out
        if name == "batch_norm" and _affine_batch_norm(args, kwargs):
            kind = "linear"  # running statistics: an affine map, explained as one (epsilon rule, bias absorbs)
        inplace = _inplace(func, name, kwargs)
        plain, plain_kwargs = _outplace(func, name, kwargs) if inplace else (func, kwargs)
        call = _Call(plain, tuple(args), plain_kwargs, slots)
        if inplace:  # the operation runs out of place on a copy, and the result is copied back
            tensors = [t.clone() for t in tensors]
        if kind in ("elementwise", "norm", "softmax"):
            if len(tensors) != 1:
                return func(*args, **kwargs)
            out = _PassOp.apply(call, tensors[0])
            if kind == "softmax":
                self._tag(out)
        else:
            if kind == "linear":
                weights = tuple(1.0 for _ in tensors)
                if name in DIV.values() and len(tensors) == 2:
                    weights = (1.0, 0.0) if slots[0] == ("a", 0) else (0.0, 1.0)
            elif kind == "product":
                weights = (1.0,) if len(tensors) == 1 else _product_weights(func, name, tensors,
                                                                            self.softmax_outputs)
            else:  # attention: the values take all
                weights = tuple(1.0 if slot in (("a", 2), ("k", "value")) else 0.0 for slot in slots)
            if name in MUL.values() and len(tensors) == 1:
                kind = "linear"
            out = _Linearised.apply(call, weights, self.stabilizer, self._label(name), self.record, *tensors)
        return _finish(args, name, inplace, out)

    def _tag(self, t: Tensor) -> None:
        self.softmax_outputs.add(id(t))
        self._keep.append(t)


def _finish(args: tuple, name: str, inplace: bool, out: Tensor) -> Tensor:
    """``out``, or for an in-place call ``args[0]`` with ``out`` copied in (``x += y`` just rebinds)."""
    if not inplace or name.startswith("__i"):
        return out
    with torch._C.DisableTorchFunction():
        args[0].copy_(out)
    return args[0]


def _affine_batch_norm(args: tuple, kwargs: dict) -> bool:
    """``F.batch_norm(input, running_mean, running_var, weight, bias, training, ...)`` with running stats."""
    running = args[1] if len(args) > 1 else kwargs.get("running_mean")
    training = args[5] if len(args) > 5 else kwargs.get("training", False)
    return running is not None and not training


def _name(func: Any) -> str:
    for table in (ADD, SUB, MUL, DIV, REDUCE, CONCAT, MATMUL, SOFTMAX, ELEMENTWISE, NORMS, SDPA, DROPOUT):
        if func in table:
            return table[func]
    return getattr(func, "__name__", "op")


def _kind(func: Any) -> str | None:
    try:
        if func in ADD or func in SUB or func in DIV or func in REDUCE:
            return "linear"
        if func in CONCAT:
            return "concat"
        if func in MUL or func in MATMUL:
            return "product"
        if func in ELEMENTWISE:
            return "elementwise"
        if func in NORMS:
            return "norm"
        if func in SOFTMAX:
            return "softmax"
        if func in SDPA:
            return "attention"
        if func in DROPOUT:
            return "dropout"
    except TypeError:  # unhashable
        return None
    return None


# ----------------------------------------------------------------------------------------------------------
# DeepLIFT: the rescale rule on every element-wise call
# ----------------------------------------------------------------------------------------------------------
class _Fn:
    """A module-like wrapper so DeepLIFT's rescale rule can re-run a functional call for its gradient."""

    def __init__(self, call: _Call) -> None:
        self.call = call

    def forward(self, x: Tensor) -> Tensor:
        return self.call((x,))


class _Multiplied(torch.autograd.Function):
    @staticmethod
    def forward(ctx, call: _Call, backward: Callable, x: Tensor) -> Tensor:
        with torch.no_grad():
            y = call((x,))
        ctx.call, ctx.backward = call, backward
        ctx.save_for_backward(x, y)
        return y.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, y = ctx.saved_tensors
        return None, None, ctx.backward(_Fn(ctx.call), x, y, grad)


def _halves_mean(t: Tensor) -> Tensor:
    a, b = t.chunk(2)
    return ((a + b) / 2).repeat(2, *([1] * (t.dim() - 1)))


class _Bilinear(torch.autograd.Function):
    """DeepLIFT for a product of two input-dependent operands on the stacked (inputs, baselines) batch:
    ``y - y0 = (a - a0) * (b + b0) / 2 + (a + a0) / 2 * (b - b0)`` exactly (for matrix products too), so the
    multiplier of ``a`` is the product's derivative at the mean of ``b`` and its baseline, and vice versa (the
    Shapley value of the two-factor product)."""

    @staticmethod
    def forward(ctx, call: _Call, a: Tensor, b: Tensor) -> Tensor:
        ctx.call = call
        ctx.save_for_backward(a, b)
        with torch.no_grad():
            return call((a, b))

    @staticmethod
    def backward(ctx, g: Tensor):
        a, b = ctx.saved_tensors
        with torch.enable_grad():
            a_, b_ = a.detach().requires_grad_(True), b.detach().requires_grad_(True)
            (grad_a,) = torch.autograd.grad(ctx.call((a_, _halves_mean(b))), a_, g)
            (grad_b,) = torch.autograd.grad(ctx.call((_halves_mean(a), b_)), b_, g)
        return None, grad_a, grad_b


class RescaleOps(TorchFunctionMode):
    """DeepLIFT's rescale rule on every element-wise nonlinearity called during the forward pass, and the
    product rule of :class:`_Bilinear` on products of two input-dependent operands."""

    def __init__(self, backward: Callable) -> None:
        super().__init__()
        self.backward = backward

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            elementwise = func in ELEMENTWISE
            product = func in MUL or func in MATMUL
        except TypeError:
            elementwise = product = False
        slots, tensors = _slots(args, kwargs)
        if not tensors:
            return _constant_call(func, args, kwargs)
        if not (elementwise or product):
            return func(*args, **kwargs)
        if product:
            if len(tensors) != 2 or any(t.dim() == 0 or t.shape[0] % 2 for t in tensors):
                return func(*args, **kwargs)
            name = _name(func)
            inplace = _inplace(func, name, kwargs)
            plain, plain_kwargs = _outplace(func, name, kwargs) if inplace else (func, kwargs)
            pair = [t.clone() for t in tensors] if inplace else tensors
            out = _Bilinear.apply(_Call(plain, tuple(args), plain_kwargs, slots), *pair)
            return _finish(args, name, inplace, out)
        if len(tensors) != 1:
            return func(*args, **kwargs)
        name = _name(func)
        inplace = _inplace(func, name, kwargs)
        plain, plain_kwargs = _outplace(func, name, kwargs) if inplace else (func, kwargs)
        x = tensors[0].clone() if inplace else tensors[0]
        out = _Multiplied.apply(_Call(plain, tuple(args), plain_kwargs, slots), self.backward, x)
        return _finish(args, name, inplace, out)


@contextlib.contextmanager
def no_interception() -> Iterator[None]:
    """Run torch functions directly (inside the rules' own forward and backward computations)."""
    with torch._C.DisableTorchFunction():
        yield
