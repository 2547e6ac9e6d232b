"""The gradient family: methods built on the gradient of the target score with respect to the input
(importing this package registers them).

- :mod:`.gradients`: gradient, saliency, input x gradient;
- :mod:`.integrated_gradients` (with its path quadrature, :mod:`.quadrature`) and :mod:`.expected_gradients`;
- :mod:`.smoothgrad`: SmoothGrad, SmoothGrad-squared, VarGrad;
- :mod:`.guided`: guided backpropagation and deconvnet; :mod:`.guided_gradcam`;
- :mod:`.layerwise`: layer-wise activation x gradient.
"""

from . import (  # noqa: F401  (registers the methods)
    expected_gradients,
    gradients,
    guided,
    guided_gradcam,
    integrated_gradients,
    layerwise,
    quadrature,
    smoothgrad,
)
from .expected_gradients import ExpectedGradients
from .gradients import Gradient, InputXGradient, Saliency
from .guided import Deconvnet, GuidedBackprop
from .guided_gradcam import GuidedGradCAM
from .integrated_gradients import IntegratedGradients
from .layerwise import LayerwiseInputXGradient
from .smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad

__all__ = [
    "Deconvnet",
    "ExpectedGradients",
    "Gradient",
    "GuidedBackprop",
    "GuidedGradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "LayerwiseInputXGradient",
    "Saliency",
    "SmoothGrad",
    "SmoothGradSquared",
    "VarGrad",
]
