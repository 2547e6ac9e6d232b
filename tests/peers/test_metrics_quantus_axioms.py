"""Axiom, complexity, localisation and sanity metrics vs Quantus 0.6.0, on the demo shapes CNN (64x64,
trained weights) and the demo shapes data (true masks and boxes). Same inputs, same settings.

- ``Completeness`` (Sundararajan et al.): Quantus returns ``sum(a) == f(x) - f(baseline)`` as an exact
  float comparison with the "black" baseline = each input's minimum. We hand ours the same baseline tensor
  and read Quantus' ``f(x) - f(baseline)`` through its ``output_func`` hook: equal to 1e-5 (float32
  forwards of other batch sizes). Verdicts agree on an explanation that is exactly conservative (all
  relevance on one element, so both float sums are exact) and on one that is off by 1.
- ``Sparseness`` (Chalasani et al.): Quantus adds 1e-7 to every attribution before the Gini index; with
  ``normalise=False`` (its max-normalisation spans the whole batch) the two agree to 1e-5.
- ``EffectiveComplexity``: Quantus counts ``|a| > eps`` after its batch-wide max normalisation; we count
  relative to each sample's maximum, so Quantus gets maps already scaled per sample and
  ``normalise=False``: equal counts.
- ``PointingGame``, ``TopKIntersection`` (k = 200), ``AttributionLocalisation`` (the energy share in the
  box, Kohlbrenner et al.; with non-negative saliency maps the positive part is the map itself):
  ``normalise=False``, ``abs=False``; maps without ties, so equal exactly (energy: 1e-7, Quantus adds
  1e-9 to the denominator).
- ``MPRT`` (Adebayo et al.): top-down cascading ``reset_parameters`` of every module that has one, each
  after ``torch.manual_seed(seed + 1)``; we pass that randomiser as a callable and the same layers, and
  compare the Spearman rank correlation of absolute gradient maps per layer and sample to 1e-6.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus
import torch

import xaiwidgets as xw
from xaiwidgets.metrics import (
    completeness,
    effective_complexity,
    energy_pointing_game,
    model_randomisation,
    pointing_game,
    sparseness,
    top_k_intersection,
)
from xaiwidgets.metrics.localisation import boxes_to_masks

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def setup():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(6, size=64, seed=21)
    x = clf.preprocess(data.images)
    saliency = xw.attribute(clf, x, "saliency", target=data.labels)
    return clf, data, x, saliency


def run(metric, net, x, y, a, s=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metric(model=net, x_batch=x.numpy(), y_batch=np.asarray(y), a_batch=None if a is None else a.numpy(),
                      s_batch=None if s is None else s.numpy(), device="cpu", channel_first=True, **kwargs)


def test_completeness_equals_quantus(setup):
    clf, data, x, _ = setup
    y = data.labels
    captured = []

    def record(delta):
        captured.append(np.asarray(delta, dtype=np.float64))
        return delta

    q = quantus.Completeness(normalise=False, abs=False, output_func=record, disable_warnings=True)
    baseline = x.flatten(1).amin(1).view(-1, 1, 1, 1).expand_as(x)  # Quantus' "black": each input's minimum
    ig = xw.attribute(clf, x, "integrated_gradients", target=y, n_steps=32)
    theirs = np.asarray(run(q, clf.model, x, y, ig.values))
    ours = completeness(clf, x, ig, baseline=baseline)
    assert np.allclose(ours.delta.numpy(), captured[0], atol=1e-5)
    assert not theirs.any() and not bool((ours.gap == 0).any())  # 32 steps: never exact
    # exactly conservative: the whole delta (as Quantus computes it in float32) on one element
    exact = torch.zeros_like(x)
    exact[:, 0, 0, 0] = torch.from_numpy(captured[0]).float()
    assert np.asarray(run(q, clf.model, x, y, exact)).all()
    assert bool(completeness(clf, x, exact, y, baseline=baseline, rtol=0, atol=1e-6).passed.all())
    off = exact.clone()
    off[:, 0, 0, 1] = 1.0
    assert not np.asarray(run(q, clf.model, x, y, off)).any()
    assert not bool(completeness(clf, x, off, y, baseline=baseline).passed.any())


def test_sparseness_and_effective_complexity_equal_quantus(setup):
    clf, data, x, saliency = setup
    maps = torch.from_numpy(saliency.heatmap()).unsqueeze(1)  # saliency's own reduction (max |grad| over channels)
    theirs = np.asarray(run(quantus.Sparseness(normalise=False, disable_warnings=True), clf.model, x, data.labels,
                            maps))
    assert np.allclose(sparseness(saliency).numpy(), theirs, atol=1e-5)
    scaled = maps / maps.flatten(1).amax(1).view(-1, 1, 1, 1)
    for eps in (1e-3, 0.1, 0.5):
        q = quantus.EffectiveComplexity(eps=eps, normalise=False, disable_warnings=True)
        assert np.array_equal(effective_complexity(saliency, eps=eps).numpy(),
                              np.asarray(run(q, clf.model, x, data.labels, scaled)))


def test_localisation_equals_quantus(setup):
    clf, data, x, saliency = setup
    gradcam = xw.attribute(clf, x, "gradcam", target=data.labels)
    masks = data.masks.unsqueeze(1)
    for a in (saliency.values.sum(1, keepdim=True), gradcam.values):
        pg = run(quantus.PointingGame(normalise=False, disable_warnings=True), clf.model, x, data.labels, a, masks)
        assert np.array_equal(pointing_game(a, data).numpy(), np.asarray(pg, dtype=np.float64))
        tk = run(quantus.TopKIntersection(k=200, normalise=False, disable_warnings=True), clf.model, x,
                 data.labels, a, masks)
        assert np.allclose(top_k_intersection(a, data, k=200).numpy(), np.asarray(tk), atol=1e-12)
    boxes = boxes_to_masks(data.boxes, (64, 64)).unsqueeze(1)
    a = saliency.values.sum(1, keepdim=True)  # non-negative: its positive part is itself
    al = run(quantus.AttributionLocalisation(abs=False, normalise=False, disable_warnings=True), clf.model, x,
             data.labels, a, boxes)
    assert np.allclose(energy_pointing_game(a, boxes=data.boxes).numpy(), np.asarray(al), atol=1e-7)


def test_model_parameter_randomisation_equals_quantus_mprt(setup):
    clf, data, x, _ = setup
    x, y = x[:4], data.labels[:4]
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}

    def explain(model, inputs, targets, **kwargs):
        grad = xw.attribute(model, torch.as_tensor(inputs), "gradient", target=torch.as_tensor(targets))
        return grad.values.sum(1, keepdim=True).detach().numpy()

    q = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)
    theirs = run(q, clf.model, x, y, None, explain_func=explain)
    layers = [name for name in theirs if name != "original"]

    def quantus_reset(module, generator):  # Quantus' randomisation, same seed for every layer
        torch.manual_seed(42 + 1)
        module.reset_parameters()

    ours = model_randomisation(clf, x, "gradient", y, layers=layers, randomise=quantus_reset,
                               measures=("spearman_abs",), progress=False)
    assert ours.steps[1:] == layers == [
        "fc", "last_conv.bn", "last_conv.conv", "features.block3.bn", "features.block3.conv",
        "features.block2.bn", "features.block2.conv", "features.block1.bn", "features.block1.conv",
    ]
    rho = ours.similarity["gradient"]["spearman_abs"]
    assert np.allclose(rho[0], theirs["original"], atol=1e-6)
    for i, name in enumerate(layers, start=1):
        assert np.allclose(rho[i], theirs[name], atol=1e-6), name
    after = clf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
