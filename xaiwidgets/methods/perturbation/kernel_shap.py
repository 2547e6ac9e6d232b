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

import numpy as np
import torch

from ...core.attribution import Attribution
from ...core.errors import Cancelled
from ...core.progress import Progress
from ...core.targets import TargetLike
from ..registry import register
from ._common import (
    Running,
    ShapleyMethod,
    assemble,
    cancelled_result,
    check_batch_size,
    check_positive_int,
    check_seed,
    generator,
    scores_and_target,
)
from .features import Game, distinct_chunks
from .shapley_solvers import all_coalitions, constrained_solve, kernel_shap_regression, shapley_kernel
from .streaming import Stream


def sample_paired_coalitions(
    m: int, n_pairs: int, gen: torch.Generator, device: torch.device, with_ends: bool = False
) -> torch.Tensor:
    """``2 * n_pairs`` coalitions ``(S, M)`` bool: rows ``2k`` and ``2k+1`` are complements; with
    ``with_ends`` two more rows first, the empty and the full coalition (also a complementary pair).

    Sizes ``s`` in ``1..M-1`` are drawn with probability proportional to ``1 / (s (M - s))`` (the Shapley
    kernel summed over all coalitions of size ``s``), members uniformly given the size: the ``s`` features
    with the smallest of ``M`` uniform keys. numpy on the host, from a generator seeded by ``gen``: a few
    kB of bits, where each torch operation would cost more than its work (0.25 ms for 500 x 50, 0.5 ms
    with torch on a CPU).
    """
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device)))
    sizes = np.arange(1, m, dtype=np.float64)
    cdf = np.cumsum(1.0 / (sizes * (m - sizes)))
    s = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n_pairs), side="right"), m - 2) + 1
    keys = rng.random((n_pairs, m))  # float64: ties have probability ~M**2 / 2**53
    kth = np.sort(keys, axis=1)[np.arange(n_pairs), s - 1]
    ends = int(with_ends)
    z = np.empty((ends + n_pairs, 2, m), dtype=bool)
    z[:ends, 0], z[:ends, 1] = False, True
    np.less_equal(keys, kth[:, None], out=z[ends:, 0])
    np.logical_not(z[ends:, 0], out=z[ends:, 1])
    return torch.from_numpy(z.reshape(-1, m)).to(device)


def paired_estimate(
    z: torch.Tensor, y: torch.Tensor, v_empty: torch.Tensor, v_full: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """KernelSHAP from kernel-distributed paired samples: ``(phi, stderr)`` (float64).

    ``z`` holds pairs of complementary rows (``2k`` and ``2k+1``). Uses the sample moments
    ``A = mean(z z')`` and ``b = mean(z (y - v_empty))``; the standard error is the sandwich (delta-method)
    estimate from the spread over pairs of ``r = mean over the pair of z (y - v_empty - z' phi)``:
    ``Var(phi) = C Cov(r) C' / n_pairs``, the diagonal of ``C Cov(r) C'``; NaN until there are more pairs
    than features (with fewer the fit nearly interpolates and the spread is ~0).

    Only the first row of each pair is touched: with ``u`` that row and ``1 - u`` its complement,
    ``u u' + (1-u)(1-u)' = 2 u u' - u 1' - 1 u' + 1 1'``, and twice the pair's ``r`` is ``e_b + u delta``
    with ``delta = e_a - e_b`` for the residuals ``e_a``, ``e_b`` of its two rows, whose scatter comes from
    ``u' diag(delta^2) u`` and two matrix-vector products without forming that ``(pairs, M)`` matrix.
    """
    n_pairs = z.shape[0] // 2
    m = z.shape[1]
    u32 = z[0::2].to(torch.float32)
    u = u32.to(torch.float64)
    dy = y.to(torch.float64) - v_empty
    da, db = dy[0::2], dy[1::2]
    gram = (u32.T @ u32).to(torch.float64)  # co-occurrence counts: exact in float32 below 2**24
    counts = gram.diagonal()  # how often each feature is in the first row (u is 0/1)
    a = (2 * gram - counts[:, None] - counts + n_pairs) / (2 * n_pairs)
    b = (u.T @ (da - db) + db.sum()) / (2 * n_pairs)
    phi, c = constrained_solve(a, b, (v_full - v_empty).to(torch.float64))
    if n_pairs <= m:  # the spread over pairs needs more pairs than features (else it is ~0)
        return phi, torch.full_like(phi, float("nan"))
    in_a = u @ phi
    e_b = db - (phi.sum() - in_a)
    delta = da - in_a - e_b
    sums = u.T @ torch.stack([delta * e_b, delta], 1)  # (M, 2)
    cross, total = sums[:, 0], sums[:, 1] + e_b.sum()
    scatter = (u * (delta * delta)[:, None]).T @ u + (cross[:, None] + cross) + (e_b @ e_b)
    scatter -= torch.outer(total / n_pairs, total)  # centred: (n_pairs - 1) Cov(r) of twice the pair mean
    var = ((c @ scatter) * c).sum(1).clamp_(min=0)
    return phi, (var / (4 * (n_pairs - 1) * n_pairs)).sqrt_()


@register
class KernelShap(ShapleyMethod):
    """KernelSHAP over features (superpixels, patches or columns); see the module docstring."""

    name = "kernel_shap"
    reference = "Lundberg & Lee 2017, arXiv:1705.07874"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 512,
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "batch_size": None,
        "seed": 0,
        "stream_every": 0,
        "callback": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_positive_int(params, "n_samples", 2)
        check_batch_size(params)
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
        counts: list[int] = []
        exact: list[bool] = []
        base_values = []
        for index, game in enumerate(games):
            try:
                phi, se, is_exact, v0, count = self._one(index, game, params, progress, stream)
            except Cancelled as exc:
                running = exc.partial if isinstance(exc.partial, Running) else None
                partial = cancelled_result(
                    self.name, games, phis, stderrs, counts, running, inputs, resolved, scores
                )
                raise Cancelled(str(exc), partial=partial) from exc
            phis.append(phi)
            stderrs.append(se)
            counts.append(count)
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

    def estimate(
        self, game: Any, params: dict[str, Any], progress: Progress, index: int, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        phi, stderr, exact, _v_empty, _count = self._one(index, game, params, progress, stream)
        return phi, stderr, exact

    def _one(
        self, index: int, game: Game, params: dict[str, Any], progress: Progress, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor | None, bool, torch.Tensor, int]:
        m = game.n_features
        device = game.masker.x.device
        n_samples = params["n_samples"]
        if m == 1:
            v_empty, v_full = game(torch.tensor([[False], [True]], device=device)).to(torch.float64)
            return (v_full - v_empty).reshape(1), torch.zeros(1, dtype=torch.float64, device=device), True, v_empty, 0
        if 2**m <= n_samples:
            every = all_coalitions(m, device)
            rows = torch.cat([every[[0, -1]], every[1:-1]])  # the ends first
            y, v_empty, v_full = self._evaluate(index, game, rows, progress, stream, False)
            z = rows[2:]
            weights = shapley_kernel(m, z.sum(1))
            phi, _ = kernel_shap_regression(z, y, weights, v_empty, v_full)
            return phi, torch.zeros_like(phi), True, v_empty, int(z.shape[0])
        gen = generator(params["seed"], device)
        rows = sample_paired_coalitions(m, max(1, n_samples // 2), gen, device, with_ends=True)
        y, v_empty, v_full = self._evaluate(index, game, rows, progress, stream, True)
        phi, stderr = paired_estimate(rows[2:], y, v_empty, v_full)
        return phi, stderr, False, v_empty, int(rows.shape[0] - 2)

    def _evaluate(
        self,
        index: int,
        game: Game,
        rows: torch.Tensor,
        progress: Progress,
        stream: Stream,
        sampled: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(v(z), v(empty), v(all))`` for ``rows`` = the empty and the full coalition, then ``z``. Each
        distinct coalition is evaluated once (the ends go with the first model batch); frames and
        cancellation between model batches (an estimate uses the whole pairs evaluated so far)."""
        done = 0
        z = rows[2:]
        y = v_empty = v_full = z.new_zeros(0, dtype=torch.float64)

        def estimate() -> tuple[torch.Tensor, torch.Tensor | None]:
            if sampled:
                return paired_estimate(z[:done], y[:done], v_empty, v_full)
            weights = shapley_kernel(game.n_features, z[:done].sum(1))
            return kernel_shap_regression(z[:done], y[:done], weights, v_empty, v_full)[0], None

        for batches, (covered, evaluated) in enumerate(distinct_chunks(game, rows), 1):
            if covered < 2:  # one coalition per model call: wait for both ends
                continue
            v_empty, v_full = evaluated[:2].to(torch.float64)
            y = evaluated[2:]
            done = (covered - 2) // 2 * 2 if sampled else covered - 2
            if sampled and done >= 4 and (stream.due(batches) or (stream.active and done == z.shape[0])):
                stream.record(index, game.masker, *estimate(), done)
            try:
                progress.update(covered - 2, z.shape[0], f"{self.name}: input {index + 1}")
            except Cancelled as exc:
                if done == 0:
                    raise
                raise Cancelled(str(exc), partial=Running(*estimate(), done)) from exc
        return y, v_empty, v_full
