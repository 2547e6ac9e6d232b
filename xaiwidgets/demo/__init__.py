"""Offline demo assets: a real ImageNet classifier, sample photos, and a small synthetic-shapes CNN."""

from .imagenet import efficientnet_lite0, imagenet_classifier, imagenet_labels
from .images import SAMPLE_IMAGES, load_image, sample_images
from .shapes import SHAPE_CLASSES, ShapesData, make_shapes
from .shapes_model import ShapesCNN, shapes_classifier
from .tabular import breast_cancer_classifier, breast_cancer_split
from .text import sentiment_classifier
from .texts import SAMPLE_TEXTS
from .torchvision_models import WeightsUnavailableError, torchvision_model

__all__ = [
    "SAMPLE_IMAGES",
    "SAMPLE_TEXTS",
    "SHAPE_CLASSES",
    "ShapesCNN",
    "ShapesData",
    "WeightsUnavailableError",
    "breast_cancer_classifier",
    "breast_cancer_split",
    "efficientnet_lite0",
    "imagenet_classifier",
    "imagenet_labels",
    "load_image",
    "make_shapes",
    "sample_images",
    "sentiment_classifier",
    "shapes_classifier",
    "torchvision_model",
]
