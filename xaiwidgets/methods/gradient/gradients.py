"""Plain gradient methods: gradient, saliency, gradient x input.

- ``gradient``: d f_c(x) / dx.
- ``saliency``: |d f_c(x) / dx|, shown as the max over channels (Simonyan, Vedaldi & Zisserman 2014,
  "Deep Inside Convolutional Networks", arXiv:1312.6034).
- ``input_x_gradient``: x * d f_c(x) / dx (Shrikumar et al. 2016, "Not Just a Black Box",
  arXiv:1605.01713).
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.attribution import Attribution
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores
from .._autograd import selected_scores_and_grad
from ..base import Method
from ..registry import register


class _GradientBase(Method):
    family = "gradient"
    text_strategy = "embeddings"

    def _combine(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        grad, scores, resolved = selected_scores_and_grad(self.model, inputs, target)
        return Attribution(
            values=self._combine(inputs, grad).detach(),
            method=self.name,
            target=resolved,
            scores=gather_scores(scores, resolved),
        )


@register
class Gradient(_GradientBase):
    """The raw gradient of the target score with respect to the input."""

    name = "gradient"
    reference = "Simonyan et al. 2014, arXiv:1312.6034"

    def _combine(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad


@register
class Saliency(_GradientBase):
    """Absolute gradient; heatmaps take the max over channels as in Simonyan et al."""

    name = "saliency"
    reference = "Simonyan et al. 2014, arXiv:1312.6034"
    default_reduce = "max_abs"
    signed = False

    def _combine(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad.abs()


@register
class InputXGradient(_GradientBase):
    """Element-wise input times gradient."""

    name = "input_x_gradient"
    reference = "Shrikumar et al. 2016, arXiv:1605.01713"

    def _combine(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return inputs * grad
