"""Coalition games of one text or one table row, shaped like the image path's ``Game`` so the perturbation
estimators' ``explain_game`` (KernelSHAP, Shapley sampling, exact Shapley) runs on them unchanged; LIME
draws its own perturbations of the input (:meth:`TextGame.neighbourhood`, :meth:`TabularGame.neighbourhood`,
the lime package's text and tabular distributions).

A game maps coalitions ``z`` ``(S, M)`` (True: the feature keeps the input's value) to the target score
``v(z)`` ``(S,)``, evaluated in chunks of ``chunk`` coalitions. For text the absent tokens or words are
replaced (``TextClassifier.score_coalitions``); for tabular rows the absent features come from each
background row and the scores are averaged (``TabularModel.score_coalitions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...core.attribution import Attribution
from ...core.errors import Cancelled, ParameterError
from ...core.progress import Progress
from ...core.tabular import TabularModel
from ...core.text import Encoding, TextClassifier
from ..base import GameResult, Method
from ..perturbation._common import generator
from ..perturbation.streaming import Stream
from .lime_sampling import cosine_distances, tabular_samples, text_coalitions
from .progress import InputProgress


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


class TextGame(CoalitionGame):
    """The game of one text: features are its tokens or words, absent ones replaced (or removed)."""

    def __init__(
        self, clf: TextClassifier, enc: Encoding, target: int, *, level: str, replace: str, batch_size: int
    ) -> None:
        def value(z: torch.Tensor) -> torch.Tensor:
            return clf.score_coalitions(enc, z, level=level, replace=replace, batch_size=batch_size)[:, target]

        super().__init__(value, len(clf.features(enc, level)), clf.device, batch_size)
        self.fewer_features_hint = " (level='word' has fewer features)" if level == "token" else ""

    def neighbourhood(
        self, params: dict[str, Any], index: int, progress: Progress, label: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LIME's ``(data, y, distances)`` for this text, as ``LimeTextExplainer``: ``params["coalitions"]`` or
        :func:`.lime_sampling.text_coalitions`, their scores, cosine distances to row 0 times 100."""
        m, device = self.n_features, self.masker.x.device
        z = params["coalitions"]
        if z is not None:
            z = torch.as_tensor(z, device=device)
            z = z[index] if z.dim() == 3 else z
            if z.dim() != 2 or z.shape[1] != m or z.shape[0] < 2:
                raise ParameterError(f"coalitions must be (n_samples >= 2, {m}) for text {index}'s {m} features; "
                                     f"got {tuple(z.shape)}")
            z = z != 0
        else:
            seed = params["seed"]
            gen = generator(index if seed is None else seed + index, device)
            z = text_coalitions(m, params["n_samples"], gen, device)
        ys, done = [], 0
        while done < z.shape[0]:
            ys.append(self(z[done : done + self.chunk]))
            done += ys[-1].shape[0]
            progress.update(done, z.shape[0], label)
        return z, torch.cat(ys), cosine_distances(z) * 100


class TabularGame(CoalitionGame):
    """The interventional game of one row ``x`` ``(1, d)``: ``v(z) = mean_b f(x_z, b_~z)``."""

    fewer_features_hint = ""

    def __init__(
        self, model: TabularModel, x: torch.Tensor, target: int, background: torch.Tensor, *, batch_size: int
    ) -> None:
        nb = int(background.shape[0])

        def value(z: torch.Tensor) -> torch.Tensor:
            return model.score_coalitions(x, z, background, batch_size=batch_size)[:, target]

        super().__init__(value, x.shape[1], x.device, max(1, batch_size // nb), rows_per_coalition=nb)
        self.model, self.x, self.target, self.background, self.rows = model, x, int(target), background, batch_size

    def neighbourhood(
        self, params: dict[str, Any], index: int, progress: Progress, label: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LIME's ``(data, y, distances)`` for this row, as ``LimeTabularExplainer`` (see
        :func:`.lime_sampling.tabular_samples`; ``params``: ``discretize``, ``sample_around_instance``,
        ``samples``). The rows are scored by the model itself, not through the game's background average."""
        samples = params["samples"]
        if samples is not None:
            samples = torch.as_tensor(samples)
            samples = samples[index] if samples.dim() == 3 else samples
        seed = params["seed"]
        gen = generator(index if seed is None else seed + index, torch.device("cpu"))
        rows, data, distances = tabular_samples(
            self.x, self.background, params["n_samples"], gen, discretize=bool(params["discretize"]),
            sample_around_instance=bool(params["sample_around_instance"]), samples=samples,
        )
        ys = []
        with torch.no_grad():
            for a in range(0, rows.shape[0], self.rows):
                ys.append(self.model(rows[a : a + self.rows])[:, self.target].double())
                progress.update(min(a + self.rows, rows.shape[0]), rows.shape[0], label)
        self.evaluations += rows.shape[0]
        return data, torch.cat(ys), distances


# --------------------------------------------------------------------------------------------------------
# playing the games of N inputs (shared by text and tabular)


def play(
    method: Method, games: list[CoalitionGame], params: dict[str, Any], progress: Progress,
    partial: Callable[[list[GameResult]], Attribution],
) -> tuple[list[GameResult], Stream]:
    """``method.explain_game`` on each game in turn, with running estimates every ``stream_every`` model
    batches; on cancel, ``Cancelled`` carries ``partial(finished results)``."""
    stream = Stream(params.get("stream_every"), params.get("callback"))
    done: list[GameResult] = []
    try:
        for i, game in enumerate(games):
            sub = InputProgress(progress, i, len(games))
            done.append(method.explain_game(game, params, sub, index=i, stream=stream))
    except Cancelled as exc:
        raise Cancelled(str(exc), partial=partial(done)) from exc
    return done, stream


def game_extras(done: list[GameResult], games: list[CoalitionGame]) -> dict[str, Any]:
    """The extras of the game methods: ``output_value``, ``n_evaluations`` and each method's own, over the
    inputs (0-dim tensors stacked, floats as a float64 tensor, anything else as a list)."""
    out: dict[str, Any] = {
        "output_value": torch.tensor([r.output_value for r in done], dtype=torch.float64),
        "n_evaluations": [g.evaluations for g in games],
    }
    for key in done[0].extras if done else ():
        values = [r.extras[key] for r in done]
        if all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in values):
            out[key] = torch.stack(values).cpu()
        elif all(isinstance(v, float) for v in values):
            out[key] = torch.tensor(values, dtype=torch.float64)
        else:
            out[key] = [v.cpu() if isinstance(v, torch.Tensor) else v for v in values]
    return out


def with_frames(result: Attribution, stream: Stream) -> Attribution:
    """``result`` with the running estimates ``stream`` recorded, if any (``frame_kind="estimate"``)."""
    frames = stream.frames()
    if frames:
        result.frames, result.frame_kind = frames, "estimate"
    return result
