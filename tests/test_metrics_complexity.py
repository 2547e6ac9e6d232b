"""Complexity metrics: sparseness (Gini index, Chalasani et al. 2020) and effective complexity (Nguyen &
Martinez 2020).

Axioms of the Gini index checked here: 0 for equal mass everywhere, ``1 - 1/d`` for all mass on one of
``d`` features, invariant to scaling and to permuting the features, and equal to the mean absolute
difference form ``sum_ij |a_i - a_j| / (2 d sum_i a_i)`` (tested with hypothesis).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xaiwidgets as xw
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.metrics.complexity import effective_complexity, sparseness


def test_gini_extremes_and_a_hand_example():
    d = 50
    one_hot = torch.zeros(1, d)
    one_hot[0, 7] = -3.0  # sign does not matter: |a|
    assert sparseness(one_hot).item() == pytest.approx(1 - 1 / d, abs=1e-12)
    assert sparseness(torch.full((1, d), 0.2)).item() == pytest.approx(0.0, abs=1e-12)
    assert sparseness(torch.zeros(1, d)).item() == 0.0
    # sorted [0, 0, 1, 1]: sum_i (2i - 5) a_i / (4 * 2) = (1 + 3) / 8
    assert sparseness(torch.tensor([[1.0, 0.0, 1.0, 0.0]])).item() == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=40), st.floats(0.01, 100))
def test_gini_equals_the_mean_absolute_difference_form(values, scale):
    a = np.abs(np.asarray(values))
    if a.sum() <= 1e-9:
        return
    expected = np.abs(a[:, None] - a[None, :]).sum() / (2 * a.size * a.sum())
    t = torch.tensor(values, dtype=torch.float64).view(1, -1)
    assert sparseness(t).item() == pytest.approx(expected, abs=1e-9)
    assert sparseness(t * scale).item() == pytest.approx(expected, abs=1e-9)  # scale invariance
    assert sparseness(t.flip(1)).item() == pytest.approx(expected, abs=1e-9)  # permutation invariance


def test_image_attributions_are_channel_reduced_first():
    values = torch.zeros(2, 3, 4, 4)
    values[0, :, 0, 0] = 1.0  # one pixel, three channels
    values[1] = 1.0
    a = xw.Attribution(values=values, method="m", target=torch.zeros(2, dtype=torch.long), scores=torch.zeros(2))
    assert sparseness(a).tolist() == pytest.approx([1 - 1 / 16, 0.0])  # 16 pixels after the channel sum
    assert effective_complexity(a).tolist() == [1, 16]
    assert effective_complexity(values).tolist() == [1, 16]  # raw tensors: summed over channels too


def test_effective_complexity_counts_above_eps_of_the_peak():
    a = torch.tensor([[1.0, 0.5, 1e-6, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert effective_complexity(a).tolist() == [2, 0]
    assert effective_complexity(a, eps=1e-7).tolist() == [3, 0]
    assert effective_complexity(a, fraction=True).tolist() == [0.5, 0.0]
    with pytest.raises(ParameterError, match="eps"):
        effective_complexity(a, eps=1.5)


def test_a_sparser_explanation_scores_higher_on_the_demo_data():
    """The true object mask is sparser than a noise map on the shapes images (the object covers ~10 %)."""
    data = xw.demo.make_shapes(8, 64, seed=2)
    noise = torch.rand(8, 64, 64, generator=torch.Generator().manual_seed(1))
    assert bool((sparseness(data.masks.float()) > sparseness(noise) + 0.4).all())
    assert bool((effective_complexity(data.masks.float()) < effective_complexity(noise)).all())
