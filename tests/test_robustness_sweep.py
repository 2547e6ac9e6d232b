"""Regressions from a sweep of every method over bad inputs and models in both modes: the model is left as
it was (batch-norm running statistics included, for a model in training mode) and bad input gets an
xaiwidgets error that says what to do, not a torch error from deep inside."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.perturbation
import xaiwidgets.methods.relevance
from xaiwidgets.core.errors import InputError, ModelError, ParameterError, TargetError


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("method", "params"), [("gradient", {}), ("integrated_gradients", {"n_steps": 4}),
                                                ("lime", {"n_samples": 32}), ("gradcam", {}),
                                                ("lrp_epsilon", {})])
def test_training_mode_model_keeps_its_running_statistics(method, params):
    """Every forward pass in training mode updates batch-norm statistics; after the call (and after a call
    that raises) the buffers are bitwise those before it, and the model is still in training mode."""
    model = cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    xw.attribute(model, x(), method=method, target=0, progress=False, **params)
    with pytest.raises(TargetError):
        xw.attribute(model, x(), method=method, target=7, progress=False, **params)
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("method", ["gradient", "gradcam", "occlusion", "lrp_epsilon"])
def test_float64_numpy_images_are_cast_to_the_models_dtype(method):
    """numpy arrays are float64; they are cast to the parameters' dtype (same result as float32 input)."""
    model = cnn().eval()
    images = np.random.default_rng(0).normal(size=(2, 3, 16, 16))
    kw = {"window": 8, "stride": 8} if method == "occlusion" else {}
    ours = xw.attribute(model, images, method=method, target=0, progress=False, **kw)
    ref = xw.attribute(model, torch.as_tensor(images, dtype=torch.float32), method=method, target=0,
                       progress=False, **kw)
    assert ours.values.dtype == torch.float32
    torch.testing.assert_close(ours.values, ref.values)


def test_non_differentiable_model_says_what_to_do():
    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = cnn().eval()

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.net(t).detach()

    with pytest.raises(ModelError, match="perturbation"):
        xw.attribute(Detached(), x(), method="layerwise_input_x_gradient", target=0, progress=False)


@pytest.mark.parametrize(("method", "params"), [
    ("occlusion", {"window": 8, "stride": 8}), ("rise", {"n_masks": 8}), ("kernel_shap", {"n_samples": 16}),
    ("deeplift", {}), ("extremal_perturbation", {"n_steps": 2}),
])
def test_nan_baselines_are_refused(method, params):
    with pytest.raises(ParameterError, match="baseline"):
        xw.attribute(cnn().eval(), x(), method=method, target=0, progress=False,
                     baseline=torch.full((3, 16, 16), float("nan")), **params)


def test_nan_number_baseline_is_refused_by_path_methods():
    with pytest.raises(ParameterError, match="baseline"):
        xw.attribute(cnn().eval(), x(), method="integrated_gradients", n_steps=4, baseline=float("nan"),
                     target=0, progress=False)


def test_deeplift_string_target_and_extremal_background_batch():
    with pytest.raises(TargetError):
        xw.attribute(cnn().eval(), x(), method="deeplift", target="cat", progress=False)
    with pytest.raises(ParameterError, match="one baseline per input"):
        xw.attribute(cnn().eval(), x(), method="extremal_perturbation", target=0, n_steps=2,
                     baseline=torch.zeros(5, 3, 16, 16), progress=False)


@pytest.mark.parametrize("method", ["kernel_shap", "lime", "anchors"])
def test_tabular_model_with_no_rows(method):
    torch.manual_seed(0)
    tm = xw.TabularModel(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval(),
                         background=torch.randn(20, 6))
    with pytest.raises(InputError, match="at least one row"):
        xw.attribute(tm, torch.zeros(0, 6), method=method, target=0, progress=False)


@pytest.mark.parametrize(("method", "params"), [("gradient", {}), ("integrated_gradients", {"n_steps": 4}),
                                                ("occlusion", {"window": 8, "stride": 8}), ("gradcam", {}),
                                                ("kernel_shap", {"n_samples": 16}), ("lrp_epsilon", {})])
@pytest.mark.parametrize("target", [None, 0])
def test_nan_scores_are_a_model_error(method, params, target):
    """A model that returns NaN (a broken weight here) gets a ModelError naming the rows, with or without an
    explicit target, instead of a NaN explanation."""
    model = cnn().eval()
    with torch.no_grad():
        model[-1].bias[1] = float("nan")
    with pytest.raises(ModelError, match="NaN scores"):
        xw.attribute(model, x(), method=method, target=target, progress=False, **params)


@pytest.mark.parametrize("method", ["exact_shapley", "kernel_shap", "lime", "shapley_sampling"])
def test_per_image_segments_of_shape_n_h_w(method):
    """(N, H, W) labels give each image its own features (as documented), here 4 quadrants vs 2 halves."""
    quadrants = (torch.arange(16)[:, None] // 8) * 2 + torch.arange(16)[None, :] // 8
    halves = (torch.arange(16)[:, None] // 8).expand(16, 16)
    params = {"n_samples": 16} if method != "exact_shapley" else {}
    a = xw.attribute(cnn().eval(), x(), method=method, segments=torch.stack([quadrants, halves]), target=0,
                     progress=False, **params)
    assert a.extras["n_features"] == [4, 2]


def test_extremal_perturbation_needs_a_differentiable_model():
    model = cnn().eval()

    def frozen(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(t)

    with pytest.raises(ModelError, match="rise"):
        xw.attribute(frozen, x(), method="extremal_perturbation", target=0, n_steps=2, progress=False)
