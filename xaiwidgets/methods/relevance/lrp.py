"""Layer-wise relevance propagation: ``lrp_epsilon``, ``lrp_gamma``, ``lrp_alpha_beta``, ``lrp_zplus``,
``lrp_composite``.

Bach et al. 2015, "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
Propagation", PLoS ONE 10(7); Montavon et al. 2017, "Explaining nonlinear classification decisions with
deep Taylor decomposition", arXiv:1512.02479; Montavon et al. 2019, "Layer-Wise Relevance Propagation: An
Overview" (gamma rule); Kohlbrenner et al. 2020, "Towards Best Practice in Explaining Neural Network
Decisions with LRP", arXiv:1910.09840 (composites). Reference implementation: zennit (Anders et al. 2021,
arXiv:2106.13200).

Relevance starts at the explained output: ``R = onehot(target) * f(x)``, so conservation reads
``sum_i R_i = f_target(x)``; ``extras["conservation"]`` reports both sides per sample (and the relevance
entering every explained layer with ``per_layer=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ...core.attribution import Attribution
from ...core.errors import ModelError, ParameterError
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores
from ..base import Method
from ..registry import register
from .canonizers import Canonizer, canonized
from .composites import COMPOSITE_NAMES, Composite, make_composite, uniform
from .guard import Ledger, check_mode, describe, locate, report, verdict
from .ops import RelevanceOps
from .rules import AlphaBeta, Epsilon, GeneralizedGamma, Pass, ZPlus, attached

LRP_DEFAULTS: dict[str, Any] = {
    "rules": None, "canonize": True, "per_layer": False, "low": None, "high": None, "conservation": "warn",
}


def input_bounds(
    inputs: torch.Tensor, classifier: Any, low: Any = None, high: Any = None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The z^B bounds: user-given, else the normalised images of pixel values 0 and 1 of the adapter."""
    if low is not None or high is not None:
        if low is None or high is None:
            raise ParameterError("pass both low= and high= (the input bounds of the z^B rule), or neither")
        as_t = lambda v: torch.as_tensor(v, dtype=inputs.dtype, device=inputs.device)
        return as_t(low), as_t(high)
    if classifier is None or inputs.dim() != 4:
        return None
    c = inputs.shape[1]
    mean = torch.tensor(classifier.mean or (0.0,) * c, dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1)
    std = torch.tensor(classifier.std or (1.0,) * c, dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1)
    return (0 - mean) / std, (1 - mean) / std


def propagate(
    model: nn.Module,
    inputs: torch.Tensor,
    target: TargetLike,
    composite: Composite,
    *,
    canonize: bool | Sequence[Canonizer] = True,
    per_layer: bool = False,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    conservation: str = "warn",
) -> Attribution:
    """Relevance of ``inputs`` for ``target`` under ``composite``: one forward, one backward, and the
    conservation check of :mod:`.guard` (``conservation``: ``"warn"``, ``"raise"`` or ``"off"``)."""
    if not isinstance(model, nn.Module):
        raise ModelError("LRP needs a torch.nn.Module (it attaches rules to the model's layers)")
    mode = check_mode(conservation)
    ledger = Ledger(per_layer)
    recorder = ledger.record if mode != "off" or per_layer else None
    with canonized(model, canonize):
        assignment, unsupported = composite.assign(model, bounds=bounds)
        with attached(model, assignment, unsupported=unsupported, record=recorder):

            def run(record: Callable | None = recorder) -> tuple[torch.Tensor, ...]:
                x = inputs.detach().requires_grad_(True)
                with torch.enable_grad(), RelevanceOps(composite.stabilizer, record):
                    scores = forward_scores(model, x)
                resolved = resolve_target(target, scores)
                if not scores.requires_grad:
                    raise ModelError("the model's output does not depend differentiably on its input")
                index = resolved.view(-1, 1)
                start = torch.zeros_like(scores).scatter_(1, index, scores.detach().gather(1, index))
                return x, scores, start, resolved

            try:
                x, scores, start, resolved = run()
                (relevance,) = torch.autograd.grad(scores, x, start)
            except RuntimeError as exc:
                if "inplace operation" in str(exc):
                    raise ModelError(
                        "the model changes a tensor in place that LRP needs later (e.g. `x.relu_()` on a saved "
                        "tensor), which LRP cannot follow; write the model without that in-place operation"
                    ) from exc
                raise
            check = verdict(start, relevance, ledger) if mode != "off" else {"conserved": None}
            if mode != "off" and not check["conserved"]:
                where = locate(model, lambda: run(None)[:3], ledger.scale)
                check["first_violation"] = where
                report(mode, _lrp_message(check, where))
    selected = gather_scores(scores.detach(), resolved)
    conservation_extras: dict[str, Any] = {
        "relevance_sum": relevance.flatten(1).sum(1), "output": selected, "check": check,
    }
    if per_layer:
        passing = {name for name, (_m, rule) in assignment.items() if isinstance(rule, Pass)}
        ordered = dict(reversed(list(ledger.layers.items())))  # input side first
        conservation_extras["layers"] = {k: v for k, v in ordered.items() if k.split("[")[0] not in passing}
    return Attribution(
        values=relevance.detach(), method="", target=resolved, scores=selected,
        extras={"conservation": conservation_extras, "composite": composite.name,
                "rules": {name: repr(rule) for name, (_m, rule) in assignment.items()}},
    )


def _lrp_message(check: dict[str, Any], where: dict[str, Any] | None) -> str:
    return (
        f"LRP relevance is not conserved: the input relevance sums to {check['input_total']:.6g}, but the "
        f"explained score minus what the rules let biases and stabilisers absorb is {check['expected']:.6g} "
        f"(residual {check['residual']:.3g}, tolerance {check['tolerance']:.3g}). {describe(where).capitalize()}. "
        "Its gradient is not a relevance rule: give that module a rule with rules={name: rule} (e.g. 'epsilon' "
        "for a linear map, 'pass' for an element-wise one), or register a canonizer that rewrites its block "
        "(docs/relevance.md). Pass conservation='off' to silence this check, 'raise' to make it an error."
    )


class _LRP(Method):
    family = "relevance"
    reference = "Bach et al. 2015, PLoS ONE 10(7):e0130140"
    extra_defaults: ClassVar[dict[str, Any]] = {}

    def composite(self, params: dict[str, Any]) -> Composite:
        raise NotImplementedError

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        composite = self.composite(params)
        if params["rules"] is not None:
            if not isinstance(params["rules"], Mapping):
                raise ParameterError("rules must be a dict {dotted layer name or layer type: rule}")
            composite = composite.extended(params["rules"])
        bounds = input_bounds(inputs, self.classifier, params["low"], params["high"])
        result = propagate(
            self.model, inputs, target, composite, canonize=params["canonize"],
            per_layer=bool(params["per_layer"]), bounds=bounds, conservation=params["conservation"],
        )
        progress.update(1, 1, self.name)
        return result


@register
class LRPEpsilon(_LRP):
    """LRP-epsilon on every conv/linear layer (Bach et al. 2015); epsilon -> 0 is LRP-0."""

    name = "lrp_epsilon"
    defaults: ClassVar[dict[str, Any]] = {"epsilon": 1e-6, **LRP_DEFAULTS}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        if not float(params["epsilon"]) >= 0:
            raise ParameterError(f"epsilon must be >= 0; got {params['epsilon']}")

    def composite(self, params: dict[str, Any]) -> Composite:
        # epsilon = 0 is LRP-0 throughout: pooling layers and intercepted operations divide without a
        # stabiliser too (0 where z = 0), so that on ReLU networks it equals gradient x input exactly
        epsilon = float(params["epsilon"])
        return uniform(Epsilon(epsilon), "epsilon", 1e-6 if epsilon else 0.0)


@register
class LRPGamma(_LRP):
    """Generalized gamma rule on every conv/linear layer, seed's parameter gamma in [0, 1]:
    ``R_i = sum_j a_i (w_ij+ + gamma w_ij-) / sum_i a_i (w_ij+ + gamma w_ij-) R_j``. gamma = 1 is LRP-0
    (gradient x input on bias-free ReLU nets), gamma = 0 is alpha1beta0; zennit's ``Gamma(g)`` is
    ``gamma = 1 / (1 + g)`` (default 0.8 = zennit's 0.25). Montavon et al. 2019."""

    name = "lrp_gamma"
    reference = "Montavon et al. 2019, LRP: An Overview (LNCS 11700)"
    defaults: ClassVar[dict[str, Any]] = {"gamma": 0.8, "stabilizer": 1e-6, **LRP_DEFAULTS}
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {"gamma": (0.0, 1.0, 0.05)}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        GeneralizedGamma.seed(params["gamma"])

    def composite(self, params: dict[str, Any]) -> Composite:
        return uniform(GeneralizedGamma.seed(params["gamma"], params["stabilizer"]), "gamma", params["stabilizer"])


@register
class LRPAlphaBeta(_LRP):
    """LRP-alpha-beta on every conv/linear layer, alpha - beta = 1 (Bach et al. 2015)."""

    name = "lrp_alpha_beta"
    defaults: ClassVar[dict[str, Any]] = {"alpha": 2.0, "beta": 1.0, "stabilizer": 1e-6, **LRP_DEFAULTS}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        AlphaBeta(params["alpha"], params["beta"])

    def composite(self, params: dict[str, Any]) -> Composite:
        return uniform(
            AlphaBeta(params["alpha"], params["beta"], params["stabilizer"]), "alpha_beta", params["stabilizer"]
        )


@register
class LRPZPlus(_LRP):
    """z+ (deep Taylor, Montavon et al. 2017, arXiv:1512.02479) on every conv/linear layer."""

    name = "lrp_zplus"
    reference = "Montavon et al. 2017, arXiv:1512.02479"
    defaults: ClassVar[dict[str, Any]] = {"stabilizer": 1e-6, **LRP_DEFAULTS}

    def composite(self, params: dict[str, Any]) -> Composite:
        return uniform(ZPlus(params["stabilizer"]), "zplus", params["stabilizer"])


@register
class LRPComposite(_LRP):
    """A composite of rules: a name (EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1, EpsilonPlus;
    zennit's definitions and defaults, ``gamma`` in zennit's parameterisation) or a mapping
    ``{dotted name or layer type: rule}`` (names win). Kohlbrenner et al. 2020, arXiv:1910.09840."""

    name = "lrp_composite"
    reference = "Kohlbrenner et al. 2020, arXiv:1910.09840"
    defaults: ClassVar[dict[str, Any]] = {
        "composite": "EpsilonPlusFlat", "epsilon": 1e-6, "gamma": 0.25, "stabilizer": 1e-6, **LRP_DEFAULTS,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        spec = params["composite"]
        if not isinstance(spec, (str, Mapping, Composite)):
            raise ParameterError(
                f"composite must be one of {', '.join(COMPOSITE_NAMES)}, a dict {{name or type: rule}} or a "
                f"Composite; got {type(spec).__name__}"
            )

    def composite(self, params: dict[str, Any]) -> Composite:
        return make_composite(
            params["composite"], epsilon=params["epsilon"], gamma=params["gamma"],
            stabilizer=params["stabilizer"],
        )
