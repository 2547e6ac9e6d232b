"""masking_saliency (Phang, Park & Geras 2020, arXiv:2010.09750): the in/out objective with the authors'
gated area penalties, the per-image optimisation and the trained mask generator (``fit_masker``).

Oracles: the loss terms against their definitions on hand-built cases (a model whose prediction is known
for each masked input); the classifier left exactly as it was; one forward pass per explanation with a
trained generator. IoU against the shapes' object masks is measured in benchmarks/optimisation.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.methods.optimisation import MaskGenerator, fit_masker
from xaiwidgets.methods.optimisation.masking_saliency import entropy, in_out_loss, masker_layers, tv_loss


class Bright(nn.Module):
    """Two classes: class 0 scores the mean brightness of the left half, class 1 a constant 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = x[..., : x.shape[-1] // 2].mean((1, 2, 3))
        return torch.stack([4 * left, torch.full_like(left, 0.5)], 1)


class Small(nn.Module):
    """conv-ReLU-pool twice, GAP, linear; seeded."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.p1 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()), nn.MaxPool2d(2)
        self.c2, self.p2 = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()), nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.p2(self.c2(self.p1(self.c1(x)))))


def test_tv_and_entropy_definitions() -> None:
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    # neighbours: (0,1) (1,1) across, (0,1) (1,1) down -> 2; border: rows 0/1 and columns 0/1, squared -> 6
    assert float(tv_loss(mask)[0]) == pytest.approx((2 + 0.3 * 6) / 2)
    assert float(entropy(torch.zeros(1, 4))[0]) == pytest.approx(float(torch.log(torch.tensor(4.0))))


def test_in_out_loss_gates_the_area_penalties() -> None:
    model = Bright()
    x = torch.ones(1, 1, 2, 4)
    target = torch.tensor([0])
    left = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]] * 2]])  # keeps the evidence: in kept, out confused
    loss, info = in_out_loss(model, x, left, target, (1.0, 10.0, 0.0))
    assert bool(info["kept"][0]) and bool(info["confused"][0])
    s_in, s_out = model(x * left), model(x * (1 - left))
    expected = F.cross_entropy(s_in, target) + 0.5 - entropy(s_out)[0] + 10.0 * 0.5
    torch.testing.assert_close(loss[0], expected)
    right = 1 - left  # removes nothing the class needs: out still predicts 0, so no out penalty; in loses it
    loss, info = in_out_loss(model, x, right, target, (1.0, 10.0, 0.0))
    assert not bool(info["kept"][0]) and not bool(info["confused"][0])
    expected = F.cross_entropy(model(x * right), target) - entropy(model(x * left))[0]
    torch.testing.assert_close(loss[0], expected)
    loss_gated, _ = in_out_loss(model, x, left, target, (1.0, 10.0, 0.0), clean_ok=torch.tensor([False]))
    torch.testing.assert_close(loss_gated[0], F.cross_entropy(s_in, target) + 0.5)  # no out terms when wrong


def test_per_image_mask_finds_the_evidence() -> None:
    x = torch.ones(1, 3, 8, 8)
    a = xw.attribute(Bright(), x, method="masking_saliency", target=0, n_steps=60, cell_size=1, progress=False)
    mask = a.values[0, 0]
    assert a.values.shape == x.shape and bool(((mask >= 0) & (mask <= 1)).all())
    assert float(mask[:, :4].mean()) > float(mask[:, 4:].mean()) + 0.2
    again = xw.attribute(Bright(), x, method="masking_saliency", target=0, n_steps=60, cell_size=1, progress=False)
    assert torch.equal(a.values, again.values)


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, 16, 16, generator=g), torch.randint(0, 3, (12,), generator=g)


def test_fit_masker_leaves_the_classifier_and_explains_in_one_pass(data) -> None:
    model = Small().eval()
    model.c1[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    gen = fit_masker(model, data, epochs=2, batch_size=6, width=4, progress=False)
    assert isinstance(gen, MaskGenerator) and gen.layers == masker_layers(model, data[0]) == ["c2", "p2"]
    assert len(gen.history) == 2 and not gen.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert flags == [p.requires_grad for p in model.parameters()] and all(p.grad is None for p in model.parameters())
    assert not model.training and "classifier" not in dict(gen.named_modules())
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        a = gen.attribute(data[0][:3])
    finally:
        handle.remove()
    assert len(calls) == 1 and a.values.shape == (3, 3, 16, 16) and a.extras["source"] == "masker"
    same = xw.attribute(model, data[0][:3], method="masking_saliency", masker=gen)
    assert torch.equal(a.values, same.values)
    again = fit_masker(model, data, epochs=2, batch_size=6, width=4, progress=False)
    assert torch.equal(again.attribute(data[0][:3]).values, a.values)  # deterministic for a seed


def test_masker_bad_input(data) -> None:
    model = Small().eval()
    gen = fit_masker(model, data[0], epochs=1, batch_size=12, width=2, progress=False)
    with pytest.raises(ParameterError, match="another model"):
        xw.attribute(Small().eval(), data[0][:1], method="masking_saliency", masker=gen)
    with pytest.raises(ParameterError, match="trained on"):
        xw.attribute(model, torch.randn(1, 3, 24, 24), method="masking_saliency", masker=gen)
    with pytest.raises(ParameterError, match="MaskGenerator"):
        xw.attribute(model, data[0][:1], method="masking_saliency", masker="yes")
    with pytest.raises(ParameterError, match="lambda_out"):
        fit_masker(model, data, lambda_out=-1.0, progress=False)
    with pytest.raises(xw.core.errors.LayerError, match="c9"):
        fit_masker(model, data, layers=["c9"], progress=False)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).eval()
    with pytest.raises(xw.core.errors.LayerError, match="spatial feature maps"):
        fit_masker(flat, data, progress=False)


def test_registered_and_listed() -> None:
    names = {row["name"]: row for row in xw.methods.available(modality="image")}
    assert names["masking_saliency"]["family"] == names["perceptual_ball"]["family"] == "optimisation"
