"""Shapley values over features by permutation sampling and by exact enumeration.

- ``shapley_sampling``: the mean marginal contribution of each feature over random orderings (Strumbelj
  & Kononenko 2010, "An Efficient Explanation of Individual Classifications using Game Theory", JMLR 11;
  2014, "Explaining prediction models and individual predictions with feature contributions", KAIS 41).
  Orderings come in antithetic pairs (an ordering and its reverse), which lowers the variance; the
  standard error is the spread over pairs. Each ordering costs ``M - 1`` model evaluations.
- ``exact_shapley``: every one of the ``2**M`` coalitions, M <= 16, with
  phi_i = sum_S |S|! (M-|S|-1)! / M! (v(S + i) - v(S)) (Shapley 1953).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.errors import Cancelled, ParameterError
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
from .shapley_solvers import MAX_EXACT_PLAYERS, all_coalitions, shapley_from_table
from .streaming import Stream


def antithetic_permutations(m: int, n_pairs: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``(2 * n_pairs, M)`` orderings; row ``2k + 1`` is row ``2k`` reversed."""
    perms = torch.rand(n_pairs, m, generator=gen, device=device).argsort(1)
    return torch.stack([perms, perms.flip(1)], 1).reshape(2 * n_pairs, m)


def prefix_coalitions(perms: torch.Tensor) -> torch.Tensor:
    """For each ordering the coalitions of its first ``1..M-1`` players: ``(P * (M - 1), M)`` bool."""
    p, m = perms.shape
    position = perms.argsort(1)  # position[r, i] = where player i comes in ordering r
    sizes = torch.arange(1, m, device=perms.device)
    return (position[:, None, :] < sizes[None, :, None]).reshape(p * (m - 1), m)


def marginals(perms: torch.Tensor, prefix_values: torch.Tensor, v_empty, v_full) -> torch.Tensor:
    """Marginal contribution of every player in every ordering: ``(P, M)``."""
    p, m = perms.shape
    chain = torch.cat([v_empty.expand(p, 1), prefix_values.view(p, m - 1), v_full.expand(p, 1)], 1).to(torch.float64)
    steps = chain[:, 1:] - chain[:, :-1]  # steps[r, k]: gain when the (k+1)-th player joins
    out = torch.empty_like(steps)
    out.scatter_(1, perms, steps)
    return out


def pair_mean_and_stderr(contrib: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = contrib.view(-1, 2, contrib.shape[1]).mean(1)
    phi = pairs.mean(0)
    if pairs.shape[0] > 1:
        return phi, pairs.std(0) / pairs.shape[0] ** 0.5
    return phi, torch.full_like(phi, float("nan"))


@register
class ShapleySampling(ShapleyMethod):
    """Permutation-sampling Shapley values over features; ``n_samples`` orderings (rounded up to pairs)."""

    name = "shapley_sampling"
    reference = "Strumbelj & Kononenko 2010, JMLR 11:1-18; 2014, KAIS 41:647-665"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 32,
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "batch_size": None,
        "seed": 0,
        "stream_every": 0,
        "callback": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_positive_int(params, "n_samples")
        check_batch_size(params)
        check_positive_int(params, "stream_every", 0)
        check_seed(params)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        games = self.games(inputs, resolved, params, progress)
        stream = Stream(params["stream_every"], params["callback"])
        phis, stderrs, counts = [], [], []
        for index, game in enumerate(games):
            try:
                phi, se = self._marginals(index, game, params, progress, stream)
            except Cancelled as exc:
                running = exc.partial if isinstance(exc.partial, Running) else None
                partial = cancelled_result(
                    self.name, games, phis, stderrs, counts, running, inputs, resolved, scores
                )
                raise Cancelled(str(exc), partial=partial) from exc
            phis.append(phi)
            stderrs.append(se)
            counts.append(2 * -(-params["n_samples"] // 2) if game.n_features > 1 else 0)
        values, extras = assemble(games, phis, inputs, resolved, scores)
        extras["stderr"] = stderrs
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
        phi, stderr = self._marginals(index, game, params, progress, stream)
        return phi, stderr, game.n_features == 1

    def _marginals(
        self, index: int, game: Game, params: dict[str, Any], progress: Progress, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = game.n_features
        device = game.masker.x.device
        ends = torch.stack(
            [torch.zeros(m, dtype=torch.bool, device=device), torch.ones(m, dtype=torch.bool, device=device)]
        )
        v_empty, v_full = game(ends)
        if m == 1:
            return (v_full - v_empty).to(torch.float64).reshape(1), torch.zeros(1, dtype=torch.float64, device=device)
        n_pairs = -(-params["n_samples"] // 2)
        perms = antithetic_permutations(m, n_pairs, generator(params["seed"], device), device)
        z = prefix_coalitions(perms)  # (orderings * (M - 1), M); repeated prefixes are evaluated once
        done = 0
        for batches, (covered, values) in enumerate(distinct_chunks(game, z), 1):
            done_before, done = done, covered // (2 * (m - 1)) * 2  # whole antithetic pairs of orderings
            estimate = None
            if done > done_before and (stream.due(batches) or (stream.active and done == 2 * n_pairs)):
                estimate = pair_mean_and_stderr(marginals(perms[:done], values[: done * (m - 1)], v_empty, v_full))
                stream.record(index, game.masker, *estimate, done)
            try:
                progress.update(covered, z.shape[0], f"{self.name}: input {index + 1}")
            except Cancelled as exc:
                if done == 0:
                    raise
                current = estimate or pair_mean_and_stderr(
                    marginals(perms[:done], values[: done * (m - 1)], v_empty, v_full)
                )
                raise Cancelled(str(exc), partial=Running(*current, done)) from exc
        return pair_mean_and_stderr(marginals(perms, values, v_empty, v_full))


@register
class ExactShapley(ShapleyMethod):
    """Exact Shapley values over at most 16 features (2**M model evaluations per input)."""

    name = "exact_shapley"
    reference = "Shapley 1953, Contributions to the Theory of Games II"
    defaults: ClassVar[dict[str, Any]] = {
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "batch_size": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_batch_size(params)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        games = self.games(inputs, resolved, params, progress)
        for game in games:
            if game.n_features > MAX_EXACT_PLAYERS:
                raise ParameterError(
                    f"exact_shapley enumerates 2**M coalitions and this input has M={game.n_features} features "
                    f"(more than {MAX_EXACT_PLAYERS}); pass coarser segments (e.g. segments='grid', "
                    "segmentation_params={'patch': ...}) or use 'kernel_shap' / 'shapley_sampling'"
                )
        stream = Stream(0, None)
        phis = [self.estimate(game, params, progress, index, stream)[0] for index, game in enumerate(games)]
        values, extras = assemble(games, phis, inputs, resolved, scores)
        return Attribution(values=values, method=self.name, target=resolved, scores=scores, extras=extras)

    def estimate(
        self, game: Any, params: dict[str, Any], progress: Progress, index: int, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        """Every one of the ``2**M`` coalitions (M <= 16), in the game's chunks."""
        m = game.n_features
        if m > MAX_EXACT_PLAYERS:
            hint = getattr(game, "fewer_features_hint", "")
            raise ParameterError(
                f"exact_shapley enumerates 2**M coalitions and this input has M={m} features (more than "
                f"{MAX_EXACT_PLAYERS}); use 'kernel_shap' or 'shapley_sampling'{hint}"
            )
        z = all_coalitions(m, game.masker.x.device)
        out: list[torch.Tensor] = []
        done = 0
        while done < z.shape[0]:
            out.append(game(z[done : done + game.chunk]))
            done += out[-1].shape[0]
            progress.update(done, z.shape[0], f"{self.name}: input {index + 1}")
        phi = shapley_from_table(torch.cat(out))
        return phi, torch.zeros_like(phi), True
