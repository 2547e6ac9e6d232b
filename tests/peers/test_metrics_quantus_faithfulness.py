"""Faithfulness and robustness metrics vs their peers, on the demo shapes CNN (64x64, trained weights).

Oracles, same inputs and same settings:
- Quantus 0.6.0 ``PixelFlipping`` (features = input elements, ``features_in_step`` elements per step,
  softmax), ``RegionPerturbation`` (8x8 patches, MoRF and LeRF, logits) and ``FaithfulnessCorrelation``
  (random subsets of elements from ``np.random``, drawn again here in Quantus' order and handed to ours as
  ``subsets``). Quantus' string baselines are recomputed from the partly perturbed array at every step
  ("black" is its running minimum), so both sides get a constant baseline; ``normalise=False`` (Quantus'
  max-normalisation does not change orders or correlations anyway). Attributions are Gaussian noise: no
  ties, so the order is unique (Quantus sorts with numpy's unstable quicksort, we break ties at random).
  Tolerance: 1e-5 absolute on probabilities and correlations, 1e-4 on logits (float32 forwards of
  different batch sizes).
- captum 0.9 ``captum.metrics.infidelity`` (with and without ``normalize``) and ``sensitivity_max``, with
  the same perturbation tensors injected through ``perturb_func``: relative 1e-5.
- pytorch-grad-cam 1.5.7 ROAD (``pytorch_grad_cam.metrics.road``, Leemann's reference imputer): the
  imputed images of ``NoisyLinearImputer(noise=0)`` (its noise comes from torch's global generator; ours is
  seeded, so the noise is checked separately in tests/test_metrics_faithfulness.py) and the scores of
  ``RemoveMostRelevantFirst`` / ``RemoveLeastRelevantFirst`` at every percentile 10..90: 1e-5. Its
  percentile threshold removes ``n - ceil(p (n - 1) / 100)`` pixels, which equals our
  ``round((1 - p/100) n)`` when ``n`` is a multiple of 10, hence 40x40 images there.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus
import torch
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max
from pytorch_grad_cam.metrics.perturbation_confidence import PerturbationConfidenceMetric
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, RemoveLeastRelevantFirst, RemoveMostRelevantFirst
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

import xaiwidgets as xw
from xaiwidgets.metrics import (
    faithfulness_correlation,
    infidelity,
    max_sensitivity,
    pixel_flipping,
    region_perturbation,
    road,
)
from xaiwidgets.metrics.perturb import linear_impute

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
QUIET = {"progress": False}


@pytest.fixture(scope="module")
def setup():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(3, size=64, seed=3)
    x = clf.preprocess(data.images)
    g = torch.Generator().manual_seed(0)
    return clf, x, data.labels, torch.randn(x.shape, generator=g), torch.randn(3, 1, 64, 64, generator=g)


def _quantus(metric, net, x, y, a, softmax):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(metric(model=net, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(),
                                 softmax=softmax, device="cpu", channel_first=True))


def test_pixel_flipping_equals_quantus(setup):
    clf, x, y, a3, _ = setup
    q = quantus.PixelFlipping(features_in_step=1024, normalise=False, perturb_baseline=0.3, disable_warnings=True)
    theirs = _quantus(q, clf.model, x, y, a3, softmax=True)  # (N, 12): after each step, no step 0
    ours = pixel_flipping(clf, x, a3, y, features="element", features_per_step=1024, baseline=0.3, **QUIET)
    assert ours.scores.shape == (3, 13)
    np.testing.assert_allclose(ours.scores[:, 1:], theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation_equals_quantus(setup, order):
    clf, x, y, _, a1 = setup
    q = quantus.RegionPerturbation(patch_size=8, order=order, regions_evaluation=10, normalise=False,
                                   perturb_baseline=-0.5, disable_warnings=True)
    theirs = _quantus(q, clf.model, x, y, a1, softmax=False)  # f(x) - f(x^(k)), k = 1..10
    ours = region_perturbation(clf, x, a1, y, patch_size=8, n_regions=10, order=order, baseline=-0.5,
                               output="logit", **QUIET)
    np.testing.assert_allclose(ours.drop[:, 1:], theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("patch", [7, 10])
def test_region_perturbation_patches_that_do_not_divide_the_image(setup, patch):
    """64 px with 7 or 10 px patches: the grid is centred as Quantus pads it (the first and last patches are
    cut), so the curves still agree (a top-left grid differed by up to 0.13 logits)."""
    clf, x, y, _, a1 = setup
    q = quantus.RegionPerturbation(patch_size=patch, order="morf", regions_evaluation=6, normalise=False,
                                   perturb_baseline=0.0, disable_warnings=True)
    theirs = _quantus(q, clf.model, x, y, a1, softmax=False)
    ours = region_perturbation(clf, x, a1, y, patch_size=patch, n_regions=6, baseline=0.0, output="logit", **QUIET)
    np.testing.assert_allclose(ours.drop[:, 1:], theirs, atol=1e-4, rtol=0)


def test_faithfulness_correlation_equals_quantus(setup):
    clf, x, y, a3, _ = setup
    runs, size, n_features = 16, 300, a3[0].numel()
    np.random.seed(7)
    q = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, normalise=False, perturb_baseline=0.0,
                                        return_aggregate=False, disable_warnings=True)
    theirs = _quantus(q, clf.model, x, y, a3, softmax=False)
    np.random.seed(7)  # Quantus draws, per run, one subset per input of the batch
    draws = [[np.random.choice(n_features, size, replace=False) for _ in range(3)] for _ in range(runs)]
    subsets = np.asarray(draws).transpose(1, 0, 2)  # (N, runs, size)
    ours = faithfulness_correlation(clf, x, a3, y, subsets=subsets, features="element", baseline=0.0,
                                    output="logit", **QUIET)
    np.testing.assert_allclose(ours.values, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum(setup, normalize):
    clf, x, y, _, _ = setup
    a = xw.attribute(clf, x, "saliency", target=y)
    samples = 6
    perturbation = 0.1 * torch.randn(3, samples, *x.shape[1:], generator=torch.Generator().manual_seed(1))
    flat = perturbation.reshape(3 * samples, *x.shape[1:])  # captum repeats each input n_perturb_samples times

    def perturb_func(inputs):
        return flat, inputs - flat

    theirs = captum_infidelity(clf.model, perturb_func, x, a.values, target=y, n_perturb_samples=samples,
                               normalize=normalize)
    ours = infidelity(clf, x, a, y, perturbations=perturbation, normalize=normalize, **QUIET)
    np.testing.assert_allclose(ours.values, theirs.numpy(), rtol=1e-5, atol=1e-7)


def test_max_sensitivity_equals_captum(setup):
    clf, x, y, _, _ = setup
    samples = 4
    delta = torch.empty(3, samples, *x.shape[1:]).uniform_(-0.05, 0.05, generator=torch.Generator().manual_seed(2))
    flat = delta.reshape(3 * samples, *x.shape[1:])

    def explain(inputs, target):  # captum passes the clean inputs as a tuple (and expects one back)
        if isinstance(inputs, tuple):
            return (xw.attribute(clf, inputs[0], "saliency", target=target).values,)
        return xw.attribute(clf, inputs, "saliency", target=target).values

    theirs = sensitivity_max(explain, (x,), perturb_func=lambda inputs, radius: inputs + flat,
                             n_perturb_samples=samples, target=y)
    ours = max_sensitivity(clf, x, "saliency", y, perturbations=delta, **QUIET)
    np.testing.assert_allclose(ours.values, theirs.numpy(), rtol=1e-5)
    # an Attribution as the explainer: its values are a(x), its method is re-run on the perturbed inputs
    again = max_sensitivity(clf, None, xw.attribute(clf, x, "saliency", target=y), perturbations=delta, **QUIET)
    np.testing.assert_allclose(again.values, theirs.numpy(), rtol=1e-5)


def test_linear_imputation_equals_pytorch_grad_cam():
    g = torch.Generator().manual_seed(4)
    image = torch.randn(3, 23, 31, generator=g)
    for density in (0.1, 0.5, 0.9):
        removed = torch.rand(23, 31, generator=g) < density
        removed[0, :5] = True  # removed pixels on the border and in the corner
        theirs = NoisyLinearImputer(noise=0.0)(image, (~removed).float())
        torch.testing.assert_close(linear_impute(image, removed), theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_equals_pytorch_grad_cam(order):
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(3, size=40, seed=3)
    x = (data.images - 0.5) / 0.5  # the model's normalisation at 40x40 (preprocess would resize to 64)
    cams = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(5))
    targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in data.labels]
    remover = RemoveMostRelevantFirst if order == "morf" else RemoveLeastRelevantFirst
    percentiles = [90, 70, 50, 30, 10]  # remove 10 % .. 90 %
    theirs = np.stack([
        PerturbationConfidenceMetric(remover(p, NoisyLinearImputer(noise=0.0)))(
            x, cams.numpy(), targets, clf.model, return_diff=False)
        for p in percentiles
    ], 1)
    ours = road(clf, x, cams, data.labels, order=order, fractions=[1 - p / 100 for p in percentiles], noise=0.0,
                **QUIET)
    assert ours.counts[0, 1:].tolist() == [160, 480, 800, 1120, 1440]
    np.testing.assert_allclose(ours.scores[:, 1:], theirs, atol=1e-5, rtol=0)
