"""Adversarial perturbations on the perceptual ball: Elliott, Law & Russell 2021, "Explaining Classifiers
using Adversarial Perturbations on the Perceptual Ball", CVPR, arXiv:1912.09405.

For each image ``x`` and target ``t`` find a perturbation ``r`` minimising

    gamma * sum_l mse(phi_l(x + r), phi_l(x)) + mse(x + r, x) + w * (margin(x + r) - v)^2

with ``margin(z) = f_t(z) - max_{l != t} f_l(z)`` and ``phi_l`` the outputs of the regularised layers: the
perturbation must move the margin to ``v`` while staying on the "perceptual ball" (internal
representations nearly unchanged), which confines it to the evidence the network uses. The saliency is
the per-pixel root mean square of ``r`` over channels, blurred with a Gaussian of ``blur_sigma`` pixels.

As the authors' code (alan-turing-institute/perceptualBall: ``create_perceptual_loss2``, ``find_direction``
and ``example.py``): ``mse`` is the mean over elements (``torch.nn.MSELoss``), gamma = 1e4, v = -2, w = 1,
L-BFGS (``torch.optim.LBFGS`` with its defaults: lr 1, no line search) for 100 iterations from r = 0, the
map ``sqrt(mean_c r^2)`` and ``scipy.ndimage.gaussian_filter(sigma=2)``. Ours in addition (docs/differences.md):
any CNN (layers found by behaviour, not VGG ReLU indices), one optimisation per image (theirs takes one
image), and a penalty continuation: while the reached margin misses ``v`` by more than ``tolerance * |v|``,
``w`` is multiplied by 10 and L-BFGS continues from the current ``r`` (at most ``max_rounds`` rounds).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...core.attribution import Attribution
from ...core.errors import Cancelled, LayerError, ModelError
from ...core.progress import Progress
from ...core.state import Hooks
from ...core.targets import TargetLike, gather_scores, resolve_target
from ..base import require
from ..perturbation._common import check_positive_int, check_seed, generator
from ..registry import register
from ._common import ImageOptimisation, Tap, as_module, block_maps, gaussian_blur, margin, resolve_layer_names, spread

#: how many layers the automatic choice regularises
N_AUTO_LAYERS = 5


def default_layers(model: torch.nn.Module, inputs: torch.Tensor, k: int = N_AUTO_LAYERS) -> list[str]:
    """``k`` spatial block outputs spread from the first block to the last stage before the head (found by
    behaviour: :func:`~xaiwidgets.core.layers.map_layers`). The last stage (the blocks on the final, coarsest
    grid) is left free, as the authors regularise VGG's ReLUs up to the first of its last stage: the head
    reads that stage, so holding it fixed holds the margin fixed. Raises :class:`LayerError` without maps."""
    blocks = block_maps(model, inputs)
    if not blocks:
        raise LayerError(
            "perceptual_ball keeps the model's spatial feature maps close, but found no layer whose output is "
            "a map on the input grid; pass layers=['<dotted name>', ...], or layers=[] for the plain "
            "margin-constrained perturbation"
        )
    final = blocks[-1][1]
    before = [name for name, grid in blocks if grid != final]
    return spread(before or [name for name, _grid in blocks[:-1]] or [blocks[0][0]], k)


@register
class PerceptualBall(ImageOptimisation):
    """Perturbation that moves the target's margin to ``v`` on the perceptual ball; see the module docstring."""

    name = "perceptual_ball"
    reference = "Elliott, Law & Russell 2021, CVPR, arXiv:1912.09405"
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {
        "n_steps": (10, 300, 10),
        "blur_sigma": (0.0, 8.0, 0.5),
    }
    defaults: ClassVar[dict[str, Any]] = {
        "layers": None,
        "gamma": 1e4,
        "v": -2.0,
        "n_steps": 100,
        "blur_sigma": 2.0,
        "margin_weight": 1.0,
        "tolerance": 0.1,
        "max_rounds": 8,
        "init_noise": 0.0,
        "seed": 0,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        require(inputs.dim() == 4, f"perceptual_ball explains images (N, C, H, W); got {tuple(inputs.shape)}")
        for key in ("gamma", "v", "blur_sigma", "margin_weight", "tolerance", "init_noise"):
            value = params[key]
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and value == value,
                    f"{key} must be a number, got {value!r}")
        require(params["gamma"] >= 0, f"gamma must be >= 0, got {params['gamma']!r}")
        require(params["blur_sigma"] >= 0, f"blur_sigma must be >= 0, got {params['blur_sigma']!r}")
        require(params["margin_weight"] > 0, f"margin_weight must be > 0, got {params['margin_weight']!r}")
        require(params["tolerance"] >= 0, f"tolerance must be >= 0, got {params['tolerance']!r}")
        require(params["init_noise"] >= 0, f"init_noise must be >= 0, got {params['init_noise']!r}")
        check_positive_int(params, "n_steps")
        check_positive_int(params, "max_rounds")
        check_seed(params)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        model = as_module(self.model, self.name)
        x = inputs.detach()
        layers = params["layers"]
        names = default_layers(model, x) if layers is None else resolve_layer_names(model, layers)
        n = x.shape[0]
        gen = generator(params["seed"], x.device)
        with Hooks() as hooks, torch.no_grad():
            tap = Tap(model, names, hooks)
            scores, ref = tap.run(model, x)
            resolved = resolve_target(target, scores)
            start = margin(scores, resolved)
            budget = _Budget(progress, self.name, n * params["max_rounds"] * _max_evals(params["n_steps"]))
            perturbations, reached, parts = [], [], []
            for i in range(n):
                noise = torch.randn(x[i : i + 1].shape, generator=gen, device=x.device, dtype=x.dtype)
                r0 = params["init_noise"] * noise
                try:
                    r, m, layer_term = self._solve(model, tap, x[i : i + 1], resolved[i : i + 1],
                                                   [f[i : i + 1] for f in ref], r0, params, budget)
                except Cancelled as exc:
                    done = torch.cat([*perturbations, exc.partial, torch.zeros_like(x[i + 1 :])])
                    raise Cancelled(str(exc), partial=self._result(
                        done, x, resolved, gather_scores(scores, resolved), params, names,
                        {"complete": [j < i for j in range(n)], "margin_start": start})) from exc
                perturbations.append(r)
                reached.append(m)
                parts.append(layer_term)
        r = torch.cat(perturbations)
        margins = torch.cat(reached)
        extras = {
            "margin": margins, "margin_start": start, "v": float(params["v"]),
            "margin_reached": check_margins(margins, float(params["v"]), float(params["tolerance"])),
            "distortion": r.flatten(1).norm(dim=1), "layer_distance": torch.cat(parts),
            "layers": names, "complete": [True] * n,
        }
        return self._result(r, x, resolved, gather_scores(scores, resolved), params, names, extras)

    def _result(self, r: torch.Tensor, x: torch.Tensor, target: torch.Tensor, scores: torch.Tensor,
                params: dict[str, Any], names: list[str], extras: dict[str, Any]) -> Attribution:
        rms = r.pow(2).mean(1, keepdim=True).sqrt()
        saliency = gaussian_blur(rms, float(params["blur_sigma"]))
        extras.setdefault("layers", names)
        return Attribution(values=saliency.expand_as(x).clone(), method=self.name, target=target, scores=scores,
                           raw=r.detach(), extras=extras)

    def _solve(self, model: torch.nn.Module, tap: Tap, x: torch.Tensor, target: torch.Tensor,
               ref: list[torch.Tensor], r0: torch.Tensor, params: dict[str, Any], budget: _Budget
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One image: L-BFGS rounds from ``r0`` (see the module docstring); ``(r, reached margin, layer term)``."""
        r = r0.clone().requires_grad_(True)
        gamma, v = float(params["gamma"]), float(params["v"])
        weight = float(params["margin_weight"])
        last: dict[str, torch.Tensor] = {}

        def objective() -> torch.Tensor:
            scores, feats = tap.run(model, x + r)
            m = margin(scores, target)
            layer_term = sum((F.mse_loss(f, g) for f, g in zip(feats, ref)), torch.zeros((), device=x.device))
            loss = gamma * layer_term + F.mse_loss(x + r, x) + weight * (m - v).pow(2).sum()
            if not loss.requires_grad:
                raise ModelError("perceptual_ball optimises through the model, but its output does not depend "
                                 "differentiably on the input (torch.no_grad(), .detach() or a non-torch step?)")
            last.update(m=m.detach(), layer=layer_term.detach().reshape(1))
            return loss

        for _round in range(int(params["max_rounds"])):
            # tolerance_change=0: the first L-BFGS step is -grad (tiny on a model with small gradients), and
            # the default 1e-9 on the loss change would stop there, before the curvature rescales the steps
            optimiser = torch.optim.LBFGS([r], max_iter=int(params["n_steps"]), tolerance_change=0.0)

            def closure() -> torch.Tensor:
                loss = objective()
                (grad,) = torch.autograd.grad(loss, r)  # never .backward(): no .grad on the user's parameters
                r.grad = grad
                budget.tick(r.detach())
                return loss.detach()

            with torch.enable_grad():
                optimiser.step(closure)
                objective()  # the margin at the final r (L-BFGS's last evaluation may precede its last step)
            if abs(float(last["m"]) - v) <= float(params["tolerance"]) * max(abs(v), 1e-12):
                break
            weight *= 10.0
        return r.detach(), last["m"], last["layer"]


def check_margins(margins: torch.Tensor, v: float, tolerance: float) -> list[bool]:
    """Per input, whether the margin reached ``v`` within ``tolerance`` (relative); warns naming the inputs
    that did not (their saliency shows a perturbation that stopped short of the constraint)."""
    ok = [abs(float(m) - v) <= tolerance * max(abs(v), 1e-12) for m in margins]
    missed = [i for i, good in enumerate(ok) if not good]
    if missed:
        reached = ", ".join(f"input {i}: {float(margins[i]):.3g}" for i in missed)
        warnings.warn(f"perceptual_ball: the margin did not reach v={v:g} within {tolerance:.0%} ({reached}); "
                      "raise n_steps or max_rounds (extras['margin_reached'] says which inputs)", RuntimeWarning,
                      stacklevel=3)
    return ok


def _max_evals(n_steps: int) -> int:
    return n_steps * 5 // 4 + 1  # torch.optim.LBFGS's default max_eval, plus the final evaluation


class _Budget:
    """Progress over every model evaluation of every image; raises Cancelled (with the current ``r``)."""

    def __init__(self, progress: Progress, name: str, total: int) -> None:
        self.progress, self.name, self.total, self.done = progress, name, total, 0

    def tick(self, r: torch.Tensor) -> None:
        self.done += 1
        try:
            self.progress.update(min(self.done, self.total - 1), self.total, self.name)
        except Cancelled as exc:
            raise Cancelled(str(exc), partial=r.clone()) from exc
