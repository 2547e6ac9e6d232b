"""The CAM family: class activation maps of a layer (CNN feature maps or transformer tokens).

Importing this package registers ``cam``, ``gradcam``, ``gradcam_plus_plus``, ``xgradcam``, ``hirescam``,
``layercam``, ``scorecam``, ``ablationcam``, ``eigencam`` and ``eigengradcam``.
"""

from .ablationcam import AblationCAM
from .base import CAMBase
from .cam import CAM
from .eigencam import EigenCAM, EigenGradCAM
from .gradcam import GradCAM
from .gradcam_plus_plus import GradCAMPlusPlus
from .hirescam import HiResCAM
from .layercam import LayerCAM
from .layers_list import layer_choices, spatial_layers
from .scorecam import ScoreCAM
from .xgradcam import XGradCAM

__all__ = [
    "CAM", "AblationCAM", "CAMBase", "EigenCAM", "EigenGradCAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM",
    "LayerCAM", "ScoreCAM", "XGradCAM", "layer_choices", "spatial_layers",
]
