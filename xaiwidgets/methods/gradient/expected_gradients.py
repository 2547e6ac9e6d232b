"""Expected Gradients / GradientSHAP: IG's integrand averaged over random baselines and random alphas.

Erion, Janizek, Sturmfels, Lundberg & Lee 2021, "Improving performance of deep learning models with
axiomatic attribution priors and expected gradients", arXiv:1906.10670; Lundberg & Lee 2017, "A Unified
Approach to Interpreting Model Predictions", arXiv:1705.07874 (GradientSHAP).

For each input ``x`` and sample ``s``: draw a baseline ``b`` from the background set, ``alpha ~ U(0, 1)``
and (if ``noise_level > 0``) ``x~ = x + N(0, sigma^2)`` with ``sigma = noise_level * (max(x) - min(x))``;
the attribution is the mean over samples of ``(x~ - b) * dF/dx(alpha x~ + (1 - alpha) b)`` (captum's
``GradientShap`` estimator). ``baseline``: a tensor ``(B, ...)`` is a background set drawn from uniformly;
a name or number gives one baseline per input (see :mod:`.baselines`). All draws come from a
``torch.Generator`` seeded with ``seed``, row by row, so they do not depend on ``batch_size``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.batching import ChunkPlanner, Retry, row_bytes
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores, selected_scores_and_grad
from ..base import Method
from ..baselines import check_baseline, resolve_baseline
from ..registry import register
from .integrated_gradients import check_batch_size
from .smoothgrad import check_noise


def draw(
    n: int, n_samples: int, n_background: int, generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(background index per row or None, alpha per row)`` for rows ``r = i * n_samples + s``."""
    rows = n * n_samples
    index = None
    if n_background:
        index = torch.randint(n_background, (rows,), generator=generator, device=device)
    alphas = torch.rand(rows, generator=generator, device=device)
    return index, alphas


@register
class ExpectedGradients(Method):
    """GradientSHAP / expected gradients (Erion et al. 2021, arXiv:1906.10670; Lundberg & Lee 2017)."""

    name = "expected_gradients"
    family = "gradient"
    baseline_set = True  # baselines are drawn from the given set (a TabularModel's background rows)
    reference = "Erion et al. 2021, arXiv:1906.10670; Lundberg & Lee 2017, arXiv:1705.07874"
    defaults: ClassVar[dict[str, Any]] = {
        "baseline": "black", "n_samples": 25, "noise_level": 0.0, "seed": 0, "batch_size": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_noise(params)
        check_batch_size(params["batch_size"])
        check_baseline(params["baseline"], inputs, background=True)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        x = inputs
        n, s_count = x.shape[0], params["n_samples"]
        seed = params["seed"]
        gen = None if seed is None else torch.Generator(device=x.device).manual_seed(int(seed))
        background = isinstance(params["baseline"], torch.Tensor)
        base = resolve_baseline(params["baseline"], x, self.classifier, seed=seed, background=background)
        index, alphas = draw(n, s_count, base.shape[0] if background else 0, gen, x.device)
        if index is None:
            index = torch.arange(n * s_count, device=x.device) // s_count
        level = float(params["noise_level"])
        flat = x.reshape(n, -1)
        sigma = level * (flat.amax(1) - flat.amin(1))
        noise_gen = None if seed is None else torch.Generator(device=x.device).manual_seed(int(seed) + 1)
        with torch.no_grad():
            scores = forward_scores(self.model, x)
        resolved = resolve_target(target, scores)
        planner = ChunkPlanner(row_bytes(x), x.device, params["batch_size"])
        total = torch.zeros_like(x)
        rows, start = n * s_count, 0
        shape = (-1,) + (1,) * (x.dim() - 1)
        while start < rows:
            size = planner.next(rows - start)
            r = torch.arange(start, start + size, device=x.device)
            i = r // s_count
            xs = x[i]
            if level > 0:
                noise = torch.stack([
                    torch.randn(x.shape[1:], generator=noise_gen, device=x.device, dtype=x.dtype)
                    for _ in range(size)
                ])
                xs = xs + noise * sigma[i].view(shape)
            b = base[index[r]]
            a = alphas[r].to(x.dtype).view(shape)
            points = a * xs + (1.0 - a) * b
            try:
                grads = planner.run(size, lambda _s, p=points, i=i: selected_scores_and_grad(
                    self.model, p, resolved[i])[0])
            except Retry:
                if level > 0:  # the noise for these rows was consumed; redraw deterministically
                    raise
                continue
            total.index_add_(0, i, (xs - b) * grads)
            start += size
            progress.update(start, rows, self.name)
        return Attribution(
            values=total / s_count, method=self.name, target=resolved, scores=gather_scores(scores, resolved),
            extras={"batch_size": planner.size, "background_size": int(base.shape[0]) if background else None},
        )
