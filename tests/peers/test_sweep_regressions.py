"""Regressions found by sweeping the peers over torchvision architectures (random weights, no downloads).

- The default CAM layer on VGG is the feature map, not the adaptive pool that resamples it to 7x7
  (pytorch-grad-cam users pick ``features[-1]``): equal to pytorch-grad-cam's GradCAM and HiResCAM there.
- ``cam`` on DenseNet-121 explains the rectified map its head pools (``F.relu(features, inplace=True)``).
- LRP runs on torchvision blocks that add in place to a rule's output (MobileNetV3, EfficientNet with
  ``StochasticDepth``) and equals zennit's EpsilonPlusFlat; DenseNet's batch norms that do not follow a
  layer of their width are left unmerged instead of crashing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import xaiwidgets as xw
import xaiwidgets.methods.cam
import xaiwidgets.methods.relevance

pytestmark = pytest.mark.peers
QUIET = {"progress": False}


def _x(size: int, n: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def _trained_like_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm statistics and affine parameters away from their initial 0/1 (at init the deep random
    networks' relevances shrink to ~1e-25, where any stabiliser dominates the comparison), and ``eps = 0``:
    zennit's merge leaves each batch norm computing ``x / sqrt(1 + eps)`` instead of the identity (ours
    replaces its forward), which over MobileNetV3's ~50 batch norms moves relevances by up to 20% (see
    docs/differences.md)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.eps = 0.0
    return model


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_default_cam_layer_on_vgg_is_the_feature_map(method: str) -> None:
    """At 96 px VGG's feature map is 3x3 and its avgpool output 7x7; the default layer explains the former
    and matches pytorch-grad-cam on ``features[-1]`` (max difference 1e-5 after both scale to [0, 1])."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = torchvision.models.vgg11_bn(weights=None).eval()
    x = _x(96)
    ours = xw.attribute(model, x, method=method, target=5, **QUIET)
    assert ours.extras["layer"] == "features"
    peer_cls = {"gradcam": pgc.GradCAM, "hirescam": pgc.HiResCAM}[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with peer_cls(model, [model.features[-1]]) as cam:
            theirs = cam(x, [ClassifierOutputTarget(5)])[0]
    v = ours.values[0, 0].double().numpy()
    v = (v - v.min()) / (v.max() - v.min())
    assert np.abs(v - theirs).max() < 1e-5


def test_cam_on_densenet_explains_the_rectified_map() -> None:
    """DenseNet-121 rectifies its features in place before pooling: cam = W_c . relu(features(x))."""
    torch.manual_seed(0)
    model = torchvision.models.densenet121(weights=None).eval()
    x = _x(64)
    a = xw.attribute(model, x, method="cam", target=3, relu=False, **QUIET)
    with torch.no_grad():
        expected = torch.einsum("c,nchw->nhw", model.classifier.weight[3], F.relu(model.features(x)))
    torch.testing.assert_close(a.raw[:, 0], expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", "efficientnet_b0"])
def test_lrp_on_blocks_that_add_in_place_conserves(arch: str) -> None:
    """``result += input`` on a rule's output, squeeze-excitation gates and StochasticDepth (the identity in eval
    mode). zennit was the oracle here, but it gives the in-place residual add and the gate product their
    gradient (no canonizer for these blocks), so its relevance is not conserved at them; ours splits the add and
    lets the gate's signal take all (docs/relevance.md). Oracle now: conservation (Bach et al. 2015). With every
    bias and batch-norm mean/shift zeroed nothing may absorb relevance, so LRP-0 gives ``sum R = f_t(x)`` within
    2e-3 of ``max(|f_t(x)|, sum |R|)`` (float32, divisions by nearly cancelling pre-activations); zennit's sum
    misses it by far more."""
    from zennit import rules as zr
    from zennit import types as zt
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import LayerMapComposite
    from zennit.layer import Sum

    torch.manual_seed(0)
    model = _trained_like_batch_norms(getattr(torchvision.models, arch)(weights=None, num_classes=10).eval())
    x = _x(64, n=2)
    target = torch.tensor([0, 3])
    ours = xw.attribute(model, x, method="lrp_epsilon", target=target, conservation="raise", **QUIET)
    assert ours.extras["conservation"]["check"]["conserved"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.zero_()
        f = model(x).gather(1, target[:, None])[:, 0]
    ours = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, target=target, conservation="raise", **QUIET)
    sums = ours.values.flatten(1).sum(1)
    tol = 2e-3 * torch.maximum(f.abs(), ours.values.flatten(1).abs().sum(1))
    assert bool(((sums - f).abs() <= tol).all()), (sums, f)
    composite = LayerMapComposite(
        [(zt.Activation, zr.Pass()), (Sum, zr.Norm()), (zt.AvgPool, zr.Norm()), (zt.BatchNorm, zr.Pass()),
         (zt.Linear, zr.Epsilon(1e-9))],
        canonizers=[SequentialMergeBatchNorm()],
    )
    with Gradient(model=model, composite=composite) as attributor:
        _out, peer = attributor(x, lambda out: out * F.one_hot(target, out.shape[1]))
    assert bool(((peer.flatten(1).sum(1) - f).abs() > 10 * tol).any())


def test_lrp_on_densenet_runs_and_leaves_the_model_as_it_was() -> None:
    """Batch norms that follow a layer of another width (DenseNet's norm1 after the previous layer's conv2)
    are not merged: LRP runs, and the model's parameters are unchanged afterwards."""
    torch.manual_seed(0)
    model = torchvision.models.densenet121(weights=None, num_classes=5).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = xw.attribute(model, _x(32), method="lrp_epsilon", target=1, **QUIET)
    assert torch.isfinite(a.values).all() and a.values.abs().sum() > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unmerged_batch_norm_is_an_affine_map() -> None:
    """canonize=False on ResNet-18: every batch norm stays in the model and is explained as the affine map
    it is (epsilon rule, its shift absorbs a share). docs/differences.md: zennit's composites pass relevance
    through batch norms, and without its ResNet canonizer its relevance here is not conserved (it reaches
    ~1e11 on 48 px inputs), so the oracle is the axiom: LRP-0 on a ReLU network equals gradient x input
    (float64: 1e-6 of the map's maximum) and the conservation guard passes."""
    torch.manual_seed(0)
    model = _trained_like_batch_norms(torchvision.models.resnet18(weights=None, num_classes=10).eval()).double()
    x = _x(48, n=2).double()
    target = torch.tensor([1, 4])
    ours = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, canonize=False, target=target,
                        conservation="raise", progress=False)
    gxi = xw.attribute(model, x, method="input_x_gradient", target=target, progress=False).values
    assert ours.extras["conservation"]["check"]["conserved"]
    torch.testing.assert_close(ours.values, gxi, rtol=0, atol=1e-6 * float(gxi.abs().max()))
