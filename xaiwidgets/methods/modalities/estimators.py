"""The perturbation estimators on text and tabular coalition games, sharing the image path's code.

KernelSHAP and Shapley sampling run the image methods' own per-input routines (``KernelShap._one``,
``ShapleySampling._one``: sampling, chunking, standard errors, streaming, cancellation) on a
:class:`~.games.CoalitionGame`; exact Shapley values use ``all_coalitions`` + ``shapley_from_table``; the
LIME surrogate uses the image path's ``select_features`` and ``ridge`` (lime's feature selection and
``Ridge(alpha=1)``), with the distances each modality defines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ...core.errors import ParameterError
from ...core.progress import Progress
from ..perturbation.games import MAX_EXACT_PLAYERS, all_coalitions, shapley_from_table
from ..perturbation.lime import ridge, select_features
from ..perturbation.streaming import Stream
from .games import CoalitionGame

SHAPLEY_METHODS = ("kernel_shap", "exact_shapley", "shapley_sampling")


@dataclass
class GameResult:
    """Per-feature values of one input and what the result contract reports about them."""

    phi: torch.Tensor  # (M,) float64
    base_value: float
    output_value: float
    stderr: torch.Tensor | None = None
    exact: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def end_values(game: CoalitionGame) -> tuple[float, float]:
    """``(v(empty), v(all))`` of a game (two coalitions, one model call)."""
    m, device = game.n_features, game.masker.x.device
    ends = torch.zeros(2, m, dtype=torch.bool, device=device)
    ends[1] = True
    v = game(ends)
    return float(v[0]), float(v[1])


def exact_shapley(game: CoalitionGame, progress: Progress, label: str, hint: str = "") -> torch.Tensor:
    """Exact Shapley values over all ``2**M`` coalitions (M <= 16), in the game's chunks."""
    m = game.n_features
    if m > MAX_EXACT_PLAYERS:
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
        progress.update(done, z.shape[0], label)
    return shapley_from_table(torch.cat(out))


def shapley_game(method: Any, index: int, game: CoalitionGame, params: dict[str, Any], progress: Progress,
                 stream: Stream, hint: str = "") -> GameResult:
    """One input's Shapley-type values with ``method`` (a KernelShap, ShapleySampling or ExactShapley);
    ``hint`` ends the error message when there are too many features for exact values."""
    base, output = end_values(game)
    if method.name == "exact_shapley":
        phi = exact_shapley(game, progress, f"{method.name}: input {index + 1}", hint)
        return GameResult(phi, base, output, torch.zeros_like(phi), True)
    if method.name == "kernel_shap":
        found = method._one(index, game, params, progress, stream)  # (phi, stderr, exact, ...)
        return GameResult(found[0], base, output, found[1], bool(found[2]))
    if method.name == "shapley_sampling":
        found = method._one(index, game, params, progress, stream)  # (phi, stderr, ...)
        return GameResult(found[0], base, output, found[1], game.n_features == 1)
    raise ParameterError(f"{method.name} is not a Shapley estimator")  # pragma: no cover - dispatch guards it


def lime_kernel(distances: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """lime's exponential kernel ``sqrt(exp(-d**2 / width**2))``."""
    d = distances.to(torch.float64)
    return torch.sqrt(torch.exp(-(d**2) / float(kernel_width) ** 2))


def lime_surrogate(
    data: torch.Tensor,
    y: torch.Tensor,
    distances: torch.Tensor,
    kernel_width: float,
    num_features: int | None,
    feature_selection: str,
) -> dict[str, torch.Tensor]:
    """lime's ``LimeBase.explain_instance_with_data``: kernel weights from ``distances``, feature selection,
    weighted ``Ridge(alpha=1)`` with intercept on ``data`` (row 0 the explained instance).

    Returns ``weights`` (M,) (zero for features not selected), ``intercept``, ``r2`` (weighted, on the
    fitting data), ``local_pred`` (the surrogate at row 0), ``used``, ``kernel_weights``.
    """
    data = data.to(torch.float64)
    m = data.shape[1]
    weights = lime_kernel(distances, kernel_width)
    if num_features is None:
        feature_selection, k = "none", m
    else:
        k = min(int(num_features), m)
    used = select_features(data, y, weights, k, feature_selection)
    coef, intercept, r2 = ridge(data[:, used], y, weights, 1.0)
    full = torch.zeros(m, dtype=torch.float64, device=data.device)
    full[used] = coef
    local_pred = (data[0, used] @ coef + intercept).reshape(())
    return {"weights": full, "intercept": intercept, "r2": r2, "local_pred": local_pred, "used": used,
            "kernel_weights": weights}
