"""Explanation selection: sweeping a method's hyperparameter and picking by a metric.

Known answers: Integrated Gradients' completeness gap shrinks as ``n_steps`` grows, so the sweep picks
the largest value; SmoothGrad with ``noise_level=0`` is the gradient itself, so its scores equal a direct
evaluation of the gradient; the sweep over LRP's gamma reproduces per-value scores computed by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.metrics.complexity import sparseness
from xaiwidgets.metrics.localisation import energy_pointing_game
from xaiwidgets.metrics.selection import METRICS, sweep


@pytest.fixture(scope="module")
def demo():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(4, 64, seed=3)
    return clf, data, clf.preprocess(data.images)


def test_ig_steps_sweep_picks_the_smallest_completeness_gap(demo):
    clf, _, x = demo
    result = sweep(clf, x, "integrated_gradients", "n_steps", [2, 8, 64], "completeness_gap")
    assert result.higher_is_better is False and result.metric == "completeness_gap"
    assert result.scores.shape == (3, 4)
    assert result.mean[0] > result.mean[1] > result.mean[2] and result.best_value == 64
    plot = result.plot_data()
    assert plot["x"] == [2, 8, 64] and plot["best"] == 64 and len(plot["q25"]) == 3
    assert [row["best"] for row in result.rows()] == [False, False, True]


def test_sweep_scores_equal_direct_evaluation(demo):
    clf, data, x = demo
    target = clf.model(x).argmax(1)

    def energy(model, inputs, attribution, tgt):
        return energy_pointing_game(attribution, data)

    result = sweep(clf, x, "smoothgrad", "noise_level", [0.0, 0.2], energy, higher_is_better=True,
                   params={"n_samples": 4}, keep=True)
    direct = energy_pointing_game(xw.attribute(clf, x, "gradient", target=target), data).numpy()
    assert np.allclose(result.scores[0], direct, atol=1e-6)  # no noise: SmoothGrad is the gradient
    assert len(result.attributions) == 2 and result.attributions[1].params["noise_level"] == 0.2
    assert torch.equal(result.target, target.cpu())
    again = sweep(clf, x, "smoothgrad", "noise_level", [0.0, 0.2], energy, higher_is_better=True,
                  params={"n_samples": 4})
    assert np.array_equal(result.scores, again.scores)  # seeded noise: deterministic


def test_lrp_gamma_sweep_matches_hand_computed_scores(demo):
    clf, _, x = demo
    x = x[:2]
    gammas = [0.0, 0.25, 1.0]
    result = sweep(clf, x, "lrp_gamma", "gamma", gammas, "sparseness")
    by_hand = [sparseness(xw.attribute(clf, x, "lrp_gamma", gamma=g)).mean().item() for g in gammas]
    assert np.allclose(result.mean, by_hand, atol=1e-9)
    assert result.best_value == gammas[int(np.argmax(by_hand))]


def test_sweep_errors_say_what_to_do(demo):
    clf, _, x = demo
    with pytest.raises(ParameterError, match="built-in metrics"):
        sweep(clf, x, "smoothgrad", "noise_level", [0.1], "nope")
    with pytest.raises(ParameterError, match="higher_is_better"):
        sweep(clf, x, "smoothgrad", "noise_level", [0.1], lambda m, x, a, t: torch.zeros(len(x)))
    with pytest.raises(ParameterError, match="did you mean 'noise_level'"):
        sweep(clf, x, "smoothgrad", "noise", [0.1], "sparseness")
    with pytest.raises(ParameterError, match="one per sample"):
        sweep(clf, x, "smoothgrad", "noise_level", [0.1], lambda m, x, a, t: [1.0, 2.0], higher_is_better=True,
              params={"n_samples": 2})
    with pytest.raises(ParameterError, match="at least one"):
        sweep(clf, x, "smoothgrad", "noise_level", [], "sparseness")


def test_cancelled_sweep_keeps_the_values_done(demo):
    clf, _, x = demo
    progress = Progress(tqdm=False)
    calls = []

    def metric(model, inputs, attribution, target):
        calls.append(1)
        if len(calls) == 2:
            progress.cancel()
        return sparseness(attribution)

    metric.higher_is_better = True
    with pytest.raises(Cancelled) as info:
        sweep(clf, x, "smoothgrad", "noise_level", [0.0, 0.1, 0.2], metric, params={"n_samples": 2},
              progress=progress)
    partial = info.value.partial
    assert partial.values == [0.0, 0.1] and partial.scores.shape == (2, 4)
    assert set(METRICS) == {"selectivity_gain", "completeness_gap", "sparseness", "effective_complexity"}
