"""Perturbation and Shapley methods: Shapley axioms (property-based), determinism, streaming, cancel,
model restoration and error messages."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.perturbation
from xaiwidgets.core.errors import Cancelled, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.methods.perturbation.shapley_solvers import (
    all_coalitions,
    exact_shapley_values,
    game_from_dict,
    kernel_shap_regression,
    shapley_kernel,
)

SAMPLING = ("kernel_shap", "shapley_sampling", "lime")


def mlp(d: int = 6, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, classes)).eval()


def rows(d: int = 6, n: int = 2) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(3))


# ---------------------------------------------------------------------------------------------- axioms


def test_seed_two_player_game():
    """The seed's game v(1)=1, v(2)=2, v(12)=4 has Shapley values (1.5, 2.5)."""
    table = {frozenset(): 0.0, frozenset({0}): 1.0, frozenset({1}): 2.0, frozenset({0, 1}): 4.0}
    phi = exact_shapley_values(lambda s: table[s], 2, batched=False)
    assert phi.tolist() == [1.5, 2.5]
    batched = exact_shapley_values(game_from_dict({(0,): 1, (1,): 2, (0, 1): 4}, 2), 2)
    assert batched.tolist() == [1.5, 2.5]


games = st.integers(1, 5).flatmap(
    lambda m: st.tuples(st.just(m), st.lists(st.floats(-10, 10, allow_nan=False), min_size=2**m, max_size=2**m))
)


def _table_fn(values: list[float]):
    table = torch.tensor(values, dtype=torch.float64)
    return lambda z: table[(z.long() << torch.arange(z.shape[1])).sum(1)]


@settings(max_examples=60, deadline=None)
@given(games)
def test_efficiency(game):
    """Efficiency: sum_i phi_i = v(N) - v(empty)."""
    m, values = game
    phi = exact_shapley_values(_table_fn(values), m)
    assert phi.sum().item() == pytest.approx(values[-1] - values[0], abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(games, st.data())
def test_null_player_and_symmetry(game, data):
    """Null player: v(S+i) = v(S) for all S gives phi_i = 0. Symmetry: players i, j with
    v(S+i) = v(S+j) for all S without i, j get equal values."""
    m, values = game
    base = torch.tensor(values, dtype=torch.float64)
    i = data.draw(st.integers(0, m - 1))
    k = torch.arange(2**m)
    null = base[k & ~(1 << i)]  # v ignores player i
    assert exact_shapley_values(_table_fn(null.tolist()), m)[i].item() == pytest.approx(0, abs=1e-9)
    if m >= 2:
        j = (i + 1) % m
        # symmetric in i and j: value of the coalition with bits i and j swapped averaged with itself
        bi, bj = (k >> i) & 1, (k >> j) & 1
        swapped = (k & ~((1 << i) | (1 << j))) | (bi << j) | (bj << i)
        sym = (base + base[swapped]) / 2
        phi = exact_shapley_values(_table_fn(sym.tolist()), m)
        assert phi[i].item() == pytest.approx(phi[j].item(), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(games, st.floats(-3, 3, allow_nan=False), st.data())
def test_linearity(game, a, data):
    """Linearity: phi(a v + w) = a phi(v) + phi(w)."""
    m, v = game
    w = data.draw(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2**m, max_size=2**m))
    combo = [a * x + y for x, y in zip(v, w)]
    lhs = exact_shapley_values(_table_fn(combo), m)
    rhs = a * exact_shapley_values(_table_fn(v), m) + exact_shapley_values(_table_fn(w), m)
    assert torch.allclose(lhs, rhs, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(games.filter(lambda g: g[0] >= 2))
def test_kernel_regression_is_exact_when_exhaustive(game):
    """KernelSHAP over all coalitions with the Shapley kernel and efficiency gives exact Shapley values."""
    m, values = game
    v = torch.tensor(values, dtype=torch.float64)
    z = all_coalitions(m)[1:-1]
    phi, _ = kernel_shap_regression(z, v[1:-1], shapley_kernel(m, z.sum(1)), v[0], v[-1])
    assert torch.allclose(phi, exact_shapley_values(_table_fn(values), m), atol=1e-8)


def test_exact_shapley_method_on_linear_model():
    """For a linear model f(x) = w.x with baseline 0, phi_i = w_i x_i (exactly)."""
    lin = nn.Linear(5, 1, bias=True)
    x = torch.randn(3, 5)
    a = xw.attribute(lin, x, method="exact_shapley", target=0, progress=False)
    assert torch.allclose(a.values, lin.weight.detach() * x, atol=1e-6)
    s = xw.attribute(lin, x, method="shapley_sampling", target=0, n_samples=4, progress=False)
    assert torch.allclose(s.values, lin.weight.detach() * x, atol=1e-6)


# ----------------------------------------------------------------------------------------- determinism


class RowWise(nn.Module):
    """A model whose output for a row does not depend on the other rows of the batch, bit for bit.

    A GEMM (``nn.Linear``) may round differently by 1 ulp for different batch sizes (the BLAS picks its
    blocking by the matrix shape), so bitwise equality across batch sizes can only be a property of the
    method's sampling and arithmetic when the model itself is row-wise exact, as this one is.
    """

    def __init__(self, d: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(classes, d, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x.double())
        return torch.stack([(h * w.double()).sum(-1) for w in self.w], 1).float()


@pytest.mark.parametrize("method", SAMPLING)
def test_same_seed_bitwise_identical_across_runs_and_batch_sizes(method):
    kw = {"n_samples": 40, "seed": 7, "progress": False, "target": 1}
    model, x = RowWise(), rows()
    a = xw.attribute(model, x, method=method, batch_size=64, **kw)
    b = xw.attribute(model, x, method=method, batch_size=64, **kw)
    c = xw.attribute(model, x, method=method, batch_size=6, **kw)
    assert torch.equal(a.values, b.values) and torch.equal(a.values, c.values)
    d = xw.attribute(model, x, method=method, batch_size=64, **{**kw, "seed": 8})
    assert not torch.equal(a.values, d.values)
    # a GEMM model: bitwise across runs, across batch sizes only up to its own rounding
    model = mlp()
    a = xw.attribute(model, x, method=method, batch_size=64, **kw)
    b = xw.attribute(model, x, method=method, batch_size=64, **kw)
    c = xw.attribute(model, x, method=method, batch_size=6, **kw)
    assert torch.equal(a.values, b.values)
    torch.testing.assert_close(a.values, c.values, atol=1e-6, rtol=0)


def test_rise_bitwise_identical_across_batch_sizes(tiny_cnn):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = xw.attribute(tiny_cnn, x, method="rise", n_masks=100, batch_size=64, progress=False)
    b = xw.attribute(tiny_cnn, x, method="rise", n_masks=100, batch_size=13, progress=False)
    assert torch.equal(a.values, b.values)
    assert a.values.shape == x.shape and torch.isfinite(a.values).all()


def test_rise_normalisation_constant_model():
    """For a constant model f = c, E[M] = p makes every pixel c: sum_i c M_i / (n p) -> c."""

    class Const(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2), 3.0)

    x = torch.randn(1, 3, 28, 28)
    a = xw.attribute(Const(), x, method="rise", n_masks=2000, p=0.3, cell_size=4, target=0, progress=False)
    assert a.values.mean().item() == pytest.approx(3.0, rel=0.03)


# ------------------------------------------------------------------------------------------ streaming


@pytest.mark.parametrize("method", SAMPLING)
def test_streaming_frames_and_callback(method):
    model, x = mlp(10), rows(10, n=1)  # 2**10 > n_samples: KernelSHAP samples
    seen = []
    a = xw.attribute(
        model,
        x,
        method=method,
        n_samples=200,
        batch_size=20,
        stream_every=2,
        target=0,
        progress=False,
        callback=lambda est, se: seen.append((est.n_samples, se.clone())),
    )
    assert a.frame_kind == "estimate"
    n = a.frames["n_samples"]
    assert a.frames["values"].shape[:2] == (len(n), 1) and a.frames["values"].shape[2:] == (10,)
    assert bool((n[1:] > n[:-1]).all()) and len(seen) == len(n)
    if method != "lime":  # lime's surrogate has no standard error
        # KernelSHAP reports one once it has more coalition pairs than features (NaN before)
        se = a.frames["stderr"].flatten(1).mean(1)
        finite = se[torch.isfinite(se)]
        assert len(finite) >= len(se) - 1 and finite[-1] < finite[0]


def test_rise_streaming(tiny_cnn):
    x = torch.randn(1, 3, 32, 32)
    a = xw.attribute(tiny_cnn, x, method="rise", n_masks=128, batch_size=32, stream_every=1, progress=False)
    assert a.frames["values"].shape == (4, 1, 32, 32)
    assert a.frames["stderr"][-1].mean() < a.frames["stderr"][0].mean()


@pytest.mark.parametrize("method", [*SAMPLING, "rise"])
def test_cancel_keeps_partial_estimate(method, tiny_cnn):
    calls = []
    progress = Progress(tqdm=False)

    def on_update(fraction, message):
        calls.append(fraction)
        if len(calls) == 3:
            progress.cancel()

    progress.callback = on_update
    if method == "rise":
        model, x, kw = tiny_cnn, torch.randn(1, 3, 32, 32), {"n_masks": 256}
    else:
        model, x, kw = mlp(), rows(), {"n_samples": 400}
    with pytest.raises(Cancelled) as info:
        xw.attribute(model, x, method=method, batch_size=20, progress=progress, target=0, **kw)
    partial = info.value.partial
    assert isinstance(partial, xw.Attribution)
    assert partial.values.shape == x.shape and partial.values[0].abs().sum() > 0
    assert len(calls) == 3
    # flagged as the best estimate so far: every sample evaluated for the first input, none for the second
    total = kw.get("n_samples", kw.get("n_masks"))
    assert partial.extras["cancelled"] is True and partial.extras["complete"] == [False, False][: x.shape[0]]
    done = partial.extras["n_samples_done"]
    assert 0 < done[0] < total and all(d == 0 for d in done[1:])


# ------------------------------------------------------------------------------------- methods, shapes


def test_occlusion_values_and_coverage(tiny_cnn):
    x = torch.randn(1, 3, 20, 20)
    a = xw.attribute(tiny_cnn, x, method="occlusion", window=6, stride=4, target=2, progress=False)
    assert a.values.shape == x.shape and a.extras["n_windows"] == 25
    # channels share a window: every channel gets the same value
    assert torch.equal(a.values[:, 0], a.values[:, 1])


def test_occlusion_on_tabular_rows():
    """Window 1 over (N, d): attribution_i = f(x) - f(x with x_i = baseline)."""
    model, x = mlp(), rows()
    a = xw.attribute(model, x, method="occlusion", target=0, progress=False)
    ref = torch.stack([model(x)[:, 0] - model(x.index_fill(1, torch.tensor([i]), 0.0))[:, 0] for i in range(6)], 1)
    assert torch.allclose(a.values, ref.detach(), atol=1e-6)


def test_segments_grid_and_user(tiny_cnn):
    x = torch.randn(1, 3, 16, 16)
    kw = {"target": 0, "progress": False, "n_samples": 64}
    a = xw.attribute(tiny_cnn, x, method="kernel_shap", segments="grid", segmentation_params={"patch": 8}, **kw)
    assert a.extras["n_features"] == [4] and a.extras["exact"] == [True]
    seg = torch.zeros(16, 16, dtype=torch.long)
    seg[8:] = 5  # labels are renumbered to 0..M-1
    b = xw.attribute(tiny_cnn, x, method="kernel_shap", segments=seg, **kw)
    assert b.extras["n_features"] == [2]
    # efficiency on the per-feature values
    phi = b.extras["feature_values"][0]
    with torch.no_grad():
        full, empty = tiny_cnn(x)[0, 0], tiny_cnn(torch.zeros_like(x))[0, 0]
    assert phi.sum().item() == pytest.approx((full - empty).item(), abs=1e-5)
    assert b.extras["base_value"][0].item() == pytest.approx(empty.item(), abs=1e-6)


@pytest.mark.parametrize("segmentation", ["slic", "quickshift", "felzenszwalb"])
def test_superpixels(segmentation, tiny_cnn):
    x = torch.rand(1, 3, 32, 32)
    params = {"slic": {"n_segments": 6}, "quickshift": {"kernel_size": 3}, "felzenszwalb": {"scale": 200}}
    a = xw.attribute(
        tiny_cnn,
        x,
        method="lime",
        segments=segmentation,
        segmentation_params=params[segmentation],
        n_samples=50,
        target=0,
        progress=False,
    )
    seg = a.extras["segments"]
    assert seg.shape == (1, 1, 32, 32) and seg.max() + 1 == a.extras["n_features"][0]
    assert {"segment_weights", "intercept", "r2"} <= set(a.extras)


@pytest.mark.parametrize("baseline", ["black", "mean", "blur", 0.5, "tensor"])
def test_baselines(baseline, tiny_cnn):
    x = torch.randn(1, 3, 16, 16)
    b = torch.zeros(3, 16, 16) if baseline == "tensor" else baseline
    a = xw.attribute(tiny_cnn, x, method="occlusion", window=8, stride=8, baseline=b, progress=False)
    assert torch.isfinite(a.values).all()


def test_extremal_perturbation_area_and_variants(tiny_cnn):
    x = torch.randn(1, 3, 24, 24)
    for variant in ("preservation", "deletion"):
        a = xw.attribute(
            tiny_cnn,
            x,
            method="extremal_perturbation",
            n_steps=30,
            area=0.25,
            variant=variant,
            target=1,
            progress=False,
            frame_every=10,
        )
        assert a.values.shape == x.shape and 0 <= a.values.min() and a.values.max() <= 1
        assert a.frame_kind == "steps" and a.frames["values"].shape[0] == 4
    again = xw.attribute(
        tiny_cnn, x, method="extremal_perturbation", n_steps=30, area=0.25, variant="deletion", target=1, progress=False
    )
    assert torch.equal(again.values, a.values)


# -------------------------------------------------------------------------------------------- restore


def _snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()],
    )


def test_model_restored_including_after_error(tiny_cnn):
    x = torch.randn(1, 3, 16, 16)
    tiny_cnn.features[0].weight.requires_grad_(False)
    before = _snapshot(tiny_cnn)
    out_before = tiny_cnn(x)
    for method, kw in [
        ("occlusion", {"window": 8}),
        ("rise", {"n_masks": 32}),
        ("kernel_shap", {"n_samples": 16}),
        ("shapley_sampling", {"n_samples": 2}),
        ("lime", {"n_samples": 16}),
        ("extremal_perturbation", {"n_steps": 3}),
        ("exact_shapley", {"segments": "grid", "segmentation_params": {"patch": 8}}),
    ]:
        seg = {"segments": "grid"} if method in ("kernel_shap", "shapley_sampling", "lime") else {}
        xw.attribute(tiny_cnn, x, method=method, progress=False, **{**seg, **kw})

    def boom(est, se):
        raise RuntimeError("mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        xw.attribute(
            tiny_cnn,
            x,
            method="kernel_shap",
            segments="grid",
            n_samples=64,
            stream_every=1,
            batch_size=8,
            callback=boom,
            progress=False,
        )
    after = _snapshot(tiny_cnn)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1:] == after[1:]
    assert torch.equal(out_before, tiny_cnn(x))


# --------------------------------------------------------------------------------------------- errors


def test_errors_say_what_to_do(tiny_cnn):
    x = torch.randn(1, 3, 16, 16)
    model = mlp(20)
    with pytest.raises(ParameterError, match=r"kernel_shap.*shapley_sampling"):
        xw.attribute(model, torch.randn(1, 20), method="exact_shapley", progress=False)
    with pytest.raises(ParameterError, match=r"M=20 > 16"):
        exact_shapley_values(lambda z: z.sum(1), 20)
    with pytest.raises(ParameterError, match="stride no larger than the window"):
        xw.attribute(tiny_cnn, x, method="occlusion", window=4, stride=6, progress=False)
    with pytest.raises(ParameterError, match="larger than the input"):
        xw.attribute(tiny_cnn, x, method="occlusion", window=20, progress=False)
    with pytest.raises(ParameterError, match="unknown baseline"):
        xw.attribute(tiny_cnn, x, method="occlusion", window=8, baseline="white", progress=False)
    with pytest.raises(ParameterError, match="does not broadcast"):
        xw.attribute(tiny_cnn, x, method="occlusion", window=8, baseline=torch.zeros(2, 5), progress=False)
    with pytest.raises(ParameterError, match="do not match the inputs"):
        xw.attribute(tiny_cnn, x, method="kernel_shap", segments=torch.zeros(8, 8, dtype=torch.long), progress=False)
    with pytest.raises(ParameterError, match="unknown segmentation"):
        xw.attribute(tiny_cnn, x, method="lime", segments="watershed", progress=False)
    with pytest.raises(ParameterError, match="feature_selection must be one of"):
        xw.attribute(tiny_cnn, x, method="lime", feature_selection="lasso", progress=False)
    with pytest.raises(ParameterError, match=r"coalitions must be \(n_samples, 4\)"):
        xw.attribute(
            tiny_cnn,
            x,
            method="lime",
            segments="grid",
            segmentation_params={"patch": 8},
            coalitions=torch.ones(10, 3),
            progress=False,
        )
    with pytest.raises(ParameterError, match="area must be a fraction"):
        xw.attribute(tiny_cnn, x, method="extremal_perturbation", area=1.5, progress=False)
    with pytest.raises(ParameterError, match="rise masks images"):
        xw.attribute(model, torch.randn(1, 20), method="rise", progress=False)
    with pytest.raises(ParameterError, match="n_samples must be an integer"):
        xw.attribute(model, torch.randn(1, 20), method="kernel_shap", n_samples=0, progress=False)


def test_coalition_matrix_maps_to_inputs():
    """features.Masker: z=1 keeps the input, z=0 takes the baseline, per segment."""
    from xaiwidgets.methods.perturbation.features import Masker

    x = torch.arange(8.0).view(1, 2, 2, 2)
    seg = torch.tensor([[[0, 1], [1, 2]]])
    masker = Masker(x, seg, torch.full_like(x, -1.0))
    z = torch.tensor(list(itertools.product([0, 1], repeat=3)))
    out = masker.inputs(z)
    assert out.shape == (8, 2, 2, 2)
    for row, zi in zip(out, z):
        expect = torch.where(zi[seg].bool().expand(2, 2, 2), x[0], torch.tensor(-1.0))
        assert torch.equal(row, expect)


def test_repeated_coalitions_are_evaluated_once_with_the_same_result():
    """Sampled coalitions repeat; each distinct one costs one model row and the estimate is unchanged:
    equal to the regression over every sampled row evaluated one by one (up to float32 rounding of the
    model rows: a batch of 1 runs another matmul kernel than a batch of 32; atol 1e-7 on values ~0.1)."""
    from xaiwidgets.methods.perturbation._common import generator
    from xaiwidgets.methods.perturbation.features import Game, Masker, first_occurrence
    from xaiwidgets.methods.perturbation.kernel_shap import paired_estimate, sample_paired_coalitions

    model, x = mlp(10), rows(10, n=1)
    a = xw.attribute(model, x, method="kernel_shap", n_samples=600, seed=2, target=0, batch_size=32, progress=False)
    cpu = torch.device("cpu")
    z = sample_paired_coalitions(10, 300, generator(2, cpu), cpu)
    distinct = torch.unique(z, dim=0).shape[0]
    assert distinct < 600 and a.extras["n_evaluations"] == [distinct + 2]  # + the empty and full coalitions
    source = first_occurrence(z)
    assert (source <= torch.arange(600)).all() and (z[source] == z).all()
    game = Game(model, Masker(x, torch.arange(10), torch.zeros(1, 10)), 0, 1)
    v_empty, v_full = game(torch.stack([torch.zeros(10, dtype=torch.bool), torch.ones(10, dtype=torch.bool)]))
    y = torch.cat([game(z[k : k + 1]) for k in range(600)])
    phi, _ = paired_estimate(z, y, v_empty.double(), v_full.double())
    torch.testing.assert_close(a.extras["feature_values"][0], phi, rtol=0, atol=1e-7)


def _direct_paired_estimate(z, y, v_empty, v_full):
    """The textbook form of :func:`paired_estimate`: every row, an explicit Lagrange system and the sample
    covariance of the per-pair means of ``z (y - v_empty - z' phi)``."""
    zf, dy = z.double(), y.double() - v_empty
    s, m = zf.shape
    a, b = zf.T @ zf / s, zf.T @ dy / s
    kkt = torch.zeros(m + 1, m + 1, dtype=torch.float64)
    kkt[:m, :m], kkt[:m, m], kkt[m, :m] = a, 1.0, 1.0
    phi = torch.linalg.solve(kkt, torch.cat([b, (v_full - v_empty).reshape(1)]))[:m]
    ainv = torch.linalg.inv(a)
    ones = torch.ones(m, dtype=torch.float64)
    c = ainv - torch.outer(ainv @ ones, ones @ ainv) / (ones @ ainv @ ones)
    pair_means = (zf * (dy - zf @ phi)[:, None]).view(s // 2, 2, m).mean(1)
    cov = torch.cov(pair_means.T)
    return phi, (torch.diagonal(c @ cov @ c.T) / (s // 2)).sqrt()


@pytest.mark.parametrize(("m", "n_pairs"), [(4, 30), (10, 300), (50, 500)])
def test_paired_estimate_equals_the_direct_formulas(m, n_pairs):
    """The estimate works on the first row of each pair and never forms the (pairs, M) residual matrix;
    it equals the direct weighted regression and sandwich standard error to 1e-10 (relative)."""
    from xaiwidgets.methods.perturbation._common import generator
    from xaiwidgets.methods.perturbation.kernel_shap import paired_estimate, sample_paired_coalitions

    cpu = torch.device("cpu")
    z = sample_paired_coalitions(m, n_pairs, generator(m, cpu), cpu)
    w = torch.randn(m, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    y = (z.double() @ w) ** 2 / m + 0.1 * torch.randn(z.shape[0], dtype=torch.float64)  # not additive
    v_empty, v_full = torch.tensor(0.2, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64)
    phi, stderr = paired_estimate(z, y, v_empty, v_full)
    ref_phi, ref_se = _direct_paired_estimate(z, y, v_empty, v_full)
    torch.testing.assert_close(phi, ref_phi, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stderr, ref_se, rtol=1e-8, atol=1e-12)
    assert phi.sum().item() == pytest.approx(1.1, abs=1e-12)  # efficiency, exactly


def test_paired_coalitions_follow_the_shapley_kernel():
    """Sizes s in 1..M-1 with probability proportional to 1/(s (M-s)), members uniform given the size,
    rows 2k and 2k+1 complementary, and with_ends puts the empty and the full coalition first without
    changing the sampled rows (200k pairs: frequencies within 5 standard errors)."""
    from xaiwidgets.methods.perturbation._common import generator
    from xaiwidgets.methods.perturbation.kernel_shap import sample_paired_coalitions

    cpu, m, n = torch.device("cpu"), 8, 200_000
    z = sample_paired_coalitions(m, n, generator(3, cpu), cpu)
    assert z.dtype == torch.bool and z.shape == (2 * n, m) and bool((z[0::2] ^ z[1::2]).all())
    first = z[0::2]
    sizes = torch.arange(1, m, dtype=torch.float64)
    p = 1 / (sizes * (m - sizes))
    p /= p.sum()
    freq = torch.bincount(first.sum(1), minlength=m)[1:].double() / n
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt()).all()
    for s in (1, 3, 6):  # each feature is a member with probability s / M given the size
        rows_s = first[first.sum(1) == s].double()
        share = rows_s.mean(0)
        assert ((share - s / m).abs() <= 5 * (s / m * (1 - s / m) / rows_s.shape[0]) ** 0.5).all()
    with_ends = sample_paired_coalitions(m, 50, generator(3, cpu), cpu, with_ends=True)
    assert not with_ends[0].any() and with_ends[1].all()
    assert torch.equal(with_ends[2:], sample_paired_coalitions(m, 50, generator(3, cpu), cpu))


def test_kernel_shap_stderr_is_calibrated():
    """The reported standard error matches the spread of the estimate over seeds: over 40 seeds the
    per-feature standard deviation of phi is within [0.7, 1.4] x the mean reported standard error
    (a sampling check: that many seeds put the ratio within about +-25%)."""
    model, x = mlp(10), rows(10, n=1)
    phis, ses = [], []
    for seed in range(40):
        a = xw.attribute(model, x, method="kernel_shap", n_samples=300, seed=seed, target=0, progress=False)
        phis.append(a.extras["feature_values"][0])
        ses.append(a.extras["stderr"][0])
    ratio = torch.stack(phis).std(0) / torch.stack(ses).mean(0)
    assert ((ratio > 0.7) & (ratio < 1.4)).all(), ratio


@pytest.mark.parametrize("m", [1, 8, 9, 64, 65, 200])
def test_first_occurrence_of_rows(m):
    """Rows are keyed by their packed bits (an int64 up to 64 features, a byte string beyond): the first
    index of each row equals a dictionary lookup's, with many repeats, for any number of features."""
    from xaiwidgets.methods.perturbation.features import first_occurrence

    z = torch.rand(300, m, generator=torch.Generator().manual_seed(m)) > 0.5
    z[::7] = z[3]
    seen: dict[tuple[bool, ...], int] = {}
    expected = [seen.setdefault(tuple(row), i) for i, row in enumerate(z.tolist())]
    assert first_occurrence(z).tolist() == expected
