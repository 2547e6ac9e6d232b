"""Shared plumbing of the perturbation methods: targets, parameter checks, per-input games."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...core.attribution import Attribution
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target, scores_from_output
from ..base import GameResult, Method, require
from ..baselines import resolve_baseline
from .features import Game, Masker, baseline_rows, feature_map
from .streaming import Stream


def scores_and_target(model: Any, inputs: torch.Tensor, target: TargetLike) -> tuple[torch.Tensor, torch.Tensor]:
    """``(selected scores (N,), resolved target (N,))`` from one forward pass without autograd."""
    with torch.no_grad():
        scores = scores_from_output(model(inputs), inputs.shape[0])
    resolved = resolve_target(target, scores)
    return gather_scores(scores, resolved), resolved


def check_positive_int(params: dict[str, Any], name: str, minimum: int = 1) -> None:
    value = params.get(name)
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name} must be an integer >= {minimum}, got {value!r}",
    )


def check_batch_size(params: dict[str, Any]) -> None:
    """``batch_size``: rows per model call, or None to let the method measure the fastest size."""
    value = params.get("batch_size")
    require(
        value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1),
        f"batch_size must be None (chosen by measuring) or an integer >= 1, got {value!r}",
    )


def check_seed(params: dict[str, Any]) -> None:
    seed = params.get("seed")
    require(
        seed is None or (isinstance(seed, int) and not isinstance(seed, bool)),
        f"seed must be an integer or None, got {seed!r}",
    )


def generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (0 when None: results are reproducible by default)."""
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


class FeatureMethod(Method):
    """Base of the methods that explain over features (segments, patches or columns) of each input."""

    family = "perturbation"
    default_reduce = "mean"
    default_segmentation = "slic"

    def games(self, inputs: torch.Tensor, target: torch.Tensor, params: dict[str, Any], progress: Any) -> list[Game]:
        """One :class:`Game` per input, built from ``segments``/``segmentation_params``/``baseline``."""
        baseline = resolve_baseline(
            params.get("baseline"), inputs, self.classifier, seed=params.get("seed") or 0, background=True
        )
        games = []
        for i in range(inputs.shape[0]):
            seg = feature_map(
                inputs,
                i,
                params.get("segments"),
                params.get("segmentation_params"),
                self.classifier,
                default=self.default_segmentation,
            )
            masker = Masker(inputs[i : i + 1], seg, baseline_rows(baseline, inputs.shape[0], i))
            require(masker.n_features >= 1, "the segmentation produced no features")
            games.append(Game(self.model, masker, int(target[i]), params["batch_size"], progress))
        return games


class ShapleyMethod(FeatureMethod):
    """Base of the Shapley value estimators: on a game, ``v(empty)``, ``v(all)`` and :meth:`estimate`."""

    def estimate(
        self, game: Any, params: dict[str, Any], progress: Progress, index: int, stream: Stream
    ) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        """``(phi (M,), standard errors or None, exact)`` for one input's game."""
        raise NotImplementedError

    def explain_game(
        self, game: Any, params: dict[str, Any], progress: Progress, *, index: int = 0, stream: Stream | None = None
    ) -> GameResult:
        base, output = end_values(game)
        phi, stderr, exact = self.estimate(game, params, progress, index, stream or Stream(0, None))
        return GameResult(phi, output, {"base_value": base, "stderr": stderr, "exact": exact})


def end_values(game: Any) -> tuple[float, float]:
    """``(v(empty), v(all))`` of a game (two coalitions, one model call)."""
    ends = torch.zeros(2, game.n_features, dtype=torch.bool, device=game.masker.x.device)
    ends[1] = True
    v = game(ends)
    return float(v[0]), float(v[1])


def assemble(
    games: list[Game],
    phis: list[torch.Tensor],
    inputs: torch.Tensor,
    target: torch.Tensor,
    scores: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Input-shaped values from per-feature values, and the extras every feature method returns."""
    values = torch.stack([g.masker.to_input_space(p.to(inputs.dtype)) for g, p in zip(games, phis)])
    segments = torch.stack([g.masker.segments for g in games]) if _same_shape(games) else None
    extras: dict[str, Any] = {
        "feature_values": [p.detach() for p in phis],
        "segments": segments,
        "n_features": [g.n_features for g in games],
        "n_evaluations": [g.evaluations for g in games],
    }
    return values, extras


def _same_shape(games: list[Game]) -> bool:
    return len({tuple(g.masker.segments.shape) for g in games}) == 1


@dataclass
class Running:
    """The estimate of the input in progress when a method was cancelled (all samples evaluated so far)."""

    values: torch.Tensor
    stderr: torch.Tensor | None
    n_samples: int


def cancelled_result(
    method: str,
    games: list[Game],
    finished: list[torch.Tensor],
    finished_stderr: list[torch.Tensor | None],
    finished_samples: list[int],
    running: Running | None,
    inputs: torch.Tensor,
    target: torch.Tensor,
    scores: torch.Tensor,
) -> Attribution:
    """The best estimate at cancellation: finished inputs, the running estimate of the current one (every
    sample evaluated so far), zeros for the rest. Flagged in ``extras``: ``cancelled=True``, ``complete``
    (per input), ``n_samples_done`` (per input) and ``stderr`` (per input, None where unknown)."""
    parts, errs, counts = list(finished), list(finished_stderr), list(finished_samples)
    if running is not None:
        parts.append(running.values)
        errs.append(running.stderr)
        counts.append(int(running.n_samples))
    while len(parts) < len(games):
        parts.append(torch.zeros(games[len(parts)].n_features, dtype=torch.float64, device=inputs.device))
        errs.append(None)
        counts.append(0)
    values, extras = assemble(games, [p.to(inputs.device) for p in parts], inputs, target, scores)
    extras.update(
        cancelled=True,
        complete=[i < len(finished) for i in range(len(games))],
        n_samples_done=counts,
        stderr=errs,
    )
    return Attribution(values=values, method=method, target=target, scores=scores, extras=extras)


def partial_attribution(
    method: str, values: torch.Tensor, target: torch.Tensor, scores: torch.Tensor, extras: dict[str, Any]
) -> Attribution:
    return Attribution(values=values, method=method, target=target, scores=scores, extras=extras)
