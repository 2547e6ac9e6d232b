"""Feature visualisation: activation maximisation, top activating patches, activation grids, network
dissection, concept activation vectors (TCAV) and automatic concept discovery (ACE). Uses core only;
results feed the FeatureGallery widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from . import objectives, param, regularizers, transforms
from .ace import ACEResult, Concept, ace
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
from .patches import TopPatches, receptive_field, top_patches, top_patches_per_channel
from .tcav import TCAVResult, tcav

if TYPE_CHECKING:  # pragma: no cover
    from ..widgets.gallery import FeatureGallery

__all__ = [
    "ACEResult", "Concept", "Dissection", "FeatureVis", "ImageParam", "Objective", "TCAVResult", "TopPatches", "ace",
    "activation_grid", "activations", "channel", "channel_objectives", "class_logit", "direction", "dissect",
    "diversity", "fft_image", "gallery", "image_param", "layer", "maximize", "neuron", "objectives", "param",
    "pixel_image", "receptive_field", "regularizers", "tcav", "top_patches", "top_patches_per_channel", "transforms",
]


def gallery(
    model: Any, layer: str | torch.nn.Module, channels: Sequence[int] | None = None, images: Any = None, **kwargs: Any
) -> FeatureGallery:
    """The :class:`~xaiwidgets.widgets.FeatureGallery` of ``layer``'s ``channels``, computed in the kernel.

    A shortcut for :func:`xaiwidgets.widgets.gallery.feature_gallery` (see it for the parameters); the
    widget layer is imported on call, so this package stays free of widget code.
    """
    from ..widgets.gallery import feature_gallery

    return feature_gallery(model, layer, channels=channels, images=images, **kwargs)
