"""LayerCAM: Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
IEEE Transactions on Image Processing 30:5875-5888, doi:10.1109/TIP.2021.3089943.

L[i, j] = ReLU(sum_k ReLU(dS/dA_k[i, j]) * A_k[i, j])   (eq. 5-6: positive gradients as spatial weights)
"""

from __future__ import annotations

import torch

from ..registry import register
from .base import CAMBase, CAMContext, principal_projection


@register
class LayerCAM(CAMBase):
    """Element-wise positive gradient x activation, summed over channels."""

    name = "layercam"
    reference = "Jiang et al. 2021, IEEE TIP 30:5875, doi:10.1109/TIP.2021.3089943"

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        product = grads.clamp_min(0) * acts
        return principal_projection(product) if ctx.params["eigen_smooth"] else product.sum(1)
