"""Attribution methods, one module per family, all reachable by canonical name.

``xw.methods.available()`` lists them; ``xw.methods.get_method(name)`` returns the class;
``xw.attribute(model, inputs, method=name, ...)`` runs one.
"""

# importing a module registers its methods
from . import (  # noqa: F401
    anchors,
    cam,
    expected_gradients,
    gradients,
    guided,
    guided_gradcam,
    integrated_gradients,
    layerwise,
    optimisation,
    perturbation,
    relevance,
    smoothgrad,
    transformers,
)
from .anchors import Anchors, anchor_precision, masked_lm_perturber
from .base import Method
from .cam import spatial_layers
from .expected_gradients import ExpectedGradients
from .gradients import Gradient, InputXGradient, Saliency
from .guided import Deconvnet, GuidedBackprop
from .guided_gradcam import GuidedGradCAM
from .integrated_gradients import IntegratedGradients
from .layerwise import LayerwiseInputXGradient
from .registry import available, get_method, register
from .smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from .transformers import AttentionRollout, TransformerRelevance

__all__ = [
    "Anchors",
    "AttentionRollout",
    "Deconvnet",
    "ExpectedGradients",
    "Gradient",
    "GuidedBackprop",
    "GuidedGradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "LayerwiseInputXGradient",
    "Method",
    "Saliency",
    "SmoothGrad",
    "SmoothGradSquared",
    "TransformerRelevance",
    "VarGrad",
    "anchor_precision",
    "available",
    "get_method",
    "masked_lm_perturber",
    "register",
    "spatial_layers",
]
