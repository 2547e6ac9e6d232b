"""Grad-CAM: Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV, arXiv:1610.02391.

alpha_k = 1/Z sum_ij dS/dA_k[i, j]   (eq. 1: global-average-pooled gradients)
L = ReLU(sum_k alpha_k A_k)           (eq. 2)
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext


@register
class GradCAM(CAMBase):
    """Channel weights = spatial mean of the target score's gradient at the layer."""

    name = "gradcam"
    reference = "Selvaraju et al. 2017, arXiv:1610.02391"

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        return grads.mean(dim=(2, 3))
