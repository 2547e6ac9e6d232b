"""A small CNN for the synthetic shapes (:mod:`xaiwidgets.demo.shapes`), with bundled trained weights.

The architecture ends with a spatial conv block (``last_conv``), global average pooling and one linear
layer, so the classic CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization",
arXiv:1512.04150) applies exactly, and ``find_last_spatial_layer`` picks ``last_conv``. Trained by
``python -m xaiwidgets.demo.train_shapes``.
"""

from __future__ import annotations

from collections import OrderedDict
from importlib import resources
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..core.adapters import ImageClassifier
from .shapes import SHAPE_CLASSES

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: Normalisation the weights were trained with: ``(x - 0.5) / 0.5`` for ``x`` in [0, 1].
SHAPES_MEAN = (0.5, 0.5, 0.5)
SHAPES_STD = (0.5, 0.5, 0.5)
SHAPES_INPUT_SIZE = 64
#: The layer the CAM family should explain (also what ``find_last_spatial_layer`` returns).
SHAPES_CAM_LAYER = "last_conv"
WEIGHTS_FILE = "shapes_cnn.pt"


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(c_out),
            relu=nn.ReLU(),
        )
    )


class ShapesCNN(nn.Module):
    """Conv-BN-ReLU blocks (64 → 32 → 16 → 8 px), a last 8x8 conv block, global average pooling, linear.

    ``last_conv`` outputs the ``(N, width, 8, 8)`` maps that ``gap`` averages and ``fc`` weighs, so
    ``CAM_c = sum_k fc.weight[c, k] * last_conv(x)[k]``.
    """

    def __init__(self, n_classes: int = len(SHAPE_CLASSES), width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            OrderedDict(
                block1=_block(3, w // 4),
                pool1=nn.MaxPool2d(2),
                block2=_block(w // 4, w // 2),
                pool2=nn.MaxPool2d(2),
                block3=_block(w // 2, w),
                pool3=nn.MaxPool2d(2),
            )
        )
        self.last_conv = _block(w, w)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.gap(self.last_conv(self.features(x))).flatten(1))


def weights_path() -> Traversable:
    """Where the bundled weights live inside the installed package."""
    return resources.files("xaiwidgets.demo") / "weights" / WEIGHTS_FILE


def load_shapes_cnn(device: str | torch.device | None = None) -> ShapesCNN:
    """The trained :class:`ShapesCNN` (eval mode, float32) from the bundled weights; nothing is downloaded."""
    resource = weights_path()
    if not resource.is_file():
        raise FileNotFoundError(
            f"the shapes CNN weights are missing from the package ({resource}); reinstall xaiwidgets or "
            "train them with: python -m xaiwidgets.demo.train_shapes"
        )
    with resources.as_file(resource) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model = ShapesCNN()
    model.load_state_dict(state)
    model.eval()
    if device is not None:
        model.to(device)
    return model


def shapes_classifier(device: str | torch.device | None = None) -> ImageClassifier:
    """The trained shapes CNN as an :class:`ImageClassifier` (64x64 inputs, mean = std = 0.5).

    ``clf.preprocess(make_shapes(8).images)`` gives the model's inputs; labels are the class names.
    """
    return ImageClassifier(
        load_shapes_cnn(device), labels=SHAPE_CLASSES, mean=SHAPES_MEAN, std=SHAPES_STD,
        input_size=SHAPES_INPUT_SIZE, name="shapes-cnn",
    )
