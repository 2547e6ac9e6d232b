"""LIME (Ribeiro, Singh & Guestrin 2016, "Why Should I Trust You?", arXiv:1602.04938).

Random coalitions of features (superpixels by default, lime's quickshift settings) are switched off
(replaced by the baseline); a weighted ridge regression of the target score on the coalitions, with the
exponential kernel ``sqrt(exp(-d**2 / kernel_width**2))`` of the cosine distance to the full coalition,
gives the feature weights. Sampling, distances, kernel, feature selection and the ridge fit (alpha=1,
with intercept, in closed form in torch) follow the lime package (``LimeImageExplainer`` and
``LimeBase.explain_instance_with_data``), so with the same segmentation and the same perturbation matrix
(pass ``coalitions=``) the weights equal lime's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.errors import Cancelled
from ...core.progress import Progress
from ...core.targets import TargetLike
from ..base import GameResult, require
from ..registry import register
from ._common import (
    FeatureMethod,
    Running,
    assemble,
    cancelled_result,
    check_batch_size,
    check_positive_int,
    check_seed,
    generator,
    scores_and_target,
)
from .features import Game
from .streaming import Stream

FEATURE_SELECTIONS = ("none", "auto", "highest_weights", "forward_selection")


def ridge(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted ridge with an unpenalised intercept (as scikit-learn's ``Ridge``): ``(coef, intercept, R^2)``.

    The weighted R^2 is computed on the fitting data, as lime's ``score``.
    """
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    w = w.to(torch.float64)
    ws = w.sum()
    xm = (w[:, None] * x).sum(0) / ws
    ym = (w * y).sum() / ws
    xc, yc = x - xm, y - ym
    gram = xc.T @ (w[:, None] * xc) + alpha * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    rhs = xc.T @ (w * yc)
    coef = torch.linalg.lstsq(gram, rhs[:, None]).solution[:, 0] if alpha == 0 else torch.linalg.solve(gram, rhs)
    intercept = ym - xm @ coef
    pred = x @ coef + intercept
    ss_res = (w * (y - pred) ** 2).sum()
    ss_tot = (w * (y - ym) ** 2).sum()
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else torch.ones((), dtype=x.dtype, device=x.device)
    return coef, intercept, r2


def select_features(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, num_features: int, method: str) -> torch.Tensor:
    """The feature indices lime's ``LimeBase.feature_selection`` picks (none, auto, highest_weights,
    forward_selection)."""
    m = z.shape[1]
    if method == "auto":
        method = "forward_selection" if num_features <= 6 else "highest_weights"
    if method == "none":
        return torch.arange(m, device=z.device)
    if method == "highest_weights":
        coef, _, _ = ridge(z, y, w, 0.01)
        score = (coef * z[0].to(torch.float64)).abs()
        # stable descending order by |weight|, like Python's sorted(..., reverse=True)
        order = torch.sort(-score, stable=True).indices
        return order[:num_features]
    used: list[int] = []
    for _ in range(min(num_features, m)):
        best, best_score = 0, -1e8
        for f in range(m):
            if f in used:
                continue
            _, _, r2 = ridge(z[:, [*used, f]], y, w, 0.0)
            if float(r2) > best_score:
                best, best_score = f, float(r2)
        used.append(best)
    return torch.tensor(used, device=z.device, dtype=torch.long)


def cosine_distances(z: torch.Tensor) -> torch.Tensor:
    """``1 - cos(z_i, z_0)`` (0 similarity for an all-zero row), as ``sklearn.metrics.pairwise_distances(metric=
    "cosine")`` to row 0."""
    zf = z.to(torch.float64)
    ref = zf[0]
    norms = zf.norm(dim=1)
    cos = (zf @ ref) / (norms.clamp_min(1e-300) * ref.norm().clamp_min(1e-300))
    cos = torch.where(norms > 0, cos, torch.zeros_like(cos))
    return (1 - cos).clamp(0, 2)


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
    if num_features is None:  # lime's image default (100000 features) keeps them all
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


def lime_fit(
    z: torch.Tensor, y: torch.Tensor, kernel_width: float, num_features: int | None, feature_selection: str
) -> dict[str, torch.Tensor]:
    """LIME's surrogate for coalitions ``z`` (row 0 the full coalition) and target scores ``y``, with the
    image explainer's cosine distance to row 0."""
    distances = cosine_distances(z)
    return {**lime_surrogate(z, y, distances, kernel_width, num_features, feature_selection), "distances": distances}


@register
class Lime(FeatureMethod):
    """LIME with a weighted ridge surrogate over superpixels (images) or columns; see the module docstring.

    ``coalitions`` injects the ``(n_samples, M)`` 0/1 perturbation matrix (row 0 should be all ones, as in
    lime); ``segments`` injects the segmentation.
    """

    name = "lime"
    reference = "Ribeiro, Singh & Guestrin 2016, arXiv:1602.04938"
    default_segmentation = "quickshift"
    text_replace = "remove"  # as the lime package's text explainer
    modality_params: ClassVar[dict[str, dict[str, Any]]] = {
        "tabular": {"discretize": True, "sample_around_instance": True, "samples": None}
    }
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 1000,
        "kernel_width": 0.25,
        "num_features": None,
        "feature_selection": "auto",
        "baseline": 0.0,
        "segments": None,
        "segmentation_params": None,
        "coalitions": None,
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
        kw = params["kernel_width"]
        require(
            isinstance(kw, (int, float)) and not isinstance(kw, bool) and kw > 0,
            f"kernel_width must be a positive number, got {kw!r}",
        )
        require(
            params["feature_selection"] in FEATURE_SELECTIONS,
            f"feature_selection must be one of {', '.join(FEATURE_SELECTIONS)}, got {params['feature_selection']!r}",
        )
        nf = params["num_features"]
        require(nf is None or (isinstance(nf, int) and nf >= 1), f"num_features must be None or >= 1, got {nf!r}")

    def explain_game(
        self, game: Any, params: dict[str, Any], progress: Progress, *, index: int = 0, stream: Stream | None = None
    ) -> GameResult:
        """The surrogate's weights for the game of a text or a table row, on the perturbations the game's
        modality draws (``game.neighbourhood``: the lime package's text and tabular distributions)."""
        data, y, distances = game.neighbourhood(params, index, progress, f"{self.name}: input {index + 1}")
        fit = lime_surrogate(data, y, distances, params["kernel_width"], params["num_features"],
                             params["feature_selection"])
        return GameResult(fit["weights"], float(y[0]), {
            "intercept": fit["intercept"], "r2": fit["r2"], "weights": fit["weights"],
            "local_pred": fit["local_pred"], "used_features": fit["used"]})

    def _coalitions(self, game: Game, params: dict[str, Any], index: int) -> torch.Tensor:
        device = game.masker.x.device
        z = params["coalitions"]
        m = game.n_features
        if z is not None:
            z = torch.as_tensor(z, device=device)
            if z.dim() == 3:
                z = z[index]
            require(
                z.dim() == 2 and z.shape[1] == m,
                f"coalitions must be (n_samples, {m}) for this input's {m} features, got {tuple(z.shape)}",
            )
            return z.to(torch.bool) if z.dtype == torch.bool else z != 0
        gen = generator(params["seed"] + index if params["seed"] is not None else index, device)
        z = torch.rand(params["n_samples"], m, generator=gen, device=device) < 0.5
        z[0] = True
        return z

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        games = self.games(inputs, resolved, params, progress)
        stream = Stream(params["stream_every"], params["callback"])
        fits, phis = [], []
        for index, game in enumerate(games):
            z = self._coalitions(game, params, index)
            ys: list[torch.Tensor] = []
            batches = done = 0
            while done < z.shape[0]:
                ys.append(game(z[done : done + game.chunk]))  # the game's measured batch size
                batches += 1
                done += ys[-1].shape[0]
                if stream.due(batches) and done >= 3:
                    fit = lime_fit(z[:done], torch.cat(ys), params["kernel_width"], params["num_features"], "none")
                    stream.record(index, game.masker, fit["weights"], None, done)
                try:
                    progress.update(done, z.shape[0], f"{self.name}: input {index + 1}")
                except Cancelled as exc:
                    running = None
                    if done >= 3:
                        fit = lime_fit(z[:done], torch.cat(ys), params["kernel_width"], None, "none")
                        running = Running(fit["weights"], None, done)
                    counts = [len(f["kernel_weights"]) for f in fits]
                    partial = cancelled_result(
                        self.name, games, phis, [None] * len(phis), counts, running, inputs, resolved, scores
                    )
                    raise Cancelled(str(exc), partial=partial) from exc
            fit = lime_fit(
                z, torch.cat(ys), params["kernel_width"], params["num_features"], params["feature_selection"]
            )
            fits.append(fit)
            phis.append(fit["weights"])
        values, extras = assemble(games, phis, inputs, resolved, scores)
        extras.update(
            segment_weights=[f["weights"] for f in fits],
            intercept=torch.stack([f["intercept"] for f in fits]),
            r2=torch.stack([f["r2"] for f in fits]),
            local_pred=torch.stack([f["local_pred"] for f in fits]),
            used_features=[f["used"] for f in fits],
        )
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
