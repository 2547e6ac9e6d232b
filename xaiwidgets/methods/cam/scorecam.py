"""Score-CAM: Wang et al. 2020, "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR Workshops, arXiv:1910.01279.

H_k = s(Up(A_k)), s = min-max normalisation to [0, 1]      (eq. 4-5: each channel as a soft mask)
C_k = f_c(X o H_k)                                          (eq. 5; the baseline cancels in the softmax)
w = softmax_k(C_k);  L = ReLU(sum_k w_k A_k)               (eq. 6-7)

Masked inputs are batched across channels *and* images (``batch_size`` per forward; ``None``, the default,
lets the chunk planner measure the fastest size: on CPU large batches spill the cache, e.g. EfficientNet-Lite0
at 224x224 runs ~1.9x slower per row at 64 than at 8). Channels that are
constant over the grid give an all-zero mask, hence the same score f_c(0): it is computed once and shared
(exact; pytorch-grad-cam evaluates each). The masks are upsampled bilinearly with ``align_corners=True``
as pytorch-grad-cam's ``UpsamplingBilinear2d`` (with ``False`` the maps correlate only ~0.98 with the
peer's on EfficientNet's 14x14 layers); ``values`` still use ``align_corners=False``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...core.batching import ChunkPlanner, Retry, row_bytes
from ...core.targets import scores_from_output
from ..registry import register
from .base import CAMBase, CAMContext


@register
class ScoreCAM(CAMBase):
    """Channel weights = softmax over channels of the target score of the input masked by each channel."""

    name = "scorecam"
    reference = "Wang et al. 2020, arXiv:1910.01279"
    uses_gradients = False
    defaults: ClassVar[dict[str, Any]] = {**CAMBase.defaults, "batch_size": None}

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        x, model, target = ctx.inputs, ctx.model, ctx.target
        n, c = acts.shape[:2]
        flat = acts.reshape(n, c, -1)
        constant = flat.amax(2) == flat.amin(2)
        scores = torch.empty(n, c, dtype=x.dtype, device=x.device)
        rows = (~constant).nonzero()  # (R, 2): (image, channel)
        total = int(rows.shape[0])
        with torch.no_grad():
            if bool(constant.any()):
                zero = scores_from_output(model(torch.zeros_like(x[:1])), 1)[0]
                scores[constant] = zero[target].to(x.dtype).unsqueeze(1).expand(n, c)[constant]
            planner = ChunkPlanner(row_bytes(x), x.device, ctx.params["batch_size"])
            start = 0
            while start < total:
                size = planner.next(total - start)
                bi, ki = rows[start:start + size, 0], rows[start:start + size, 1]
                try:
                    out = planner.run(size, lambda n_rows, bi=bi, ki=ki: self._masked_scores(x, acts, bi, ki, model))
                except Retry:
                    continue
                scores[bi, ki] = out.gather(1, target[bi].unsqueeze(1)).squeeze(1).to(x.dtype)
                start += size
                ctx.progress.update(start, total, "scorecam masks")
        return torch.softmax(scores, dim=1)

    @staticmethod
    def _masked_scores(
        x: torch.Tensor, acts: torch.Tensor, bi: torch.Tensor, ki: torch.Tensor, model: torch.nn.Module
    ) -> torch.Tensor:
        """Scores ``(R, C)`` of images ``bi`` masked by their min-max normalised, upsampled channels ``ki``."""
        masks = F.interpolate(acts[bi, ki].unsqueeze(1), tuple(x.shape[-2:]), mode="bilinear", align_corners=True)
        lo = masks.amin(dim=(2, 3), keepdim=True)
        hi = masks.amax(dim=(2, 3), keepdim=True)
        masks = (masks - lo) / (hi - lo + 1e-8)
        return scores_from_output(model(x[bi] * masks), int(bi.shape[0]))
