"""KernelSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions",
arXiv:1705.07874).

Shapley values as the solution of a weighted linear regression of the game ``v(z)`` on coalitions ``z``
with the Shapley kernel, subject to efficiency (``sum(phi) = v(all) - v(empty)``, enforced exactly).
When ``2**M <= n_samples`` every coalition is enumerated and the result is the exact Shapley value.
Otherwise coalition sizes are drawn with probability proportional to the kernel's mass and each
coalition is paired with its complement (antithetic sampling); the regression then has equal weights,
and per-feature standard errors follow from the variance over pairs (Covert & Lee 2021, "Improving
KernelSHAP", arXiv:2012.01536).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.errors import Cancelled
from ...core.progress import Progress
from ...core.targets import TargetLike
from ..registry import register
from ._common import FeatureMethod, assemble, check_positive_int, check_seed, generator, scores_and_target
from .features import Game
from .games import all_coalitions, constrained_solve, kernel_shap_regression, shapley_kernel
from .streaming import Stream


def sample_paired_coalitions(m: int, n_pairs: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``2 * n_pairs`` coalitions ``(S, M)`` bool: rows ``2k`` and ``2k+1`` are complements.

    Sizes ``s`` in ``1..M-1`` are drawn with probability proportional to ``1 / (s (M - s))`` (the Shapley
    kernel summed over all coalitions of size ``s``), members uniformly given the size.
    """
    sizes = torch.arange(1, m, device=device, dtype=torch.float64)
    probs = 1.0 / (sizes * (m - sizes))
    s = torch.multinomial(probs / probs.sum(), n_pairs, replacement=True, generator=gen) + 1
    ranks = torch.rand(n_pairs, m, generator=gen, device=device).argsort(1).argsort(1)
    z = ranks < s[:, None]
    return torch.stack([z, ~z], 1).reshape(2 * n_pairs, m)


def paired_estimate(
    z: torch.Tensor, y: torch.Tensor, v_empty: torch.Tensor, v_full: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """KernelSHAP from kernel-distributed paired samples: ``(phi, stderr)`` (float64).

    Uses the sample moments ``A = mean(z z')`` and ``b = mean(z (y - v_empty))``; the standard error is the
    sandwich (delta-method) estimate from the spread over pairs of ``z (y - v_empty - z' phi)``.
    """
    zf = z.to(torch.float64)
    n_pairs = zf.shape[0] // 2
    a = zf.T @ zf / zf.shape[0]
    contrib = zf * (y.to(torch.float64) - v_empty)[:, None]
    per_pair = contrib.view(n_pairs, 2, -1).mean(1)
    b = per_pair.mean(0)
    phi, c = constrained_solve(a, b, (v_full - v_empty).to(torch.float64))
    if n_pairs > 1:
        # sandwich estimator: both A and b are sample means, so propagate the per-pair residual moments
        resid = zf * (y.to(torch.float64) - v_empty - zf @ phi)[:, None]
        per_pair_resid = resid.view(n_pairs, 2, -1).mean(1)
        cov_b = torch.cov(per_pair_resid.T).reshape(zf.shape[1], zf.shape[1]) / n_pairs
        stderr = torch.diagonal(c @ cov_b @ c.T).clamp_min(0).sqrt()
    else:
        stderr = torch.full_like(phi, float("nan"))
    return phi, stderr


@register
class KernelShap(FeatureMethod):
    """KernelSHAP over features (superpixels, patches or columns); see the module docstring."""

    name = "kernel_shap"
    reference = "Lundberg & Lee 2017, arXiv:1705.07874"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 512,
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "batch_size": 64,
        "seed": 0,
        "stream_every": 0,
        "callback": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_positive_int(params, "n_samples", 2)
        check_positive_int(params, "batch_size")
        check_positive_int(params, "stream_every", 0)
        check_seed(params)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        games = self.games(inputs, resolved, params, progress)
        stream = Stream(params["stream_every"], params["callback"])
        phis: list[torch.Tensor] = []
        stderrs: list[torch.Tensor | None] = []
        exact: list[bool] = []
        base_values = []
        for index, game in enumerate(games):
            try:
                phi, se, is_exact, v0 = self._one(index, game, params, progress, stream)
            except Cancelled as exc:
                raise Cancelled(str(exc), partial=self._partial(exc, games, phis, inputs, resolved, scores)) from exc
            phis.append(phi)
            stderrs.append(se)
            exact.append(is_exact)
            base_values.append(v0)
        values, extras = assemble(games, phis, inputs, resolved, scores)
        extras.update(base_value=torch.stack(base_values), stderr=stderrs, exact=exact)
        frames = stream.frames()
        return Attribution(
            values=values,
            method=self.name,
            target=resolved,
            scores=scores,
            extras=extras,
            frames=frames,
            frame_kind="estimate" if frames else None,
        )

    def _partial(self, exc, games, phis, inputs, target, scores) -> Attribution:
        """Finished inputs, the running estimate of the current one, zeros for the rest."""
        current = getattr(exc, "partial", None)
        done = list(phis)
        if isinstance(current, torch.Tensor):
            done.append(current)
        while len(done) < len(games):
            done.append(torch.zeros(games[len(done)].n_features, dtype=torch.float64, device=inputs.device))
        values, extras = assemble(games, done, inputs, target, scores)
        extras["complete"] = [i < len(phis) for i in range(len(games))]
        return Attribution(values=values, method=self.name, target=target, scores=scores, extras=extras)

    def _one(
        self, index: int, game: Game, params: dict[str, Any], progress: Progress, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor | None, bool, torch.Tensor]:
        m = game.n_features
        device = game.masker.x.device
        ends = torch.stack(
            [torch.zeros(m, dtype=torch.bool, device=device), torch.ones(m, dtype=torch.bool, device=device)]
        )
        v_empty, v_full = game(ends).to(torch.float64)
        if m == 1:
            return (
                (v_full - v_empty).reshape(1),
                torch.zeros(1, dtype=torch.float64, device=device),
                True,
                v_empty,
            )
        n_samples = params["n_samples"]
        if 2**m <= n_samples:
            z = all_coalitions(m, device)[1:-1]
            y = self._evaluate(index, game, z, progress, stream, (v_empty, v_full), False)
            weights = shapley_kernel(m, z.sum(1))
            phi, _ = kernel_shap_regression(z, y, weights, v_empty, v_full)
            return phi, torch.zeros_like(phi), True, v_empty
        gen = generator(params["seed"], device)
        z = sample_paired_coalitions(m, max(1, n_samples // 2), gen, device)
        y = self._evaluate(index, game, z, progress, stream, (v_empty, v_full), True)
        phi, stderr = paired_estimate(z, y, v_empty, v_full)
        return phi, stderr, False, v_empty

    def _evaluate(
        self,
        index: int,
        game: Game,
        z: torch.Tensor,
        progress: Progress,
        stream: Stream,
        ends: tuple[torch.Tensor, torch.Tensor],
        sampled: bool,
    ) -> torch.Tensor:
        """``v(z)`` in chunks of whole pairs; frames and cancellation between chunks."""
        rows = max(2, (game.batch_size // game.masker.n_background) // 2 * 2)
        out: list[torch.Tensor] = []
        done = 0
        batches = 0

        def estimate() -> tuple[torch.Tensor, torch.Tensor | None]:
            if sampled:
                return paired_estimate(z[:done], torch.cat(out), *ends)
            weights = shapley_kernel(game.n_features, z[:done].sum(1))
            return kernel_shap_regression(z[:done], torch.cat(out), weights, *ends)[0], None

        while done < z.shape[0]:
            out.append(game(z[done : done + rows]))
            done = min(z.shape[0], done + rows)
            batches += 1
            if sampled and done >= 4 and (stream.due(batches) or (stream.active and done == z.shape[0])):
                stream.record(index, game.masker, *estimate(), done)
            try:
                progress.update(done, z.shape[0], f"{self.name}: input {index + 1}")
            except Cancelled as exc:
                raise Cancelled(str(exc), partial=estimate()[0]) from exc
        return torch.cat(out)
