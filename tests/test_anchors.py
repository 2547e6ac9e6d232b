"""Anchors on the demo text and tabular models: precision on fresh samples, determinism, errors."""

from __future__ import annotations

import pytest
import torch

from xaiwidgets.core.errors import ParameterError
from xaiwidgets.methods.perturbation.anchors import Anchors, anchor_precision


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    return sentiment_classifier()


@pytest.mark.parametrize("text", ["A gorgeous, moving film.", "Dull, lifeless and far too long."])
def test_text_anchor_precision_on_fresh_samples(minilm, text):
    a = Anchors(minilm).attribute(text, progress=False, seed=0)
    anchor = a.extras["anchor_indices"][0]
    assert a.extras["converged"][0]
    fresh = anchor_precision(minilm, text, anchor, n=500, seed=99)
    assert fresh >= 0.95 * 0.97  # threshold 0.95; the KL bound guarantees it to epsilon_stop w.p. 1-delta
    assert a.values[0, anchor].eq(1).all() and a.values.sum() == len(anchor)
    assert a.extras["rule"][0].startswith("IF ")
    assert all(isinstance(e, str) for e in a.extras["examples_hold"][0])


def test_tabular_anchor_and_determinism():
    from xaiwidgets.demo.tabular import breast_cancer_classifier, breast_cancer_split

    model = breast_cancer_classifier()
    x_tr, x_te, *_ = breast_cancer_split()
    a = Anchors(model).attribute(x_te[:2], progress=False, background=x_tr, seed=3)
    b = Anchors(model).attribute(x_te[:2], progress=False, background=x_tr, seed=3)
    assert a.extras["anchor"] == b.extras["anchor"] and a.extras["precision"] == b.extras["precision"]
    for i in range(2):
        fresh = anchor_precision(model, x_te[i], a.extras["anchor_indices"][i], n=2000, background=x_tr)
        assert fresh >= 0.9
        assert 0 < a.extras["coverage"][i] <= 1


def test_anchor_errors(minilm):
    with pytest.raises(ParameterError, match="threshold"):
        Anchors(minilm).attribute("good", threshold=1.5)
    with pytest.raises(ParameterError, match="replace"):
        Anchors(minilm).attribute("good", replace="zeros")
    with pytest.raises(Exception, match="TextClassifier"):
        Anchors(torch.nn.Linear(2, 2)).attribute(torch.zeros(1, 2))
