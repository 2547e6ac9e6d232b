"""Peer oracles for the relevance methods.

- LRP rules and composites: zennit 0.5.1 (``zennit.attribution.Gradient`` with ``attr_output = output *
  onehot``, the same relevance start as ours), on a seeded VGG-like net (conv/relu/maxpool/avgpool/linear,
  with and without BatchNorm) and a seeded torchvision ResNet-18 with zennit's ``ResNetCanonizer``.
  Tolerance: 1e-4 of the max |relevance|. Expected difference: zennit turns a merged BatchNorm into
  ``x / sqrt(1 + eps)`` (running_var = 1, eps kept) while ours computes the identity, so its canonised forward
  is scaled by (1 + eps)^-1/2 per BatchNorm; on ResNet-18 (17 BatchNorms on a path) that compounds to
  ~1e-3 for LRP-epsilon, so the ResNet's BatchNorms use eps = 0 here (both are then exact; the VGG keeps the
  default eps, a 1e-5 effect).
- DeepLIFT / DeepSHAP: captum 0.9.0 ``DeepLift`` / ``DeepLiftShap`` on the same models and baselines,
  tolerance 1e-4 of the max. captum needs distinct, non-in-place ReLU modules, and it is only exact when no
  two hooked modules are adjacent (its tensor hooks on a shared tensor drop the second module's multiplier)
  and max-pool windows do not overlap (``max_unpool`` keeps one of two contributions); the test models are
  built accordingly and ``test_captum_deeplift_caveats`` shows both effects (captum's own delta != 0).
- shap 0.51.0 ``DeepExplainer`` (it runs with this torch): DeepSHAP to 1e-4 of the max.
"""

from __future__ import annotations

import copy
import types
import warnings

import pytest
import torch
from torch import nn

import xaiwidgets as xw

pytestmark = pytest.mark.peers

zennit = pytest.importorskip("zennit")
import zennit.composites as zc  # noqa: E402
import zennit.rules as zr  # noqa: E402
import zennit.types as zt  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.layer import Sum as ZSum  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402

TOL = 1e-4


def randomise_batchnorm(model: nn.Module, eps: float | None = None) -> nn.Module:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                if eps is not None:
                    m.eps = eps
    return model


def vgg_like(batchnorm: bool) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    c = 3
    for out in (8, 16):
        layers += [nn.Conv2d(c, out, 3, padding=1), *([nn.BatchNorm2d(out)] if batchnorm else []), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = out
    layers += [nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 32),
               nn.ReLU(), nn.Dropout(), nn.Linear(32, 5)]
    return randomise_batchnorm(nn.Sequential(*layers).eval())


@pytest.fixture(scope="module")
def lrp_models(request):
    import torchvision

    torch.manual_seed(0)
    resnet = randomise_batchnorm(torchvision.models.resnet18(weights=None).eval(), eps=0.0)
    g = torch.Generator().manual_seed(1)
    return {
        "vgg": (vgg_like(False), torch.randn(2, 3, 32, 32, generator=g), SequentialMergeBatchNorm),
        "vgg_bn": (vgg_like(True), torch.randn(2, 3, 32, 32, generator=g), SequentialMergeBatchNorm),
        "resnet18": (resnet, torch.randn(1, 3, 48, 48, generator=g), ResNetCanonizer),
    }


def zennit_relevance(model, x, target, composite):
    with Gradient(model=model, composite=composite) as attributor:
        _out, relevance = attributor(x, lambda out: out * torch.nn.functional.one_hot(target, out.shape[1]))
    return relevance


def uniform_zennit(rule, canonizer, stabilizer=1e-6):
    """zennit's equivalent of our uniform-rule methods: its composites' base map plus ``rule`` on all linears."""
    return zc.LayerMapComposite(
        [(zt.Activation, zr.Pass()), (ZSum, zr.Norm(stabilizer)), (zt.AvgPool, zr.Norm(stabilizer)),
         (zt.BatchNorm, zr.Pass()), (zt.Linear, rule)],
        canonizers=[canonizer()],
    )


def assert_close_to_max(ours: torch.Tensor, theirs: torch.Tensor, tol: float = TOL) -> None:
    ours, theirs = ours.detach(), theirs.detach()
    scale = float(theirs.abs().max())
    err = float((ours - theirs).abs().max())
    assert scale > 0 and err <= tol * scale, f"max error {err:.3g} > {tol:g} * {scale:.3g}"


UNIFORM = [
    ("lrp_epsilon", {}, lambda: zr.Epsilon(1e-6)),
    ("lrp_epsilon", {"epsilon": 0.1}, lambda: zr.Epsilon(0.1)),
    ("lrp_gamma", {}, lambda: zr.Gamma(0.25)),  # seed 0.8 == zennit 0.25
    ("lrp_gamma", {"gamma": 0.5}, lambda: zr.Gamma(1.0)),
    ("lrp_alpha_beta", {}, lambda: zr.AlphaBeta(2.0, 1.0)),
    ("lrp_alpha_beta", {"alpha": 1.0, "beta": 0.0}, lambda: zr.AlphaBeta(1.0, 0.0)),
    ("lrp_zplus", {}, lambda: zr.ZPlus()),
]


# every parameter variant on the VGG-like nets; the default parameters on ResNet-18 (2 CPU cores)
UNIFORM_CASES = [
    pytest.param(model_name, *case, id=f"{model_name}-{case[0]}-{case[1]}")
    for model_name in ("vgg", "vgg_bn", "resnet18") for case in UNIFORM if model_name != "resnet18" or not case[1]
]


@pytest.mark.parametrize("model_name,method,params,zennit_rule", UNIFORM_CASES)
def test_lrp_rules_equal_zennit(lrp_models, model_name, method, params, zennit_rule):
    model, x, canonizer = lrp_models[model_name]
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method=method, target=target, progress=False, **params).values
    theirs = zennit_relevance(model, x, target, uniform_zennit(zennit_rule(), canonizer))
    assert_close_to_max(ours, theirs)


COMPOSITES = [
    ("EpsilonPlusFlat", {}, lambda c: zc.EpsilonPlusFlat(canonizers=[c()])),
    ("EpsilonAlpha2Beta1", {}, lambda c: zc.EpsilonAlpha2Beta1(canonizers=[c()])),
    ("EpsilonGammaBox", {"low": -2.5, "high": 2.5},
     lambda c: zc.EpsilonGammaBox(low=-2.5, high=2.5, canonizers=[c()])),
]


@pytest.mark.parametrize("model_name", ["vgg", "vgg_bn", "resnet18"])
@pytest.mark.parametrize("name,params,make", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_named_composites_equal_zennit(lrp_models, model_name, name, params, make):
    model, x, canonizer = lrp_models[model_name]
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method="lrp_composite", composite=name, target=target, progress=False,
                        **params).values
    theirs = zennit_relevance(model, x, target, make(canonizer))
    assert_close_to_max(ours, theirs)


def test_epsilon_gamma_box_bounds_from_adapter(lrp_models):
    """With an ImageClassifier, z^B's bounds are the normalised images of pixel values 0 and 1."""
    from xaiwidgets.core.adapters import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier

    model, x, canonizer = lrp_models["vgg"]
    target = model(x).argmax(1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ours = xw.attribute(ImageClassifier(model), x, method="lrp_composite", composite="EpsilonGammaBox",
                        target=target, progress=False).values
    theirs = zennit_relevance(model, x, target, zc.EpsilonGammaBox(low=-mean / std, high=(1 - mean) / std,
                                                                   canonizers=[canonizer()]))
    assert_close_to_max(ours, theirs)


SINGLE = [
    ("flat", zr.Flat), ("w_square", zr.WSquare), ("zbox", lambda: zr.ZBox(-2.5, 2.5)),
    ("zero", lambda: zr.Epsilon(0.0)), ("gamma", lambda: zr.Gamma(0.25)), ("norm", zr.Norm),
]


@pytest.mark.parametrize("rule,zennit_rule", SINGLE, ids=[s[0] for s in SINGLE])
def test_input_layer_rules_equal_zennit(lrp_models, rule, zennit_rule):
    """Each remaining rule on the input layer, epsilon above, by dotted name (zennit: NameLayerMapComposite)."""
    model, x, canonizer = lrp_models["vgg_bn"]
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method="lrp_composite", composite={"0": rule, nn.Conv2d: "epsilon",
                        nn.Linear: "epsilon"}, low=-2.5, high=2.5, target=target, progress=False).values
    composite = zc.NameLayerMapComposite(
        name_map=[(("0",), zennit_rule())],
        layer_map=[(zt.Activation, zr.Pass()), (zt.AvgPool, zr.Norm()), (zt.BatchNorm, zr.Pass()),
                   (zt.Linear, zr.Epsilon(1e-6))],
        canonizers=[canonizer()],
    )
    assert_close_to_max(ours, zennit_relevance(model, x, target, composite))


# ------------------------------------------------------------------------------------------- DeepLIFT / DeepSHAP
def captum_vgg(batchnorm: bool) -> nn.Module:
    """VGG-like with distinct non-in-place ReLUs; max-pool between convolutions (no hooked neighbours)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(2),
        *([nn.BatchNorm2d(8)] if batchnorm else []), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 5),
    ).eval()
    return randomise_batchnorm(model)


def _block_forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu2(self.bn2(self.conv2(out)) + identity)


def captum_resnet18() -> nn.Module:
    """Seeded ResNet-18 with one non-in-place ReLU per use; the stem max-pool (overlapping, right after a
    ReLU) is a 2x2 average pool, see the module docstring."""
    import torchvision
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.resnet18(weights=None).eval())
    model.relu = nn.ReLU()
    model.maxpool = nn.AvgPool2d(2)
    for block in model.modules():
        if isinstance(block, BasicBlock):
            block.relu, block.relu2 = nn.ReLU(), nn.ReLU()
            block.forward = types.MethodType(_block_forward, block)
    return model


@pytest.fixture(scope="module")
def deeplift_models():
    g = torch.Generator().manual_seed(3)
    return {
        "vgg": (captum_vgg(False), torch.randn(3, 3, 32, 32, generator=g)),
        "vgg_bn": (captum_vgg(True), torch.randn(3, 3, 32, 32, generator=g)),
        "resnet18": (captum_resnet18(), torch.randn(2, 3, 48, 48, generator=g)),
    }


@pytest.mark.parametrize("model_name", ["vgg", "vgg_bn", "resnet18"])
@pytest.mark.parametrize("baseline", ["zeros", "random"])
def test_deeplift_equals_captum(deeplift_models, model_name, baseline):
    from captum.attr import DeepLift

    model, x = deeplift_models[model_name]
    b = torch.zeros_like(x) if baseline == "zeros" else torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method="deeplift", baseline=b, target=target, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, delta = DeepLift(copy.deepcopy(model)).attribute(x, b, target=target, return_convergence_delta=True)
    assert_close_to_max(ours.values, theirs)
    torch.testing.assert_close(ours.extras["delta"], delta.float(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_name", ["vgg_bn", "resnet18"])
def test_deepshap_equals_captum(deeplift_models, model_name):
    from captum.attr import DeepLiftShap

    model, x = deeplift_models[model_name]
    background = torch.randn(3, *x.shape[1:], generator=torch.Generator().manual_seed(8))
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method="deepshap", background=background, target=target, batch_size=4,
                        progress=False).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = DeepLiftShap(copy.deepcopy(model)).attribute(x, background, target=target)
    assert_close_to_max(ours, theirs)


def test_deepshap_close_to_shap_deep_explainer(deeplift_models):
    shap = pytest.importorskip("shap")
    import numpy as np

    model, x = deeplift_models["vgg_bn"]
    background = torch.randn(4, *x.shape[1:], generator=torch.Generator().manual_seed(9))
    target = model(x).argmax(1)
    ours = xw.attribute(model, x, method="deepshap", background=background, target=target, progress=False).values
    values = np.asarray(shap.DeepExplainer(copy.deepcopy(model), background).shap_values(x, check_additivity=False))
    theirs = torch.stack([torch.as_tensor(values[i, ..., int(t)]) for i, t in enumerate(target)]).float()
    assert_close_to_max(ours, theirs)


def test_captum_deeplift_caveats():
    """Why the captum models avoid adjacent hooked modules and overlapping max-pools: there captum's DeepLift
    violates its own summation-to-delta, ours does not."""
    from captum.attr import DeepLift

    torch.manual_seed(0)
    for pool in (nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), nn.Sequential(nn.MaxPool2d(3, 2, 1))):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), *pool, nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
        x, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8) * 0.3
        ours = xw.attribute(model, x, method="deeplift", baseline=b, target=0, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _attr, delta = DeepLift(model).attribute(x, b, target=0, return_convergence_delta=True)
        assert float(ours.extras["delta"].abs().max()) < 1e-5
        assert float(delta.abs().max()) > 1e-3
