"""Offline demo assets: a real ImageNet classifier, sample photos, and a small synthetic-shapes CNN."""

from .imagenet import efficientnet_lite0, imagenet_classifier, imagenet_labels
from .images import SAMPLE_IMAGES, load_image, sample_images
from .shapes import SHAPE_CLASSES, ShapesData, make_shapes
from .shapes_model import ShapesCNN, shapes_classifier
from .torchvision_models import WeightsUnavailableError, torchvision_model

__all__ = [
    "SAMPLE_IMAGES", "SHAPE_CLASSES", "ShapesCNN", "ShapesData", "WeightsUnavailableError", "efficientnet_lite0",
    "imagenet_classifier", "imagenet_labels", "load_image", "make_shapes", "sample_images", "shapes_classifier",
    "torchvision_model",
]
