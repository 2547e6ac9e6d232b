"""Offline demo assets: a real ImageNet classifier, sample photos, and a small synthetic-shapes CNN."""

from .imagenet import efficientnet_lite0, imagenet_classifier, imagenet_labels
from .images import SAMPLE_IMAGES, load_image, sample_images

__all__ = [
    "SAMPLE_IMAGES", "efficientnet_lite0", "imagenet_classifier", "imagenet_labels", "load_image",
    "sample_images",
]
