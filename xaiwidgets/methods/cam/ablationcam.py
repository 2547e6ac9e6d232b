"""Ablation-CAM: Desai & Ramaswamy 2020, "Ablation-CAM: Visual Explanations for Deep Convolutional
Network via Gradient-free Localization", WACV, doi:10.1109/WACV45572.2020.9093360.

w_k = (y_c - y_c^k) / y_c   (eq. 3: relative drop of the target score when channel k is set to zero)
L = ReLU(sum_k w_k A_k)

Only the part of the network after the layer is re-run for the ablations where the model allows it:
the ablation forward receives the image repeated ``m`` times, a pre-hook hands the first module that sees
it a single copy, and the layer's hook expands its output to ``m`` rows with one channel zeroed per row;
tensors from before the layer broadcast (skip connections). One unablated row checks that this
reproduces the original score; otherwise (e.g. a forward that concatenates along the batch) every
ablation reruns the whole network, as pytorch-grad-cam does. Channels that are already all zero get
weight 0 without a forward (exact). Ablated values are 0, as in the paper (pytorch-grad-cam uses
``min - 1e7`` when the layer's minimum is not 0).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...core.batching import chunk_ranges
from ...core.errors import Cancelled
from ...core.state import Hooks
from ...core.targets import scores_from_output
from ..registry import register
from .base import CAMBase, CAMContext
from .grid import grid_index


def _ablated_scores(
    model: nn.Module, layer: nn.Module, image: torch.Tensor, positions: torch.Tensor, target: int,
    *, identity_row: bool, suffix_only: bool,
) -> torch.Tensor:
    """Target scores of ``image`` with, per row, the raw-output ``positions`` of the layer zeroed."""
    k = positions.shape[0]
    m = k + int(identity_row)
    xin = image.unsqueeze(0).expand(m, *image.shape)
    rows = torch.arange(k, device=image.device).unsqueeze(1)

    def ablate(_mod: nn.Module, _args: object, out: torch.Tensor) -> torch.Tensor:
        # positions index the output's logical (row-major) order, whatever its memory layout (channels_last
        # storage, a permuted view): zero them in a row-major copy, then hand on the output's own layout
        rep = out[:1].expand(m, *out.shape[1:]).clone(memory_format=torch.contiguous_format)
        rep.view(m, -1)[rows, positions] = 0
        if out.dim() == 4 and not out.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last):
            rep = rep.contiguous(memory_format=torch.channels_last)
        return rep

    def shrink(_mod: nn.Module, args: tuple) -> tuple | None:
        if args and args[0] is xin:
            return (args[0][:1], *args[1:])
        return None

    with Hooks() as hooks, torch.no_grad():
        if suffix_only:
            for module in model.modules():
                if module is not model:
                    hooks.add(module.register_forward_pre_hook(shrink))
        hooks.add(layer.register_forward_hook(ablate))
        out = scores_from_output(model(xin), m)
    return out[:, target]


@register
class AblationCAM(CAMBase):
    """Channel weights = relative drop of the target score when the channel is zeroed."""

    name = "ablationcam"
    reference = "Desai & Ramaswamy 2020, WACV, doi:10.1109/WACV45572.2020.9093360"
    uses_gradients = False
    defaults: ClassVar[dict[str, Any]] = {**CAMBase.defaults, "batch_size": 64}

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        n, c = acts.shape[:2]
        hw = (int(ctx.inputs.shape[-2]), int(ctx.inputs.shape[-1]))
        index = grid_index(tuple(ctx.raw.shape), hw, ctx.params["reshape"], ctx.layer.label)
        index = index.reshape(c, -1).to(acts.device)
        original = ctx.scores.gather(1, ctx.target.unsqueeze(1)).squeeze(1)
        ablated = original.unsqueeze(1).repeat(1, c)
        live = acts.reshape(n, c, -1).ne(0).any(2)
        total, done = int(live.sum()), 0
        suffix = ctx.state.get("ablation_suffix_only")
        for b in range(n):
            channels = live[b].nonzero().squeeze(1)
            target = int(ctx.target[b])
            for start, stop in chunk_ranges(int(channels.shape[0]), ctx.params["batch_size"] or 64):
                ks = channels[start:stop]
                if suffix is None:
                    scores, suffix = self._first_chunk(ctx, b, index[ks], target, original[b])
                    ctx.state["ablation_suffix_only"] = suffix
                    ctx.state.setdefault("extras", {})["ablation_rerun"] = (
                        "after the layer" if suffix else "whole network"
                    )
                else:
                    scores = _ablated_scores(ctx.model, ctx.layer.module, ctx.inputs[b], index[ks], target,
                                             identity_row=False, suffix_only=suffix)
                ablated[b, ks] = scores.to(ablated.dtype)
                done += int(ks.shape[0])
                ctx.progress.update(done, total, "ablationcam channels")
        denom = torch.where(original == 0, torch.ones_like(original), original)
        return (original.unsqueeze(1) - ablated) / denom.unsqueeze(1)

    @staticmethod
    def _first_chunk(
        ctx: CAMContext, b: int, positions: torch.Tensor, target: int, original: torch.Tensor
    ) -> tuple[torch.Tensor, bool]:
        """Scores of the first chunk, and whether re-running only after the layer is exact for this model."""
        try:
            s = _ablated_scores(ctx.model, ctx.layer.module, ctx.inputs[b], positions, target,
                                identity_row=True, suffix_only=True)
            if s.shape[0] == positions.shape[0] + 1 and torch.allclose(s[-1], original, rtol=1e-4, atol=1e-5):
                return s[:-1], True
        except Cancelled:
            raise
        except Exception:  # any failure of the shortcut means: rerun the whole network
            pass
        full = _ablated_scores(ctx.model, ctx.layer.module, ctx.inputs[b], positions, target,
                               identity_row=False, suffix_only=False)
        return full, False
