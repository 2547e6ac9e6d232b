"""What the dashboard's method picker and panels show about a method: one-line description, cost,
whether it applies to the model at hand (and why not), and its display defaults.

The registry (:mod:`xaiwidgets.methods.registry`) holds the maths' metadata; this module holds the words
and display choices of the browser, so they travel as plain JSON in ``available_methods``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..methods.base import Method

# name -> (one-line description, cost in model passes for one image)
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "gradient": ("signed gradient of the class score w.r.t. the pixels", "1 backward"),
    "saliency": ("gradient magnitude |d score / d pixel| (Simonyan 2014)", "1 backward"),
    "input_x_gradient": ("pixel value x gradient, signed", "1 backward"),
    "integrated_gradients": ("gradients integrated from a black baseline; sums to the score change",
                             "16 to 512 backwards (auto: until completeness holds)"),
    "expected_gradients": ("integrated gradients averaged over random baselines (GradientSHAP)",
                           "n_samples backwards"),
    "smoothgrad": ("gradient averaged over noisy copies of the image", "n_samples backwards"),
    "smoothgrad_squared": ("squared gradient averaged over noisy copies", "n_samples backwards"),
    "vargrad": ("variance of the gradient over noisy copies", "n_samples backwards"),
    "guided_backprop": ("gradient passing only positive signals through ReLUs", "1 backward"),
    "deconvnet": ("gradient with ReLUs applied to the backward signal", "1 backward"),
    "guided_gradcam": ("guided backprop masked by Grad-CAM: fine and class-specific", "2 backwards"),
    "layerwise_input_x_gradient": ("activation x gradient averaged over layers", "1 backward"),
    "cam": ("class activation map from the global-average-pooling head's weights", "1 forward"),
    "gradcam": ("layer activations weighted by their mean gradient (Selvaraju 2017)", "1 backward"),
    "gradcam_plus_plus": ("Grad-CAM with higher-order weights; better for several objects", "1 backward"),
    "xgradcam": ("Grad-CAM with activation-normalised gradient weights", "1 backward"),
    "hirescam": ("element-wise gradient x activation at the layer", "1 backward"),
    "layercam": ("element-wise positive gradient x activation at the layer", "1 backward"),
    "eigencam": ("first principal component of the layer's activations (class-agnostic)", "1 forward"),
    "eigengradcam": ("first principal component of gradient x activation", "1 backward"),
    "scorecam": ("channels weighted by the score of the image masked by each", "1 forward per channel"),
    "ablationcam": ("channels weighted by the score drop when each is zeroed", "1 forward per channel"),
    "lrp_epsilon": ("layer-wise relevance propagation, epsilon rule", "1 backward"),
    "lrp_gamma": ("LRP, gamma rule (favours positive contributions)", "1 backward"),
    "lrp_alpha_beta": ("LRP, alpha-beta rule (separate positive and negative relevance)", "1 backward"),
    "lrp_zplus": ("LRP, z+ rule (deep Taylor decomposition)", "1 backward"),
    "lrp_composite": ("LRP with a rule per layer type (e.g. EpsilonPlusFlat)", "1 backward"),
    "deeplift": ("DeepLIFT rescale rule against a baseline", "1 backward"),
    "deepshap": ("DeepLIFT averaged over a background set", "1 backward per background image"),
    "occlusion": ("score drop when a sliding window is greyed out", "1 forward per window position"),
    "rise": ("score-weighted average of random masks", "n_masks forwards (2000)"),
    "extremal_perturbation": ("smallest smooth mask that keeps the score", "n_steps backwards (300)"),
    "perceptual_ball": ("where a perturbation that flips the margin but keeps the layers' features acts",
                        "n_steps L-BFGS backwards (100), more rounds until the margin reaches v"),
    "masking_saliency": ("mask that keeps the class when shown and leaves only uncertainty when removed",
                         "n_steps backwards of 2 images (300); one forward with a trained masker"),
    "lime": ("weights of a linear surrogate over superpixels", "n_samples forwards (1000)"),
    "kernel_shap": ("Shapley values of superpixels from a weighted regression", "n_samples forwards (512)"),
    "shapley_sampling": ("Shapley values of superpixels from sampled orderings", "n_samples x features forwards"),
    "exact_shapley": ("exact Shapley values over at most 16 features", "2^features forwards"),
    "qii": ("influence of superpixels redrawn from a background (Shapley, Banzhaf, unary, ...)",
            "n_samples x features forwards, or every set when exact"),
    "anchors": ("a rule of features that keeps the prediction", "thousands of forwards"),
    "attention_rollout": ("attention matrices multiplied through the layers (ViT)", "1 forward"),
    "transformer_relevance": ("gradient-weighted attention relevance (ViT)", "1 backward"),
}

# What a map's values are, for the colour bar's label.
QUANTITIES: dict[str, str] = {
    "gradient": "d score / d pixel",
    "saliency": "|d score / d pixel|",
    "input_x_gradient": "pixel x gradient (score units)",
    "integrated_gradients": "IG (score units)",
    "expected_gradients": "attribution (score units)",
    "smoothgrad": "mean gradient",
    "smoothgrad_squared": "mean squared gradient",
    "vargrad": "gradient variance",
    "occlusion": "score drop",
    "rise": "mean masked score",
    "lime": "surrogate weight",
    "kernel_shap": "Shapley value (score units)",
    "shapley_sampling": "Shapley value (score units)",
    "exact_shapley": "Shapley value (score units)",
    "qii": "influence (units of the quantity)",
    "deeplift": "contribution (score units)",
    "deepshap": "contribution (score units)",
    "extremal_perturbation": "mask",
    "perceptual_ball": "|perturbation| (input units, blurred)",
    "masking_saliency": "mask",
}

# Display defaults by kind of map (docs/decisions.md, "Legible gradient maps"). Pixel-level maps are sparse
# and speckled: the top 2% saturate (as captum's visualize_image_attr), alpha grows with sqrt(|v|/clip)
# so mid values show, and a Gaussian blur of sigma = 0.7% of the map side (1.5 px at 224) is applied for
# display only. Coarse maps (CAMs, perturbation grids) are smooth already: linear alpha, clip 99.5.
PIXEL_DISPLAY: dict[str, Any] = {"clip_percentile": 98.0, "alpha": "sqrt", "smoothing": 0.007}
COARSE_DISPLAY: dict[str, Any] = {"clip_percentile": 99.5, "alpha": "linear", "smoothing": 0.0}
_COARSE_FAMILIES = {"cam", "perturbation", "transformer", "optimisation"}


def display_defaults(cls: type[Method]) -> dict[str, Any]:
    """The panel's display defaults when the shared controls are on "auto", plus the quantity label."""
    coarse = cls.family in _COARSE_FAMILIES and cls.name != "guided_gradcam"
    base = dict(COARSE_DISPLAY if coarse else PIXEL_DISPLAY)
    base["quantity"] = QUANTITIES.get(cls.name, "CAM (layer units)" if cls.family == "cam" else "relevance")
    return base


def _has_attention(model: Any, inputs: torch.Tensor | None) -> bool:
    """By behaviour: one forward on ``inputs`` records an attention. Without inputs, assume it may (the
    panel then reports what the method finds)."""
    from ..core.attention import computes_attention

    if not isinstance(model, nn.Module):
        return False
    if inputs is None:
        return True
    try:
        return computes_attention(model, inputs)
    except Exception:  # a model that fails here fails in every panel, which says why
        return True


def not_applicable(cls: type[Method], model: Any, params: dict[str, Any] | None = None,
                   inputs: torch.Tensor | None = None) -> str:
    """Why ``cls`` cannot explain an image of ``model`` (on ``inputs``, when given) with its defaults and
    ``params``; "" when it can."""
    params = params or {}
    if "image" not in cls.modalities:
        return "does not explain images"
    if cls.family == "transformer" and not _has_attention(model, inputs):
        return "needs attention layers (a vision transformer); this model has none"
    if cls.name == "exact_shapley" and params.get("segments") is None:
        return "2^M forwards: an image has more than 16 segments (use xw.attribute with coarse segments)"
    if cls.name == "cam" and isinstance(model, nn.Module):
        if not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)) for m in model.modules()):
            return "needs a global-average-pooling + linear head"
    if cls.name == "deepshap" and params.get("background") is None:
        return "needs a background set of images (use xw.attribute with background=...)"
    return ""


def has_frames(cls: type[Method]) -> bool:
    """Whether the method records scrubber frames (IG path steps, SmoothGrad samples)."""
    return "return_frames" in cls.defaults


def tunable_spec(cls: type[Method]) -> dict[str, dict[str, Any]]:
    """The method's ``tunable`` parameters as slider specs for the browser."""
    spec = {}
    for name, (lo, hi, step) in cls.tunable.items():
        integer = all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, step))
        default = cls.defaults.get(name)
        spec[name] = {"min": lo, "max": hi, "step": step, "integer": integer,
                      "default": default if isinstance(default, (int, float)) else None}
    return spec


def capabilities(cls: type[Method]) -> dict[str, Any]:
    """What the browser (and the dashboard) may do with a method, as flags of its method info: ``frames``
    (records scrubber frames: a "Frames" toggle), ``cam`` (a class activation map: the layer picker, filled
    before it runs) and ``tunable`` (slider specs)."""
    return {"frames": has_frames(cls), "cam": cls.family == "cam", "tunable": tunable_spec(cls)}


# Parameters the dashboard uses unless the user gives others: IG refines its grid until the completeness
# gap is under its tolerance instead of a fixed 50 steps (11.7% gap on the demo model).
DASHBOARD_PARAMS: dict[str, dict[str, Any]] = {"integrated_gradients": {"n_steps": "auto"}}


def method_info(cls: type[Method], model: Any, params: dict[str, Any] | None = None,
                inputs: torch.Tensor | None = None) -> dict[str, Any]:
    """One entry of ``available_methods`` (docs/widget-protocol.md): flags the browser needs."""
    description, cost = DESCRIPTIONS.get(cls.name, ((cls.__doc__ or "").strip().split("\n")[0], ""))
    return {
        "name": cls.name, "family": cls.family, **capabilities(cls), "description": description, "cost": cost,
        "unavailable": not_applicable(cls, model, params, inputs), "display": display_defaults(cls),
    }


def result_notes(result: Any) -> dict[str, Any]:
    """What a panel shows next to its map: IG's relative completeness gap |sum(IG) - (F(x) - F(x'))| /
    |F(x) - F(x')| against its tolerance (badge red above it), and the steps used."""
    extras = getattr(result, "extras", {}) or {}
    gap = extras.get("completeness_gap")
    if gap is None:
        return {}
    try:
        value = float(abs(gap.reshape(-1)[0])) if hasattr(gap, "reshape") else float(abs(gap))
    except (TypeError, ValueError, IndexError):
        return {}
    tolerance = float(result.params.get("tolerance", 0.01) or 0.01)
    notes: dict[str, Any] = {"completeness_gap": value, "tolerance": tolerance}
    if isinstance(extras.get("n_steps"), int):
        notes["n_steps"] = extras["n_steps"]
    return notes


_BLOCK_LEAVES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def block_layers(model: Any, spatial: list[str]) -> list[str]:
    """The layers of ``spatial`` a CAM usually explains: block outputs. A module qualifies when it is a
    top-level child or an element of an ``nn.Sequential`` / ``nn.ModuleList`` that is itself a stage (a
    top-level child or inside another sequence: not a block's ``downsample`` branch), and is
    itself a block (has children) or a convolution / pooling leaf; padding, activation and normalisation
    leaves (``_blocks.3.static_padding``, ``features.1`` as a ReLU) are left to the full list."""
    if not isinstance(model, nn.Module):
        return list(spatial)
    modules = dict(model.named_modules())
    keep = []
    for name in spatial:
        module = modules.get(name)
        if module is None:
            continue
        parent_name = name.rpartition(".")[0]
        parent = modules.get(parent_name) if parent_name else model
        grand_name = parent_name.rpartition(".")[0]
        grand = modules.get(grand_name) if grand_name else model
        stage = not grand_name or isinstance(grand, (nn.Sequential, nn.ModuleList))
        in_sequence = not parent_name or (isinstance(parent, (nn.Sequential, nn.ModuleList)) and stage)
        is_block = any(True for _ in module.children()) or isinstance(module, _BLOCK_LEAVES)
        if in_sequence and is_block:
            keep.append(name)
    return keep or list(spatial)
