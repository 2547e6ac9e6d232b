"""LRP and DeepLIFT on real zoo architectures (timm 1.0.31, random weights, ``pretrained=False``).

Every batch norm gets trained-like statistics (random running mean/var, weight, bias): with default
initialisation a residual add that is not split, or a batch norm left out of the merge, hides.

Oracles:
- **LRP-0 = gradient x input on ReLU networks** (Ancona et al. 2018, arXiv:1711.06104, Prop. 3; with
  biases, merged batch norms, residual adds split in proportion and proportional pooling): ResNet-18,
  VGG-11-BN, RepVGG-A0 in float64, tolerance 1e-6 of the map's maximum (float64 rounding amplified by
  divisions by small pre-activations).
- **Conservation on bias-free networks** (Bach et al. 2015): with every bias, batch-norm mean/shift, position
  embedding and class token zeroed, nothing may absorb relevance, so ``sum_i R_i = f_t(x)``; float32, the
  tolerance is 2e-3 of ``max(|f_t(x)|, sum_i |R_i|)`` (LRP-0 divides by pre-activations that nearly cancel,
  which amplifies float32 rounding; a residual add that is not split doubles relevance, a layer scale taken
  by its gradient shrinks it by 1e6). Nine architectures: plain CNN, residual, inverted residual with squeeze-excitation
  (MobileNetV3, EfficientNet), RepVGG, ConvNeXt, ViT, Swin, and the MobileViT hybrid.
- **captum 0.9.0 DeepLift** on timm's ResNet-18 (its ReLUs not in place and the stem max-pool an average
  pool, as captum needs, see test_relevance_zennit_captum.py; residual ``+=`` is linear, so captum's gradient
  is right there), 1e-4 of the max.
- **Summation-to-delta** (Shrikumar et al. 2017) for DeepLIFT wherever the rescale and product rules cover
  the nonlinearities; on the layer-norm architectures (ConvNeXt, ViT, Swin, MobileViT) DeepLIFT has no exact
  multiplier and must say so (a ConservationWarning naming a layer_norm), never stay silent.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.methods.relevance.guard import ConservationWarning

timm = pytest.importorskip("timm")

pytestmark = pytest.mark.peers

SPECS = {
    "resnet18": {},
    "vgg11_bn": {"mlp_ratio": 0.25},
    "repvgg_a0": {},
    "mobilenetv3_small_050": {},
    "efficientnet_b0": {},
    "convnext_atto": {},
    "vit_tiny_patch16_224": {"img_size": 32, "depth": 2},
    "swin_tiny_patch4_window7_224": {"img_size": 32, "window_size": 2, "depths": (1, 1, 1, 1), "embed_dim": 24,
                                     "num_heads": (1, 1, 1, 1)},
    "mobilevit_xxs": {},
}
SIZE = {"mobilevit_xxs": 64}
LAYER_NORM = {"convnext_atto", "vit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "mobilevit_xxs"}


def trained_like(model: nn.Module, bias_free: bool = False) -> nn.Module:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
        if bias_free:
            for name, p in model.named_parameters():
                if name.endswith("bias") or "pos_embed" in name or "token" in name:
                    p.zero_()
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.zero_()
    return model


def zoo(name: str, bias_free: bool = False) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = trained_like(timm.create_model(name, pretrained=False, num_classes=10, **SPECS[name]), bias_free)
    size = SIZE.get(name, 32)
    return model.eval(), torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "repvgg_a0"])
def test_lrp_zero_is_gradient_times_input_on_relu_zoo_nets(name):
    model, x = zoo(name)
    model, x = model.double(), x.double()
    before = copy.deepcopy(model.state_dict())
    a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, conservation="raise", progress=False)
    gxi = xw.attribute(model, x, method="input_x_gradient", target=a.target, progress=False).values
    assert bool(torch.isfinite(a.values).all())
    torch.testing.assert_close(a.values, gxi, rtol=0, atol=1e-6 * float(gxi.abs().max()))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("name", list(SPECS))
def test_lrp_conserves_on_bias_free_zoo_nets(name):
    model, x = zoo(name, bias_free=True)
    with torch.no_grad():
        out = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservationWarning)
        a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, progress=False)
        b = xw.attribute(model, x, method="lrp_composite", composite="EpsilonPlusFlat", progress=False)
    f = float(out[0, a.target[0]])
    check = a.extras["conservation"]["check"]
    assert check["conserved"] and b.extras["conservation"]["check"]["conserved"]
    tol = 2e-3 * max(abs(f), float(a.values.abs().sum()))
    assert abs(float(a.values.sum()) - f) <= tol, (float(a.values.sum()), f)
    assert abs(check["absorbed"]) <= tol
    with torch.no_grad():
        assert torch.equal(model(x), out)


def test_deeplift_equals_captum_on_timm_resnet():
    from captum.attr import DeepLift

    model, x = zoo("resnet18")
    model.maxpool = nn.AvgPool2d(2)  # captum drops a multiplier at a ReLU right before a max-pool (see peers)
    x = torch.cat([x, -x])
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    base = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)) * 0.1
    ours = xw.attribute(model, x, method="deeplift", baseline=base, target=3, conservation="raise", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = DeepLift(copy.deepcopy(model)).attribute(x, base, target=3)
    torch.testing.assert_close(ours.values, theirs, rtol=0, atol=1e-4 * float(theirs.detach().abs().max()))


@pytest.mark.parametrize("name", list(SPECS))
def test_deeplift_is_exact_or_says_why(name):
    model, x = zoo(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = xw.attribute(model, x, method="deeplift", progress=False)
    ours = [w for w in caught if issubclass(w.category, ConservationWarning)]
    check = a.extras["conservation"]["check"]
    if name in LAYER_NORM:
        assert not check["conserved"] and ours and "layer_norm" in str(ours[0].message)
        assert check["first_violation"][0] == "layer_norm"
    else:
        assert check["conserved"] and not ours, [str(w.message) for w in ours]
        scale = a.scores.abs() + a.extras["baseline_scores"].abs() + a.values.flatten(1).abs().sum(1)
        assert bool((a.extras["delta"].abs() <= 1e-4 * scale).all())
