"""Extremal perturbation (Fong, Patrick & Vedaldi 2019, "Understanding Deep Networks via Extremal
Perturbations and Smooth Masks", arXiv:1910.08485).

Finds a smooth mask ``m`` of a fixed ``area`` (fraction of the image) that maximises the target score of
the preserved image ``x * m + b * (1 - m)`` ("preservation") or minimises the score of the deleted image
``x * (1 - m) + b * m`` ("deletion"), ``b`` a blurred copy by default. The mask is a low-resolution
parameter grid (one value per ``cell_size`` pixels) upsampled bilinearly; the area constraint is the
paper's ranking penalty ``||sort(m) - r_a||^2`` with ``r_a`` the sorted reference of ``area`` ones.
The optimiser is Adam with the mask clamped to [0, 1]; all inputs are optimised together in one batch.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...core.attribution import Attribution
from ...core.errors import Cancelled, ModelError
from ...core.progress import Progress
from ...core.targets import TargetLike, scores_from_output
from ..base import Method, require
from ..baselines import resolve_baseline
from ..registry import register
from ._common import check_positive_int, check_seed, generator, scores_and_target

VARIANTS = ("preservation", "deletion")


class _Adam:
    """Adam (Kingma & Ba 2014) on one tensor, projected to [0, 1]; avoids importing torch.optim (slow)."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.param, self.lr, self.betas, self.t = param, lr, betas, 0
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        self.param.sub_(self.lr * m_hat / (v_hat.sqrt() + 1e-8)).clamp_(0, 1)


@register
class ExtremalPerturbation(Method):
    """Smooth mask optimisation with an area constraint; see the module docstring."""

    name = "extremal_perturbation"
    family = "perturbation"
    tabular_strategy = None  # images only
    reference = "Fong, Patrick & Vedaldi 2019, arXiv:1910.08485"
    default_reduce = "mean"
    signed = False
    defaults: ClassVar[dict[str, Any]] = {
        "area": 0.1,
        "variant": "preservation",
        "n_steps": 300,
        "learning_rate": 0.05,
        "regularization": 300.0,
        "cell_size": None,
        "baseline": "blur",
        "seed": 0,
        "frame_every": 0,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        require(inputs.dim() == 4, f"extremal_perturbation masks images (N, C, H, W); got {tuple(inputs.shape)}")
        area = params["area"]
        require(
            isinstance(area, (int, float)) and 0 < area < 1,
            f"area must be a fraction in (0, 1), got {area!r}",
        )
        require(
            params["variant"] in VARIANTS,
            f"variant must be one of {', '.join(VARIANTS)}, got {params['variant']!r}",
        )
        check_positive_int(params, "n_steps")
        check_positive_int(params, "frame_every", 0)
        check_seed(params)
        cell = params["cell_size"]
        require(
            cell is None or (isinstance(cell, int) and cell >= 1),
            f"cell_size must be None or >= 1, got {cell!r}",
        )

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        baseline = resolve_baseline(params["baseline"], inputs, self.classifier, seed=params["seed"] or 0)
        n, _, h, w = inputs.shape
        cell = params["cell_size"] or max(1, min(h, w) // 28)
        gh, gw = math.ceil(h / cell), math.ceil(w / cell)
        gen = generator(params["seed"], inputs.device)
        param = (0.5 + 0.01 * torch.randn(n, 1, gh, gw, generator=gen, device=inputs.device)).requires_grad_(True)
        adam = _Adam(param, params["learning_rate"])
        k = round(params["area"] * h * w)
        ref = torch.zeros(h * w, device=inputs.device, dtype=inputs.dtype)
        ref[h * w - k :] = 1.0  # ascending sorted reference: (1 - area) zeros then area ones
        preserve = params["variant"] == "preservation"
        sign = -1.0 if preserve else 1.0
        frames, every = [], params["frame_every"]
        x = inputs.detach()
        mask = self._upsample(param.detach(), h, w)
        with torch.enable_grad():
            for step in range(params["n_steps"]):
                mask = self._upsample(param, h, w)
                keep = mask if preserve else 1 - mask
                out = scores_from_output(self.model(baseline + keep * (x - baseline)), n)
                score = out.gather(1, resolved[:, None]).squeeze(1)
                if not score.requires_grad:
                    raise ModelError(
                        "extremal_perturbation optimises the mask by gradient, but the model's output does not "
                        "depend differentiably on its input (torch.no_grad(), .detach() or a non-torch step in "
                        "forward?); use 'rise', 'occlusion' or 'kernel_shap' instead"
                    )
                area_loss = (mask.flatten(1).sort(1).values - ref).pow(2).mean(1)
                loss = (sign * score + params["regularization"] * area_loss).sum()
                (grad,) = torch.autograd.grad(loss, param)
                adam.step(grad)
                if every and (step % every == 0 or step == params["n_steps"] - 1):
                    frames.append(self._upsample(param.detach(), h, w)[:, 0].cpu())
                try:
                    progress.update(step + 1, params["n_steps"], self.name)
                except Cancelled as exc:
                    part = self._upsample(param.detach(), h, w)
                    raise Cancelled(
                        str(exc),
                        partial=Attribution(
                            part.expand_as(inputs).clone(),
                            self.name,
                            resolved,
                            scores,
                            extras={"complete": False, "steps_done": step + 1},
                        ),
                    ) from exc
        final = self._upsample(param.detach(), h, w)
        with torch.no_grad():
            keep = final if preserve else 1 - final
            masked = gather = scores_from_output(self.model(baseline + keep * (x - baseline)), n)
            gather = masked.gather(1, resolved[:, None]).squeeze(1)
        return Attribution(
            values=final.expand_as(inputs).clone(),
            method=self.name,
            target=resolved,
            scores=scores,
            raw=param.detach().clone(),
            extras={"masked_score": gather, "area": params["area"], "cell_size": cell},
            frames={"values": torch.stack(frames)} if frames else None,
            frame_kind="steps" if frames else None,
        )

    @staticmethod
    def _upsample(param: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return F.interpolate(param, size=(h, w), mode="bilinear", align_corners=False)
