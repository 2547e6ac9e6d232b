"""Coalition games of one text or one table row, shaped like the image path's ``Game`` so the perturbation
estimators (KernelSHAP, Shapley sampling, exact Shapley, LIME) run on them unchanged.

A game maps coalitions ``z`` ``(S, M)`` (True: the feature keeps the input's value) to the target score
``v(z)`` ``(S,)``, evaluated in chunks of ``chunk`` coalitions. For text the absent tokens or words are
replaced (``TextClassifier.score_coalitions``); for tabular rows the absent features come from each
background row and the scores are averaged (``TabularModel.score_coalitions``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...core.tabular import TabularModel
from ...core.text import Encoding, TextClassifier


class FeatureSpace:
    """Stands in for the image path's ``Masker``: the features are already the explained units, so maps
    over features are the per-feature values themselves."""

    n_background = 1

    def __init__(self, n_features: int, device: torch.device) -> None:
        self.n_features = n_features
        self.x = torch.zeros(1, n_features, device=device)  # device and dtype carrier
        self.segments = torch.arange(n_features, device=device)

    def to_feature_map(self, phi: torch.Tensor) -> torch.Tensor:
        return phi

    def to_input_space(self, phi: torch.Tensor) -> torch.Tensor:
        return phi


class CoalitionGame:
    """``v(z)`` of one input over ``n_features`` players, in chunks of ``chunk`` coalitions.

    ``rows_per_coalition`` is the model rows one coalition costs (the background size for tabular
    games); ``evaluations`` counts model rows.
    """

    def __init__(
        self,
        value: Callable[[torch.Tensor], torch.Tensor],
        n_features: int,
        device: torch.device,
        chunk: int,
        rows_per_coalition: int = 1,
    ) -> None:
        self.value = value
        self.n_features = int(n_features)
        self.masker = FeatureSpace(self.n_features, device)
        self.chunk = max(1, int(chunk))
        self.rows_per_coalition = int(rows_per_coalition)
        self.evaluations = 0

    @property
    def batch_size(self) -> int:
        """Coalitions per model call (the name the image path's estimators read)."""
        return self.chunk

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for a in range(0, z.shape[0], self.chunk):
                part = z[a : a + self.chunk]
                out.append(self.value(part).detach().to(torch.float64).reshape(-1))
                self.evaluations += part.shape[0] * self.rows_per_coalition
        if not out:
            return torch.zeros(0, dtype=torch.float64, device=self.masker.x.device)
        return torch.cat(out)


def text_game(
    clf: TextClassifier, enc: Encoding, target: int, *, level: str, replace: str, batch_size: int
) -> CoalitionGame:
    """The game of one text: features are its tokens or words, absent ones replaced (or removed)."""
    n = len(clf.features(enc, level))

    def value(z: torch.Tensor) -> torch.Tensor:
        return clf.score_coalitions(enc, z, level=level, replace=replace, batch_size=batch_size)[:, target]

    return CoalitionGame(value, n, clf.device, batch_size)


def tabular_game(
    model: TabularModel, x: torch.Tensor, target: int, background: torch.Tensor, *, batch_size: int
) -> CoalitionGame:
    """The interventional game of one row ``x`` ``(1, d)``: ``v(z) = mean_b f(x_z, b_~z)``."""
    nb = int(background.shape[0])

    def value(z: torch.Tensor) -> torch.Tensor:
        return model.score_coalitions(x, z, background, batch_size=batch_size)[:, target]

    return CoalitionGame(value, x.shape[1], x.device, max(1, batch_size // nb), rows_per_coalition=nb)
