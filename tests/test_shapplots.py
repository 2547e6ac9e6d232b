"""TabularPlots (SHAP's plot family): the numbers of every view against the attribution arrays, additivity,
every input kind (our tabular methods, texts, a shap Explanation, plain arrays), bad input, PNG and HTML."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.analysis import shapplots as rules
from xaiwidgets.core.errors import InputError
from xaiwidgets.widgets.explanationtable import from_arrays


@pytest.fixture(scope="module")
def tab_rows():
    tab = xw.demo.breast_cancer_classifier()
    _, x_test, *_ = xw.demo.breast_cancer_split()
    return tab, x_test[:24]


@pytest.fixture(scope="module")
def shap_attr(tab_rows):
    tab, x = tab_rows
    return xw.attribute(tab, x, "kernel_shap", target=1, n_samples=200, seed=0, progress=False)


def test_every_number_equals_the_attribution(shap_attr) -> None:
    a = shap_attr
    v = a.values.double().numpy()
    base, out = a.extras["base_value"].double().numpy(), a.extras["output_value"].double().numpy()
    p = xw.plots.tabular(a, cohorts="mean radius")
    n, d = v.shape
    for i in (0, 7, n - 1):
        w = p.plot_data("waterfall", row=i)
        shown = list(w["order"])
        np.testing.assert_allclose(w["value"][:-1], v[i, shown])
        np.testing.assert_allclose(w["value"][-1], v[i, list(w["folded"])].sum())
        assert sorted(shown + list(w["folded"])) == list(range(d))
        assert np.all(np.abs(v[i, shown[:-1]]) >= np.abs(v[i, shown[1:]]))
        assert w["start"][-1] == pytest.approx(base[i])  # from the base value ...
        # ... to f(x): additivity of KernelSHAP (efficiency is enforced in its regression), float32 sums
        assert w["end"][0] == pytest.approx(out[i], abs=1e-4 * max(1.0, abs(out[i])))
        np.testing.assert_allclose(w["end"][1:], w["start"][:-1])
        assert w["labels"][-1] == f"{d - 9} other features"
    bee = p.plot_data("beeswarm")
    imp = np.abs(v).mean(0)
    assert list(bee["order"]) == list(np.argsort(-imp, kind="stable")[:9])
    np.testing.assert_allclose(bee["x"][:9], v[:, bee["order"]].T)
    np.testing.assert_allclose(bee["x"][9], np.delete(v, bee["order"], 1).sum(1))
    np.testing.assert_allclose(bee["color"][0], a.inputs.double().numpy()[:, bee["order"][0]])
    heat = p.plot_data("heatmap")
    np.testing.assert_allclose(heat["matrix"], bee["x"][:, heat["rows"]])
    assert sorted(heat["rows"]) == list(range(n))
    bar = p.plot_data("bar")
    col = a.inputs.numpy()[:, 0]
    med = np.median(col)
    for c, rows in enumerate([col < med, col >= med]):
        np.testing.assert_allclose(bar["means"][c], np.abs(v[rows]).mean(0))
        np.testing.assert_allclose(bar["bars"][c, :9], np.abs(v[rows]).mean(0)[bar["order"]])
    dec = p.plot_data("decision")
    assert len(dec["order"]) == 20 and list(dec["order"]) == list(np.argsort(np.abs(v).sum(0), kind="stable")[-20:])
    np.testing.assert_allclose(dec["paths"][:, -1], base + v.sum(1))
    np.testing.assert_allclose(np.diff(dec["paths"], axis=1), v[:, dec["order"]])
    dep = p.plot_data("dependence")
    assert dep["feature"] == bee["order"][0]
    np.testing.assert_allclose(dep["y"], v[:, dep["feature"]])
    # the wire carries the same numbers in float32
    assert p.plot["fold_count"] == d - 9 and len(p.features) == d


@pytest.mark.parametrize(
    "method,kw",
    [
        ("shapley_sampling", {"n_samples": 8}),
        ("lime", {"n_samples": 200}),
        ("integrated_gradients", {}),
        ("deepshap", {}),
    ],
)
def test_every_tabular_method(tab_rows, method: str, kw: dict) -> None:
    tab, x = tab_rows
    a = xw.attribute(tab, x[:6], method, target=0, progress=False, **kw)
    p = xw.plots.waterfall(a, row=2)
    w = p.plot_data("waterfall")
    ex = a.extras
    base = float((ex["intercept"] if method == "lime" else ex["base_value"])[2])
    assert w["start"][-1] == pytest.approx(base)
    assert w["total"] == pytest.approx(base + float(a.values[2].double().sum()), abs=1e-5)
    assert p.output_name == ("surrogate g(x)" if method == "lime" else "f(x)")
    assert p._fallback_png()[:4] == b"\x89PNG"


def test_exact_shapley_and_text() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(5, 2))
    tab = xw.TabularModel(model, feature_names=list("abcde"), background=torch.zeros(4, 5))
    a = xw.attribute(tab, torch.randn(7, 5), "exact_shapley", target=0, progress=False)
    p = xw.plots.tabular(a)
    assert p.plot_data("waterfall")["end"][0] == pytest.approx(float(a.extras["output_value"][0]), abs=1e-5)
    # texts: one column per word, NaN where a text lacks it; the word's value is summed over its occurrences
    features = [["good", "film", "good"], ["bad", "film"]]
    fake = xw.Attribution(
        values=torch.tensor([[0.5, 0.1, 0.2], [-0.4, 0.05, 0.0]]),
        method="kernel_shap",
        target=torch.tensor([1, 1]),
        scores=torch.zeros(2),
        extras={
            "features": features,
            "level": "word",
            "base_value": torch.tensor([0.1, 0.1]),
            "output_value": torch.tensor([0.9, -0.25]),
        },
    )
    t = xw.plots.beeswarm(fake).table
    assert t.features == ["good", "film", "bad"]
    np.testing.assert_allclose(t.values, [[0.7, 0.1, np.nan], [np.nan, 0.05, -0.4]], atol=1e-7)
    bar = xw.plots.bar(fake).plot_data("bar")
    np.testing.assert_allclose(bar["means"][0], [0.7, 0.075, 0.4], atol=1e-7)
    with pytest.raises(ValueError, match="features' values"):
        xw.plots.scatter(fake)


def test_rules_fold_and_cohorts() -> None:
    assert [list(x) for x in rules.fold(np.arange(5), 5)] == [[0, 1, 2, 3, 4], []]
    assert [list(x) for x in rules.fold(np.arange(6), 5)] == [[0, 1, 2, 3], [4, 5]]
    idx, names = rules.cohorts_of(np.array([True, False, True]), None, ["a"], 3)
    assert idx.tolist() == [0, 1, 0] and names == ["True", "False"]
    idx, names = rules.cohorts_of(["x", "y", "x"], None, ["a"], 3)
    assert idx.tolist() == [0, 1, 0] and names == ["x", "y"]
    data = np.array([[1.0], [2.0], [1.0]])
    idx, names = rules.cohorts_of("a", data, ["a"], 3)
    assert idx.tolist() == [0, 1, 0] and names == ["a = 1", "a = 2"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="nothing to plot"):
        from_arrays(np.zeros((0, 3)), 0.0)
    with pytest.raises(ValueError, match="one entry per row"):
        xw.plots.bar(from_arrays(np.zeros((4, 3)), 0.0), cohorts=[True, False])
    with pytest.raises(ValueError, match="unknown views"):
        xw.plots.tabular(from_arrays(np.ones((4, 3)), 0.0), views=["pie"])
    with pytest.raises(ValueError, match="no feature named"):
        xw.plots.scatter(from_arrays(np.ones((4, 3)), 0.0, feature_values=np.ones((4, 3))), "zzz")
    img = xw.Attribution(
        values=torch.zeros(1, 3, 4, 4), method="saliency", target=torch.tensor([0]), scores=torch.zeros(1)
    )
    with pytest.raises(InputError, match="one value per feature"):
        xw.plots.beeswarm(img)
    with pytest.raises(TypeError, match="Attribution or a shap Explanation"):
        xw.plots.beeswarm(np.zeros((3, 3)))


def test_png_and_html_export(shap_attr, tmp_path) -> None:
    p = xw.plots.tabular(shap_attr)
    data, meta = p._repr_mimebundle_()
    assert "image/png" in data and meta["xaiwidgets"]["fallback"] == "image/png"
    page = xw.to_html(p, tmp_path / "plots.html")
    assert "TabularPlots" in page and (tmp_path / "plots.html").stat().st_size > 10_000
    p.max_display = 5
    assert len(p.plot_data("beeswarm")["labels"]) == 5 and p.plot["fold_count"] == 26


def test_shap_explanation_input() -> None:
    """A shap Explanation goes in as it is: tabular (one output), one row, or text (ragged token rows)."""
    import shap
    rng = np.random.default_rng(0)
    e = shap.Explanation(rng.normal(size=(6, 4)), base_values=np.full(6, 0.2), data=rng.normal(size=(6, 4)),
                         feature_names=list("abcd"))
    w = xw.plots.waterfall(e, row=3).plot_data("waterfall")
    assert w["total"] == pytest.approx(0.2 + e.values[3].sum()) and w["start"][-1] == pytest.approx(0.2)
    assert xw.plots.waterfall(e[3]).table.values.shape == (1, 4)
    with pytest.raises(InputError, match="several outputs"):
        xw.plots.beeswarm(shap.Explanation(np.zeros((3, 4, 2)), base_values=np.zeros((3, 2))))
    vals, data = np.empty(2, dtype=object), np.empty(2, dtype=object)
    vals[0], vals[1] = np.array([0.1, 0.5, -0.2]), np.array([0.3, -0.1])
    data[0], data[1] = np.array(["a ", "good ", "film"]), np.array(["bad ", "film"])
    t = xw.plots.beeswarm(shap.Explanation(vals, base_values=np.array([0.0, 0.1]), data=data)).table
    assert t.features == ["a", "good", "film", "bad"]
    np.testing.assert_allclose(t.values, [[0.1, 0.5, -0.2, np.nan], [np.nan, np.nan, -0.1, 0.3]])
