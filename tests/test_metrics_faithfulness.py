"""Faithfulness and robustness metrics: exact answers on linear models, known answers on the synthetic shapes
(ground-truth masks), curve bookkeeping, ROAD imputation, determinism, progress, errors.

Known answers (issue #8): on ``make_shapes`` with the demo shapes CNN, the true object mask used as an
explanation ("oracle") must beat a uniform random map on every faithfulness metric, and the random map
must fail (no gap between its MoRF and LeRF curves, no correlation). Blur is the baseline there: this
CNN is so sensitive to scattered black or mean-coloured pixels that 10 % of them drop any image to
chance whatever their order, which hides every explanation (a property of the model, shown in
``test_black_pixels_hide_the_order``).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, InputError, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.metrics import (
    deletion,
    faithfulness_correlation,
    infidelity,
    insertion,
    max_sensitivity,
    perturbation_curve,
    pixel_flipping,
    region_perturbation,
    road,
)
from xaiwidgets.metrics.perturb import linear_impute, noisy_linear_impute

QUIET = {"progress": False}


# ----------------------------------------------------------------------------------------------------------
# fixtures


class Linear(nn.Module):
    """``f(x) = W x``: every deletion curve and faithfulness score has a closed form."""

    def __init__(self, d: int = 12, c: int = 3) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(d, c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def linear():
    model = Linear().eval()
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 1])
    contrib = model.fc.weight.detach()[target] * x  # input x gradient: exact contributions
    return model, x, target, contrib


@pytest.fixture(scope="module")
def shapes():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(6, size=64, seed=11)
    x = clf.preprocess(data.images)
    oracle = data.masks.float()[:, None]
    random_map = torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    return clf, x, data.labels, oracle, random_map


# ----------------------------------------------------------------------------------------------------------
# exact answers on a linear model


def _reference_curve(contrib: torch.Tensor, descending: bool) -> np.ndarray:
    """Hand-written deletion curve of ``f = sum(contrib)`` removing one element at a time (baseline 0)."""
    out = []
    for row in contrib.double().numpy():
        order = np.argsort(-row if descending else row, kind="stable")
        remaining = row.sum()
        curve = [remaining]
        for i in order:
            remaining -= row[i]
            curve.append(remaining)
        out.append(curve)
    return np.array(out)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_linear_deletion_and_insertion_are_exact(linear, order):
    model, x, target, contrib = linear
    kw = dict(features="element", features_per_step=1, baseline=0.0, output="logit", order=order, **QUIET)
    curve = deletion(model, x, contrib, target, **kw)
    expected = _reference_curve(contrib, descending=order == "morf")
    np.testing.assert_allclose(curve.scores, expected, atol=1e-5)  # float32 forward vs float64 sums
    assert curve.n_steps == 12 and np.allclose(curve.fractions[:, -1], 1.0)
    # insertion from the 0 baseline in the same order: f(x^(k)) = sum of the first k contributions
    ins = insertion(model, x, contrib, target, **kw)
    np.testing.assert_allclose(ins.scores, expected[:, :1] - expected, atol=1e-5)
    # AOPC (Samek et al. 2017): 1/(L+1) sum_k f(x^0) - f(x^k); AUC: trapezoid over the fraction
    np.testing.assert_allclose(curve.aopc, (expected[:, :1] - expected).mean(1), atol=1e-5)
    frac = np.arange(13) / 12
    np.testing.assert_allclose(curve.auc, [np.sum((e[1:] + e[:-1]) / 2 * np.diff(frac)) for e in expected],
                               atol=1e-5)
    cum = (expected[:, :1] - expected).mean(0).cumsum() / np.arange(1, 14)
    np.testing.assert_allclose(curve.aopc_curve, cum, atol=1e-5)


def test_linear_faithfulness_correlation_is_one(linear):
    # f(x) - f(x_S) = sum_{i in S} contrib_i exactly, so the Pearson correlation is 1 (Bhatt et al. 2020)
    model, x, target, contrib = linear
    score = faithfulness_correlation(model, x, contrib, target, features="element", baseline=0.0, n_runs=20,
                                     subset_size=4, **QUIET)
    np.testing.assert_allclose(score.values, 1.0, atol=1e-6)
    np.testing.assert_allclose(score.extras["attribution_sums"], score.extras["output_drops"], atol=1e-5)


def test_linear_infidelity_and_sensitivity_are_zero(linear):
    # the gradient of a linear model is exact: I . grad = f(x) - f(x - I) for every I (Yeh et al. 2019)
    model, x, target, _ = linear
    grad = model.fc.weight.detach()[target]
    for normalize in (False, True):
        inf = infidelity(model, x, grad, target, n_samples=8, normalize=normalize, **QUIET)
        assert np.all(inf.values < 1e-9), inf.values
    # ... and constant in x: max-sensitivity 0
    sens = max_sensitivity(model, x, "gradient", target, n_samples=4, radius=0.5, **QUIET)
    assert np.all(sens.values < 1e-6)
    # input x gradient is not exact for Gaussian perturbations (it is the global version): infidelity > 0
    assert infidelity(model, x, grad * x, target, n_samples=8, **QUIET).values.min() > 1e-3


# ----------------------------------------------------------------------------------------------------------
# known answers on the synthetic shapes


@pytest.fixture(scope="module")
def curves(shapes):
    clf, x, y, oracle, random_map = shapes
    out = {}
    for name, e in (("oracle", oracle), ("random", random_map)):
        for order in ("morf", "lerf"):
            out[name, "deletion", order] = deletion(clf, x, e, y, n_steps=6, baseline="blur", order=order, **QUIET)
        out[name, "insertion"] = insertion(clf, x, e, y, n_steps=6, baseline="blur", **QUIET)
    return out


def test_oracle_beats_random_on_deletion_and_insertion(curves):
    d_oracle, d_random = curves["oracle", "deletion", "morf"], curves["random", "deletion", "morf"]
    assert d_oracle.auc.mean() < d_random.auc.mean() - 0.05
    assert d_oracle.aopc.mean() > d_random.aopc.mean() + 0.05
    assert curves["oracle", "insertion"].auc.mean() > curves["random", "insertion"].auc.mean() + 0.05


def test_random_explanation_fails_morf_vs_lerf(curves):
    # a faithful map separates its MoRF and LeRF deletion curves; a random one cannot (its orders are random)
    gap = {n: curves[n, "deletion", "lerf"].auc.mean() - curves[n, "deletion", "morf"].auc.mean()
           for n in ("oracle", "random")}
    assert gap["oracle"] > 0.15
    assert abs(gap["random"]) < 0.08


def test_oracle_beats_random_on_road_and_region_perturbation(shapes):
    clf, x, y, oracle, random_map = shapes
    kw = dict(fractions=[0.1, 0.3, 0.5], **QUIET)
    assert road(clf, x, oracle, y, **kw).auc.mean() < road(clf, x, random_map, y, **kw).auc.mean() - 0.05
    kw = dict(patch_size=8, n_regions=12, baseline="blur", **QUIET)
    rp_oracle = region_perturbation(clf, x, oracle, y, **kw)
    assert rp_oracle.aopc.mean() > region_perturbation(clf, x, random_map, y, **kw).aopc.mean() + 0.05


def test_oracle_beats_random_on_correlation_and_infidelity(shapes):
    clf, x, y, oracle, random_map = shapes
    kw = dict(features="patch", patch_size=4, baseline="blur", n_runs=24, **QUIET)
    fc_oracle = faithfulness_correlation(clf, x, oracle, y, **kw).mean
    fc_random = faithfulness_correlation(clf, x, random_map, y, **kw).mean
    assert fc_oracle > 0.15 and fc_oracle > fc_random + 0.1
    assert abs(fc_random) < 0.15
    # the mask is a global explanation (its sum over a region predicts the region's effect): square removal
    kw = dict(perturbation="square", patch_size=16, n_samples=16, baseline="blur", multiply_by_inputs=True, **QUIET)
    assert infidelity(clf, x, oracle, y, **kw).mean < infidelity(clf, x, random_map, y, **kw).mean


def test_max_sensitivity_known_answers(shapes):
    clf, x, y, oracle, _ = shapes

    def truth(model, inputs, target):  # the true mask of the nearest clean input: a 0.02 nudge moves nothing
        nearest = torch.cdist(inputs.flatten(1), x.flatten(1)).argmin(1)
        return oracle[nearest]

    def noise(model, inputs, target):
        return torch.rand(inputs.shape[0], 1, 64, 64)

    assert np.all(max_sensitivity(clf, x[:2], truth, y[:2], n_samples=3, **QUIET).values == 0)
    assert np.all(max_sensitivity(clf, x[:2], noise, y[:2], n_samples=3, **QUIET).values > 0.5)


def test_black_pixels_hide_the_order(shapes):
    clf, x, y, oracle, random_map = shapes
    kw = dict(n_steps=4, baseline="black", **QUIET)
    x, y = x[:4], y[:4]
    # after 25 % black pixels the model is at chance for the oracle and the random order alike
    for e in (oracle[:4], random_map[:4]):
        assert deletion(clf, x, e, y, **kw).mean_curve[1] < 0.4


# ----------------------------------------------------------------------------------------------------------
# bookkeeping


def test_curve_endpoints_and_rebuild(shapes):
    clf, x, y, oracle, _ = shapes
    curve = deletion(clf, x[:3], oracle[:3], y[:3], n_steps=5, baseline="mean", **QUIET)
    with torch.no_grad():
        p0 = clf.model(x[:3]).softmax(1)[torch.arange(3), y[:3]]
        mean = x[:3].mean((2, 3), keepdim=True).expand_as(x[:3])
        p_end = clf.model(mean).softmax(1)[torch.arange(3), y[:3]]
    np.testing.assert_allclose(curve.scores[:, 0], p0.numpy(), atol=1e-5)
    np.testing.assert_allclose(curve.scores[:, -1], p_end.numpy(), atol=1e-5)
    assert np.all(np.diff(curve.counts, axis=1) >= 0) and np.all(curve.counts[:, -1] == 64 * 64)
    for i, k in ((0, 0), (1, 2), (2, 5)):
        xk = curve.perturbed(i, k)
        changed = int((xk[0] != x[i]).any(0).sum())
        assert changed <= curve.counts[i, k] and changed >= 0.9 * curve.counts[i, k]
        with torch.no_grad():
            p = clf.model(xk).softmax(1)[0, y[i]]
        assert abs(float(p) - curve.scores[i, k]) < 1e-5
    assert curve.display(1, 2).shape == (64, 64, 3) and curve.display(1, 2).dtype == np.uint8
    assert curve.accuracy.shape == (6,) and curve.still_top[:, 0].all()
    with pytest.raises(IndexError):
        curve.perturbed(0, 6)


def test_insertion_starts_at_the_baseline(shapes):
    clf, x, y, oracle, _ = shapes
    curve = insertion(clf, x[:2], oracle[:2], y[:2], n_steps=3, baseline=-1.0, output="logit", **QUIET)
    with torch.no_grad():
        start = clf.model(torch.full_like(x[:2], -1.0))[torch.arange(2), y[:2]]
        end = clf.model(x[:2])[torch.arange(2), y[:2]]
    np.testing.assert_allclose(curve.scores[:, 0], start.numpy(), atol=1e-4)
    np.testing.assert_allclose(curve.scores[:, -1], end.numpy(), atol=1e-4)
    assert torch.equal(curve.perturbed(0, 3), x[:1])


def test_chunking_and_seed_do_not_change_results(shapes):
    clf, x, y, _, random_map = shapes
    kw = dict(n_steps=3, order="random", **QUIET)
    a = deletion(clf, x[:2], random_map[:2], y[:2], batch_size=3, seed=5, **kw)
    b = deletion(clf, x[:2], random_map[:2], y[:2], batch_size=8, seed=5, **kw)
    c = deletion(clf, x[:2], random_map[:2], y[:2], seed=6, **kw)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert torch.equal(a.perturbed(0, 2), b.perturbed(0, 2))
    assert not torch.equal(a.perturbed(0, 2), c.perturbed(0, 2))


def test_ties_are_broken_at_random(shapes):
    clf, x, y, _, _ = shapes
    flat = torch.ones(1, 1, 64, 64)
    curve = deletion(clf, x[:1], flat, y[:1], n_steps=4, baseline=0.0, **QUIET)
    removed = (curve.perturbed(0, 1)[0] != x[0]).any(0)
    rows = removed.float().mean(1)  # a raster order would remove the top 16 rows
    assert 0.1 < float(rows[:16].mean()) < 0.4 and 0.1 < float(rows[48:].mean()) < 0.4


def test_features_patches_superpixels_and_labels(shapes):
    clf, x, y, oracle, _ = shapes
    patches = perturbation_curve(clf, x[:2], oracle[:2], y[:2], features="patch", patch_size=16,
                                 features_per_step=1, **QUIET)
    assert patches.n_steps == 16 and np.all(patches.n_features == 16)
    removed = (patches.perturbed(0, 1)[0] != x[0]).any(0)
    assert int(removed.sum()) <= 256  # one 16x16 patch
    sp = deletion(clf, x[:2], oracle[:2], y[:2], features="slic", segmentation_params={"n_segments": 20},
                  n_steps=4, **QUIET)
    assert np.all(sp.counts[:, -1] == sp.n_features) and np.all(sp.n_features >= 5)
    halves = torch.zeros(64, 64, dtype=torch.long)
    halves[:, 32:] = 7
    lab = deletion(clf, x[:1], oracle[:1], y[:1], features=halves, n_steps=2, **QUIET)
    assert lab.n_features.tolist() == [2]
    with pytest.raises(ParameterError, match="do not fit"):
        deletion(clf, x[:1], oracle[:1], y[:1], features=torch.zeros(5, 5, dtype=torch.long), **QUIET)


def test_pixel_flipping_counts_pixels(shapes):
    clf, x, y, oracle, _ = shapes
    pf = pixel_flipping(clf, x[:2], oracle[:2], y[:2], features_per_step=512, **QUIET)
    assert pf.n_steps == 8 and pf.counts[0, 1] == 512
    assert int((pf.perturbed(0, 1)[0] != x[0]).any(0).sum()) <= 512


def test_attribution_supplies_inputs_and_target(shapes):
    clf, x, y, _, _ = shapes
    a = xw.attribute(clf, x[:2], "saliency", target=y[:2])
    curve = deletion(clf, None, a, n_steps=3, **QUIET)
    assert curve.method == "saliency" and curve.target.tolist() == y[:2].tolist()
    assert curve.params["reduce"] == "max_abs"
    sens = max_sensitivity(clf, None, a, n_samples=2, **QUIET)
    assert sens.method == "saliency" and sens.values.shape == (2,)


# ----------------------------------------------------------------------------------------------------------
# ROAD imputation


def test_linear_imputation_reproduces_a_plane():
    # weights are symmetric and sum to 1, so a linear function satisfies x_p = mean of its neighbours
    h, w = 20, 24
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    image = torch.stack([0.3 * xx - 0.1 * yy + 2, 0.05 * yy, -xx]).float()
    removed = torch.zeros(h, w, dtype=torch.bool)
    removed[3:15, 5:11] = True
    removed[10:17, 14:20] = torch.rand(7, 6, generator=torch.Generator().manual_seed(0)) > 0.3
    out = linear_impute(image, removed)
    torch.testing.assert_close(out, image, atol=1e-4, rtol=0)
    noisy = noisy_linear_impute(image, removed, 0.05, torch.Generator().manual_seed(1))
    delta = noisy - out
    assert torch.equal(delta[:, ~removed], torch.zeros_like(delta[:, ~removed]))
    assert 0.04 < float(delta[:, removed].std()) < 0.06


def test_road_rebuild_is_deterministic(shapes):
    clf, x, y, oracle, _ = shapes
    curve = road(clf, x[:2], oracle[:2], y[:2], fractions=[0.2, 0.6], **QUIET)
    assert curve.counts[:, 1].tolist() == [round(0.2 * 4096)] * 2
    a, b = curve.perturbed(1, 2), curve.perturbed(1, 2)
    assert torch.equal(a, b)
    with torch.no_grad():
        p = clf.model(a).softmax(1)[0, y[1]]
    assert abs(float(p) - curve.scores[1, 2]) < 1e-5


# ----------------------------------------------------------------------------------------------------------
# progress, cancellation, restoration, errors


def test_progress_cancel_and_model_restored(shapes):
    clf, x, y, oracle, _ = shapes
    seen = []
    deletion(clf, x[:2], oracle[:2], y[:2], n_steps=4, batch_size=2, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    event = threading.Event()
    event.set()
    net = clf.model
    net.train(False)
    hooks = len(net._forward_hooks)
    with pytest.raises(Cancelled):
        deletion(clf, x[:2], oracle[:2], y[:2], n_steps=4, batch_size=2,
                 progress=Progress(tqdm=False, cancel_event=event))
    assert not net.training and len(net._forward_hooks) == hooks
    assert all(p.requires_grad for p in net.parameters())


def test_errors_say_what_to_do(shapes, linear):
    clf, x, y, oracle, _ = shapes
    with pytest.raises(InputError, match="one map"):
        deletion(clf, x[:2], torch.rand(2, 1, 32, 32), y[:2], **QUIET)
    with pytest.raises(InputError, match="one per input"):
        deletion(clf, x[:2], oracle[:3], y[:2], **QUIET)
    with pytest.raises(InputError, match="give the inputs"):
        deletion(clf, None, oracle[:2], y[:2], **QUIET)
    with pytest.raises(ParameterError, match="order must be one of"):
        deletion(clf, x[:2], oracle[:2], y[:2], order="most", **QUIET)
    with pytest.raises(ParameterError, match="baseline"):
        deletion(clf, x[:2], oracle[:2], y[:2], baseline="grey", **QUIET)
    with pytest.raises(ParameterError, match="fractions"):
        road(clf, x[:2], oracle[:2], y[:2], fractions=[0.5, 1.0], **QUIET)
    with pytest.raises(ParameterError, match="whole pixels"):
        road(clf, x[:2], oracle[:2], y[:2], features="element", **QUIET)
    with pytest.raises(ParameterError, match="subsets"):
        faithfulness_correlation(clf, x[:2], oracle[:2], y[:2], subsets=np.full((2, 3, 4), 10**6), **QUIET)
    with pytest.raises(ParameterError, match="explainer must be"):
        max_sensitivity(clf, x[:2], 3, y[:2], **QUIET)
    with pytest.raises(ParameterError, match="multiply_by_inputs"):
        infidelity(clf, x[:2], oracle[:2], y[:2], multiply_by_inputs=True, **QUIET)
    model, xl, target, contrib = linear
    with pytest.raises(ParameterError, match="needs images"):
        deletion(model, xl, contrib, target, features="patch", **QUIET)
