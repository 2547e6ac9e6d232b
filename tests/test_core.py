"""Core: targets, inputs, layers, the Attribution type, and restoration of the user's model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.batching import chunk_ranges, memory_chunk_size
from xaiwidgets.core.device import default_device, model_device, resolve_device
from xaiwidgets.core.errors import InputError, LayerError, ModelError, ParameterError, TargetError
from xaiwidgets.core.layers import find_feature_map, find_last_spatial_layer, get_layer
from xaiwidgets.core.state import preserved
from xaiwidgets.core.targets import resolve_target


def test_resolve_target_forms() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert resolve_target(None, scores).tolist() == [1, 0]
    assert resolve_target(2, scores).tolist() == [2, 2]
    assert resolve_target([0, 2], scores).tolist() == [0, 2]
    assert resolve_target(torch.tensor([1]), scores).tolist() == [1, 1]
    with pytest.raises(TargetError, match="out of range: the model has 3 classes"):
        resolve_target(3, scores)
    with pytest.raises(TargetError, match="got 3 targets for 2 inputs"):
        resolve_target([0, 1, 2], scores)
    with pytest.raises(TargetError, match="integer class indices"):
        resolve_target(torch.tensor([0.5, 1.0]), scores)


def test_single_image_is_batched(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, torch.randn(3, 16, 16), method="gradient")
    assert a.values.shape == (1, 3, 16, 16)
    assert a.target.shape == (1,)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (torch.randn(2, 16, 16), "takes images"),
        (torch.randn(2, 4, 16, 16), "takes 3 channels but the inputs have 4"),
        (torch.randint(0, 255, (1, 3, 8, 8)), "dtype torch.int64"),
        ([1, 2, 3], "must be a torch.Tensor"),
    ],
)
def test_bad_inputs_have_clear_errors(tiny_cnn: nn.Module, inputs: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        xw.attribute(tiny_cnn, inputs, method="saliency")


def test_nan_and_channels_last_errors(tiny_cnn: nn.Module) -> None:
    x = torch.randn(1, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        xw.attribute(tiny_cnn, x, method="gradient")
    with pytest.raises(InputError, match="permute"):
        xw.attribute(tiny_cnn, torch.randn(1, 8, 8, 3), method="gradient")


def test_target_out_of_range(tiny_cnn: nn.Module) -> None:
    with pytest.raises(TargetError, match="target 7 is out of range: the model has 4 classes"):
        xw.attribute(tiny_cnn, torch.randn(1, 3, 8, 8), method="gradient", target=7)


def test_model_output_must_be_scores() -> None:
    class Flat(nn.Module):  # one score per sample (a binary logit): class 0, as captum's target=None
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x**2).sum((1, 2, 3))

    x = torch.randn(2, 3, 4, 4)
    a = xw.attribute(Flat(), x, method="gradient")
    assert a.target.tolist() == [0, 0]
    torch.testing.assert_close(a.values, 2 * x)

    class Cube(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 0]  # (N, H, W): neither scores nor one score per sample

    with pytest.raises(ModelError, match=r"\(N, C\) class scores; it returned shape \(2, 4, 4\)"):
        xw.attribute(Cube(), x, method="gradient")

    class Dicty(nn.Module):
        def forward(self, x: torch.Tensor) -> dict:
            return {"out": x.flatten(1)}

    with pytest.raises(ModelError, match="wrap it"):
        xw.attribute(Dicty(), torch.randn(2, 3, 4, 4), method="gradient")


def test_non_differentiable_model() -> None:
    class Detached(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.detach().flatten(1)[:, :5]

    with pytest.raises(ModelError, match="does not depend differentiably"):
        xw.attribute(Detached(), torch.randn(2, 3, 4, 4), method="gradient")


def test_unknown_method_and_parameter(tiny_cnn: nn.Module) -> None:
    with pytest.raises(ParameterError, match="Did you mean saliency"):
        xw.attribute(tiny_cnn, torch.randn(1, 3, 8, 8), method="salency")
    with pytest.raises(ParameterError, match="does not take 'n_step'"):
        xw.attribute(tiny_cnn, torch.randn(1, 3, 8, 8), method="gradient", n_step=3)


def test_layer_lookup(resnet18: nn.Module) -> None:
    assert get_layer(resnet18, "layer4.1.conv2") is resnet18.layer4[1].conv2
    assert get_layer(resnet18, resnet18.layer3) is resnet18.layer3
    with pytest.raises(LayerError, match=r"no layer named 'layer4.1.conv3'.*Did you mean: layer4.1.conv2"):
        get_layer(resnet18, "layer4.1.conv3")
    with pytest.raises(LayerError, match="not part of this model"):
        get_layer(resnet18, nn.Conv2d(1, 1, 1))
    x = torch.randn(1, 3, 64, 64)
    assert find_last_spatial_layer(resnet18, lambda: resnet18(x)) == "layer4"


def test_last_spatial_layer_skips_shared_modules(effnet) -> None:
    model = effnet.model
    x = torch.randn(1, 3, 64, 64)
    # EfficientNet-Lite0 reuses one ReLU6 module ('_swish') everywhere: never pick it
    assert find_last_spatial_layer(model, lambda: model(x)) == "_bn1"
    # ... but the map a CAM should explain is after that ReLU6: the global pooling's input
    assert find_feature_map(model, lambda: model(x)) == ("_avg_pooling", True)


def test_feature_map_after_functional_activation(resnet18: nn.Module) -> None:
    class FunctionalHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))

    model = FunctionalHead()
    x = torch.randn(1, 3, 8, 8)
    assert find_feature_map(model, lambda: model(x)) == ("pool", True)
    # the same tensor passed on unchanged: the producing layer keeps its name
    x = torch.randn(1, 3, 64, 64)
    assert find_feature_map(resnet18, lambda: resnet18(x)) == ("layer4", False)


def _snapshot(model: nn.Module) -> dict:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             len(m._backward_pre_hooks))
            for m in model.modules()
        ],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
    }


def assert_restored(model: nn.Module, before: dict, x: torch.Tensor, out_before: torch.Tensor) -> None:
    after = _snapshot(model)
    assert all(torch.equal(a, b) for a, b in zip(before["params"], after["params"]))
    assert all(torch.equal(a, b) for a, b in zip(before["buffers"], after["buffers"]))
    for key in ("training", "requires_grad", "hooks", "inplace"):
        assert before[key] == after[key], key
    with torch.no_grad():
        assert torch.equal(model(x), out_before)


@pytest.mark.parametrize("method", ["gradient", "saliency", "input_x_gradient"])
def test_model_left_untouched(resnet18: nn.Module, method: str) -> None:
    x = torch.randn(1, 3, 32, 32)
    resnet18.layer1[0].conv1.weight.requires_grad_(False)  # a user's partially frozen model
    try:
        before = _snapshot(resnet18)
        with torch.no_grad():
            out = resnet18(x)
        xw.attribute(resnet18, x, method=method, target=3)
        assert_restored(resnet18, before, x, out)
    finally:
        resnet18.layer1[0].conv1.weight.requires_grad_(True)


def test_model_restored_when_method_raises(resnet18: nn.Module) -> None:
    """A hook that explodes mid-backward: the method raises, the model is left exactly as before."""
    x = torch.randn(1, 3, 32, 32)
    before = _snapshot(resnet18)
    with torch.no_grad():
        out = resnet18(x)

    with pytest.raises(RuntimeError, match="boom"), preserved(resnet18):
        resnet18.eval()
        resnet18.layer2.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
        resnet18.relu.inplace = False
        for p in resnet18.parameters():
            p.requires_grad_(False)
        xw.attribute(resnet18, x, method="gradient")
    assert_restored(resnet18, before, x, out)


def test_training_mode_warns_and_is_kept() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    with pytest.warns(UserWarning, match="training mode"):
        xw.attribute(model, torch.randn(1, 12), method="gradient")
    assert model.training and all(m.training for m in model.modules())


def test_device_helpers(tiny_cnn: nn.Module) -> None:
    assert model_device(tiny_cnn) == torch.device("cpu")
    assert model_device(lambda x: x) == torch.device("cpu")
    assert resolve_device(tiny_cnn, "cpu") == torch.device("cpu")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    a = xw.attribute(tiny_cnn, torch.randn(1, 3, 8, 8), method="gradient", device="cpu")
    assert a.values.device == next(tiny_cnn.parameters()).device
    assert memory_chunk_size(1000, torch.device("cpu"), default=7) == 7
    assert list(chunk_ranges(5, 2)) == [(0, 2), (2, 4), (4, 5)]


def test_attribution_heatmap_reductions(tiny_cnn: nn.Module) -> None:
    x = torch.randn(2, 3, 8, 8)
    a = xw.attribute(tiny_cnn, x, method="gradient")
    g = a.values
    np.testing.assert_allclose(a.heatmap("sum"), g.sum(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.heatmap("max_abs"), g.abs().amax(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.heatmap("l2"), g.pow(2).sum(1).sqrt().numpy(), rtol=1e-5)
    s = xw.attribute(tiny_cnn, x, method="saliency")
    assert s.default_reduce == "max_abs" and not s.signed
    np.testing.assert_allclose(s.heatmap(), g.abs().amax(1).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown reduce"):
        a.heatmap("median")
    assert a.display_images().shape == (2, 8, 8, 3)


def test_registry_lists_methods() -> None:
    rows = {r["name"]: r for r in xw.methods.available()}
    for name in ("gradient", "saliency", "input_x_gradient"):
        assert rows[name]["family"] == "gradient"
        assert "arXiv" in rows[name]["reference"]
    assert xw.methods.get_method("Input-X-Gradient") is xw.methods.InputXGradient


def test_class_form_equals_functional(tiny_cnn: nn.Module) -> None:
    x = torch.randn(2, 3, 8, 8)
    a = xw.methods.InputXGradient(tiny_cnn).attribute(x, target=[0, 1])
    b = xw.attribute(tiny_cnn, x, method="input_x_gradient", target=[0, 1])
    assert torch.equal(a.values, b.values)
    assert a.target.tolist() == [0, 1]
    assert torch.allclose(a.scores, tiny_cnn(x)[[0, 1], [0, 1]])


def test_image_classifier_adapter(effnet) -> None:
    from xaiwidgets.demo import load_image

    image = load_image("coffee")
    x = effnet.preprocess(image)
    assert x.shape == (1, 3, 224, 224)
    shown = effnet.to_display(x)
    assert shown.shape == (1, 224, 224, 3) and shown.dtype == np.uint8
    top = effnet.top_k(x, 3)[0]
    assert top[0]["label"] == "espresso" and top[0]["prob"] > 0.5
    a = xw.attribute(effnet, x, method="saliency")
    assert a.classifier is effnet and a.target.tolist() == [top[0]["index"]]
