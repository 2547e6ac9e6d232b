"""Axioms an explanation should satisfy, each as a test with a score and a verdict.

- ``completeness``: the relevance sums to the explained output, ``sum_i R_i = f(x) - f(x')`` (completeness,
  Sundararajan, Taly & Yan 2017, arXiv:1703.01365; summation-to-delta, Shrikumar et al. 2017; conservation
  ``sum_i R_i = f(x)``, Montavon, Samek & Müller 2018, "Methods for interpreting and understanding deep
  neural networks", Digital Signal Processing 73, arXiv:1706.07979), together with the bounded absolute
  sum ``sum_i |R_i| <= A |f(x) - f(x')|``: conservation must not be reached by large relevances of both
  signs cancelling out.
- ``continuity``: explanations of a sequence of slightly shifted inputs change no faster than the output
  (Montavon et al. 2018, sec. 5: ``max ||R(x) - R(x')||_1 / ||x - x'||_2`` over the sequence, compared with
  the same quotient of the output).
- ``implementation_invariance``: two functionally equal networks get equal explanations (Sundararajan et
  al. 2017, sec. 2.1); ``max_networks`` gives the classic pair ``max(x1, x2) = relu(x1 - x2) + x2 =
  relu(x2 - x1) + x1``.
- ``input_invariance``: a constant shift of the input, absorbed by the first layer's bias, leaves the
  explanation unchanged (Kindermans et al. 2019, "The (Un)reliability of Saliency Methods",
  arXiv:1711.00867).
- ``selectivity``: removing the most relevant features first drops the score faster than removing them in
  random order (Montavon et al. 2018, sec. 5; the region perturbation of Samek et al. 2017,
  arXiv:1509.06321).

A uniform explanation ``R_i = f(x) / d`` is conservative and as continuous as the model, and only
selectivity exposes it: the axioms are necessary, not sufficient.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution
from ..core.batching import chunk_ranges
from ..core.errors import InputError, ModelError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.targets import TargetLike
from ..methods.baselines import resolve_baseline
from ._maps import (
    ExplanationLike,
    MethodLike,
    check_positive_int,
    expand_to_inputs,
    explain_batched,
    flat,
    make_explainer,
    method_label,
    prepare,
    target_scores,
    values_of,
)
from .perturb import centred_grid


def _classifier_of(model: Any, explanation: ExplanationLike) -> Any:
    """The model's image adapter, else the Attribution's: the normalisation baseline names resolve with."""
    return unwrap_model(model)[1] or getattr(explanation, "classifier", None)


def _target_of(explanation: ExplanationLike, target: TargetLike) -> TargetLike:
    """An explicit target wins; else the class the Attribution explained; else the prediction."""
    if target is None and isinstance(explanation, Attribution):
        return explanation.target
    return target


def _check_tolerance(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


# --- completeness / conservation ---------------------------------------------------------------------------


@dataclass
class CompletenessResult:
    """Per-sample sums. ``delta`` is ``f(x) - f(x')`` (``f(x)`` without a baseline); ``gap`` is
    ``relevance_sum - delta``; ``abs_sum`` is ``sum_i |R_i|``.

    ``passed``: ``|gap| <= atol + rtol |delta|``; ``bounded``: ``abs_sum <= bound |delta| + atol``.
    """

    relevance_sum: torch.Tensor
    output: torch.Tensor
    baseline_output: torch.Tensor | None
    delta: torch.Tensor
    abs_sum: torch.Tensor
    rtol: float
    atol: float
    bound: float

    @property
    def gap(self) -> torch.Tensor:
        return self.relevance_sum - self.delta

    @property
    def relative_gap(self) -> torch.Tensor:
        return self.gap.abs() / self.delta.abs().clamp_min(1e-12)

    @property
    def passed(self) -> torch.Tensor:
        return self.gap.abs() <= self.atol + self.rtol * self.delta.abs()

    @property
    def abs_ratio(self) -> torch.Tensor:
        """``sum_i |R_i| / |delta|``: 1 when every relevance has the sign of ``delta``."""
        return self.abs_sum / self.delta.abs().clamp_min(1e-12)

    @property
    def bounded(self) -> torch.Tensor:
        return self.abs_sum <= self.bound * self.delta.abs() + self.atol

    def row(self) -> dict[str, float]:
        return {
            "completeness_passed": float(self.passed.double().mean()),
            "median_relative_gap": float(self.relative_gap.median()),
            "bounded": float(self.bounded.double().mean()),
            "median_abs_ratio": float(self.abs_ratio.median()),
        }


def _auto_baseline(explanation: ExplanationLike, x: torch.Tensor) -> torch.Tensor | None:
    if not isinstance(explanation, Attribution):
        return None
    stored = explanation.extras.get("baselines") if explanation.extras else None
    if isinstance(stored, torch.Tensor) and stored.shape == x.shape:
        return stored.to(x.device, x.dtype)
    if "baseline" in explanation.params:
        return resolve_baseline(
            explanation.params["baseline"], x, explanation.classifier, seed=explanation.params.get("seed", 0)
        )
    return None


def completeness(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    baseline: Any = "auto",
    rtol: float = 1e-2,
    atol: float = 1e-4,
    bound: float = 1.0,
    batch_size: int = 64,
) -> CompletenessResult:
    """Does ``sum_i R_i`` equal ``f(x) - f(x')`` (or ``f(x)``), and is ``sum_i |R_i| <= bound |...|``?

    ``baseline``: ``"auto"`` (the baseline an Attribution was computed with, e.g. Integrated Gradients' or
    DeepLIFT's; none for LRP, which conserves ``f(x)``), ``None`` (compare with ``f(x)``), or a baseline
    as methods take it (``"black"``, a number, a tensor). ``target`` defaults to the Attribution's.
    ``bound`` is the constant ``A``; with ``A = 1`` the relevances must all have the output's sign.
    """
    rtol, atol, bound = _check_tolerance(rtol, "rtol"), _check_tolerance(atol, "atol"), _check_tolerance(bound, "bound")
    net, x, resolved, fx = prepare(model, inputs, _target_of(explanation, target))
    relevance = values_of(explanation).to(x.device)
    if relevance.shape[0] != x.shape[0]:
        raise InputError(f"the explanation has {relevance.shape[0]} samples for {x.shape[0]} inputs")
    if isinstance(baseline, str) and baseline == "auto":
        reference = _auto_baseline(explanation, x)
    elif baseline is None:
        reference = None
    else:
        reference = resolve_baseline(baseline, x, _classifier_of(model, explanation))
    fb = target_scores(net, reference, resolved, batch_size) if reference is not None else None
    delta = fx - fb if fb is not None else fx
    rel = flat(relevance).double()
    return CompletenessResult(
        relevance_sum=rel.sum(1).float().cpu(), output=fx.cpu(), baseline_output=None if fb is None else fb.cpu(),
        delta=delta.cpu(), abs_sum=rel.abs().sum(1).float().cpu(), rtol=rtol, atol=atol, bound=bound,
    )


# --- continuity ---------------------------------------------------------------------------------------------


def translate(inputs: torch.Tensor, shift: float, axis: str = "x") -> torch.Tensor:
    """Images ``(N, C, H, W)`` moved by ``shift`` pixels (sub-pixel by bilinear interpolation, edges
    replicated): right for ``axis="x"``, down for ``axis="y"``."""
    n, _c, h, w = inputs.shape
    theta = torch.zeros(n, 2, 3, dtype=inputs.dtype, device=inputs.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if axis == "x":
        theta[:, 0, 2] = -2.0 * shift / w
    elif axis == "y":
        theta[:, 1, 2] = -2.0 * shift / h
    else:
        raise ParameterError(f"axis is 'x' or 'y', got {axis!r}")
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    return F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class ContinuityResult:
    """The explanations' and the output's change along a sequence of inputs ``x_0, ..., x_T``.

    Per step ``t`` and sample: ``explanation_change[t] = ||R_t+1 - R_t||_1``, ``output_change[t] =
    |f_t+1 - f_t|``, ``input_change[t] = ||x_t+1 - x_t||_2``; ``outputs[t]`` and ``relevance_sums[t]``
    are ``f(x_t)`` and ``sum R_t`` (the curves of Montavon et al.'s continuity figure).
    ``lipschitz``: ``max_t`` explanation change / input change (Montavon et al. 2018); ``output_lipschitz``
    the same for the output; ``ratio`` their quotient, 1 for a uniform conservative explanation (and at
    least 1 for any conservative one). ``passed``: ``ratio <= bound``.
    """

    shifts: torch.Tensor
    outputs: torch.Tensor
    relevance_sums: torch.Tensor
    explanation_change: torch.Tensor
    output_change: torch.Tensor
    input_change: torch.Tensor
    bound: float
    method: str = ""

    @property
    def lipschitz(self) -> torch.Tensor:
        return (self.explanation_change / self.input_change.clamp_min(1e-12)).amax(0)

    @property
    def output_lipschitz(self) -> torch.Tensor:
        return (self.output_change / self.input_change.clamp_min(1e-12)).amax(0)

    @property
    def ratio(self) -> torch.Tensor:
        lf, lr = self.output_lipschitz, self.lipschitz
        return torch.where(lf > 1e-12, lr / lf.clamp_min(1e-12), torch.where(lr > 1e-12, math.inf, 1.0))

    @property
    def passed(self) -> torch.Tensor:
        return self.ratio <= self.bound

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "continuity_passed": float(self.passed.double().mean()),
            "median_lipschitz": float(self.lipschitz.median()),
            "median_ratio": float(self.ratio.median()),
        }


def continuity(
    model: Any,
    inputs: Any,
    method: MethodLike,
    target: TargetLike = None,
    *,
    params: Mapping[str, Any] | None = None,
    shifts: Sequence[float] | torch.Tensor | None = None,
    axis: str = "x",
    sequence: torch.Tensor | None = None,
    bound: float = 3.0,
    batch_size: int | None = 64,
    progress: Progress | bool | None = None,
) -> ContinuityResult:
    """Explain inputs translated by ``shifts`` pixels (default 0 to 2 px in quarter pixels) and compare how
    fast the explanation and the output change.

    ``method``: a registered name (with ``params``) or ``explain(model, inputs, target)``. ``sequence``
    replaces the translation: a ``(T, N, ...)`` tensor of inputs (any modality), ``sequence[0]`` explained
    as the original. The target is resolved once, on the first input of the sequence. ``bound``: the
    largest accepted ratio of the explanation's to the output's Lipschitz quotient.
    """
    bound = _check_tolerance(bound, "bound")
    explain = make_explainer(method, params)
    tracker = as_progress(progress)
    try:
        if sequence is None:
            net, x, resolved, _ = prepare(model, inputs, target)
            if x.dim() != 4:
                raise InputError(
                    "continuity translates images (N, C, H, W); for other inputs pass sequence=(T, N, ...)"
                )
            s = torch.arange(9, dtype=torch.float64) * 0.25 if shifts is None else torch.as_tensor(shifts).double()
            if s.dim() != 1 or s.numel() < 2:
                raise ParameterError("shifts must be a sequence of at least two offsets in pixels")
            seq = torch.stack([translate(x, float(v), axis) for v in s])
        else:
            seq_t = torch.as_tensor(sequence)
            if seq_t.dim() < 3 or seq_t.shape[0] < 2:
                raise InputError("sequence is (T, N, ...) with T >= 2 inputs per sample")
            net, x0, resolved, _ = prepare(model, seq_t[0], target)
            seq = seq_t.to(x0.device, x0.dtype)
            s = torch.arange(seq.shape[0], dtype=torch.float64)
        t_len, n = seq.shape[:2]
        rows = seq.reshape(t_len * n, *seq.shape[2:])
        targets = resolved.repeat(t_len)
        values = explain_batched(explain, net, rows, targets, batch_size, tracker)
        values = flat(values).double().view(t_len, n, -1)
        outputs = target_scores(net, rows, targets).double().view(t_len, n)
        xs = flat(rows).double().view(t_len, n, -1)
    finally:
        tracker.close()
    return ContinuityResult(
        shifts=s, outputs=outputs.cpu(), relevance_sums=values.sum(2).cpu(),
        explanation_change=(values[1:] - values[:-1]).abs().sum(2).cpu(),
        output_change=(outputs[1:] - outputs[:-1]).abs().cpu(),
        input_change=(xs[1:] - xs[:-1]).norm(dim=2).cpu(),
        bound=bound, method=method_label(method),
    )


# --- implementation invariance --------------------------------------------------------------------------------


class _MaxNet(nn.Module):
    """``max(x1, x2)`` as ``relu(x1 - x2) + x2`` (``swap=False``) or ``relu(x2 - x1) + x1`` (``swap=True``),
    one linear layer, a ReLU and a linear read-out (``x = relu(x) - relu(-x)``)."""

    def __init__(self, swap: bool) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 3, bias=False)
        self.relu = nn.ReLU()
        self.out = nn.Linear(3, 1, bias=False)
        first, kept = ([-1.0, 1.0], 0) if swap else ([1.0, -1.0], 1)
        keep = [0.0, 0.0]
        keep[kept] = 1.0
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([first, keep, [-v for v in keep]]))
            self.out.weight.copy_(torch.tensor([[1.0, 1.0, -1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.hidden(x)))


def max_networks() -> tuple[nn.Module, nn.Module]:
    """Two functionally equal networks computing ``max(x1, x2)`` on ``(N, 2)`` inputs (one output score):
    ``relu(x1 - x2) + x2`` and ``relu(x2 - x1) + x1``."""
    return _MaxNet(swap=False).eval(), _MaxNet(swap=True).eval()


@dataclass
class InvarianceResult:
    """Two explanations that should be equal: ``max_abs_diff`` and ``relative_l1`` (``||a - b||_1 / ||a||_1``)
    per sample; ``output_gap``: ``max |f_a - f_b|`` of the two (functionally equal) models;
    ``passed``: ``max_abs_diff <= atol + rtol max |a|``."""

    reference: torch.Tensor
    other: torch.Tensor
    output_gap: float
    rtol: float
    atol: float
    method: str = ""

    @property
    def max_abs_diff(self) -> torch.Tensor:
        return flat(self.reference - self.other).abs().amax(1)

    @property
    def relative_l1(self) -> torch.Tensor:
        a = flat(self.reference)
        return flat(self.reference - self.other).abs().sum(1) / a.abs().sum(1).clamp_min(1e-12)

    @property
    def passed(self) -> torch.Tensor:
        return self.max_abs_diff <= self.atol + self.rtol * flat(self.reference).abs().amax(1)

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "passed": float(self.passed.double().mean()),
            "median_relative_l1": float(self.relative_l1.median()),
        }


def implementation_invariance(
    model_a: Any,
    model_b: Any,
    inputs: Any,
    method: MethodLike,
    target: TargetLike = None,
    *,
    params: Mapping[str, Any] | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    output_atol: float = 1e-4,
    batch_size: int | None = 64,
    progress: Progress | bool | None = None,
) -> InvarianceResult:
    """Explain ``inputs`` with two functionally equal models and compare. Raises ParameterError when the
    models' outputs differ by more than ``output_atol`` on the inputs (the axiom presumes equal functions)."""
    rtol, atol = _check_tolerance(rtol, "rtol"), _check_tolerance(atol, "atol")
    explain = make_explainer(method, params)
    net_a, x, resolved, _ = prepare(model_a, inputs, target)
    net_b, x_b, _, _ = prepare(model_b, inputs, resolved)
    with torch.no_grad():
        gap = float((net_a(x).float() - net_b(x_b.to(x.device)).float()).abs().max())
    if gap > output_atol:
        raise ParameterError(
            f"the two models differ by up to {gap:.3g} on these inputs; implementation invariance compares "
            "functionally equal networks (raise output_atol if the difference is rounding)"
        )
    tracker, n = as_progress(progress), x.shape[0]
    try:
        a = explain_batched(explain, net_a, x, resolved, batch_size, tracker, 0, 2 * n)
        b = explain_batched(explain, net_b, x_b, resolved.to(x_b.device), batch_size, tracker, n, 2 * n)
    finally:
        tracker.close()
    b = b.to(a.device)
    return InvarianceResult(reference=a.cpu(), other=b.cpu(), output_gap=gap, rtol=rtol, atol=atol,
                            method=method_label(method))


# --- input invariance ---------------------------------------------------------------------------------------


_FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def _first_layer(net: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module]:
    """The first Linear/Conv layer the forward pass calls, checked to receive the model's input."""
    names = {m: n for n, m in net.named_modules()}
    seen: list[tuple[str, nn.Module, bool]] = []

    def hook(module: nn.Module, args: tuple) -> None:
        if not seen and isinstance(module, _FIRST_LAYERS):
            seen.append((names[module], module, bool(args) and args[0] is x))

    handles = [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, _FIRST_LAYERS)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ModelError("input_invariance needs a model whose first layer is a Linear or Conv layer")
    name, layer, direct = seen[0]
    if not direct:
        raise ModelError(
            f"the first layer ({name or type(layer).__name__}) does not receive the model's input unchanged "
            "(is there a preprocessing step in forward?); input_invariance absorbs the shift in that layer's bias"
        )
    return name, layer


def _shift_tensor(shift: Any, x: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(shift, dtype=x.dtype, device=x.device)
    if m.dim() == 0:
        return m.expand(x.shape[1:])
    if m.dim() == 1 and x.dim() >= 3 and m.numel() == x.shape[1]:  # one value per channel
        return m.view(-1, *([1] * (x.dim() - 2))).expand(x.shape[1:])
    try:
        return m.expand(x.shape[1:])
    except RuntimeError:
        raise ParameterError(
            f"shift must be a number, one value per channel, or broadcast to one input {tuple(x.shape[1:])}; "
            f"got shape {tuple(m.shape)}"
        ) from None


def _conv_pads(layer: nn.Module) -> list[int]:
    """``F.pad`` amounts (last dimension first) equal to the convolution's own zero padding."""
    nd = layer.weight.dim() - 2
    if layer.padding == "valid":
        per_dim = [(0, 0)] * nd
    elif layer.padding == "same":
        per_dim = []
        for k, d in zip(layer.kernel_size, layer.dilation):
            total = d * (k - 1)
            per_dim.append((total // 2, total - total // 2))
    else:
        per_dim = [(p, p) for p in layer.padding]
    return [v for left, right in reversed(per_dim) for v in (left, right)]


def shift_absorbed(net: nn.Module, x: torch.Tensor, shift: Any) -> nn.Module:
    """A copy of ``net`` with ``net_copy(x + shift) == net(x)``: the first layer's bias becomes ``b - W shift``.

    For a zero-padded first convolution the copy pads with the shift instead of zeros (a pre-hook pads,
    the convolution's own padding is set to 0), so that the padded border moves with the input and the
    compensation stays one bias per channel. Convolutions take a shift that is constant per channel. The
    user's model is never modified.
    """
    m = _shift_tensor(shift, x)
    shifted = copy.deepcopy(net)
    name, _ = _first_layer(net, x)
    layer = shifted.get_submodule(name) if name else shifted
    with torch.no_grad():
        if isinstance(layer, nn.Linear):
            if m.dim() != 1:
                raise ModelError("the first Linear layer takes features (N, D); the inputs have more dimensions")
            offset = layer.weight @ m
        else:
            per_channel = m.flatten(1)[:, 0]
            if not bool(torch.equal(m, per_channel.view(-1, *([1] * (m.dim() - 1))).expand_as(m))):
                raise ParameterError(
                    "a convolution absorbs a shift that is constant per channel: give a number or one per channel"
                )
            extent = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation)]
            patch = per_channel.view(1, -1, *([1] * len(extent))).expand(1, -1, *extent)
            offset = _CONV[type(layer)](patch, layer.weight, None, 1, 0, layer.dilation, layer.groups).flatten()
            pads = _conv_pads(layer)
            if layer.padding_mode == "zeros" and any(pads):
                fill = per_channel.view(1, -1, *([1] * len(extent)))
                layer.padding = (0,) * len(extent)
                layer.register_forward_pre_hook(lambda _mod, args: (F.pad(args[0] - fill, pads) + fill, *args[1:]))
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=x.dtype, device=x.device))
        layer.bias.sub_(offset)
    return shifted


def input_invariance(
    model: Any,
    inputs: Any,
    method: MethodLike,
    target: TargetLike = None,
    *,
    params: Mapping[str, Any] | None = None,
    shift: Any = -1.0,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    batch_size: int | None = 64,
    progress: Progress | bool | None = None,
) -> InvarianceResult:
    """Explain ``model`` at ``x`` and a copy whose first-layer bias absorbs ``shift`` at ``x + shift``
    (Kindermans et al. 2019); the two networks compute the same function of the content, so an
    input-invariant method gives equal explanations. ``shift``: a number (default -1, as in the paper's
    MNIST experiment), one value per channel, or a tensor of one input's shape."""
    rtol, atol = _check_tolerance(rtol, "rtol"), _check_tolerance(atol, "atol")
    explain = make_explainer(method, params)
    net, x, resolved, fx = prepare(model, inputs, target)
    if not isinstance(net, nn.Module):
        raise ModelError("input_invariance modifies a copy of the first layer, so the model must be a torch.nn.Module")
    shifted = shift_absorbed(net, x, shift)
    x_shifted = x + _shift_tensor(shift, x)
    gap = float((target_scores(shifted, x_shifted, resolved) - fx).abs().max())
    tracker, n = as_progress(progress), x.shape[0]
    try:
        a = explain_batched(explain, net, x, resolved, batch_size, tracker, 0, 2 * n)
        b = explain_batched(explain, shifted, x_shifted, resolved, batch_size, tracker, n, 2 * n)
    finally:
        tracker.close()
    return InvarianceResult(reference=a.cpu(), other=b.cpu(), output_gap=gap, rtol=rtol, atol=atol,
                            method=method_label(method))


# --- selectivity ----------------------------------------------------------------------------------------------


@dataclass
class SelectivityResult:
    """Removal curves: ``curve`` ``(N, S + 1)`` is ``f`` after removing 0, ..., all regions in the
    explanation's order, ``random_curves`` ``(N, R, S + 1)`` the same in ``R`` random orders.

    ``auc``: the mean of a curve over its steps (lower is more selective). ``gain``: ``(mean random AUC -
    AUC) / (f(x) - f(all removed))``, the fraction of the output range gained over random removal.
    ``beats_random``: the explanation's AUC is below every random order's (chance ``1 / (R + 1)`` for an
    explanation no better than random). ``passed``: more than half of the samples beat random.
    """

    curve: torch.Tensor
    random_curves: torch.Tensor
    removed: torch.Tensor
    method: str = ""

    @property
    def auc(self) -> torch.Tensor:
        return self.curve.mean(1)

    @property
    def random_auc(self) -> torch.Tensor:
        return self.random_curves.mean(2)

    @property
    def gain(self) -> torch.Tensor:
        span = (self.curve[:, 0] - self.curve[:, -1]).abs().clamp_min(1e-12)
        return (self.random_auc.mean(1) - self.auc) / span

    @property
    def beats_random(self) -> torch.Tensor:
        return (self.auc.unsqueeze(1) < self.random_auc).all(1)

    @property
    def passed(self) -> bool:
        return bool(self.beats_random.double().mean() > 0.5)

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "selectivity_auc": float(self.auc.mean()),
            "selectivity_gain": float(self.gain.mean()),
            "beats_random": float(self.beats_random.double().mean()),
        }


def _regions(x: torch.Tensor, patch: int) -> tuple[torch.Tensor, int]:
    """Region index of every feature (pixels in ``patch x patch`` squares for images), and the count."""
    if x.dim() == 4:
        h, w = x.shape[-2:]
        return centred_grid(h, w, patch, x.device), math.ceil(h / patch) * math.ceil(w / patch)
    d = flat(x).shape[1]
    return torch.arange(d, device=x.device).view(x.shape[1:]) // patch, math.ceil(d / patch)


def selectivity(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    patch: int = 8,
    steps: int | None = None,
    baseline: Any = "blur",
    n_random: int = 8,
    seed: int = 0,
    batch_size: int = 256,
    progress: Progress | bool | None = None,
) -> SelectivityResult:
    """Remove regions in order of decreasing relevance (``patch x patch`` pixel squares of images, groups
    of ``patch`` features otherwise) and record the target score; compare with ``n_random`` random orders.

    Removed regions take the ``baseline`` (as methods take it: ``"blur"``, ``"black"``, a number, a tensor;
    see :mod:`xaiwidgets.methods.baselines`). The default is the blurred input: constant patches are new
    evidence for a model of shapes (on the demo model, grey squares make random removal look more damaging
    than removing the object), while blurring removes edges and keeps colours. ``steps``: how many points
    the curve has after the start (default: one per region, else the regions are removed in ``steps`` equal
    groups). Ties in relevance are broken at random (``seed``).
    """
    patch = check_positive_int(patch, "patch")
    n_random = check_positive_int(n_random, "n_random")
    net, x, resolved, _ = prepare(model, inputs, _target_of(explanation, target))
    relevance = expand_to_inputs(values_of(explanation).to(x.device, x.dtype), x)
    reference = resolve_baseline(baseline, x, _classifier_of(model, explanation), seed=seed)
    region, n_regions = _regions(x, patch)
    pixel_relevance = relevance.sum(1) if x.dim() == 4 else relevance
    n = x.shape[0]
    scores = torch.stack(
        [torch.bincount(region.flatten(), flat(pixel_relevance)[i].double(), n_regions) for i in range(n)]
    )
    steps = n_regions if steps is None else min(check_positive_int(steps, "steps"), n_regions)
    counts = torch.round(torch.linspace(0, n_regions, steps + 1, dtype=torch.float64)).long().to(x.device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    keys = torch.rand(n, n_random + 1, n_regions, generator=gen, dtype=torch.float64).to(x.device)
    # order 0: relevance descending, ties in the random order keys[:, 0] (a stable sort over a shuffled list)
    shuffled = keys[:, 0].argsort(1)
    order0 = shuffled.gather(1, torch.argsort(scores.gather(1, shuffled), dim=1, descending=True, stable=True))
    orders = torch.cat([order0.unsqueeze(1), keys[:, 1:].argsort(2)], 1)  # (N, R + 1, P)
    rank = orders.argsort(2)  # rank[n, o, p]: position of region p in order o
    tracker = as_progress(progress)
    total = n * (n_random + 1) * (steps + 1)
    out = torch.empty(total, dtype=torch.float64, device=x.device)
    # rows enumerate (sample, order, step)
    sample_of = torch.arange(n, device=x.device).repeat_interleave((n_random + 1) * (steps + 1))
    order_of = torch.arange(n_random + 1, device=x.device).repeat_interleave(steps + 1).repeat(n)
    step_of = torch.arange(steps + 1, device=x.device).repeat(n * (n_random + 1))
    try:
        for a, b in chunk_ranges(total, batch_size):
            si, oi, ki = sample_of[a:b], order_of[a:b], step_of[a:b]
            removed = rank[si, oi][:, region] < counts[ki].view(-1, *([1] * region.dim()))
            if x.dim() == 4:
                removed = removed.unsqueeze(1)
            rows = torch.where(removed, reference[si], x[si])
            out[a:b] = target_scores(net, rows, resolved[si], b - a).double()
            tracker.update(b, total, "selectivity")
    finally:
        tracker.close()
    curves = out.view(n, n_random + 1, steps + 1).cpu()
    return SelectivityResult(
        curve=curves[:, 0], random_curves=curves[:, 1:], removed=counts.cpu(),
        method=explanation.method if isinstance(explanation, Attribution) else "explanation",
    )


__all__ = [
    "CompletenessResult",
    "ContinuityResult",
    "InvarianceResult",
    "SelectivityResult",
    "completeness",
    "continuity",
    "implementation_invariance",
    "input_invariance",
    "max_networks",
    "selectivity",
    "shift_absorbed",
    "translate",
]
