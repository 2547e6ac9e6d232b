"""Explanation selection: sweep one hyperparameter of a method and pick the value a metric prefers.

Which LRP gamma, SmoothGrad noise level or number of Integrated-Gradients steps to use is a choice the
explanation's quality depends on; instead of guessing, score each candidate with a metric on the same
inputs and targets and keep the best (the selection-by-metric recipe of e.g. Hedström et al. 2023,
"Quantus", JMLR 24(34), arXiv:2202.06861, and Rong et al. 2022, "ROAD", arXiv:2202.00449).

A metric is any callable ``metric(model, inputs, attribution, target) -> (N,) scores`` (a tensor, array or
list, one value per sample) with a ``higher_is_better`` attribute or the ``higher_is_better`` argument,
or one of the built-in names in ``METRICS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.attribution import Attribution
from ..core.errors import Cancelled, ParameterError
from ..core.progress import Progress, as_progress
from ..core.targets import TargetLike
from ..methods.registry import get_method
from ._maps import prepare
from .axioms import completeness, selectivity
from .complexity import effective_complexity, sparseness

Metric = Callable[[Any, torch.Tensor, Attribution, torch.Tensor], Any]


def _named(fn: Metric, name: str, higher_is_better: bool) -> Metric:
    fn.__name__ = name
    fn.higher_is_better = higher_is_better  # type: ignore[attr-defined]
    return fn


#: built-in metrics by name: each ``(model, inputs, attribution, target) -> (N,)`` with a direction
METRICS: dict[str, Metric] = {
    "selectivity_gain": _named(
        lambda m, x, a, t: selectivity(m, x, a, t, steps=16, n_random=4, progress=False).gain,
        "selectivity_gain", True,
    ),
    "completeness_gap": _named(lambda m, x, a, t: completeness(m, x, a, t).relative_gap, "completeness_gap", False),
    "sparseness": _named(lambda m, x, a, t: sparseness(a), "sparseness", True),
    "effective_complexity": _named(
        lambda m, x, a, t: effective_complexity(a, fraction=True), "effective_complexity", False
    ),
}


@dataclass
class SweepResult:
    """Scores of one method over a parameter's candidate values (the sweep plot's data).

    ``scores``: ``(V, N)`` float64, one row per value; ``best_index`` / ``best_value``: the value with the
    best mean score (NaN rows never win); ``attributions``: the explanations per value when kept.
    """

    method: str
    param: str
    values: list[Any]
    scores: np.ndarray
    metric: str
    higher_is_better: bool
    target: torch.Tensor
    attributions: list[Attribution] = field(default_factory=list)

    @property
    def mean(self) -> np.ndarray:
        return np.array([np.nanmean(r) if np.isfinite(r).any() else math.nan for r in self.scores])

    @property
    def best_index(self) -> int:
        mean = self.mean
        if not np.isfinite(mean).any():
            raise ValueError("no candidate value produced a finite score")
        masked = np.where(np.isfinite(mean), mean if self.higher_is_better else -mean, -np.inf)
        return int(np.argmax(masked))

    @property
    def best_value(self) -> Any:
        return self.values[self.best_index]

    def plot_data(self) -> dict[str, Any]:
        """``x`` (the values), mean and quartiles of the score per value, and the best value."""
        finite = [r[np.isfinite(r)] if np.isfinite(r).any() else np.array([math.nan]) for r in self.scores]
        return {
            "param": self.param, "metric": self.metric, "higher_is_better": self.higher_is_better,
            "x": list(self.values), "mean": self.mean.tolist(),
            "q25": [float(np.quantile(r, 0.25)) for r in finite],
            "q75": [float(np.quantile(r, 0.75)) for r in finite],
            "best": self.best_value,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"method": self.method, self.param: v, self.metric: float(m), "best": i == self.best_index}
            for i, (v, m) in enumerate(zip(self.values, self.mean))
        ]


def _metric(metric: str | Metric, higher_is_better: bool | None) -> tuple[Metric, str, bool]:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ParameterError(
                f"unknown metric {metric!r}; built-in metrics: {', '.join(METRICS)}, or pass a callable"
            )
        metric = METRICS[metric]
    if not callable(metric):
        raise ParameterError("metric must be a name from METRICS or a callable (model, inputs, attribution, target)")
    direction = higher_is_better if higher_is_better is not None else getattr(metric, "higher_is_better", None)
    if direction is None:
        raise ParameterError(
            f"say whether higher scores of {getattr(metric, '__name__', 'the metric')} are better: "
            "higher_is_better=True or False"
        )
    return metric, getattr(metric, "__name__", type(metric).__name__), bool(direction)


def _per_sample(scores: Any, n: int, name: str) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().double().numpy()
    arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    if arr.size == 1 and n > 1:
        arr = np.full(n, float(arr[0]))
    if arr.size != n:
        raise ParameterError(f"the metric {name} returned {arr.size} scores for {n} samples; return one per sample")
    return arr


def sweep(
    model: Any,
    inputs: Any,
    method: str,
    param: str,
    values: Sequence[Any],
    metric: str | Metric,
    target: TargetLike = None,
    *,
    params: Mapping[str, Any] | None = None,
    higher_is_better: bool | None = None,
    keep: bool = False,
    progress: Progress | bool | None = None,
) -> SweepResult:
    """Explain ``inputs`` with ``method`` for each ``param`` value in ``values`` (other parameters from
    ``params``) and score each explanation with ``metric``; e.g. ``sweep(model, x, "lrp_gamma", "gamma",
    [0.0, 0.1, 0.25, 1.0], "selectivity_gain")``. Targets are resolved once, so every value explains the
    same classes. ``keep=True`` keeps the attributions. Cancelling raises ``Cancelled`` whose ``partial``
    is the result over the values done so far."""
    cls = get_method(method)
    if not values:
        raise ParameterError("values must list at least one candidate")
    cls.check_params({param: values[0], **(params or {})})
    fn, name, direction = _metric(metric, higher_is_better)
    _, x, resolved, _ = prepare(model, inputs, target)
    tracker = as_progress(progress)
    rows: list[np.ndarray] = []
    kept: list[Attribution] = []

    def result() -> SweepResult:
        scores = np.stack(rows) if rows else np.zeros((0, x.shape[0]))
        return SweepResult(method=cls.name, param=param, values=list(values)[: len(rows)], scores=scores,
                           metric=name, higher_is_better=direction, target=resolved.cpu(), attributions=kept)

    try:
        for i, value in enumerate(values):
            attribution = cls(model).attribute(x, resolved, progress=False, **{**(params or {}), param: value})
            rows.append(_per_sample(fn(model, x, attribution, resolved), x.shape[0], name))
            if keep:
                kept.append(attribution)
            tracker.update(i + 1, len(values), f"{cls.name} {param}")
    except Cancelled as exc:
        raise Cancelled("sweep cancelled", partial=result()) from exc
    finally:
        tracker.close()
    return result()


__all__ = ["METRICS", "SweepResult", "sweep"]
