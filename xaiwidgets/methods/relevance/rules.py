"""LRP rules over one mechanism: modified forwards, a gradient mapper and a reducer.

A rule explains one layer ``y = layer(x)``. It runs the layer on modified inputs ``x_k`` with modified
parameters ``(W_k, b_k)`` (the *terms*), maps the upper relevance ``R`` to one gradient per term (the
*gradient mapper*, typically ``R / stabilise(z)``) and combines ``x_k * J_k^T g_k`` into the lower
relevance (the *reducer*). This is the shape of zennit's ``BasicHook`` (Anders et al. 2021,
arXiv:2106.13200); the rules are those of Bach et al. 2015 (LRP, PLoS ONE 10(7)), Montavon et al. 2017
(deep Taylor decomposition, arXiv:1512.02479), Montavon et al. 2019 (LRP overview, gamma rule) and
Lapuschkin et al. 2019 (flat rule, arXiv:1902.10178).

The mechanism: :func:`attached` registers a forward hook on each layer with a rule. The hook replaces the
layer's output by the same values carried by a custom autograd function whose backward *is* the rule, so
one ``torch.autograd.grad`` from the output gives the relevance at the input. Layers without a rule
(max-pooling, flatten, dropout, padding) keep their gradient, as in zennit. Every hook is removed and every
``inplace`` flag restored on exit, also when the computation raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import LayerError, ModelError, ParameterError

Tensor = torch.Tensor
InputMod = Callable[[Tensor], Tensor]
ParamMod = Callable[[Tensor], Tensor]
Mapper = Callable[[Tensor, list[Tensor], Tensor], list[Tensor]]
Reducer = Callable[[list[Tensor], list[Tensor]], Tensor]

_STATE = threading.local()


def stabilise(z: Tensor, epsilon: float) -> Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1`` (zennit's stabiliser)."""
    return z + epsilon * ((z == 0).to(z) + z.sign())


def divide(r: Tensor, z: Tensor, epsilon: float) -> Tensor:
    """``r / stabilise(z, epsilon)``; with ``epsilon = 0`` (LRP-0) ``r / z`` and 0 where ``z = 0`` (a neuron
    with no input passes no relevance, where the plain division gives 0/0 = NaN)."""
    if epsilon:
        return r / stabilise(z, epsilon)
    zero = z == 0
    return torch.where(zero, torch.zeros_like(r), r / torch.where(zero, torch.ones_like(z), z))


def _identity(t: Tensor) -> Tensor:
    return t


def _pos(t: Tensor) -> Tensor:
    return t.clamp(min=0)


def _neg(t: Tensor) -> Tensor:
    return t.clamp(max=0)


def _ones(t: Tensor) -> Tensor:
    return torch.ones_like(t)


@dataclass(frozen=True)
class Term:
    """One modified forward: ``layer(inputs(x); params(W), params(b) or 0)``."""

    inputs: InputMod = _identity
    params: ParamMod | None = None  # None: unchanged parameters
    zero_bias: bool = False

    @property
    def plain(self) -> bool:
        return self.inputs is _identity and self.params is None and not self.zero_bias


# ----------------------------------------------------------------------------------------------------------
# layer evaluation with replaced parameters, and the input vector-Jacobian product
# ----------------------------------------------------------------------------------------------------------
_CONV = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


def _fast_kind(module: nn.Module) -> str | None:
    kind = type(module)
    if kind is nn.Linear:
        return "linear"
    if kind in _CONV and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        return "conv"
    return None


def layer_forward(module: nn.Module, x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``module(x)`` with ``weight``/``bias`` in place of its own, without firing hooks."""
    kind = _fast_kind(module)
    if kind == "linear":
        return F.linear(x, weight, bias)
    if kind == "conv":
        return module._conv_forward(x, weight, bias)
    store = module._parameters
    saved = {k: store[k] for k in ("weight", "bias") if k in store}
    try:
        if "weight" in store:
            store["weight"] = weight
        if "bias" in store:
            store["bias"] = bias
        with hooks_inactive():
            return module.forward(x)
    finally:
        store.update(saved)


def _fast_vjp(module: nn.Module, grad: Tensor, weight: Tensor, shape: torch.Size) -> Tensor:
    if _fast_kind(module) == "linear":
        return grad.matmul(weight)
    return torch.ops.aten.convolution_backward(
        grad, grad.new_empty(1).expand(shape), weight, None, module.stride, module.padding, module.dilation,
        False, [0] * _CONV[type(module)], module.groups, (True, False, False),
    )[0]


# ----------------------------------------------------------------------------------------------------------
# the rule mechanism
# ----------------------------------------------------------------------------------------------------------
class Rule:
    """An LRP rule: ``terms`` (modified forwards), ``mapper`` and ``reducer`` (see the module docstring).

    ``mapper(R, [z_k], y) -> [g_k]``; ``reducer([x_k], [J_k^T g_k]) -> R_in``.
    """

    name = "rule"

    def __init__(self, terms: Sequence[Term], mapper: Mapper, reducer: Reducer) -> None:
        self.terms = tuple(terms)
        self.mapper = mapper
        self.reducer = reducer

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def relevance(self, module: nn.Module, x: Tensor, y: Tensor, r: Tensor) -> Tensor:
        """Relevance at the layer's input ``x`` from relevance ``r`` at its output ``y``."""
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        fast = _fast_kind(module) is not None
        # A term on the negative part of a non-negative input (e.g. after a ReLU) without bias is zero in
        # both its forward and its contribution: skip its forward and backward (exact; zennit runs them).
        skip_negative = any(t.inputs is _neg and t.zero_bias for t in self.terms) and not bool((x < 0).any())
        xs, zs, ws = [], [], []
        live: list[int] = []
        with torch.enable_grad():
            for index, term in enumerate(self.terms):
                if skip_negative and term.inputs is _neg and term.zero_bias:
                    xs.append(x.new_zeros(()))
                    zs.append(x.new_zeros(()))
                    ws.append(None)
                    continue
                live.append(index)
                xk = term.inputs(x)
                wk, bk = weight, bias
                if term.params is not None and weight is not None:
                    wk = term.params(weight)
                    bk = None if bias is None else term.params(bias)
                if term.zero_bias:
                    bk = None
                if fast:
                    zk = y if term.plain else layer_forward(module, xk, wk, bk)
                else:
                    xk = xk.detach().requires_grad_()
                    zk = layer_forward(module, xk, wk, bk)
                xs.append(xk)
                zs.append(zk)
                ws.append(wk)
            grads_out = self.mapper(r, zs, y)
            grads = [x.new_zeros(())] * len(self.terms)
            if fast:
                for i in live:
                    grads[i] = _fast_vjp(module, grads_out[i], ws[i], x.shape)
            else:
                found = torch.autograd.grad([zs[i] for i in live], [xs[i] for i in live], [grads_out[i] for i in live])
                for i, g in zip(live, found):
                    grads[i] = g
        return self.reducer([xk.detach() for xk in xs], grads)


class Pass(Rule):
    """Pass the relevance through unchanged (element-wise activations, merged batch norms)."""

    name = "pass"

    def __init__(self) -> None:
        super().__init__((), lambda r, zs, y: [], lambda xs, gs: xs[0])

    def relevance(self, module: nn.Module, x: Tensor, y: Tensor, r: Tensor) -> Tensor:
        if r.shape != x.shape:
            raise ModelError(
                f"the pass rule needs a layer whose output has its input's shape; {type(module).__name__} maps "
                f"{tuple(x.shape)} to {tuple(y.shape)}. Map it to another rule."
            )
        return r


def _first_product(xs: list[Tensor], gs: list[Tensor]) -> Tensor:
    return xs[0] * gs[0]


def _sum_products(xs: list[Tensor], gs: list[Tensor]) -> Tensor:
    return sum(x * g for x, g in zip(xs, gs))


def _first_grad(xs: list[Tensor], gs: list[Tensor]) -> Tensor:
    return gs[0]




class Epsilon(Rule):
    """LRP-epsilon: ``R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j`` (Bach et al. 2015).

    ``epsilon = 0`` is LRP-0 (:class:`Zero`): where ``z_j = 0`` the neuron passes no relevance, where a plain
    division would give 0/0 = NaN (zennit's ``Epsilon(0)`` returns NaN there)."""

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = float(epsilon)
        if self.epsilon < 0 or self.epsilon != self.epsilon:
            raise ParameterError(f"epsilon must be >= 0; got {epsilon}")

        super().__init__([Term()], lambda r, zs, y: [divide(r, zs[0], self.epsilon)], _first_product)

    def __repr__(self) -> str:
        return f"Epsilon(epsilon={self.epsilon:g})"


class Zero(Rule):
    """LRP-0: ``R_i = sum_j x_i w_ij / z_j R_j``; neurons with ``z_j = 0`` pass no relevance."""

    name = "zero"

    def __init__(self) -> None:
        super().__init__([Term()], lambda r, zs, y: [divide(r, zs[0], 0.0)], _first_product)


class Norm(Rule):
    """Epsilon with a fixed stabiliser, for parameter-free linear layers (average pooling, sums)."""

    name = "norm"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = float(stabilizer)
        super().__init__([Term()], lambda r, zs, y: [divide(r, zs[0], self.stabilizer)], _first_product)


class GeneralizedGamma(Rule):
    """The gamma rule, implemented once for both parameterisations.

    With ``A = hi W+ + lo W-`` and ``B = lo W+ + hi W-`` (biases alike), neurons with a positive output
    ``y_j`` share their relevance by ``z+ = x+ A + b_A + x- B`` and neurons with a negative output by
    ``z- = x+ B + b_B + x- A`` (Montavon et al. 2019; the sign-aware form of zennit's ``Gamma``):

    - seed's parameter ``gamma`` in [0, 1]: ``hi = 1, lo = gamma``, i.e. ``w+ + gamma w-``; gamma = 1 is
      LRP-0 (gradient x input on bias-free ReLU networks), gamma = 0 is alpha1beta0 on positive outputs.
    - zennit's parameter ``gamma >= 0``: ``hi = 1 + gamma, lo = 1``, i.e. ``w + gamma w+``.

    The two agree for ``gamma_seed = 1 / (1 + gamma_zennit)`` up to the stabiliser (``z`` scales by
    ``1 + gamma_zennit``).
    """

    name = "generalized_gamma"

    def __init__(self, hi: float, lo: float, stabilizer: float = 1e-6) -> None:
        self.hi, self.lo, self.stabilizer = float(hi), float(lo), float(stabilizer)

        def a(p: Tensor) -> Tensor:
            return hi * p.clamp(min=0) + lo * p.clamp(max=0)

        def b(p: Tensor) -> Tensor:
            return lo * p.clamp(min=0) + hi * p.clamp(max=0)

        def mapper(r: Tensor, zs: list[Tensor], y: Tensor) -> list[Tensor]:
            up = (y > 0).to(r) * r / stabilise(zs[0] + zs[1], self.stabilizer)
            down = (y < 0).to(r) * r / stabilise(zs[2] + zs[3], self.stabilizer)
            return [up, up, down, down]

        terms = [Term(_pos, a), Term(_neg, b, True), Term(_pos, b), Term(_neg, a, True)]
        super().__init__(terms, mapper, _sum_products)

    @classmethod
    def seed(cls, gamma: float, stabilizer: float = 1e-6) -> GeneralizedGamma:
        """The seed's rule ``w+ + gamma w-`` with ``gamma`` in [0, 1]."""
        if not 0.0 <= float(gamma) <= 1.0:
            raise ParameterError(f"gamma must lie in [0, 1] (1: LRP-0, 0: alpha1beta0); got {gamma}")
        return cls(1.0, float(gamma), stabilizer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hi={self.hi:g}, lo={self.lo:g})"


class Gamma(GeneralizedGamma):
    """zennit's parameterisation ``w + gamma w+`` (gamma >= 0; 0 is LRP-0); used by the composites."""

    name = "gamma"

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6) -> None:
        if float(gamma) < 0:
            raise ParameterError(f"the composite gamma (zennit's parameter) must be >= 0; got {gamma}")
        self.gamma = float(gamma)
        super().__init__(1.0 + self.gamma, 1.0, stabilizer)

    def __repr__(self) -> str:
        return f"Gamma(gamma={self.gamma:g})"


class AlphaBeta(Rule):
    """LRP-alpha-beta: ``alpha`` times the positive and ``beta`` times the negative contributions
    (Bach et al. 2015); ``alpha - beta = 1``."""

    name = "alpha_beta"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = 1e-6) -> None:
        alpha, beta = float(alpha), float(beta)
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1.0) > 1e-9:
            raise ParameterError(
                f"alpha-beta needs alpha >= 0, beta >= 0 and alpha - beta = 1 (e.g. alpha=2, beta=1); "
                f"got alpha={alpha:g}, beta={beta:g}"
            )
        self.alpha, self.beta, self.stabilizer = alpha, beta, float(stabilizer)

        def mapper(r: Tensor, zs: list[Tensor], y: Tensor) -> list[Tensor]:
            up = r / stabilise(zs[0] + zs[1], self.stabilizer)
            down = r / stabilise(zs[2] + zs[3], self.stabilizer)
            return [up, up, down, down]

        def reducer(xs: list[Tensor], gs: list[Tensor]) -> Tensor:
            return alpha * (xs[0] * gs[0] + xs[1] * gs[1]) - beta * (xs[2] * gs[2] + xs[3] * gs[3])

        terms = [Term(_pos, _pos), Term(_neg, _neg, True), Term(_pos, _neg), Term(_neg, _pos, True)]
        super().__init__(terms, mapper, reducer)

    def __repr__(self) -> str:
        return f"AlphaBeta(alpha={self.alpha:g}, beta={self.beta:g})"


class ZPlus(Rule):
    """z+ (alpha1beta0; Montavon et al. 2017): only positive contributions ``x+ w+ + x- w-``."""

    name = "zplus"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = float(stabilizer)

        def mapper(r: Tensor, zs: list[Tensor], y: Tensor) -> list[Tensor]:
            g = r / stabilise(zs[0] + zs[1], self.stabilizer)
            return [g, g]

        super().__init__([Term(_pos, _pos), Term(_neg, _neg, True)], mapper, _sum_products)


class ZBox(Rule):
    """z^B for box-constrained inputs ``low <= x <= high`` (Montavon et al. 2017):
    ``R_i = sum_j (x_i w_ij - l_i w_ij+ - h_i w_ij-) / z_j R_j``."""

    name = "zbox"

    def __init__(self, low: Tensor | float | None = None, high: Tensor | float | None = None,
                 stabilizer: float = 1e-6) -> None:
        self.low, self.high, self.stabilizer = low, high, float(stabilizer)

        def bound(value: Tensor | float | None) -> InputMod:
            def make(x: Tensor) -> Tensor:
                if value is None:
                    raise ParameterError(
                        "the z^B (box) rule needs the input bounds: pass low= and high= (tensors broadcastable "
                        "to the input, e.g. the normalised images of pixel values 0 and 1)"
                    )
                return torch.as_tensor(value, dtype=x.dtype, device=x.device).expand_as(x)

            return make

        def mapper(r: Tensor, zs: list[Tensor], y: Tensor) -> list[Tensor]:
            g = r / stabilise(zs[0] - zs[1] - zs[2], self.stabilizer)
            return [g, g, g]

        def reducer(xs: list[Tensor], gs: list[Tensor]) -> Tensor:
            return xs[0] * gs[0] - xs[1] * gs[1] - xs[2] * gs[2]

        terms = [Term(), Term(bound(low), _pos), Term(bound(high), _neg)]
        super().__init__(terms, mapper, reducer)

    def with_bounds(self, low: Tensor | float, high: Tensor | float) -> ZBox:
        return ZBox(low, high, self.stabilizer)


class Flat(Rule):
    """Flat: relevance spread uniformly over the receptive field (Lapuschkin et al. 2019)."""

    name = "flat"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = float(stabilizer)
        super().__init__(
            [Term(_ones, _ones, True)], lambda r, zs, y: [r / stabilise(zs[0], self.stabilizer)], _first_grad
        )


class WSquare(Rule):
    """w^2: ``R_i = sum_j w_ij^2 / sum_i w_ij^2 R_j`` (Montavon et al. 2017); bias squared as in zennit."""

    name = "w_square"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = float(stabilizer)
        super().__init__(
            [Term(_ones, torch.square)], lambda r, zs, y: [r / stabilise(zs[0], self.stabilizer)], _first_grad
        )


#: rule names accepted wherever a rule is expected (a Rule instance is accepted too)
RULES: dict[str, Callable[[], Rule]] = {
    "epsilon": Epsilon,
    "zero": Zero,
    "gamma": Gamma,
    "generalized_gamma": lambda: GeneralizedGamma.seed(0.8),
    "alpha_beta": AlphaBeta,
    "alpha2beta1": AlphaBeta,
    "alpha1beta0": lambda: AlphaBeta(1.0, 0.0),
    "zplus": ZPlus,
    "zbox": ZBox,
    "box": ZBox,
    "flat": Flat,
    "w_square": WSquare,
    "wsquare": WSquare,
    "pass": Pass,
    "norm": Norm,
}


def as_rule(rule: Rule | str | None) -> Rule | None:
    """A :class:`Rule` from a rule or a rule name (see :data:`RULES`); ``None`` stays ``None`` (gradient)."""
    if rule is None or isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        key = rule.strip().lower().replace("-", "_").replace(" ", "_")
        if key in RULES:
            return RULES[key]()
        import difflib

        close = difflib.get_close_matches(key, list(RULES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(f"unknown LRP rule {rule!r}.{hint} Rules: {', '.join(RULES)}, or a Rule instance.")
    raise ParameterError(f"a rule must be a rule name or a Rule instance, got {type(rule).__name__}")


# ----------------------------------------------------------------------------------------------------------
# attaching rules to layers
# ----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def hooks_inactive() -> Iterator[None]:
    """Inside, the rule hooks leave layers alone (used while a rule evaluates its modified forwards)."""
    before = getattr(_STATE, "inactive", False)
    _STATE.inactive = True
    try:
        yield
    finally:
        _STATE.inactive = before


Recorder = Callable[[str, Tensor, Tensor], None]


class _RuleFunction(torch.autograd.Function):
    """Identity on the values ``y``; its backward maps output relevance to input relevance by the rule."""

    @staticmethod
    def forward(ctx, x: Tensor, box: list, rule: Rule, module: nn.Module, name: str, record: Recorder | None):
        y = box[0]
        ctx.rule, ctx.module, ctx.name, ctx.record = rule, module, name, record
        ctx.save_for_backward(x, y)
        # a fresh tensor: the model may change a layer's output in place (`result += input` in torchvision's
        # MobileNetV3 / EfficientNet blocks), which must not touch the tensors saved for the rule
        return y.clone()

    @staticmethod
    def backward(ctx, r: Tensor):
        x, y = ctx.saved_tensors
        rule = ctx.rule
        relevance = rule.relevance(ctx.module, x, y, r) if isinstance(rule, Rule) else rule(ctx.module, x, y, r)
        if ctx.record is not None:
            ctx.record(ctx.name, r, relevance)
        return relevance, None, None, None, None, None


def _make_hook(name: str, rule: Rule | Backward, record: Recorder | None):
    def hook(module: nn.Module, inputs: tuple, output: object) -> Tensor | None:
        if getattr(_STATE, "inactive", False):
            return None
        tensors = [t for t in inputs if isinstance(t, Tensor)]
        if len(tensors) != 1 or not isinstance(output, Tensor):
            raise ModelError(
                f"layer {name!r} ({type(module).__name__}) takes {len(tensors)} tensors or returns a "
                "non-tensor; LRP rules need one tensor in and one out. Map it to None (gradient) in rules=..."
            )
        x = tensors[0]
        if not x.requires_grad:
            return None
        return _RuleFunction.apply(x, [output.detach()], rule, module, name, record)

    return hook


def _make_raiser(message: str):
    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        if not getattr(_STATE, "inactive", False):
            raise LayerError(message)

    return hook


Backward = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]


@contextlib.contextmanager
def attached(
    model: nn.Module,
    assignment: dict[str, tuple[nn.Module, Rule | Backward]],
    *,
    unsupported: dict[str, tuple[nn.Module, str]] | None = None,
    record: Recorder | None = None,
) -> Iterator[None]:
    """Attach ``{name: (module, rule)}`` for the duration of the block; restore everything on exit.

    A rule may also be any ``backward(module, x, y, grad_y) -> grad_x`` (DeepLIFT's multipliers use this).

    ``unsupported`` layers get a hook that raises their message if the forward pass reaches them.
    ``inplace`` flags are switched off inside (a custom backward cannot follow in-place changes).
    """
    handles = []
    inplace = [(m, m.inplace) for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)]
    try:
        for m, _flag in inplace:
            m.inplace = False
        for name, (module, rule) in assignment.items():
            handles.append(module.register_forward_hook(_make_hook(name, rule, record)))
        for module, message in (unsupported or {}).values():
            handles.append(module.register_forward_hook(_make_raiser(message)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for m, flag in inplace:
            m.inplace = flag


def attached_functions(model: nn.Module, functions: dict[str, tuple[nn.Module, Backward]]):
    """:func:`attached` for plain backward functions ``(module, x, y, grad_y) -> grad_x``."""
    return attached(model, functions)
