"""DeepLIFT (rescale rule) and DeepSHAP.

- ``deeplift``: Shrikumar, Greenside & Kundaje 2017, "Learning Important Features Through Propagating
  Activation Differences", arXiv:1704.02685. Inputs and baselines run as one batch; every element-wise
  nonlinearity's gradient is replaced by the multiplier ``(y - y0) / (x - x0)`` (the gradient where
  ``|x - x0| < 1e-10``), max-pooling by captum's difference routing; linear layers keep their gradient.
  ``values = (x - x0) * multiplier``; summation-to-delta: ``sum values = f(x) - f(x0)``, the residual is
  ``extras["delta"]``.
- ``deepshap``: Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions",
  arXiv:1705.07874: DeepLIFT averaged over a background set (captum's ``DeepLiftShap``).

Every element-wise nonlinearity is rescaled, found by its functional call (``F.gelu``, ``torch.relu``, in
any module or none) or, for parameter-free modules of unknown classes, by probing (:func:`is_elementwise`);
products of two input-dependent operands get the exact product rule (:mod:`.ops`). captum rescales only
modules of six classes. Modules reused within a forward and in-place ReLUs are fine. Summation-to-delta is
checked on every result (:mod:`.guard`, ``conservation="warn" | "raise" | "off"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...core.attribution import Attribution
from ...core.errors import ModelError, ParameterError, TargetError
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores
from ..base import Method
from ..baselines import deprecated_resolver
from ..baselines import resolve_baseline as _resolve
from ..registry import register
from .guard import check_mode, delta_check, first_nonlinear, report
from .ops import RescaleOps, no_interception
from .rules import attached_functions, hooks_inactive

ELEMENTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
    nn.Softplus, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
)
#: parameter-free layers known to be linear or to route values (their gradient is their DeepLIFT multiplier)
KNOWN_LINEAR = (
    nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AvgPool1d,
    nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.ZeroPad2d,
    nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle,
    nn.Softmax, nn.LogSoftmax,
)
MAXPOOL = {nn.MaxPool1d: F.max_pool1d, nn.MaxPool2d: F.max_pool2d, nn.MaxPool3d: F.max_pool3d}
EPS = 1e-10


def _true_grad(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad(), hooks_inactive():
        xi = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(module.forward(xi), xi, grad)
    return g


def _halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = t.chunk(2)
    return a, b


def _rescale(module: nn.Module, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Rescale rule for an element-wise nonlinearity on the stacked (inputs, baselines) batch: both halves get
    the multiplier ``(y - y0) / (x - x0)`` (captum's convention)."""
    (x1, x0), (y1, y0) = _halves(x), _halves(y)
    dx = x1 - x0
    small = dx.abs() < EPS
    multiplier = (y1 - y0).div_(dx.masked_fill(small, 1.0))
    ratio = (grad.view(2, *dx.shape) * multiplier).view_as(grad)
    if bool(small.any()):
        return torch.where(small.repeat(2, *([1] * (x.dim() - 1))), _true_grad(module, x, grad), ratio)
    return ratio


def _maxpool(module: nn.Module, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """captum's max-pooling rule: ``y - y0 = (max(y, y0) - y0) + (y - max(y, y0))``, the first part routed to
    the argmax of the input, the second to the argmax of the baseline, divided by ``x - x0``. Routing adds
    up where overlapping windows share an argmax (captum's ``max_unpool`` keeps one), so the rule stays
    complete."""
    pool = MAXPOOL[type(module)]
    (x1, x0), (y1, y0) = _halves(x), _halves(y)
    dx = (x1 - x0).repeat(2, *([1] * (x.dim() - 1)))
    top = torch.max(y1, y0)
    dy = torch.cat([top - y0, y1 - top])
    _, indices = pool(x, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode, True)
    flat = torch.zeros(x.shape[0], x.shape[1], x[0, 0].numel(), dtype=grad.dtype, device=grad.device)
    routed = flat.scatter_add_(2, indices.flatten(2), (grad * dy).flatten(2)).view_as(x)
    a, b = _halves(routed)
    routed = (a + b).repeat(2, *([1] * (x.dim() - 1)))
    small = dx.abs() < EPS
    ratio = routed / torch.where(small, torch.ones_like(dx), dx)
    if bool(small.any()):
        return torch.where(small, _true_grad(module, x, grad), ratio)
    return ratio


def is_elementwise(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``module`` computed ``y`` from ``x`` element by element: same shape, and running it on the
    elements of ``x`` in a random order gives the elements of ``y`` in that order (a probe, one extra call)."""
    if not isinstance(y, torch.Tensor) or y.shape != x.shape or x.numel() < 2:
        return False
    order = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0)).to(x.device)
    with torch.no_grad(), hooks_inactive(), no_interception():
        shuffled = module.forward(x.flatten()[order].view_as(x))
    if not isinstance(shuffled, torch.Tensor) or shuffled.shape != y.shape:
        return False
    expected = y.flatten()[order].view_as(y)
    scale = float(y.abs().max()) if y.numel() else 0.0
    return bool(torch.allclose(shuffled, expected, rtol=1e-5, atol=1e-6 * max(scale, 1e-30)))


def _probed(module: nn.Module, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A parameter-free module of no known type: rescaled if it is element-wise (e.g. a zoo's own GELU class,
    or ``x * sigmoid(x)`` written out), else its plain gradient (the delta check watches the result)."""
    if is_elementwise(module, x, y):
        return _rescale(module, x, y, grad)
    return _true_grad(module, x, grad)


def _multiplier_for(module: nn.Module):
    if isinstance(module, ELEMENTWISE):
        return _rescale
    if type(module) in MAXPOOL:
        return _maxpool
    if (not any(True for _ in module.children()) and not any(True for _ in module.parameters(recurse=False))
            and not isinstance(module, KNOWN_LINEAR) and type(module).forward is not nn.Module.forward):
        return _probed
    return None


def deeplift_pass(
    model: nn.Module, inputs: torch.Tensor, baselines: torch.Tensor, target: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(attributions, target, f(x)_t, f(x0)_t)`` for paired ``inputs`` and ``baselines`` (same shape)."""
    n = inputs.shape[0]
    functions = {}
    for name, module in model.named_modules():
        rule = _multiplier_for(module)
        if rule is not None:
            functions[name] = (module, rule)
    x = inputs.detach().requires_grad_(True)
    with attached_functions(model, functions), torch.enable_grad():
        both = torch.cat([x, baselines.detach().to(x)])
        with RescaleOps(_rescale):
            scores = forward_scores(model, both)
        resolved = resolve_target(target, scores[:n])
        index = resolved.view(-1, 1).repeat(2, 1)
        start = torch.zeros_like(scores).scatter_(1, index, 1.0)
        if not scores.requires_grad:
            raise ModelError("the model's output does not depend differentiably on its input")
        (grad,) = torch.autograd.grad(scores, x, start)
    picked = scores.detach().gather(1, index).squeeze(1)
    return (inputs - baselines) * grad, resolved, picked[:n], picked[n:]


resolve_baseline = deprecated_resolver("xaiwidgets.methods.relevance.deeplift.resolve_baseline")


@register
class DeepLift(Method):
    """DeepLIFT, rescale rule (Shrikumar et al. 2017, arXiv:1704.02685); ``extras["delta"]`` is
    ``sum(values) - (f(x) - f(baseline))`` per sample (summation-to-delta)."""

    name = "deeplift"
    family = "relevance"
    reference = "Shrikumar et al. 2017, arXiv:1704.02685"
    defaults: ClassVar[dict[str, Any]] = {"baseline": None, "batch_size": 32, "seed": 0, "conservation": "warn"}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_mode(params["conservation"])

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        _require_module(self.model)
        baselines = _resolve(params["baseline"], inputs, self.classifier, seed=params["seed"])
        n = inputs.shape[0]
        if target is not None and not isinstance(target, int):
            try:
                target = torch.as_tensor(target, device=inputs.device).reshape(-1)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TargetError(f"target must be an int, a sequence of ints or a tensor; got {target!r}") from exc
            target = target.expand(n) if target.numel() == 1 else target
            if target.numel() != n:
                raise TargetError(f"got {target.numel()} targets for {n} inputs; give one per input or a single int")
        size = _batch_size(params["batch_size"])
        parts, fx, f0, targets = [], [], [], []
        for start in range(0, n, size):
            stop = min(start + size, n)
            chunk_target = target[start:stop] if isinstance(target, torch.Tensor) else target
            values, resolved, a, b = deeplift_pass(self.model, inputs[start:stop], baselines[start:stop], chunk_target)
            parts.append(values)
            targets.append(resolved)
            fx.append(a)
            f0.append(b)
            progress.update(stop, n, self.name)
        resolved = torch.cat(targets)
        values = torch.cat(parts).detach()
        fx, f0 = torch.cat(fx), torch.cat(f0)
        delta = values.flatten(1).sum(1) - (fx - f0)
        check = guard_delta(self.model, params["conservation"], values, fx, f0, delta,
                            lambda: deeplift_pass(self.model, inputs[:1], baselines[:1], resolved[:1]))
        return Attribution(values=values, method=self.name, target=resolved, scores=fx,
                           extras={"delta": delta, "baseline_scores": f0, "baselines": baselines,
                                   "conservation": {"check": check}})


@register
class DeepShap(Method):
    """DeepSHAP: DeepLIFT averaged over a background set ``background`` (B, ...) (Lundberg & Lee 2017,
    arXiv:1705.07874; captum's DeepLiftShap). ``extras["delta"]``: ``sum(values) - (f(x) - mean_b f(b))``."""

    name = "deepshap"
    family = "relevance"
    reference = "Lundberg & Lee 2017, arXiv:1705.07874"
    defaults: ClassVar[dict[str, Any]] = {"background": None, "batch_size": 32, "conservation": "warn"}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_mode(params["conservation"])
        bg = params["background"]
        if not isinstance(bg, torch.Tensor) or bg.dim() != inputs.dim() or bg.shape[1:] != inputs.shape[1:]:
            raise ParameterError(
                f"deepshap needs background=<tensor (B, {', '.join(map(str, inputs.shape[1:]))})>: a set of "
                "reference inputs (e.g. 10-100 training images) to average DeepLIFT over"
            )
        if bg.shape[0] < 2:
            raise ParameterError("deepshap needs at least 2 background samples; with one, use deeplift")

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        _require_module(self.model)
        background = _resolve(params["background"], inputs, self.classifier, background=True)  # checks NaN
        with torch.no_grad():
            scores = forward_scores(self.model, inputs)
        resolved = resolve_target(target, scores)
        n, b = inputs.shape[0], background.shape[0]
        pair_x = inputs.repeat_interleave(b, 0)
        pair_b = background.repeat(n, *([1] * (background.dim() - 1)))
        pair_t = resolved.repeat_interleave(b)
        size = _batch_size(params["batch_size"])
        parts, fx, f0 = [], [], []
        for start in range(0, n * b, size):
            stop = min(start + size, n * b)
            values, _t, a, c = deeplift_pass(self.model, pair_x[start:stop], pair_b[start:stop], pair_t[start:stop])
            parts.append(values)
            fx.append(a)
            f0.append(c)
            progress.update(stop, n * b, self.name)
        values = torch.cat(parts).detach().view(n, b, *inputs.shape[1:]).mean(1)
        fx = torch.cat(fx).view(n, b)[:, 0]
        f0 = torch.cat(f0).view(n, b).mean(1)
        delta = values.flatten(1).sum(1) - (fx - f0)
        check = guard_delta(self.model, params["conservation"], values, fx, f0, delta,
                            lambda: deeplift_pass(self.model, pair_x[:1], pair_b[:1], pair_t[:1]))
        return Attribution(values=values, method=self.name, target=resolved,
                           scores=gather_scores(scores, resolved),
                           extras={"delta": delta, "background_mean_score": f0, "conservation": {"check": check}})


def guard_delta(model: nn.Module, mode: str, values: torch.Tensor, fx: torch.Tensor, f0: torch.Tensor,
                delta: torch.Tensor, rerun: Any) -> dict[str, Any]:
    """Summation-to-delta checked (guard.py); warns or raises naming the first operation without a multiplier."""
    if mode == "off":
        return {"conserved": None}
    check = delta_check(values, fx, f0, delta)
    if not check["conserved"]:
        where = first_nonlinear(model, rerun)
        check["first_violation"] = where
        culprit = (f"the first operation on the input that is neither linear nor element-wise is {where[0]!r} in "
                   f"module {where[1]!r}: DeepLIFT's rescale rule has no multiplier for it, its gradient is used"
                   if where else "no operation without a multiplier was found; the gradients of some layer are "
                   "not its multipliers")
        report(mode, (
            f"DeepLIFT summation-to-delta fails: sum of contributions - (f(x) - f(baseline)) is up to "
            f"{float(delta.abs().max()):.4g} (tolerance {float(check['tolerance'].min()):.3g}); {culprit}. The "
            "attributions are not exact there. Pass conservation='off' to silence this check, 'raise' to make "
            "it an error."))
    return check


def _batch_size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ParameterError(f"batch_size must be a positive int; got {value!r}")
    return value


def _require_module(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ModelError("DeepLIFT needs a torch.nn.Module (it hooks the model's nonlinear layers)")
