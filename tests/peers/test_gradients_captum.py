"""Peer oracle: captum 0.9.0 for the gradient and backprop suite.

Models: torchvision ResNet-18 with seeded random weights (64x64 inputs, in-place ReLUs) and the demo
EfficientNet-Lite0 (real ImageNet weights, ReLU6 activations) on the 'chelsea' photo at 224x224.
Tolerance: max |ours - captum| <= 1e-5 * max |captum| unless stated. Where both libraries draw random
numbers (NoiseTunnel, GradientShap) the draws are injected so the comparison is exact, and our batch size is
set to captum's (all rows in one call) so both run the model on identical batches: on random ResNets a
1e-7 change of a max-pool/ReLU input can flip its branch and change a noisy sample's gradient locally.

Deliberate differences, tested as such:
- ``riemann_trapezoid``: captum 0.9 weights the n equally spaced points by 1/n (halved at the ends), which
  sums to (n-1)/n; ours use the composite trapezoid weights 1/(n-1) that sum to 1. We compare with
  captum's result times n/(n-1).
- guided_backprop/deconvnet on EfficientNet-Lite0: captum hooks only ``nn.ReLU`` modules and leaves its
  ``nn.ReLU6`` untouched (the result is the plain gradient). The oracle is captum on a copy of the model whose
  ReLU6 modules are replaced by an ``nn.ReLU`` subclass computing relu6, so that captum's hook applies
  (captum's rule max(grad_in, 0) on relu6 equals our documented ReLU6 rule).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

captum_attr = pytest.importorskip("captum.attr")
from captum.attr._core.noise_tunnel import NoiseTunnel as _NT  # noqa: E402

import xaiwidgets as xw  # noqa: E402
from xaiwidgets.methods import (  # noqa: E402,F401  (register the methods)
    cam,
    expected_gradients,
    guided,
    guided_gradcam,
    integrated_gradients,
    layerwise,
    smoothgrad,
)
from xaiwidgets.methods.baselines import resolve_baseline  # noqa: E402

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore::UserWarning")]
TOL = 1e-5
QUIET = {"progress": False}
CAPTUM_RULES = {
    "gauss_legendre": "gausslegendre", "riemann_left": "riemann_left", "riemann_right": "riemann_right",
    "riemann_middle": "riemann_middle", "riemann_trapezoid": "riemann_trapezoid",
}


def assert_close_to_peer(ours: torch.Tensor, peer: torch.Tensor, tol: float = TOL) -> None:
    assert ours.shape == peer.shape
    err = float((ours - peer).abs().max() / peer.abs().max())
    assert err <= tol, f"max abs diff {err:.2e} of max |peer|"


@pytest.fixture(scope="module")
def case_resnet(resnet18):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return resnet18, x, [3, 5]


@pytest.fixture(scope="module")
def case_effnet(effnet, chelsea):
    with torch.no_grad():
        target = int(effnet.model(chelsea).argmax())
    return effnet, chelsea, [target]


@pytest.fixture(params=["resnet", "effnet"])
def case(request):
    return request.getfixturevalue(f"case_{request.param}")


def module_of(model):
    return model.model if hasattr(model, "model") else model


# ------------------------------------------------------------- plain gradients (gradients.py)


def test_gradient_saliency_input_x_gradient(case) -> None:
    model, x, target = case
    m = module_of(model)
    for ours, peer in [
        ("gradient", captum_attr.Saliency(m).attribute(x, target=target, abs=False)),
        ("saliency", captum_attr.Saliency(m).attribute(x, target=target, abs=True)),
        ("input_x_gradient", captum_attr.InputXGradient(m).attribute(x, target=target)),
    ]:
        assert_close_to_peer(xw.attribute(model, x, method=ours, target=target).values, peer)


# ------------------------------------------------------------- integrated gradients


@pytest.mark.parametrize("rule", list(CAPTUM_RULES))
def test_integrated_gradients_all_rules(case, rule: str) -> None:
    model, x, target = case
    n_steps = 7 if x.shape[-1] == 64 else 2  # two path points at 224 keep the test fast
    rows = n_steps * x.shape[0]
    ours = xw.attribute(model, x, method="integrated_gradients", target=target, rule=rule, n_steps=n_steps,
                        batch_size=rows, **QUIET)
    # our default "black" is black pixels after an ImageClassifier's normalisation (zeros for a bare module);
    # captum's default is zeros, so it gets the same tensor
    black = resolve_baseline("black", x, model)
    peer, delta = captum_attr.IntegratedGradients(module_of(model)).attribute(
        x, baselines=black, target=target, method=CAPTUM_RULES[rule], n_steps=n_steps, return_convergence_delta=True
    )
    if rule == "riemann_trapezoid":
        peer = peer * n_steps / (n_steps - 1)  # captum's weights sum to (n-1)/n; see module docstring
    else:
        torch.testing.assert_close(ours.extras["delta"], delta, rtol=1e-3, atol=1e-4)
    assert_close_to_peer(ours.values, peer)


def test_integrated_gradients_named_baselines(case_resnet) -> None:
    model, x, target = case_resnet
    for baseline in ("blur", "uniform", "gaussian", -0.5):
        ours = xw.attribute(model, x, method="integrated_gradients", target=target, baseline=baseline,
                            n_steps=5, batch_size=10, return_frames=True, **QUIET)
        peer = captum_attr.IntegratedGradients(model).attribute(
            x, baselines=ours.frames["baseline"], target=target, n_steps=5
        )
        assert_close_to_peer(ours.values, peer)


# ------------------------------------------------------------- noise tunnel


def captum_noise_tunnel(monkeypatch, base, x, noisy, nt_type, n_samples, target, **kwargs):
    """captum NoiseTunnel with its noise draw replaced by our noisy inputs (rows i * S + s, as captum's)."""
    rows = noisy.reshape(-1, *x.shape[1:]).to(x)
    with monkeypatch.context() as patch:
        patch.setattr(_NT, "_add_noise_to_input", staticmethod(lambda inp, stdev, k: rows.clone()))
        return captum_attr.NoiseTunnel(base).attribute(
            x, nt_type=nt_type, nt_samples=n_samples, stdevs=1.0, target=target, **kwargs
        )


@pytest.mark.parametrize("name,nt_type", [("smoothgrad", "smoothgrad"), ("smoothgrad_squared", "smoothgrad_sq"),
                                          ("vargrad", "vargrad")])
@pytest.mark.parametrize("base", ["gradient", "input_x_gradient", "guided_backprop"])
def test_noise_tunnel_variants_resnet(case_resnet, monkeypatch, name: str, nt_type: str, base: str) -> None:
    model, x, target = case_resnet
    s = 4
    ours = xw.attribute(model, x, method=name, target=target, n_samples=s, noise_level=0.2, base_method=base,
                        batch_size=s * x.shape[0], return_frames=True, **QUIET)
    peer_base, kwargs = {
        "gradient": (captum_attr.Saliency(model), {"abs": False}),
        "input_x_gradient": (captum_attr.InputXGradient(model), {}),
        "guided_backprop": (captum_attr.GuidedBackprop(model), {}),
    }[base]
    peer = captum_noise_tunnel(monkeypatch, peer_base, x, ours.frames["noisy_inputs"], nt_type, s, target, **kwargs)
    assert_close_to_peer(ours.values, peer)


@pytest.mark.parametrize("batch_size", [None, 1, 3])
def test_noise_tunnel_over_ig_with_one_baseline_per_input(case_resnet, monkeypatch, batch_size) -> None:
    """SmoothGrad over IG with a baseline per input (N, C, H, W): each noisy row uses its own input's
    baseline, as captum's NoiseTunnel repeats it per sample, at any chunking (None: the planner's)."""
    model, x, target = case_resnet
    baseline = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    s = 3
    ours = xw.attribute(model, x, method="smoothgrad", target=target, n_samples=s, noise_level=0.1,
                        base_method="integrated_gradients", base_params={"n_steps": 4, "baseline": baseline},
                        batch_size=batch_size, return_frames=True, **QUIET)
    peer = captum_noise_tunnel(monkeypatch, captum_attr.IntegratedGradients(model), x, ours.frames["noisy_inputs"],
                               "smoothgrad", s, target, baselines=baseline, n_steps=4)
    assert_close_to_peer(ours.values, peer)


def test_smoothgrad_effnet(case_effnet, monkeypatch) -> None:
    model, x, target = case_effnet
    ours = xw.attribute(model, x, method="smoothgrad", target=target, n_samples=2, batch_size=2,
                        return_frames=True, **QUIET)
    peer = captum_noise_tunnel(monkeypatch, captum_attr.Saliency(model.model), x, ours.frames["noisy_inputs"],
                               "smoothgrad", 2, target, abs=False)
    assert_close_to_peer(ours.values, peer)


# ------------------------------------------------------------- guided backprop, deconvnet, guided grad-cam


class ReLU6AsReLU(nn.ReLU):
    """An nn.ReLU (so captum hooks it) computing relu6."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return F.relu6(t)


def captum_view(model: nn.Module) -> nn.Module:
    if not any(isinstance(m, nn.ReLU6) for m in model.modules()):
        return model
    clone = copy.deepcopy(model)
    for parent in clone.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, ReLU6AsReLU())
    return clone


@pytest.mark.parametrize("name,peer_cls", [("guided_backprop", "GuidedBackprop"), ("deconvnet", "Deconvolution")])
def test_guided_backprop_and_deconvnet(case, name: str, peer_cls: str) -> None:
    model, x, target = case
    m = module_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = getattr(captum_attr, peer_cls)(captum_view(m)).attribute(x, target=target)
    assert_close_to_peer(xw.attribute(model, x, method=name, target=target).values, peer)


def test_guided_gradcam(case) -> None:
    model, x, target = case
    m = module_of(model)
    layer = "layer4" if x.shape[-1] == 64 else "_conv_head"
    view = captum_view(m)
    peer = captum_attr.GuidedGradCam(view, dict(view.named_modules())[layer]).attribute(x, target=target)
    ours = xw.attribute(model, x, method="guided_gradcam", target=target, layer=layer, interpolate_mode="nearest",
                        **QUIET)
    assert_close_to_peer(ours.values, peer)


# ------------------------------------------------------------- gradient shap


def test_expected_gradients_with_injected_randomness(case, monkeypatch) -> None:
    """captum's GradientShap draws baseline indices (np.random.choice), then alphas (np.random.uniform);
    we replay the same numpy stream into our draw function."""
    model, x, target = case
    n, s = x.shape[0], 3
    background = torch.randn(4, *x.shape[1:], generator=torch.Generator().manual_seed(2))
    np.random.seed(0)
    index, alphas = np.random.choice(4, n * s), np.random.uniform(0.0, 1.0, n * s)
    monkeypatch.setattr(expected_gradients, "draw", lambda *a: (torch.tensor(index),
                                                                torch.tensor(alphas, dtype=torch.float32)))
    ours = xw.attribute(model, x, method="expected_gradients", target=target, baseline=background, n_samples=s,
                        batch_size=n * s, **QUIET)
    np.random.seed(0)
    peer = captum_attr.GradientShap(module_of(model)).attribute(x, baselines=background, target=target, n_samples=s)
    assert_close_to_peer(ours.values, peer)


# ------------------------------------------------------------- layer-wise input x gradient


def test_layerwise_input_x_gradient_is_mean_of_captum_layer_maps(case_resnet) -> None:
    """Oracle: captum LayerGradientXActivation per conv layer, channel-summed, upsampled bilinearly
    (LayerAttribution.interpolate) and averaged."""
    model, x, target = case_resnet
    ours = xw.attribute(model, x, method="layerwise_input_x_gradient", target=target, skip_first=3)
    modules = dict(model.named_modules())
    maps = []
    for name in ours.extras["layers"]:
        layer_map = captum_attr.LayerGradientXActivation(model, modules[name]).attribute(x, target=target)
        maps.append(captum_attr.LayerAttribution.interpolate(layer_map.sum(1, keepdim=True), (64, 64), "bilinear"))
    assert len(maps) == 17
    assert_close_to_peer(ours.values, torch.stack(maps).mean(0))
