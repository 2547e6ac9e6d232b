"""Forward and backward helpers shared by gradient-based methods."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.errors import ModelError
from ..core.targets import TargetLike, gather_scores, resolve_target, scores_from_output

Model = Callable[[torch.Tensor], object]


def forward_scores(model: Model, inputs: torch.Tensor) -> torch.Tensor:
    """The model's ``(N, C)`` scores for ``inputs`` (checked)."""
    return scores_from_output(model(inputs), inputs.shape[0])


def selected_scores_and_grad(
    model: Model, inputs: torch.Tensor, target: TargetLike
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(d score_target / d inputs, all scores, resolved target)`` in one forward and one backward."""
    x = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        scores = forward_scores(model, x)
        resolved = resolve_target(target, scores)
        selected = gather_scores(scores, resolved)
        if not selected.requires_grad:
            raise ModelError(
                "the model's output does not depend differentiably on its input (is there a torch.no_grad(), "
                ".detach(), argmax or a non-torch step in forward?); use a perturbation method such as "
                "'occlusion' instead"
            )
        (grad,) = torch.autograd.grad(selected.sum(), x)
    return grad, scores.detach(), resolved


def input_gradient(model: Model, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``d score_target / d inputs`` for an already resolved ``target``."""
    grad, _scores, _target = selected_scores_and_grad(model, inputs, target)
    return grad
