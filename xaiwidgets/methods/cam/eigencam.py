"""Eigen-CAM: Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map using Principal Components",
IJCNN, arXiv:2008.00299.

``eigencam``:     L = A_c v_1, the centred activations (h*w rows, C columns) projected on their first
                  right singular vector (class-agnostic: no gradients, the target only sets ``scores``).
``eigengradcam``: the same projection of dS/dA * A (class-specific; pytorch-grad-cam's EigenGradCAM).
Orientation (the SVD's sign is arbitrary; pytorch-grad-cam leaves it so): Eigen-CAM's map is positive
where the layer responds most, i.e. it correlates positively with the length ||A_p|| of the activation
vector at each position. The rule does not depend on the sign or offset of any channel, so it holds on
pre-activation layers too (a convolution before batch norm, whose channels the norm may flip), where the
channel sum does not (docs/differences.md). Eigen-Grad-CAM keeps the channel-sum rule: the channel sum of
dS/dA * A is the signed evidence for the target.
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
        return orient_by_response(principal_projection(acts), acts)


def orient_by_response(projection: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """``(N, h, w)`` projections flipped per image to correlate positively with ``||A_p||`` (the L2 norm of
    the ``(N, C, h, w)`` activations over channels at each position); a zero correlation keeps the sign."""
    norm = torch.linalg.vector_norm(torch.nan_to_num(acts.float()), dim=1)  # (N, h, w)
    p = projection.float()
    agreement = ((p - p.mean((1, 2), keepdim=True)) * (norm - norm.mean((1, 2), keepdim=True))).sum((1, 2))
    sign = torch.where(agreement < 0, -1.0, 1.0).to(device=projection.device, dtype=projection.dtype)
    return projection * sign[:, None, None]


@register
class EigenGradCAM(CAMBase):
    """First principal component of gradient x activation."""

    name = "eigengradcam"
    reference = "Muhammad & Yeasin 2020, arXiv:2008.00299 (with gradients, as pytorch-grad-cam)"

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        assert grads is not None
        return principal_projection(grads * acts)
