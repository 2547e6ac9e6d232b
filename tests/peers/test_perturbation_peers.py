"""Perturbation and Shapley methods against their oracles.

- occlusion == captum 0.9.0 ``Occlusion`` (same windows, strides and averaging over overlapping windows).
  The only difference is float32 rounding of differently batched forwards: each value is a difference of
  two logits, each rounded to a few ulps of the logit's magnitude, so the tolerance is 8 float32 ulps of
  the largest score (or 1e-5 of the map's maximum, whichever is larger); see ``assert_occlusion_close``.
- kernel_shap == exact Shapley values (enumeration, float64) when 2**M <= n_samples; agrees with shap 0.51.0
  ``KernelExplainer`` (same background) within sampling error when sampled.
- lime == lime 0.2.0.1 ``LimeBase.explain_instance_with_data`` given the same segmentation, perturbation
  matrix, cosine distances and kernel (float64 closed form vs sklearn Ridge: 1e-8).
- shapley_sampling converges to exact_shapley with error ~ 1/sqrt(n).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.perturbation

pytestmark = pytest.mark.peers


def _captum_occlusion(model, x, target, window, stride):
    from captum.attr import Occlusion

    c = x.shape[1]
    return Occlusion(model).attribute(
        x,
        target=target,
        sliding_window_shapes=(c, window, window),
        strides=(c, stride, stride),
        baselines=0.0,
        perturbations_per_eval=64,
    )


def assert_occlusion_close(ours, ref: torch.Tensor) -> None:
    """Occlusion values are logit differences: allow float32 rounding at the scale of the scores."""
    eps = torch.finfo(torch.float32).eps
    tol = max(8 * eps * float(ours.scores.abs().max()), 1e-5 * float(ref.abs().max()))
    err = float((ours.values - ref).abs().max())
    assert err <= tol, f"max difference {err:.3g} > {tol:.3g} (scores up to {float(ours.scores.abs().max()):.3g})"


@pytest.mark.parametrize("window,stride", [(16, 16), (15, 8), (10, 7)])
def test_occlusion_equals_captum_resnet18(resnet18, small_input, window, stride):
    ours = xw.attribute(
        resnet18, small_input, method="occlusion", window=window, stride=stride, target=[3, 7], progress=False
    )
    ref = _captum_occlusion(resnet18, small_input, torch.tensor([3, 7]), window, stride)
    assert_occlusion_close(ours, ref)


def test_occlusion_equals_captum_effnet_chelsea(effnet, chelsea):
    """EfficientNet-Lite0 on the real cat photo, window 64 stride 56 (16 windows; last ones cropped)."""
    ours = xw.attribute(effnet, chelsea, method="occlusion", window=64, stride=56, progress=False)
    ref = _captum_occlusion(effnet.model, chelsea, ours.target, 64, 56)
    assert_occlusion_close(ours, ref)


def test_occlusion_equals_captum_float64():
    """A float64 model and input: ours stays float64 (captum returns float32: equal to its rounding)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model = model.double().eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = xw.attribute(model, x, method="occlusion", window=5, stride=3, target=1, progress=False)
    ref = _captum_occlusion(model, x, torch.tensor([1, 1]), 5, 3)
    assert ours.values.dtype == torch.float64
    torch.testing.assert_close(ours.values, ref.double(), rtol=1e-6, atol=1e-9)


def test_kernel_shap_exhaustive_equals_exact_shapley(tiny_cnn):
    x = torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    kw = {"segments": "grid", "segmentation_params": {"patch": 8}, "target": 1, "progress": False}  # 9 patches
    ks = xw.attribute(tiny_cnn, x, method="kernel_shap", n_samples=512, **kw)
    ex = xw.attribute(tiny_cnn, x, method="exact_shapley", **kw)
    assert ks.extras["exact"] == [True, True]
    assert torch.allclose(ks.values, ex.values, atol=1e-6)


def _tabular():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 2)).eval()
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(1, 10, generator=g), torch.randn(5, 10, generator=g)


def test_kernel_shap_agrees_with_shap_tabular():
    """10 features, background of 5 rows: ours (sampled, 600 coalitions) and shap's KernelExplainer both
    within sampling error of the exact Shapley values of the same game."""
    import shap

    model, x, background = _tabular()
    exact = xw.attribute(model, x, method="exact_shapley", baseline=background, target=1, progress=False)
    ours = xw.attribute(model, x, method="kernel_shap", baseline=background, n_samples=600, target=1, progress=False)
    assert ours.extras["exact"] == [False]
    se = ours.extras["stderr"][0].float()
    assert ((ours.values[0] - exact.values[0]).abs() <= 5 * se + 1e-6).all()

    def f(a):
        with torch.no_grad():
            return model(torch.as_tensor(a, dtype=torch.float32))[:, 1].numpy()

    ref = shap.KernelExplainer(f, background.numpy()).shap_values(x.numpy(), nsamples=2000, silent=True)
    ref = torch.as_tensor(np.asarray(ref)).reshape(-1).float()
    scale = exact.values.abs().max()
    assert (ref - exact.values[0]).abs().max() < 0.05 * scale
    assert (ours.values[0] - ref).abs().max() < 0.05 * scale + 5 * se.max()
    # efficiency holds exactly in both
    assert ours.values.sum().item() == pytest.approx(ref.sum().item(), abs=1e-5)


def test_kernel_shap_agrees_with_shap_image_superpixels(tiny_cnn):
    """~8 slic superpixels on a 32x32 image, baseline 0: shap enumerates all 2**8 coalitions at
    nsamples=1000 and so do we; shap's masking function is a plain numpy one."""
    import shap

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = xw.attribute(
        tiny_cnn,
        x,
        method="kernel_shap",
        segments="slic",
        segmentation_params={"n_segments": 8},
        n_samples=1000,
        target=2,
        progress=False,
    )
    seg = ours.extras["segments"][0, 0].numpy()
    m = int(seg.max()) + 1
    img = x[0].numpy()

    def f(z):
        masks = z[:, seg]  # (S, H, W)
        batch = img[None] * masks[:, None]
        with torch.no_grad():
            return tiny_cnn(torch.as_tensor(batch, dtype=torch.float32))[:, 2].numpy()

    ref = shap.KernelExplainer(f, np.zeros((1, m))).shap_values(np.ones((1, m)), nsamples=1000, silent=True)
    ref = torch.as_tensor(np.asarray(ref)).reshape(-1)
    assert torch.allclose(ours.extras["feature_values"][0], ref.double(), atol=1e-5)


def test_lime_equals_lime_base(tiny_cnn):
    from lime.lime_base import LimeBase
    from skimage.segmentation import quickshift
    from sklearn.metrics import pairwise_distances

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    seg = quickshift(x[0].permute(1, 2, 0).double().numpy(), kernel_size=3, max_dist=20, ratio=0.5)
    m = int(seg.max()) + 1
    rng = np.random.RandomState(0)
    data = rng.randint(0, 2, (300, m))
    data[0] = 1  # as lime_image
    ours = xw.attribute(
        tiny_cnn,
        x,
        method="lime",
        segments=torch.as_tensor(seg),
        coalitions=torch.as_tensor(data),
        target=0,
        num_features=m,
        feature_selection="highest_weights",
        progress=False,
    )
    # labels computed independently with a numpy masking function
    with torch.no_grad():
        batch = torch.as_tensor(x[0].numpy()[None] * data[:, seg][:, None], dtype=torch.float32)
        labels = tiny_cnn(batch).numpy()
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2)), random_state=0)
    intercept, exp, score, _ = base.explain_instance_with_data(
        data, labels, distances, 0, m, feature_selection="highest_weights"
    )
    ref = np.zeros(m)
    for feature, weight in exp:
        ref[feature] = weight
    assert np.allclose(ours.extras["segment_weights"][0].numpy(), ref, atol=1e-6)
    assert float(ours.extras["intercept"][0]) == pytest.approx(intercept, abs=1e-6)
    assert float(ours.extras["r2"][0]) == pytest.approx(score, abs=1e-6)


def test_shapley_sampling_converges_to_exact():
    model, x, background = _tabular()
    kw = {"baseline": background[:1], "target": 0, "progress": False}
    exact = xw.attribute(model, x, method="exact_shapley", **kw).values
    errors = []
    for n in (8, 128):
        err = [
            (xw.attribute(model, x, method="shapley_sampling", n_samples=n, seed=s, **kw).values - exact)
            .pow(2)
            .mean()
            .sqrt()
            for s in range(6)
        ]
        errors.append(torch.stack(err).mean())
    # 16x the samples: error ~4x smaller (1/sqrt(n)); allow slack for 6 seeds
    assert errors[1] < errors[0] / 2.5
