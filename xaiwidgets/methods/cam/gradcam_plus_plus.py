"""Grad-CAM++: Chattopadhay et al. 2018, "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
Networks", WACV, arXiv:1710.11063.

With an exponential head, higher derivatives are powers of the gradient g = dS/dA (eq. 19):
alpha_k[i, j] = g^2 / (2 g^2 + sum_ab A_k[a, b] g^3)   (0 where g = 0)
w_k = sum_ij alpha_k[i, j] ReLU(g[i, j])                  (eq. 7 / 10)
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext


@register
class GradCAMPlusPlus(CAMBase):
    """Channel weights from positive gradients weighted by the closed-form alphas of eq. 19."""

    name = "gradcam_plus_plus"
    reference = "Chattopadhay et al. 2018, arXiv:1710.11063"

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        g2 = grads * grads
        g3 = g2 * grads
        total = acts.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + total * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp_min(0) * alpha).sum(dim=(2, 3))
