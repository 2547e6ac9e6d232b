"""Result objects of the faithfulness and robustness metrics: small, numpy, ready to draw.

:class:`PerturbationCurve` holds deletion / insertion / ROAD curves (one row per input) with AUC, AOPC and
the accuracy curve, and rebuilds the perturbed input of any step on demand (``perturbed(i, k)``), so a
view can show the image under the cursor without storing every step. :class:`SampleScores` holds one
value per input (faithfulness correlation, infidelity, max-sensitivity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def _trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise trapezoidal integral of ``y`` over ``x`` (both ``(N, K)``)."""
    return (0.5 * (y[:, 1:] + y[:, :-1]) * np.diff(x, axis=1)).sum(1)


@dataclass(eq=False)
class PerturbationCurve:
    """The model's output as features are perturbed in an explanation's order, for ``N`` inputs.

    ``scores[i, k]`` is the output (``output``: softmax probability or logit) for the target after step
    ``k`` (``k = 0``: nothing perturbed), ``counts[i, k]`` the number of features perturbed out of
    ``n_features[i]`` and ``fractions = counts / n_features``; ``still_top[i, k]`` says whether the target
    is still the top class. ``mode`` is ``"deletion"`` (features replaced by the baseline, or imputed for
    ROAD) or ``"insertion"`` (features put back into the baseline), ``order`` ``"morf"``, ``"lerf"`` or
    ``"random"``.
    """

    metric: str
    mode: str
    order: str
    scores: np.ndarray
    counts: np.ndarray
    n_features: np.ndarray
    still_top: np.ndarray
    target: np.ndarray
    output: str
    params: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    rebuild: Callable[[int, int], torch.Tensor] | None = field(default=None, repr=False)
    classifier: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_steps(self) -> int:
        """``L``: the curve has ``L + 1`` points."""
        return int(self.scores.shape[1]) - 1

    @property
    def fractions(self) -> np.ndarray:
        """``(N, L + 1)`` fraction of the features perturbed after each step."""
        return self.counts / np.maximum(self.n_features, 1)[:, None]

    @property
    def mean_fractions(self) -> np.ndarray:
        return self.fractions.mean(0)

    @property
    def mean_curve(self) -> np.ndarray:
        """``(L + 1,)`` the curve averaged over the inputs."""
        return self.scores.mean(0)

    @property
    def auc(self) -> np.ndarray:
        """``(N,)`` area under each curve over the perturbed fraction (trapezoidal rule). Deletion: lower is
        better in MoRF order; insertion: higher is better (Petsiuk et al. 2018, arXiv:1806.07421)."""
        return _trapezoid(self.scores.astype(np.float64), self.fractions)

    @property
    def drop(self) -> np.ndarray:
        """``(N, L + 1)`` ``f(x^(0)) - f(x^(k))``: how far each step moved the output from the start."""
        s = self.scores.astype(np.float64)
        return s[:, :1] - s

    @property
    def aopc(self) -> np.ndarray:
        """``(N,)`` area over the perturbation curve, ``1/(L+1) sum_{k=0..L} (f(x^(0)) - f(x^(k)))``
        (Samek et al. 2017, arXiv:1509.06321; its mean over the inputs is the paper's AOPC). For insertion
        the sign is flipped (the average gain), so for MoRF higher is better in both modes."""
        aopc = self.drop.mean(1)
        return -aopc if self.mode == "insertion" else aopc

    @property
    def aopc_curve(self) -> np.ndarray:
        """``(L + 1,)`` AOPC after ``k`` steps, ``1/(k+1) sum_{j<=k} <f(x^(0)) - f(x^(j))>`` (Samek et al.)."""
        drop = self.drop.mean(0)
        curve = np.cumsum(drop) / np.arange(1, drop.size + 1)
        return -curve if self.mode == "insertion" else curve

    @property
    def accuracy(self) -> np.ndarray:
        """``(L + 1,)`` fraction of the inputs whose target is still the top class after each step."""
        return self.still_top.mean(0)

    def perturbed(self, index: int, step: int) -> torch.Tensor:
        """The model input ``(1, ...)`` of input ``index`` after ``step`` steps (rebuilt, not stored)."""
        if self.rebuild is None:
            raise ValueError("this curve was built without its inputs; it cannot rebuild perturbed inputs")
        n, k = self.scores.shape
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} inputs")
        if not 0 <= step < k:
            raise IndexError(f"step {step} out of range: the curve has steps 0..{k - 1}")
        return self.rebuild(int(index), int(step))

    def display(self, index: int, step: int) -> np.ndarray:
        """The perturbed input of ``(index, step)`` as a uint8 ``(H, W, 3)`` image."""
        x = self.perturbed(index, step)
        if self.classifier is not None and hasattr(self.classifier, "to_display"):
            return self.classifier.to_display(x)[0]
        from ..core.adapters import tensor_to_display

        return tensor_to_display(x)[0]

    def summary(self) -> dict[str, float]:
        """Mean AUC, AOPC and final accuracy over the inputs."""
        return {
            "auc": float(self.auc.mean()),
            "aopc": float(self.aopc.mean()),
            "final_accuracy": float(self.accuracy[-1]),
        }


@dataclass(eq=False)
class SampleScores:
    """One value per input of a metric (``values`` ``(N,)``), with what produced it.

    ``higher_is_better`` says how to read it; ``extras`` holds what a plot needs (e.g. the attribution sums
    and output drops of faithfulness correlation).
    """

    metric: str
    values: np.ndarray
    target: np.ndarray
    higher_is_better: bool
    params: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def summary(self) -> dict[str, float]:
        return {self.metric: self.mean}
