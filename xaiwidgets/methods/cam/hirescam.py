"""HiResCAM: Draelos & Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations of
convolutional neural networks", arXiv:2011.08891.

L[i, j] = ReLU(sum_k dS/dA_k[i, j] * A_k[i, j])   (element-wise, no spatial averaging of gradients)
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext, principal_projection


@register
class HiResCAM(CAMBase):
    """Element-wise gradient x activation, summed over channels."""

    name = "hirescam"
    reference = "Draelos & Carin 2020, arXiv:2011.08891"

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        product = grads * acts
        return principal_projection(product) if ctx.params["eigen_smooth"] else product.sum(1)
