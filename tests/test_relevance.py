"""Relevance methods: axioms (conservation, the two gamma limits, summation-to-delta), restoration of the
user's model, error messages, and the demo EfficientNet-Lite0 sanity check."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.relevance as rel
from xaiwidgets.core.errors import LayerError, ModelError, ParameterError
from xaiwidgets.core.state import _HOOK_DICTS
from xaiwidgets.methods.baselines import resolve_baseline


def bias_free_net() -> nn.Module:
    """conv/relu/maxpool/conv/relu/avgpool/linear/relu/linear without biases, seeded."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 16, bias=False), nn.ReLU(), nn.Linear(16, 4, bias=False),
    ).eval()


def positive_target(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    assert bool((out.max(1).values > 0).all())
    return out.argmax(1)


@pytest.fixture
def x16() -> torch.Tensor:
    return torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------------------------------- axioms
@pytest.mark.parametrize("method,params", [("lrp_epsilon", {"epsilon": 1e-9}), ("lrp_zplus", {})])
def test_conservation_bias_free_relu_net(x16, method, params):
    """Conservation (Bach et al. 2015): sum_i R_i = f_c(x) for a bias-free ReLU network."""
    model = bias_free_net()
    a = xw.attribute(model, x16, method=method, progress=False, **params)
    cons = a.extras["conservation"]
    torch.testing.assert_close(cons["relevance_sum"], cons["output"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cons["relevance_sum"], a.values.flatten(1).sum(1))
    torch.testing.assert_close(cons["output"], model(x16).gather(1, a.target[:, None])[:, 0].detach())


def test_per_layer_sums_are_conserved(x16):
    model = bias_free_net()
    a = xw.attribute(model, x16, method="lrp_epsilon", epsilon=1e-9, per_layer=True, progress=False)
    layers = a.extras["conservation"]["layers"]
    assert list(layers) == ["0", "3", "5", "7", "9"]  # input side first; pass-through activations left out
    for sums in layers.values():
        torch.testing.assert_close(sums, a.extras["conservation"]["output"], rtol=1e-4, atol=1e-4)


def test_generalized_gamma_one_is_gradient_times_input(x16):
    x16 = x16.double()
    """Seed: the generalized gamma rule at gamma = 1 is LRP-0, i.e. gradient x input on a bias-free net
    (exact as the stabiliser goes to 0; float64 so that divisions by near-zero z are well conditioned)."""
    model = bias_free_net().double()
    target = positive_target(model, x16)
    ours = xw.attribute(model, x16, method="lrp_gamma", gamma=1.0, stabilizer=1e-12, target=target,
                          progress=False).values
    gxi = xw.attribute(model, x16, method="input_x_gradient", target=target, progress=False).values
    scale = gxi.abs().max()
    torch.testing.assert_close(ours, gxi, rtol=0, atol=1e-5 * float(scale))


def test_generalized_gamma_zero_is_alpha1beta0(x16):
    x16 = x16.double()
    """Seed: gamma = 0 gives LRP-alpha1beta0 (positive outputs; ReLU nets zero the negative ones)."""
    model = bias_free_net().double()
    target = positive_target(model, x16)
    ours = xw.attribute(model, x16, method="lrp_gamma", gamma=0.0, stabilizer=1e-12, target=target,
                          progress=False).values
    ab = xw.attribute(model, x16, method="lrp_alpha_beta", alpha=1.0, beta=0.0, stabilizer=1e-12,
                       target=target, progress=False)
    torch.testing.assert_close(ours, ab.values, rtol=0, atol=1e-5 * float(ab.values.abs().max()))


def test_gamma_parameterisations_agree(x16):
    x16 = x16.double()
    """One rule, two parameters: seed gamma g equals zennit's gamma 1/g - 1 (up to the stabiliser)."""
    model = bias_free_net().double()
    seed = xw.attribute(model, x16, method="lrp_gamma", gamma=0.5, stabilizer=1e-12, progress=False).values
    zen = xw.attribute(model, x16, method="lrp_composite", composite={nn.Conv2d: rel.Gamma(1.0, 1e-12),
                       nn.Linear: rel.Gamma(1.0, 1e-12)}, stabilizer=1e-12, progress=False).values
    torch.testing.assert_close(seed, zen, rtol=0, atol=1e-5 * float(zen.abs().max()))


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1)])
def test_deeplift_summation_to_delta(pool):
    """Summation-to-delta (Shrikumar et al. 2017): sum_i C_i = f(x) - f(x0), also with overlapping max-pooling."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), pool, nn.Conv2d(8, 8, 3),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.randn(4, 3, 12, 12)
    for baseline in (None, 0.3, torch.randn(4, 3, 12, 12)):
        a = xw.attribute(model, x, method="deeplift", baseline=baseline, progress=False)
        with torch.no_grad():
            b = resolve_baseline(baseline, x)
            diff = (model(x) - model(b)).gather(1, a.target[:, None])[:, 0]
        torch.testing.assert_close(a.values.flatten(1).sum(1), diff, rtol=1e-4, atol=1e-5)
        assert float(a.extras["delta"].abs().max()) < 1e-4
    bg = torch.randn(5, 3, 12, 12)
    s = xw.attribute(model, x, method="deepshap", background=bg, batch_size=7, progress=False)
    with torch.no_grad():
        expected = model(x).gather(1, s.target[:, None])[:, 0] - model(bg)[:, s.target].mean(0)
    torch.testing.assert_close(s.values.flatten(1).sum(1), expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ restoration
def randomise_batchnorm(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


def snapshot(model: nn.Module) -> dict:
    return {
        "params": [(n, p, p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()],
        "buffers": [(n, b, b.clone()) for n, b in model.named_buffers()],
        "modules": [(n, m, m.training, getattr(m, "inplace", None), "forward" in m.__dict__,
                     {k: dict(getattr(m, k)) for k in _HOOK_DICTS if hasattr(m, k)})
                    for n, m in model.named_modules()],
    }


def assert_restored(model: nn.Module, before: dict, x: torch.Tensor, out: torch.Tensor) -> None:
    after = snapshot(model)
    assert [n for n, *_ in after["params"]] == [n for n, *_ in before["params"]]
    for (n, p, _v, rg), (_n, p0, v0, rg0) in zip(after["params"], before["params"]):
        assert p is p0 and torch.equal(p.detach(), v0) and rg == rg0, n
    for (n, b, _v), (_n, b0, v0) in zip(after["buffers"], before["buffers"]):
        assert b is b0 and torch.equal(b, v0), n
    assert [row[:5] for row in after["modules"]] == [row[:5] for row in before["modules"]]
    for row, row0 in zip(after["modules"], before["modules"]):
        assert row[5] == row0[5], row[0]
    with torch.no_grad():
        assert torch.equal(model(x), out)


@pytest.fixture
def bn_resnet(resnet18) -> nn.Module:
    import copy

    return randomise_batchnorm(copy.deepcopy(resnet18))


@pytest.mark.parametrize("method,params", [
    ("lrp_composite", {"composite": "EpsilonGammaBox", "low": -3.0, "high": 3.0}),
    ("lrp_epsilon", {"per_layer": True}),
    ("deeplift", {}),
    ("deepshap", {"background": torch.zeros(2, 3, 32, 32)}),
])
def test_model_restored_after_methods(bn_resnet, method, params):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    bn_resnet.layer1[0].register_forward_hook(lambda *a: None)  # a user hook must survive
    with torch.no_grad():
        out = bn_resnet(x)
    before = snapshot(bn_resnet)
    a = xw.attribute(bn_resnet, x, method=method, progress=False, **params)
    assert a.values.shape == x.shape and bool(torch.isfinite(a.values).all())
    assert_restored(bn_resnet, before, x, out)


class Boom(rel.Rule):
    """A rule that fails half-way through the backward pass."""

    def __init__(self) -> None:
        super().__init__((), None, None)

    def relevance(self, module, x, y, r):
        raise RuntimeError("boom")


def test_model_restored_when_a_rule_raises(bn_resnet):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = bn_resnet(x)
    before = snapshot(bn_resnet)
    with pytest.raises(RuntimeError, match="boom"):
        xw.attribute(bn_resnet, x, method="lrp_composite", composite="EpsilonPlusFlat",
                     rules={"layer2.0.conv1": Boom()}, progress=False)
    assert_restored(bn_resnet, before, x, out)


def test_batchnorm_merge_is_exact_and_undone(bn_resnet):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = bn_resnet(x)
    before = snapshot(bn_resnet)
    with rel.canonizers.canonized(bn_resnet) as state, torch.no_grad():
        assert len(state.merged) == 20 and len(state.sums) == 8
        torch.testing.assert_close(bn_resnet(x), out, rtol=1e-4, atol=1e-4)
    assert_restored(bn_resnet, before, x, out)


# ------------------------------------------------------------------------------------------------------ errors
class Strange(nn.Module):
    def forward(self, x):
        return x * 2


class Exp(nn.Module):
    """Not linear and not a known activation: its gradient is no relevance rule."""

    def forward(self, x):
        return torch.exp(x) - 1


def test_unknown_layers_are_transparent_and_guarded():
    """An unknown leaf is explained by the operations it performs (x * 2 passes relevance); one whose operations
    break conservation is named by the guard, which warns by default, raises on request, and can be silenced."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.Sequential(Strange()), nn.ReLU(), nn.Flatten(),
                          nn.Linear(144, 2, bias=False)).eval()
    x = torch.randn(2, 3, 8, 8)
    a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, conservation="raise", progress=False)
    torch.testing.assert_close(a.values.flatten(1).sum(1), a.extras["conservation"]["output"], rtol=1e-5, atol=1e-6)
    model[1][0] = Exp()
    with pytest.warns(rel.ConservationWarning, match=r"'exp' in module '1.0'"):
        a = xw.attribute(model, x, method="lrp_epsilon", progress=False)
    check = a.extras["conservation"]["check"]
    assert check["conserved"] is False and check["first_violation"]["module"] == "1.0"
    with pytest.raises(ModelError, match="not conserved"):
        xw.attribute(model, x, method="lrp_epsilon", conservation="raise", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = xw.attribute(model, x, method="lrp_epsilon", conservation="off", progress=False)
    assert a.extras["conservation"]["check"]["conserved"] is None


class Block(nn.Module):
    """A residual block of no known class; ``kind`` picks how the skip connection is added."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.conv1, self.bn1 = nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        if self.kind == "plus":
            out = out + x
        elif self.kind == "torch.add":
            out = torch.add(x, out)
        elif self.kind == "iadd":
            out += x
        else:
            out.add_(x)
        return torch.relu(out)


@pytest.mark.parametrize("kind", ["plus", "torch.add", "iadd", "add_"])
def test_residual_adds_split_whatever_performs_them(kind):
    """LRP-0 on a ReLU network with biases (merged batch norms) and residual adds equals gradient x input
    (Ancona et al. 2018); an add that is not split doubles the relevance of every block."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), Block(kind), Block(kind), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 3))
    model = randomise_batchnorm(model).eval().double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, conservation="raise", progress=False)
    gxi = xw.attribute(model, x, method="input_x_gradient", target=a.target, progress=False).values
    torch.testing.assert_close(a.values, gxi, rtol=0, atol=1e-9 * float(gxi.abs().max()))


def test_batchnorm_with_activation_is_merged_keeping_the_activation():
    """timm's BatchNormAct2d (a BatchNorm2d subclass that also activates) is folded into its convolution and
    its activation still runs; the model is the same afterwards."""
    from timm.layers import BatchNormAct2d

    torch.manual_seed(0)
    model = randomise_batchnorm(nn.Sequential(nn.Conv2d(3, 5, 3), BatchNormAct2d(5, act_layer=nn.ReLU),
                                              nn.Conv2d(5, 2, 3), nn.Flatten())).eval()
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        out = model(x)
    before = snapshot(model)
    with rel.canonizers.canonized(model) as state, torch.no_grad():
        assert model[1] in state.merged
        torch.testing.assert_close(model(x), out, rtol=1e-5, atol=1e-6)
    assert_restored(model, before, x, out)
    a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, target=0, conservation="raise", progress=False)
    gxi = xw.attribute(model, x, method="input_x_gradient", target=0, progress=False).values
    torch.testing.assert_close(a.values, gxi, rtol=0, atol=1e-4 * float(gxi.abs().max()))


def test_registered_canonizer_runs_and_is_undone():
    calls = []

    def tag(model, patch, state):
        calls.append(model)
        patch.set_forward(model[0], lambda self, x: nn.Conv2d.forward(self, x))

    model = bias_free_net()
    rel.register_canonizer(tag)
    try:
        xw.attribute(model, torch.randn(1, 3, 16, 16), method="lrp_zplus", progress=False)
    finally:
        rel.canonizers.CANONIZERS.remove(tag)
    assert calls == [model] and "forward" not in model[0].__dict__


def test_epsilon_zero_has_no_nan():
    """epsilon = 0 is LRP-0: a neuron with z = 0 passes no relevance (a plain division gives 0/0 = NaN)."""
    model = bias_free_net()
    x = torch.zeros(2, 3, 16, 16)
    x[0, :, :4, :4] = 1.0
    a = xw.attribute(model, x, method="lrp_epsilon", epsilon=0.0, target=0, progress=False)
    assert bool(torch.isfinite(a.values).all())
    with pytest.raises(ParameterError, match="epsilon"):
        xw.attribute(model, x, method="lrp_epsilon", epsilon=-1.0)


class SiLULike(nn.Module):
    """An activation of no known class, written out: ``x * sigmoid(x)``."""

    def forward(self, x):
        return x * torch.sigmoid(x)


class TimmLikeGELU(nn.Module):
    def forward(self, x):
        return nn.functional.gelu(x)


@pytest.mark.parametrize("act", [SiLULike, TimmLikeGELU])
def test_deeplift_rescales_activations_by_behaviour(act):
    """Summation-to-delta with activations that subclass nothing known (a zoo's own GELU, x * sigmoid(x))."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), act(), nn.Conv2d(6, 4, 3), act(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3)).eval()
    x, b = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    a = xw.attribute(model, x, method="deeplift", baseline=b, conservation="raise", progress=False)
    with torch.no_grad():
        diff = (model(x) - model(b)).gather(1, a.target[:, None])[:, 0]
    torch.testing.assert_close(a.values.flatten(1).sum(1), diff, rtol=1e-4, atol=1e-5)


def test_parameter_errors(x16):
    model = bias_free_net()
    with pytest.raises(ParameterError, match=r"gamma must lie in \[0, 1\]"):
        xw.attribute(model, x16, method="lrp_gamma", gamma=1.5)
    with pytest.raises(ParameterError, match="alpha - beta = 1"):
        xw.attribute(model, x16, method="lrp_alpha_beta", alpha=2.0, beta=2.0)
    with pytest.raises(ParameterError, match="unknown composite"):
        xw.attribute(model, x16, method="lrp_composite", composite="EpsilonFancy")
    with pytest.raises(ParameterError, match="low= and high="):
        xw.attribute(model, x16, method="lrp_composite", composite="EpsilonGammaBox")
    with pytest.raises(ParameterError, match="unknown LRP rule"):
        xw.attribute(model, x16, method="lrp_epsilon", rules={"0": "epsilonn"})
    with pytest.raises(LayerError, match="no layer named"):
        xw.attribute(model, x16, method="lrp_epsilon", rules={"features.9": "epsilon"})
    with pytest.raises(ParameterError, match="background="):
        xw.attribute(model, x16, method="deepshap")


def test_names_win_over_types(x16):
    model = bias_free_net()
    a = xw.attribute(model, x16, method="lrp_composite", composite={nn.Conv2d: "zplus", nn.Linear: "epsilon",
                     "3": "flat"}, stabilizer=1e-12, progress=False)
    assert a.extras["rules"]["3"].startswith("Flat") and a.extras["rules"]["0"].startswith("ZPlus")


# ------------------------------------------------------------------------------------------- demo EfficientNet
def test_efficientnet_lite0_composite_maps_the_cat(effnet, chelsea):
    """Sanity check, not an oracle: EpsilonGammaBox (bounds from the adapter's mean/std) on the demo model puts
    more positive relevance on the cat's face than a random map would."""
    model = effnet.model
    before = snapshot(model)
    with torch.no_grad():
        out = model(chelsea)
    a = xw.attribute(effnet, chelsea, method="lrp_composite", composite="EpsilonGammaBox", progress=False)
    assert bool(torch.isfinite(a.values).all())
    heat = a.values.sum(1)[0].clamp(min=0)
    face = heat[60:200, 50:200].sum() / heat.sum()
    area = (140 * 150) / (224 * 224)
    assert float(face) > area + 0.25, float(face)
    assert_restored(model, before, chelsea, out)


class _ParamDerived(nn.Module):
    """A learned scale exponentiated and a learned offset expanded in forward: tensors computed from
    parameters alone are constants of the pass, not input-dependent, whatever the parameters' flags."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.log_scale = nn.Parameter(0.1 * torch.randn(1, 6, 1, 1))
        self.offset = nn.Parameter(0.1 * torch.randn(1, 6, 1, 1))
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x) * self.log_scale.exp() + self.offset.expand(x.shape[0], -1, 1, 1)
        return self.fc(torch.relu(h).mean((2, 3)))


def test_lrp_is_the_same_for_trainable_and_frozen_parameters() -> None:
    """The user's requires_grad flags are never changed; the relevance must not depend on them."""
    from xaiwidgets.methods.relevance.guard import ConservationWarning

    model = _ParamDerived().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservationWarning)
        trainable = xw.attribute(model, x, method="lrp_epsilon", target=1, progress=False)
        for p in model.parameters():
            p.requires_grad_(False)
        frozen = xw.attribute(model, x, method="lrp_epsilon", target=1, progress=False)
    assert trainable.extras["conservation"]["check"]["conserved"]
    torch.testing.assert_close(trainable.values, frozen.values, rtol=0, atol=1e-6 * float(frozen.values.abs().max()))
