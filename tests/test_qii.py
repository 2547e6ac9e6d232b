"""QII (Datta, Sen & Zick 2016, IEEE S&P): every variant against its definition computed by brute force
(all redraws, all subsets, all orderings) in float64 to 1e-10; Shapley-QII against our interventional
``exact_shapley`` on the same game; the sampling estimators' 1/sqrt(n) convergence and standard errors;
label-flip and group-gap quantities on models built so the answers are known; errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_text_tabular_methods import bag_classifier
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import ParameterError

M, B = 4, 3


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(M, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(1)
    net = mlp()
    bg = torch.randn(B, M, dtype=torch.float64)
    x = torch.randn(2, M, dtype=torch.float64)
    return net, xw.TabularModel(net, background=bg), bg, x


def q_of(out: torch.Tensor, quantity: str, target: int, label: int) -> float:
    if quantity == "score":
        return float(out[target])
    if quantity == "probability":
        return float(torch.softmax(out, 0)[target])
    return float(int(out.argmax()) == label)


def brute_iota(net, x, bg, quantity, redraw, target, label):
    """iota(S) = q(x) - E q(x_{-S} U_S) by enumerating every redraw, for every S (frozenset)."""
    with torch.no_grad():
        q0 = q_of(net(x[None])[0], quantity, target, label)
        table = {}
        for r in range(M + 1):
            for s in itertools.combinations(range(M), r):
                draws = itertools.product(range(B), repeat=len(s)) if redraw == "marginals" else (
                    (k,) * len(s) for k in range(B))
                vals = []
                for d in draws:
                    y = x.clone()
                    for j, k in zip(s, d):
                        y[j] = bg[k, j]
                    vals.append(q_of(net(y[None])[0], quantity, target, label))
                table[frozenset(s)] = q0 - sum(vals) / len(vals)
    return table


def brute_variant(table, variant, subset):
    n = range(M)
    if variant == "unary":
        return [table[frozenset([i])] for i in n]
    if variant == "set":
        return [table[frozenset(subset)] if i in subset else 0.0 for i in n]
    if variant == "marginal":
        s = frozenset(subset)
        return [0.0 if i in s else table[s | {i}] - table[s] for i in n]
    if variant == "shapley":  # mean over all M! orderings of the marginal influence
        perms = list(itertools.permutations(n))
        out = [0.0] * M
        for p in perms:
            for k, i in enumerate(p):
                out[i] += (table[frozenset(p[: k + 1])] - table[frozenset(p[:k])]) / len(perms)
        return out
    rest = [[s for r in range(M) for s in itertools.combinations([j for j in n if j != i], r)] for i in n]
    return [sum(table[frozenset(s) | {i}] - table[frozenset(s)] for s in rest[i]) / 2 ** (M - 1) for i in n]


@pytest.mark.parametrize("quantity", ["score", "probability", "label_flip"])
@pytest.mark.parametrize("redraw", ["marginals", "joint"])
def test_every_variant_equals_its_brute_force_definition(setup, quantity, redraw):
    net, table_model, bg, x = setup
    labels = net(x).argmax(1)
    for variant in ("unary", "set", "marginal", "shapley", "banzhaf"):
        subset = [1, 3] if variant in ("set", "marginal") else None
        a = xw.attribute(table_model, x, "qii", target=2, variant=variant, quantity=quantity, redraw=redraw,
                         subset=subset, mode="exact")
        assert all(a.extras["exact"])
        for i in range(x.shape[0]):
            want = brute_variant(brute_iota(net, x[i], bg, quantity, redraw, 2, int(labels[i])), variant, subset)
            got = a.extras["influence"][i]
            assert got.dtype == torch.float64
            torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-10)


def test_shapley_qii_equals_interventional_exact_shapley(setup):
    """The Shapley value of iota(S) = v(N) - v(N \\ S) (the dual game) is that of v; with joint redraws the
    game is ``exact_shapley``'s on the same background, with the product of marginals it is
    ``exact_shapley``'s on the product background (every combination of the columns' values)."""
    _, table_model, bg, x = setup
    joint = xw.attribute(table_model, x, "qii", redraw="joint", target=1)
    ref = xw.attribute(table_model, x, "exact_shapley", target=1)
    # exact_shapley's tabular values are float32: equal to float32 rounding
    torch.testing.assert_close(joint.values, ref.values, rtol=1e-6, atol=1e-7)
    product = torch.stack([torch.stack([bg[k, j] for j, k in enumerate(ks)])
                           for ks in itertools.product(range(B), repeat=M)])
    marg = xw.attribute(table_model, x, "qii", target=1)
    ref = xw.attribute(table_model, x, "exact_shapley", target=1, background=product)
    torch.testing.assert_close(marg.values, ref.values, rtol=1e-6, atol=1e-7)


def test_images_over_segments_match_exact_shapley_and_brute_force():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 36, 3)).double().eval()
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    bgs = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    seg = {"segments": "grid", "segmentation_params": {"patch": 3}}  # 4 segments
    a = xw.attribute(net, x, "qii", baseline=bgs, redraw="joint", target=0, **seg)
    ref = xw.attribute(net, x, "exact_shapley", baseline=bgs, target=0, **seg)
    torch.testing.assert_close(a.values, ref.values, rtol=0, atol=1e-10)
    assert a.values.shape == x.shape
    # unary QII with the product of marginals: segment j alone from each background image
    u = xw.attribute(net, x, "qii", baseline=bgs, variant="unary", target=0, **seg)
    segments = u.extras["segments"][0].expand(3, 6, 6)
    with torch.no_grad():
        for j in range(4):
            alt = torch.stack([torch.where(segments == j, b, x[0]) for b in bgs])
            want = float(net(x)[0, 0] - net(alt)[:, 0].mean())
            assert abs(float(u.extras["influence"][0][j]) - want) < 1e-10


def test_text_words_match_exact_shapley():
    clf = bag_classifier(torch.float64)
    a = xw.attribute(clf, "a very good film", "qii", target=1)
    ref = xw.attribute(clf, "a very good film", "exact_shapley", target=1)
    torch.testing.assert_close(a.values, ref.values, rtol=1e-6, atol=1e-7)  # float32 values
    assert a.extras["features"] == ref.extras["features"]


@pytest.mark.parametrize("variant", ["shapley", "banzhaf", "unary"])
def test_sampling_converges_at_one_over_sqrt_n_with_its_standard_error(setup, variant):
    _, table_model, _, x = setup
    exact = xw.attribute(table_model, x[:1], "qii", variant=variant, target=0).extras["influence"][0]
    ses, errs = [], []
    for n in (200, 3200):
        runs = [xw.attribute(table_model, x[:1], "qii", variant=variant, target=0, mode="sample", n_samples=n,
                             seed=s) for s in range(4)]
        est = torch.stack([r.extras["influence"][0] for r in runs])
        se = torch.stack([r.extras["stderr"][0] for r in runs])
        assert not any(r.extras["exact"][0] for r in runs)
        # within 4.5 standard errors of the exact value (per feature and seed: 16 checks, ~1e-4 false alarms)
        assert bool(((est - exact).abs() <= 4.5 * se + 1e-12).all())
        ses.append(se.mean())
        errs.append((est - exact).pow(2).mean().sqrt())
    assert 3.0 < float(ses[0] / ses[1]) < 5.3  # sqrt(16) = 4
    assert float(errs[1]) < float(errs[0])


class Threshold(nn.Module):
    """Logits (0, 50 * (x0 + x1 - 1.5)): class 1 exactly when x0 = x1 = 1 on 0/1 inputs; x2 is ignored."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros_like(x[:, 0]), 50 * (x[:, 0] + x[:, 1] - 1.5)], 1)


def test_label_flip_on_a_known_model():
    """x = (1, 1, 1) is class 1; the background holds x0 = 1 in 1 of 4 rows, x1 = 1 in 2 of 4. Redrawing x0
    flips the label with probability 3/4, x1: 1/2, both (marginals): 1 - 1/4 * 1/2 = 7/8; x2 never."""
    bg = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    tm = xw.TabularModel(Threshold(), background=bg)
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    unary = xw.attribute(tm, x, "qii", variant="unary", quantity="label_flip").extras["influence"][0]
    torch.testing.assert_close(unary, torch.tensor([0.75, 0.5, 0.0], dtype=torch.float64), rtol=0, atol=1e-12)
    both = xw.attribute(tm, x, "qii", variant="set", subset=[0, 1], quantity="label_flip")
    assert abs(float(both.extras["set_influence"][0]) - 7 / 8) < 1e-12
    shap = xw.attribute(tm, x, "qii", quantity="label_flip").extras["influence"][0]
    # 2-player game iota({0}) = 3/4, iota({1}) = 1/2, iota({0, 1}) = 7/8: phi_0 = (3/4 + 7/8 - 1/2) / 2
    torch.testing.assert_close(shap, torch.tensor([9 / 16, 5 / 16, 0.0], dtype=torch.float64), rtol=0, atol=1e-12)
    # joint redraws: a background row != (1, 1) on (x0, x1) flips the label: 4 of 4 rows
    joint = xw.attribute(tm, x, "qii", variant="set", subset=[0, 1], quantity="label_flip", redraw="joint")
    assert abs(float(joint.extras["set_influence"][0]) - 1.0) < 1e-12


class Proxy(nn.Module):
    """Positive (class 1) exactly when x0 > 0; x1 (the group column) and x2 are not read."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros_like(x[:, 0]), 10 * x[:, 0]], 1)


def test_group_gap_on_a_known_model():
    """Group 1 has x0 = 1 (always positive), group 0 has x0 = -1 (never): the gap is 1. Redrawing x0 from its
    marginal (half 1, half -1) makes every row positive with probability 1/2 in both groups: the gap
    closes, iota({x0}) = 1 and, x1 and x2 being unread, Shapley gives x0 all of it."""
    g = torch.tensor([1, 1, 0, 0, 0, 1], dtype=torch.float64)
    rows = torch.stack([2 * g - 1, g, torch.arange(6.0, dtype=torch.float64)], 1)
    tm = xw.TabularModel(Proxy(), background=rows, feature_names=["score", "sex", "id"])
    for variant in ("unary", "shapley", "banzhaf"):
        a = xw.attribute(tm, rows, "qii", quantity="group_gap", group="sex", variant=variant)
        torch.testing.assert_close(a.extras["influence"][0], torch.tensor([1.0, 0, 0], dtype=torch.float64),
                                   rtol=0, atol=1e-12)
        assert float(a.extras["group_gap"][0]) == 1.0 and a.values.shape == (1, 3)
    flipped = xw.attribute(tm, rows, "qii", quantity="group_gap", group=1, group_value=0.0, variant="unary")
    assert float(flipped.extras["group_gap"][0]) == -1.0
    assert float(flipped.extras["influence"][0][0]) == -1.0


def test_errors(setup):
    _, table_model, _, x = setup
    with pytest.raises(ParameterError, match="needs group="):
        xw.attribute(table_model, x, "qii", quantity="group_gap")
    with pytest.raises(ParameterError, match="group_gap"):
        xw.attribute(mlp(), torch.randn(1, 3, 8, 8), "qii", quantity="group_gap")
    with pytest.raises(ParameterError, match="group_gap"):
        xw.attribute(bag_classifier(), "a good film", "qii", quantity="group_gap")
    with pytest.raises(ParameterError, match="needs subset"):
        xw.attribute(table_model, x, "qii", variant="set")
    with pytest.raises(ParameterError, match="subset must hold"):
        xw.attribute(table_model, x, "qii", variant="marginal", subset=[7])
    with pytest.raises(ParameterError, match="exact_limit"):
        xw.attribute(table_model, x, "qii", mode="exact", exact_limit=10)
    with pytest.raises(ParameterError, match="quantity must be one of"):
        xw.attribute(table_model, x, "qii", quantity="odds")
    with pytest.raises(ParameterError, match="distinct values"):
        xw.attribute(table_model, torch.randn(3, M, dtype=torch.float64), "qii",
                     quantity="group_gap", group=0)
    auto = xw.attribute(table_model, x[:1], "qii", exact_limit=10, n_samples=8)
    assert auto.extras["exact"] == [False] and math.isfinite(float(auto.extras["stderr"][0].sum()))
