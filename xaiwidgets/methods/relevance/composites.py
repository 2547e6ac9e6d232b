"""Composites: which LRP rule explains which layer.

A :class:`Composite` maps layers to rules by dotted name (first), by "first linear layer" (for the input
rule), then by type. Element-wise activations get the pass rule, average pooling and canonizer sums the
norm rule, layer/group norms pass; max pooling, flatten, dropout, padding and identity keep their gradient
(as in zennit). Batch norms are transparent: merged, they are the identity; not merged (DenseNet's
``norm1``, a RepVGG identity branch), ``F.batch_norm`` with running statistics is explained as the affine
map it is, by the epsilon rule (:mod:`.ops`; zennit passes relevance through them). Any other leaf is
transparent too: the operations it performs are intercepted and treated by what they compute, and the
conservation guard (:mod:`.guard`) names the module where relevance is not conserved (captum's LRP fails
silently or cryptically on unknown layers: its issues #712, #792, #1232).

Named composites follow zennit 0.5.1 (Anders et al. 2021, arXiv:2106.13200) and its default parameters:
``EpsilonPlusFlat``, ``EpsilonGammaBox``, ``EpsilonAlpha2Beta1``, ``EpsilonPlus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ...core.errors import ParameterError
from ...core.layers import get_layer
from .canonizers import Sum
from .rules import AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, Rule, ZBox, ZPlus, as_rule

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
LINEAR_TYPES = (*CONV_TYPES, nn.Linear)
ACTIVATION_TYPES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.LogSigmoid, nn.Softsign,
    nn.Tanhshrink, nn.Hardshrink, nn.Softshrink, nn.Threshold,
)
#: normalisations that pass relevance unchanged (the identity rule of AttnLRP, Achtibat et al. 2024)
NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, *(
    [nn.RMSNorm] if hasattr(nn, "RMSNorm") else []))
AVGPOOL_TYPES = (
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)
#: layers explained by their plain gradient (routing or reshaping relevance, or the identity in eval)
GRADIENT_TYPES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.Identity, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
)
try:  # torchvision's EfficientNet / ConvNeXt blocks: the identity in eval mode
    from torchvision.ops import StochasticDepth

    GRADIENT_TYPES = (*GRADIENT_TYPES, StochasticDepth)
except ImportError:  # pragma: no cover - torchvision is a dependency
    pass

RuleLike = Rule | str | None
TypeMap = Sequence[tuple[type | tuple[type, ...], RuleLike]]
_GRADIENT = object()  # marks "no rule, plain gradient" inside lookups


class Composite:
    """Layer -> rule assignment.

    ``layer_map``: ``[(types, rule)]`` tried in order; ``first_map``: the same for the first matching layer
    in definition order (the input layer rule); ``name_map``: ``{dotted name: rule}``, which wins over
    everything. A rule is a :class:`~.rules.Rule`, a rule name (``RULES``) or ``None`` (plain gradient).
    """

    def __init__(
        self,
        layer_map: TypeMap = (),
        first_map: TypeMap = (),
        name_map: Mapping[str, RuleLike] | None = None,
        name: str = "custom",
        stabilizer: float = 1e-6,
    ) -> None:
        self.stabilizer = float(stabilizer)
        self.layer_map = [(types, _resolve(rule)) for types, rule in layer_map]
        self.first_map = [(types, _resolve(rule)) for types, rule in first_map]
        self.name_map = {key: _resolve(rule) for key, rule in (name_map or {}).items()}
        self.name = name

    def __repr__(self) -> str:
        return f"Composite({self.name})"

    def extended(self, rules: Mapping[Any, RuleLike] | None) -> Composite:
        """A copy with ``rules`` (``{dotted name or layer type: rule}``) taking precedence."""
        if not rules:
            return self
        names, layer_map = split_mapping(rules)
        out = Composite(name=self.name, stabilizer=self.stabilizer)
        out.layer_map = [(types, _resolve(rule)) for types, rule in layer_map] + self.layer_map
        out.first_map = list(self.first_map)
        out.name_map = {**self.name_map, **{key: _resolve(rule) for key, rule in names.items()}}
        return out

    def assign(
        self,
        model: nn.Module,
        *,
        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[dict[str, tuple[nn.Module, Rule]], dict[str, tuple[nn.Module, str]]]:
        """``({name: (module, rule)}, {name: (module, error message)})`` for every layer of ``model``."""
        for key in self.name_map:
            get_layer(model, key)  # unknown names raise LayerError with close matches
        assignment: dict[str, tuple[nn.Module, Rule]] = {}
        unsupported: dict[str, tuple[nn.Module, str]] = {}
        state = {"first": False}

        def visit(prefix: str, module: nn.Module) -> None:
            for child_name, child in module.named_children():
                name = f"{prefix}.{child_name}" if prefix else child_name
                rule = self._lookup(name, child, state)
                if rule is _GRADIENT:
                    if any(True for _ in child.children()) and not isinstance(child, LINEAR_TYPES):
                        visit(name, child)
                    continue
                if rule is not None:
                    if isinstance(rule, ZBox) and (rule.low is None or rule.high is None):
                        if bounds is None:
                            raise ParameterError(
                                f"layer {name!r} gets the z^B (box) rule, which needs the input bounds: pass "
                                "low= and high= (the lowest and highest input values, e.g. the normalised "
                                "images of pixel values 0 and 1), or use an ImageClassifier with mean/std"
                            )
                        rule = rule.with_bounds(*bounds)
                    assignment[name] = (child, rule)
                    continue
                visit(name, child)

        visit("", model)
        return assignment, unsupported

    def _lookup(self, name: str, module: nn.Module, state: dict) -> Any:
        if name in self.name_map:
            rule = self.name_map[name]
            return _GRADIENT if rule is None else rule
        if not state["first"]:
            for types, rule in self.first_map:
                if isinstance(module, types):
                    state["first"] = True
                    return _GRADIENT if rule is None else rule
        for types, rule in self.layer_map:
            if isinstance(module, types):
                return _GRADIENT if rule is None else rule
        if isinstance(module, ACTIVATION_TYPES):
            return Pass()
        if isinstance(module, (Sum, *AVGPOOL_TYPES)):
            return Norm(self.stabilizer)
        if isinstance(module, NORM_TYPES):
            return Pass()
        if isinstance(module, GRADIENT_TYPES):
            return _GRADIENT
        if not any(True for _ in module.children()):
            # any other leaf is transparent: the operations it performs are treated by what they compute
            # (ops.py), and the conservation guard names it if relevance is not conserved there
            return _GRADIENT
        return None


def _resolve(rule: RuleLike) -> Rule | None:
    return as_rule(rule)


def _type_name(module: nn.Module) -> str:
    kind = type(module)
    return kind.__name__ if kind.__module__.startswith("torch.nn") else f"{kind.__module__}.{kind.__qualname__}"


def split_mapping(rules: Mapping[Any, RuleLike]) -> tuple[dict[str, RuleLike], list[tuple[type, RuleLike]]]:
    """Split a user mapping into ``{name: rule}`` and ``[(type, rule)]``; bad keys raise ParameterError."""
    if not isinstance(rules, Mapping):
        raise ParameterError(
            "rules must be a dict mapping dotted layer names or layer types to rules, e.g. "
            "{'features.0': 'zbox', torch.nn.Conv2d: 'zplus', torch.nn.Linear: 'epsilon'}"
        )
    names: dict[str, RuleLike] = {}
    layer_map: list[tuple[type, RuleLike]] = []
    for key, rule in rules.items():
        if isinstance(key, str):
            names[key] = rule
        elif isinstance(key, type) and issubclass(key, nn.Module):
            layer_map.append((key, rule))
        elif isinstance(key, tuple) and all(isinstance(k, type) and issubclass(k, nn.Module) for k in key):
            layer_map.append((key, rule))
        else:
            raise ParameterError(f"rules keys must be dotted layer names or nn.Module types; got {key!r}")
    return names, layer_map


# ----------------------------------------------------------------------------------------------------------
# named composites (zennit 0.5.1 definitions and defaults)
# ----------------------------------------------------------------------------------------------------------
def epsilon_plus_flat(epsilon: float = 1e-6, stabilizer: float = 1e-6, **_: Any) -> Composite:
    """Flat for the first linear layer, z+ for convolutions, epsilon for dense layers."""
    return Composite(
        [(CONV_TYPES, ZPlus(stabilizer)), (nn.Linear, Epsilon(epsilon))],
        first_map=[(LINEAR_TYPES, Flat(stabilizer))],
        name="EpsilonPlusFlat", stabilizer=stabilizer,
    )


def epsilon_gamma_box(
    epsilon: float = 1e-6, gamma: float = 0.25, stabilizer: float = 1e-6,
    low: Any = None, high: Any = None, **_: Any,
) -> Composite:
    """z^B for the first convolution, gamma (zennit's parameter) for convolutions, epsilon for dense."""
    return Composite(
        [(CONV_TYPES, Gamma(gamma, stabilizer)), (nn.Linear, Epsilon(epsilon))],
        first_map=[(CONV_TYPES, ZBox(low, high, stabilizer))],
        name="EpsilonGammaBox", stabilizer=stabilizer,
    )


def epsilon_alpha2_beta1(epsilon: float = 1e-6, stabilizer: float = 1e-6, **_: Any) -> Composite:
    """alpha2beta1 for convolutions, epsilon for dense layers."""
    return Composite(
        [(CONV_TYPES, AlphaBeta(2.0, 1.0, stabilizer)), (nn.Linear, Epsilon(epsilon))], name="EpsilonAlpha2Beta1",
        stabilizer=stabilizer,
    )


def epsilon_plus(epsilon: float = 1e-6, stabilizer: float = 1e-6, **_: Any) -> Composite:
    """z+ for convolutions, epsilon for dense layers."""
    return Composite([(CONV_TYPES, ZPlus(stabilizer)), (nn.Linear, Epsilon(epsilon))], name="EpsilonPlus",
                     stabilizer=stabilizer)


COMPOSITES = {
    "epsilonplusflat": epsilon_plus_flat,
    "epsilongammabox": epsilon_gamma_box,
    "epsilonalpha2beta1": epsilon_alpha2_beta1,
    "epsilonplus": epsilon_plus,
}
COMPOSITE_NAMES = ("EpsilonPlusFlat", "EpsilonGammaBox", "EpsilonAlpha2Beta1", "EpsilonPlus")


def uniform(rule: RuleLike, name: str, stabilizer: float = 1e-6) -> Composite:
    """One rule for every conv/linear layer (the ``lrp_epsilon``, ``lrp_gamma``, ... methods); ``stabilizer``
    for the norm rule of pooling layers and sums."""
    return Composite([(LINEAR_TYPES, rule)], name=name, stabilizer=stabilizer)


def make_composite(
    spec: str | Mapping[Any, RuleLike] | Composite, stabilizer: float = 1e-6, **params: Any
) -> Composite:
    """A composite from a name (``"EpsilonPlusFlat"``, ``"epsilon_gamma_box"``, ...), a user mapping
    ``{dotted name or layer type: rule}`` (names win over types), or a :class:`Composite`."""
    if isinstance(spec, Composite):
        return spec
    if isinstance(spec, str):
        key = spec.replace("_", "").replace("-", "").replace(" ", "").lower()
        if key not in COMPOSITES:
            raise ParameterError(
                f"unknown composite {spec!r}; choose one of {', '.join(COMPOSITE_NAMES)} or pass a dict "
                "{dotted name or layer type: rule}"
            )
        return COMPOSITES[key](stabilizer=stabilizer, **params)
    names, layer_map = split_mapping(spec)
    return Composite(layer_map, name_map=names, name="custom", stabilizer=stabilizer)
