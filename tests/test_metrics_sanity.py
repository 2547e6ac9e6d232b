"""Sanity checks (Adebayo et al. 2018) and the similarity measures they use.

Known answer (the paper's finding, reproduced on the demo shapes CNN): under cascading randomisation
from the top, the gradient's and Grad-CAM's maps decorrelate (median Spearman rank correlation of the
absolute maps below 0.5 once the classifier and the last conv block are re-initialised; measured about
0.3 and 0.3 there, about 0.15 after all layers), while a Sobel edge detector of the input, which ignores
the model, stays at exactly 1 and fails the check.

Oracles of the similarity measures: ``scipy.stats.spearmanr`` (ties), ``skimage.metrics.
structural_similarity`` (Gaussian weights, sigma 1.5, population covariance) and ``skimage.feature.hog``
(9 orientations, 8-pixel cells, 3x3 blocks, L2-Hys), to 1e-10, 1e-10 and 1e-6 (skimage accumulates the
cell histograms in float32).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from skimage.feature import hog as skimage_hog
from skimage.metrics import structural_similarity
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.demo.shapes_model import ShapesCNN
from xaiwidgets.metrics.sanity import (
    data_randomisation,
    model_randomisation,
    parametrised_layers,
    shuffled_labels,
    sobel_edges,
)
from xaiwidgets.metrics.similarity import hog, hog_similarity, pearson, rank, spearman, ssim


@pytest.fixture(scope="module")
def demo():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(4, 64, seed=5)
    return clf, data, clf.preprocess(data.images)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(model: nn.Module, saved: dict[str, torch.Tensor]) -> bool:
    state = model.state_dict()
    return set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in saved)


def test_cascading_randomisation_reproduces_adebayo(demo):
    clf, _, x = demo
    saved = snapshot(clf.model)
    params = list(clf.model.parameters())
    result = model_randomisation(clf, x, ["gradient", "gradcam", sobel_edges], progress=False)
    assert result.steps == [
        "trained", "fc", "last_conv.bn", "last_conv.conv", "features.block3.bn", "features.block3.conv",
        "features.block2.bn", "features.block2.conv", "features.block1.bn", "features.block1.conv",
    ]
    top = result.steps.index("last_conv.conv")
    for method in ("gradient", "gradcam"):
        rho = result.similarity[method]["spearman_abs"]
        assert rho.shape == (10, 4) and np.allclose(rho[0], 1.0)
        assert np.median(rho[top]) < 0.5 and result.score(method) < 0.5
        assert result.verdict[method]
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        assert np.allclose(result.similarity["sobel_edges"][measure], 1.0)
    assert result.verdict["sobel_edges"] is False
    assert result.maps["gradient"].shape == (10, 4, 64, 64) and result.maps["gradient"].dtype == np.float32
    assert {row["method"]: row["passed"] for row in result.rows()} == {
        "gradient": True, "gradcam": True, "sobel_edges": False,
    }
    assert len(result.curve("gradcam")["median"]) == 10
    # the user's model is exactly as before: same values, same parameter objects, no hooks left
    assert same_weights(clf.model, saved)
    assert all(a is b for a, b in zip(params, clf.model.parameters()))
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in clf.model.modules())


def test_weights_are_restored_when_the_explainer_fails(demo):
    clf, _, x = demo
    saved = snapshot(clf.model)
    calls = []

    def breaks_on_third_call(model, inputs, target):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return sobel_edges(model, inputs, target)

    with pytest.raises(RuntimeError, match="boom"):
        model_randomisation(clf, x, breaks_on_third_call, progress=False)
    assert len(calls) == 3 and same_weights(clf.model, saved)
    progress = Progress(tqdm=False)
    progress.cancel()
    with pytest.raises(Cancelled):
        model_randomisation(clf, x, "gradient", progress=progress)
    assert same_weights(clf.model, saved) and not clf.model.training


def test_independent_randomisation_changes_one_layer_at_a_time(demo):
    clf, _, x = demo
    trained = snapshot(clf.model)
    changed_per_call: list[set[str]] = []

    def records_changed_layers(model, inputs, target):
        state = model.state_dict()
        changed_per_call.append({k.rsplit(".", 1)[0] for k in trained if not torch.equal(state[k], trained[k])})
        return sobel_edges(model, inputs, target)

    layers = ["fc", "last_conv.conv", "features.block1.conv"]
    result = model_randomisation(clf, x, records_changed_layers, order="independent", layers=layers, progress=False)
    assert result.steps == ["trained", *layers]
    assert changed_per_call == [set(), {"fc"}, {"last_conv.conv"}, {"features.block1.conv"}]
    changed_per_call.clear()
    model_randomisation(clf, x, records_changed_layers, layers=layers, progress=False)  # cascading
    assert changed_per_call == [set(), {"fc"}, {"fc", "last_conv.conv"},
                                {"fc", "last_conv.conv", "features.block1.conv"}]
    assert same_weights(clf.model, trained)


def test_randomisation_is_deterministic_and_seeded(demo):
    clf, _, x = demo
    x = x[:2]
    state = torch.random.get_rng_state()
    a = model_randomisation(clf, x, "gradient", layers=["fc", "last_conv.conv"], seed=3, progress=False)
    b = model_randomisation(clf, x, "gradient", layers=["fc", "last_conv.conv"], seed=3, progress=False)
    c = model_randomisation(clf, x, "gradient", layers=["fc", "last_conv.conv"], seed=4, progress=False)
    assert np.array_equal(a.maps["gradient"], b.maps["gradient"])
    assert not np.array_equal(a.maps["gradient"][1:], c.maps["gradient"][1:])
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone


def test_randomisers_normal_and_callable(demo):
    clf, _, x = demo
    seen = []

    def zero(module, generator):
        seen.append((type(module).__name__, isinstance(generator, torch.Generator)))
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                p.zero_()

    result = model_randomisation(clf, x, "gradient", layers=["fc"], randomise=zero, progress=False)
    assert seen == [("Linear", True)]
    assert np.allclose(result.maps["gradient"][1], 0.0)  # a zero classifier has zero gradients
    normal = model_randomisation(clf, x, "gradient", layers=["fc"], randomise="normal", progress=False)
    assert normal.score("gradient") < 0.9
    with pytest.raises(ParameterError, match="randomise"):
        model_randomisation(clf, x, "gradient", randomise="shuffle")
    with pytest.raises(ParameterError, match="no layer named"):
        model_randomisation(clf, x, "gradient", layers=["nope"])
    with pytest.raises(ParameterError, match="order"):
        model_randomisation(clf, x, "gradient", order="bottom_up")


def test_parametrised_layers_follow_the_forward_pass():
    class Reordered(nn.Module):  # registered b then a, called a then b
        def __init__(self):
            super().__init__()
            self.b = nn.Linear(3, 2)
            self.a = nn.Linear(4, 3)
            self.unused = nn.Linear(1, 1)

        def forward(self, x):
            return self.b(self.a(x))

    assert parametrised_layers(Reordered(), torch.zeros(1, 4)) == ["a", "b"]
    assert parametrised_layers(ShapesCNN(), torch.zeros(1, 3, 16, 16))[-2:] == ["last_conv.bn", "fc"]


def test_data_randomisation_with_a_model_trained_on_shuffled_labels():
    """A copy of the demo architecture (narrow) trained briefly on shuffled labels explains differently."""
    data = xw.demo.make_shapes(32, 32, seed=9)
    x = (data.images - 0.5) / 0.5

    def train(labels):
        torch.manual_seed(0)
        model = ShapesCNN(width=8)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(15):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), labels).backward()
            opt.step()
        return model.eval()

    trained = train(data.labels)
    shuffled = shuffled_labels(data.labels, seed=1)
    assert not torch.equal(shuffled, data.labels) and sorted(shuffled.tolist()) == sorted(data.labels.tolist())
    result = data_randomisation(trained, lambda: train(shuffled), x[:4], ["gradient", sobel_edges],
                                target=data.labels[:4], progress=False)
    assert result.steps == ["trained", "random labels"] and result.order == "data"
    assert result.verdict == {"gradient": True, "sobel_edges": False}
    assert result.target.tolist() == data.labels[:4].tolist()
    assert result.score("gradient") < 0.5


def test_similarity_measures_match_scipy_and_skimage():
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 48))
    b = a + 0.5 * rng.random((3, 40, 48))
    q = np.round(a * 3)  # many ties
    for x, y in ((a, b), (q, b)):
        ours = spearman(torch.from_numpy(x), torch.from_numpy(y)).numpy()
        ref = [scipy.stats.spearmanr(u.ravel(), v.ravel())[0] for u, v in zip(x, y)]
        assert np.allclose(ours, ref, atol=1e-10)
    assert np.allclose(rank(torch.tensor([[3.0, 1, 3, 2, 1]])).numpy(), scipy.stats.rankdata([3, 1, 3, 2, 1]))
    ref_ssim = [structural_similarity(u, v, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False) for u, v in zip(a, b)]
    assert np.allclose(ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref_ssim, atol=1e-10)
    ref_hog = np.stack([skimage_hog(u, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
                                    block_norm="L2-Hys") for u in a])
    assert np.allclose(hog(torch.from_numpy(a)).numpy(), ref_hog, atol=1e-6)
    assert np.allclose(hog_similarity(a, a), 1.0) and bool(torch.isnan(pearson(np.ones((1, 5)), a[:1, 0, :5])))
