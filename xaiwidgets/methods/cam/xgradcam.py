"""XGrad-CAM: Fu et al. 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of
CNNs", BMVC, arXiv:2008.02312.

w_k = sum_ij (A_k[i, j] / sum_ab A_k[a, b]) dS/dA_k[i, j]   (eq. 8: activation-weighted gradients)
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext


@register
class XGradCAM(CAMBase):
    """Channel weights = gradients averaged with the normalised activations as weights."""

    name = "xgradcam"
    reference = "Fu et al. 2020, arXiv:2008.02312"

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        total = acts.sum(dim=(2, 3), keepdim=True)
        return (grads * acts / (total + 1e-7)).sum(dim=(2, 3))
