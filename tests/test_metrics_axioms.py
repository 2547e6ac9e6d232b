"""Axiom tests: completeness/conservation, continuity, implementation invariance, input invariance,
selectivity.

Known answers:
- the seed's blind spot: a uniform explanation ``R_i = f(x) / d`` passes conservation (exactly) and
  continuity (its ratio to the output's Lipschitz quotient is exactly 1) but fails selectivity, which
  the true object mask passes;
- Montavon et al. 2018: the gradient is not continuous (ratio in the hundreds on the demo model);
- Sundararajan et al. 2017: on ``max(x1, x2) = relu(x1 - x2) + x2 = relu(x2 - x1) + x1`` gradient-based
  methods (gradient, input x gradient, Integrated Gradients) agree, LRP-z+ does not;
- Kindermans et al. 2019: under a constant input shift absorbed by the first bias, the gradient is
  unchanged (exactly, also with the demo model's zero padding) while input x gradient and
  Integrated Gradients with a zero baseline change.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, InputError, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.metrics.axioms import (
    completeness,
    continuity,
    implementation_invariance,
    input_invariance,
    max_networks,
    selectivity,
    shift_absorbed,
    translate,
)


@pytest.fixture(scope="module")
def demo():
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(8, 64, seed=5)
    return clf, data, clf.preprocess(data.images)


def uniform(model, inputs, target):
    """The uniform conservative explanation: every feature gets f(x) / d."""
    with torch.no_grad():
        f = model(inputs).gather(1, target.view(-1, 1)).view(-1, *([1] * (inputs.dim() - 1)))
    return (f / inputs[0].numel()).expand_as(inputs).clone()


def test_uniform_explanation_passes_conservation_and_continuity_but_fails_selectivity(demo):
    clf, data, x = demo
    target = clf.model(x).argmax(1)
    u = uniform(clf.model, x, target)
    cons = completeness(clf, x, u, target, baseline=None)
    assert bool(cons.passed.all()) and bool(cons.bounded.all())
    assert cons.abs_ratio.tolist() == pytest.approx([1.0] * 8, rel=1e-5)
    cont = continuity(clf, x[:2], uniform, progress=False)
    assert cont.ratio.tolist() == pytest.approx([1.0, 1.0], rel=1e-4) and bool(cont.passed.all())
    sel = selectivity(clf, x, u, target, steps=16, n_random=4)
    assert not sel.passed and sel.beats_random.double().mean() <= 0.25
    oracle = selectivity(clf, x, data.masks.float().unsqueeze(1), target, steps=16, n_random=4)
    assert oracle.passed and float(oracle.gain.mean()) > 0.1


def test_gradient_is_discontinuous_on_the_demo_model(demo):
    """Montavon et al. 2018: the gradient jumps between nearby inputs of a ReLU network."""
    clf, _, x = demo
    cont = continuity(clf, x[:2], "gradient", progress=False)
    assert bool((cont.ratio > 20).all()) and not bool(cont.passed.any())
    assert cont.explanation_change.shape == (8, 2) and cont.shifts.tolist() == [0.25 * i for i in range(9)]
    grad = xw.attribute(clf, x[:2], "gradient")  # step 0 is the unshifted input
    assert torch.allclose(cont.relevance_sums[0], grad.values.flatten(1).sum(1).double(), atol=1e-5)
    assert torch.allclose(cont.outputs[0], grad.scores.double(), atol=1e-5)


def test_continuity_on_a_given_sequence_of_tabular_inputs():
    """A linear model's gradient is constant: zero explanation change along any path."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3).eval()
    x = torch.randn(4, 5)
    sequence = torch.stack([x + 0.1 * t for t in range(6)])
    cont = continuity(model, None, "gradient", sequence=sequence, progress=False)
    assert float(cont.lipschitz.max()) == 0.0 and bool(cont.passed.all())
    with pytest.raises(InputError, match="sequence="):
        continuity(model, x, "gradient", progress=False)


def test_translate_moves_images_by_whole_and_sub_pixels():
    img = torch.zeros(1, 1, 4, 8)
    img[..., 2] = 1.0
    assert torch.allclose(translate(img, 1.0)[0, 0, 0], torch.tensor([0, 0, 0, 1.0, 0, 0, 0, 0]), atol=1e-6)
    assert torch.allclose(translate(img, 0.5)[0, 0, 0, 2:4], torch.tensor([0.5, 0.5]), atol=1e-6)
    assert torch.allclose(translate(img.transpose(2, 3), 1.0, axis="y")[0, 0, :, 0],
                          torch.tensor([0, 0, 0, 1.0, 0, 0, 0, 0]), atol=1e-6)


def test_completeness_of_methods_with_their_own_baselines(demo):
    clf, _, x = demo
    ig = xw.attribute(clf, x[:4], "integrated_gradients", n_steps=64)
    # "auto": IG's black (zero) baseline and IG's target; 64 Gauss-Legendre steps leave gaps of up to 3 %
    result = completeness(clf, x[:4], ig, rtol=0.05)
    assert result.baseline_output is not None and bool(result.passed.all())
    assert torch.allclose(result.gap, ig.extras["delta"].float().cpu(), atol=1e-4)
    deeplift = xw.attribute(clf, x[:4], "deeplift")
    assert bool(completeness(clf, x[:4], deeplift).passed.all())  # summation-to-delta holds exactly
    # the same IG values measured against f(x) alone (no baseline) fail conservation
    assert not bool(completeness(clf, x[:4], ig, baseline=None).passed.all())


def test_cancelling_relevance_is_conservative_but_unbounded():
    """``sum |R_i| <= A |f(x)|`` catches conservation reached by large relevances of both signs."""
    model = nn.Sequential(nn.Linear(4, 1, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    x = torch.ones(2, 4)  # f(x) = 4
    exact = torch.ones(2, 4)
    cancelling = exact + torch.tensor([10.0, -10.0, 10.0, -10.0])
    good, bad = completeness(model, x, exact, 0), completeness(model, x, cancelling, 0)
    assert bool(good.passed.all()) and bool(good.bounded.all())
    assert bool(bad.passed.all()) and not bool(bad.bounded.any())
    assert bad.abs_ratio.tolist() == pytest.approx([40 / 4] * 2)  # (11 + 9 + 11 + 9) / 4
    assert bool(completeness(model, x, cancelling, 0, bound=10.0).bounded.all())
    with pytest.raises(ParameterError, match="bound"):
        completeness(model, x, exact, 0, bound=-1)


@pytest.mark.parametrize(
    ("method", "invariant"),
    [("gradient", True), ("input_x_gradient", True), ("integrated_gradients", True), ("lrp_zplus", False)],
)
def test_implementation_invariance_on_the_max_networks(method, invariant):
    net_a, net_b = max_networks()
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))  # no ties x1 == x2
    assert torch.allclose(net_a(x).squeeze(1), x.max(1).values) and torch.allclose(net_b(x).squeeze(1), x.max(1).values)
    result = implementation_invariance(net_a, net_b, x, method, target=0)
    assert bool(result.passed.all()) is invariant
    if not invariant:
        assert float(result.relative_l1.median()) > 0.1


def test_implementation_invariance_refuses_different_functions():
    net_a, _ = max_networks()
    other = nn.Sequential(nn.Linear(2, 1)).eval()
    with pytest.raises(ParameterError, match="functionally equal"):
        implementation_invariance(net_a, other, torch.randn(4, 2), "gradient", target=0)


@pytest.mark.parametrize(("method", "invariant"), [("gradient", True), ("input_x_gradient", False)])
def test_input_invariance_kindermans(demo, method, invariant):
    clf, _, x = demo
    before = copy.deepcopy(clf.model.state_dict())
    fractions = []
    result = input_invariance(clf, x[:4], method, batch_size=2,
                              progress=Progress(lambda f, m: fractions.append(f), tqdm=False))
    assert fractions == [0.25, 0.5, 0.75, 1.0]  # two explanations of 4 inputs in chunks of 2
    assert result.output_gap < 1e-4  # the shifted copy computes the same scores
    assert bool(result.passed.all()) is invariant
    if not invariant:
        assert float(result.relative_l1.median()) > 0.5
    after = clf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_pre_hooks for m in clf.model.modules())


def test_integrated_gradients_with_a_zero_baseline_is_not_input_invariant(demo):
    clf, _, x = demo
    result = input_invariance(clf, x[:2], "integrated_gradients", params={"n_steps": 16})
    assert not bool(result.passed.any())


def test_shift_absorbed_is_exact_for_linear_and_padded_convolutions():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.randn(3, 6)
    shift = torch.linspace(-1, 1, 6)
    assert torch.allclose(shift_absorbed(mlp, x, shift)(x + shift), mlp(x), atol=1e-6)
    for padding in (0, 2, "same"):
        conv = nn.Sequential(nn.Conv2d(3, 5, 3, padding=padding, bias=False, dilation=2), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
        img = torch.randn(2, 3, 12, 12)
        m = torch.tensor([0.5, -1.0, 2.0])
        copied = shift_absorbed(conv, img, m)
        assert torch.allclose(copied(img + m.view(1, 3, 1, 1)), conv(img), atol=1e-5), padding
        assert conv[0].bias is None  # the user's model is untouched
    with pytest.raises(ParameterError, match="constant per channel"):
        shift_absorbed(conv, img, torch.randn(3, 12, 12))


def test_selectivity_curves_and_determinism(demo):
    clf, _, x = demo
    a = xw.attribute(clf, x[:4], "input_x_gradient")
    first = selectivity(clf, x[:4], a, patch=16, n_random=3, seed=1)
    again = selectivity(clf, x[:4], a, patch=16, n_random=3, seed=1)
    assert torch.equal(first.curve, again.curve) and torch.equal(first.random_curves, again.random_curves)
    assert first.curve.shape == (4, 17) and first.random_curves.shape == (4, 3, 17)
    assert first.removed.tolist() == list(range(17))
    # step 0 is the clean score, the last step removes everything: all orders agree there
    assert torch.allclose(first.curve[:, 0], a.scores.double().cpu(), atol=1e-5)
    assert torch.allclose(first.random_curves[:, :, -1], first.curve[:, -1:].expand(4, 3), atol=1e-5)
    assert set(first.row()) == {"method", "selectivity_auc", "selectivity_gain", "beats_random"}


def test_selectivity_on_tabular_features_by_hand():
    """f = x0 + 2 x1 + 3 x2 at x = 1 with baseline 0: removing by relevance x2, x1, x0 gives 6, 3, 1, 0."""
    model = nn.Linear(3, 1, bias=False).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    x = torch.ones(1, 3)
    result = selectivity(model, x, torch.tensor([[1.0, 2.0, 3.0]]), 0, patch=1, n_random=2, baseline=0.0)
    assert result.curve[0].tolist() == pytest.approx([6.0, 3.0, 1.0, 0.0])


def test_metrics_report_progress_and_cancel(demo):
    clf, _, x = demo
    seen = []
    continuity(clf, x[:2], "gradient", progress=Progress(lambda f, m: seen.append(f), tqdm=False), batch_size=6)
    assert seen[-1] == 1.0 and len(seen) == 3
    progress = Progress(tqdm=False)
    progress.cancel()
    with pytest.raises(Cancelled):
        selectivity(clf, x[:2], torch.ones(2, 1, 64, 64), progress=progress)
