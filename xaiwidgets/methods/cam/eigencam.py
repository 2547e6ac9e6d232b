"""Eigen-CAM: Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal Components",
IJCNN, arXiv:2008.00299.

``eigencam``:     L = A_c v_1, the centred activations (h*w rows, C columns) projected on their first
                  right singular vector (class-agnostic: no gradients, the target only sets ``scores``).
``eigengradcam``: the same projection of dS/dA * A (class-specific; pytorch-grad-cam's EigenGradCAM).
The sign of v_1 is chosen so the map correlates positively with the channel sum.
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext, principal_projection


@register
class EigenCAM(CAMBase):
    """First principal component of the layer's activations."""

    name = "eigencam"
    reference = "Muhammad & Yeasin 2020, arXiv:2008.00299"
    uses_gradients = False

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        return principal_projection(acts)


@register
class EigenGradCAM(CAMBase):
    """First principal component of gradient x activation."""

    name = "eigengradcam"
    reference = "Muhammad & Yeasin 2020, arXiv:2008.00299 (with gradients, as pytorch-grad-cam)"

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        return principal_projection(grads * acts)
