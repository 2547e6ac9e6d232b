"""Feature visualisation: activation maximisation, top activating patches, activation grids, network
dissection and concept activation vectors (TCAV). Uses core only; results feed the FeatureGallery widget.
"""

from . import objectives, param, regularizers, transforms
from .activations import activation_grid, activations
from .dissect import Dissection, dissect
from .objectives import (
    Objective,
    channel,
    channel_objectives,
    class_logit,
    direction,
    diversity,
    layer,
    neuron,
)
from .optimize import FeatureVis, maximize
from .param import ImageParam, fft_image, image_param, pixel_image
from .patches import TopPatches, receptive_field, top_patches
from .tcav import TCAVResult, tcav

__all__ = [
    "Dissection", "FeatureVis", "ImageParam", "Objective", "TCAVResult", "TopPatches", "activation_grid",
    "activations", "channel", "channel_objectives", "class_logit", "direction", "dissect", "diversity",
    "fft_image", "image_param", "layer", "maximize", "neuron", "objectives", "param", "pixel_image",
    "receptive_field", "regularizers", "tcav", "top_patches", "transforms",
]
