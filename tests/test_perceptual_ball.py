"""perceptual_ball (Elliott, Law & Russell 2021, arXiv:1912.09405).

Oracles: the blur is scipy.ndimage.gaussian_filter (the authors' blur) to float32 rounding at the map's
scale; the margin constraint is checked on the result (reached margin within 10% of v, the issue's bound);
restoration, determinism, the cascading-randomisation check and bad input are checked directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import LayerError
from xaiwidgets.methods.optimisation._common import gaussian_blur, margin
from xaiwidgets.methods.optimisation.perceptual_ball import default_layers

QUICK = {"n_steps": 10, "max_rounds": 1}  # where reaching v is not the point
FAST = {"n_steps": 30, "progress": False}


class BNNet(nn.Module):
    """conv-BN-ReLU blocks with two poolings, GAP and a linear head; seeded, running statistics from data."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())
        self.b1, self.p1, self.b2 = block(3, 8), nn.MaxPool2d(2), block(8, 12)
        self.p2, self.b3 = nn.MaxPool2d(2), block(12, 16)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
        with torch.no_grad():
            self.head[2].weight.mul_(10.0)  # logits of a few units, as a trained net's
        self.train()
        with torch.no_grad():
            self(torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(3)))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.b3(self.p2(self.b2(self.p1(self.b1(x))))))


@pytest.fixture
def net() -> BNNet:
    return BNNet()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.0])
def test_blur_matches_scipy(sigma: float) -> None:
    from scipy.ndimage import gaussian_filter

    maps = torch.rand(2, 1, 13, 17, generator=torch.Generator().manual_seed(0))
    ours = gaussian_blur(maps, sigma)[:, 0].numpy()
    theirs = np.stack([gaussian_filter(m[0].numpy().astype(np.float64), sigma=sigma) for m in maps])
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max()  # float32 rounding of a [0, 1] map


def test_default_layers_spread_before_the_last_stage(net: BNNet, x: torch.Tensor) -> None:
    names = default_layers(net, x)
    assert names and "b3" not in names and "head" not in names  # the head reads b3: left free
    assert names[0].startswith("b1") and any(n.startswith(("b2", "p2")) for n in names)


def test_margin_reaches_v_and_extras(net: BNNet, x: torch.Tensor) -> None:
    a = xw.attribute(net, x, method="perceptual_ball", v=-1.0, **FAST)
    assert a.values.shape == x.shape and bool((a.values >= 0).all())
    with torch.no_grad():
        reached = margin(net(x + a.raw), a.target)
    torch.testing.assert_close(reached, a.extras["margin"], rtol=1e-4, atol=1e-4)
    assert bool(((reached + 1.0).abs() <= 0.1).all()), reached  # within 10% of v
    torch.testing.assert_close(a.extras["distortion"], a.raw.flatten(1).norm(dim=1))
    assert a.extras["layers"] == default_layers(net, x)
    assert a.extras["margin_reached"] == [True] * x.shape[0]


def test_a_missed_margin_is_reported(net: BNNet, x: torch.Tensor) -> None:
    """One L-BFGS step and one round cannot reach a far margin: the method says so and marks the inputs."""
    with pytest.warns(RuntimeWarning, match="did not reach v=-50"):
        a = xw.attribute(net, x, method="perceptual_ball", v=-50.0, n_steps=1, max_rounds=1)
    assert a.extras["margin_reached"] == [False] * x.shape[0]


def test_margin_on_the_shapes_demo_model() -> None:
    clf = xw.demo.shapes_classifier()
    x = clf.preprocess(xw.demo.make_shapes(1, seed=3).images)
    a = xw.attribute(clf, x, method="perceptual_ball", n_steps=60, progress=False)
    assert abs(float(a.extras["margin"][0]) + 2.0) <= 0.2


def test_margin_on_a_seeded_resnet18(resnet18: nn.Module) -> None:
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))  # fixture: seeded, eval
    a = xw.attribute(resnet18, x, method="perceptual_ball", n_steps=20, progress=False)
    assert abs(float(a.extras["margin"][0]) + 2.0) <= 0.2, a.extras["margin"]


def test_deterministic_for_a_seed_and_batch_independent(net: BNNet, x: torch.Tensor) -> None:
    one = xw.attribute(net, x, method="perceptual_ball", init_noise=0.01, seed=4, progress=False, **QUICK)
    two = xw.attribute(net, x, method="perceptual_ball", init_noise=0.01, seed=4, progress=False, **QUICK)
    other = xw.attribute(net, x, method="perceptual_ball", init_noise=0.01, seed=5, progress=False, **QUICK)
    assert torch.equal(one.values, two.values)
    assert not torch.equal(one.values, other.values)
    alone = xw.attribute(net, x[:1], method="perceptual_ball", progress=False, **QUICK)  # r = 0: no randomness
    batch = xw.attribute(net, x, method="perceptual_ball", progress=False, **QUICK)
    torch.testing.assert_close(alone.values[0], batch.values[0], rtol=1e-4, atol=1e-6)


def test_model_left_untouched(net: BNNet, x: torch.Tensor) -> None:
    net.b2[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [(m.training, len(m._forward_hooks)) for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    xw.attribute(net, x, method="perceptual_ball", progress=False, **QUICK)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert flags == [(m.training, len(m._forward_hooks)) for m in net.modules()]
    assert grads == [p.requires_grad for p in net.parameters()]
    assert all(p.grad is None for p in net.parameters())


def test_passes_cascading_randomisation(net: BNNet, x: torch.Tensor) -> None:
    result = xw.metrics.model_randomisation(net, x, "perceptual_ball", params={"perceptual_ball": QUICK},
                                            measures=("spearman_abs",), progress=False)
    assert result.passed("perceptual_ball"), result.rows()


def test_bad_input(net: BNNet, x: torch.Tensor) -> None:
    with pytest.raises(LayerError, match="b2"):
        xw.attribute(net, x, method="perceptual_ball", layers=["b2.7"], **QUICK)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4)).eval()
    with pytest.raises(LayerError, match="no layer whose output is a map"):
        xw.attribute(flat, x, method="perceptual_ball", **QUICK)
    plain = xw.attribute(flat, x, method="perceptual_ball", layers=[], v=-1.0, **FAST)  # no perceptual term
    assert bool(((plain.extras["margin"] + 1.0).abs() <= 0.1).all())
    with pytest.raises(xw.core.errors.ParameterError, match="gamma"):
        xw.attribute(net, x, method="perceptual_ball", gamma=-1.0, **QUICK)
