"""Peers for the text and tabular methods.

- shap 0.51 ``KernelExplainer`` (identity link, exhaustive: ``nsamples >= 2**d - 2``) on a float64 MLP with
  6 features and the same 12 background rows: our ``kernel_shap`` (exhaustive at ``n_samples >= 2**d``) and
  shap's values and expected value agree to 1e-10 (both are the exact Shapley values of the same game).
- lime 0.2.0.1 ``LimeTabularExplainer`` (quartile discretizer and continuous sampling around the instance)
  and ``LimeTextExplainer`` (bag of words, word removal): lime draws the perturbations; we feed the same
  perturbed rows (``samples=``) / the same binary matrix (``coalitions=``) to ours, and weights, intercept,
  R² and local prediction agree to 1e-8 (float64 models; the ridge is solved in closed form by us and by
  scikit-learn's ``Ridge`` in lime).
- captum 0.9 ``LayerIntegratedGradients`` on the embedding layer (Gauss-Legendre, 50 steps, all-[PAD]
  reference): token sums agree to 1e-9 (float64 model).
- axioms on the demo MiniLM: IG completeness (auto steps to a 1% gap) and exact Shapley == exhaustive
  KernelSHAP over the words of a short text (1e-5: the two evaluate the coalitions in different batches of a
  float32 model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.tabular import TabularModel
from xaiwidgets.core.text import SimpleTokenizer, TextClassifier

pytestmark = pytest.mark.peers

D = 6


class ProbMLP(nn.Module):
    """float64 MLP with softmax outputs (lime needs probabilities; shap explains one of them)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.net = nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 2)).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).softmax(-1)


@pytest.fixture(scope="module")
def tab():
    g = torch.Generator().manual_seed(5)
    background = torch.randn(12, D, generator=g, dtype=torch.float64)
    rows = torch.randn(3, D, generator=g, dtype=torch.float64)
    model = TabularModel(ProbMLP().eval(), background=background, feature_names=[f"f{i}" for i in range(D)])
    return model, rows


def numpy_predict(model: TabularModel):
    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.model(torch.as_tensor(x, dtype=torch.float64)).numpy()

    return predict


def test_kernel_shap_tabular_vs_shap_kernel_explainer(tab):
    shap = pytest.importorskip("shap")
    model, rows = tab
    predict = numpy_predict(model)
    explainer = shap.KernelExplainer(lambda x: predict(x)[:, 1], model.background.numpy())
    theirs = np.asarray(explainer.shap_values(rows.numpy(), nsamples=2**D, silent=True))
    ours = xw.attribute(model, rows, "kernel_shap", target=1, n_samples=2**D, progress=False)
    assert ours.extras["exact"] == [True] * 3
    np.testing.assert_allclose(ours.values.double().numpy(), theirs, atol=1e-6, rtol=0)  # values are float32
    exact = xw.attribute(model, rows, "exact_shapley", target=1, progress=False)
    np.testing.assert_allclose(exact.extras["base_value"].numpy(), float(explainer.expected_value), atol=1e-10)
    # the float64 estimates behind the float32 values: compare at 1e-10 through efficiency-free sums
    np.testing.assert_allclose(ours.extras["base_value"].numpy(), float(explainer.expected_value), atol=1e-10)
    np.testing.assert_allclose(ours.extras["output_value"].numpy(), predict(rows.numpy())[:, 1], atol=1e-12)


def _lime_tabular(model: TabularModel, row: torch.Tensor, *, discretize: bool, num_features: int, seed: int):
    lime_tabular = pytest.importorskip("lime.lime_tabular")
    explainer = lime_tabular.LimeTabularExplainer(
        model.background.numpy(), mode="classification", discretize_continuous=discretize,
        sample_around_instance=True, random_state=seed,
    )
    captured = {}
    draw = explainer._LimeTabularExplainer__data_inverse

    def spy(data_row, num_samples, *args):
        data, inverse = draw(data_row, num_samples, *args)
        captured["inverse"] = inverse.copy()
        return data, inverse

    explainer._LimeTabularExplainer__data_inverse = spy
    exp = explainer.explain_instance(row.numpy(), numpy_predict(model), labels=(1,), num_features=num_features,
                                     num_samples=400)
    return exp, captured["inverse"]


@pytest.mark.parametrize(("discretize", "num_features"), [(True, D), (True, 3), (False, D), (False, 2)])
def test_lime_tabular_vs_lime_package(tab, discretize, num_features):
    model, rows = tab
    exp, inverse = _lime_tabular(model, rows[0], discretize=discretize, num_features=num_features, seed=3)
    ours = xw.attribute(model, rows[:1], "lime", target=1, samples=inverse, discretize=discretize,
                        num_features=num_features, feature_selection="auto", progress=False)
    theirs = np.zeros(D)
    for j, w in exp.local_exp[1]:
        theirs[j] = w
    e = ours.extras
    np.testing.assert_allclose(e["weights"][0].numpy(), theirs, atol=1e-8, rtol=0)
    np.testing.assert_allclose(float(e["intercept"][0]), exp.intercept[1], atol=1e-8)
    np.testing.assert_allclose(float(e["r2"][0]), exp.score, atol=1e-8)
    np.testing.assert_allclose(float(e["local_pred"][0]), float(np.ravel(exp.local_pred)[0]), atol=1e-8)
    assert sorted(int(i) for i in e["used_features"][0]) == sorted(j for j, _ in exp.local_exp[1])


VOCAB = ["[PAD]", "[UNK]", "[MASK]", "not", "a", "very", "good", "film", "plot", "bad"]


class BagProb(nn.Module):
    """float64 masked-mean bag of embeddings -> tanh MLP -> probabilities."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.emb = nn.Embedding(len(VOCAB), 5).double()
        self.head = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).double()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        m = mask.to(e.dtype).unsqueeze(-1)
        return self.head((e * m).sum(1) / m.sum(1).clamp_min(1)).softmax(-1)


@pytest.fixture(scope="module")
def bag() -> TextClassifier:
    return TextClassifier(BagProb().eval(), SimpleTokenizer(VOCAB, mask_token="[MASK]"), labels=["neg", "pos"])


@pytest.mark.parametrize("num_features", [5, 10])
def test_lime_text_vs_lime_package(bag, num_features):
    """lime's bag-of-words explainer removes every occurrence of a word from the string; on a text without
    repeated words or punctuation that is our word-level ``replace="remove"``, so lime's scores of its own
    strings equal our coalition scores (1e-12) and the fits agree given lime's binary matrix."""
    lime_text = pytest.importorskip("lime.lime_text")
    text = "not a very good plot film"
    explainer = lime_text.LimeTextExplainer(random_state=1)
    captured = {}
    fit = explainer.base.explain_instance_with_data

    def spy(data, labels, distances, *args, **kwargs):
        captured.update(data=data.copy(), labels=labels.copy(), distances=distances.copy())
        return fit(data, labels, distances, *args, **kwargs)

    explainer.base.explain_instance_with_data = spy
    nothing = bag(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long)).detach()

    def classify(strings):  # lime's all-removed string is empty: score it as a text with no token left
        out = nothing.expand(len(strings), -1).clone()
        full = [i for i, s in enumerate(strings) if s.strip()]
        out[full] = bag.scores([strings[i] for i in full], batch_size=512)
        return out.numpy()

    exp = explainer.explain_instance(text, classify, labels=(1,), num_features=num_features, num_samples=300)
    z = torch.as_tensor(captured["data"])
    mine = bag.score_coalitions(text, z, level="word", replace="remove")[:, 1]
    np.testing.assert_allclose(mine.numpy(), captured["labels"][:, 1], atol=1e-12)
    from xaiwidgets.methods.modalities.lime_sampling import cosine_distances

    np.testing.assert_allclose((cosine_distances(z) * 100).numpy(), captured["distances"], atol=1e-9)
    ours = xw.attribute(bag, text, "lime", target=1, coalitions=z, num_features=num_features, progress=False)
    assert ours.extras["features"][0] == ["not", "a", "very", "good", "plot", "film"]
    theirs = np.zeros(6)
    for j, w in exp.local_exp[1]:
        theirs[j] = w
    np.testing.assert_allclose(ours.extras["weights"][0].numpy(), theirs, atol=1e-8, rtol=0)
    np.testing.assert_allclose(float(ours.extras["intercept"][0]), exp.intercept[1], atol=1e-8)
    np.testing.assert_allclose(float(ours.extras["r2"][0]), exp.score, atol=1e-8)


def test_text_integrated_gradients_vs_captum_layer_ig(bag):
    captum_attr = pytest.importorskip("captum.attr")
    text = "not a very good film"
    enc = bag.encode(text)
    lig = captum_attr.LayerIntegratedGradients(lambda ids: bag(ids), bag.embedding_layer)
    ref = torch.full_like(enc.input_ids, VOCAB.index("[PAD]"))
    theirs = lig.attribute(enc.input_ids, baselines=ref, target=1, n_steps=50, method="gausslegendre")
    ours = xw.attribute(bag, text, "integrated_gradients", target=1, n_steps=50, baseline="pad", progress=False)
    torch.testing.assert_close(ours.values[0].double(), theirs.sum(-1)[0], atol=1e-7, rtol=0)  # float32 values


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    return sentiment_classifier()


def test_minilm_integrated_gradients_completeness(minilm):
    """Completeness: sum over tokens of IG = F(x) - F(x') up to the quadrature error; with ``n_steps="auto"``
    the relative gap |delta| / |F(x) - F(x')| is <= 0.01 (``tolerance``) and the bookkeeping
    ``sum(values) - delta = output - base`` holds to 1e-5."""
    a = xw.attribute(minilm, "A gorgeous film.", "integrated_gradients", n_steps="auto", tolerance=0.01,
                     max_steps=256, progress=False)
    e = a.extras
    assert float(e["completeness_gap"][0]) <= 0.01
    torch.testing.assert_close(a.values.double().sum(1) - e["delta"], e["output_value"] - e["base_value"],
                               atol=1e-5, rtol=0)


def test_minilm_exact_shapley_equals_exhaustive_kernel_shap(minilm):
    text = "An utterly charming comedy."
    exact = xw.attribute(minilm, text, "exact_shapley", progress=False)
    ks = xw.attribute(minilm, text, "kernel_shap", n_samples=64, progress=False)
    assert exact.extras["features"][0] == ["An", "utterly", "charming", "comedy", "."]
    assert ks.extras["exact"] == [True]
    torch.testing.assert_close(ks.values, exact.values, atol=1e-5, rtol=0)
    # efficiency up to float32 rounding of the model (the full and empty coalitions are scored in other
    # batches than f(x) and the base value, and a GEMM's rounding depends on the batch: ~3e-6 seen)
    gap = exact.values.double().sum(1) - (exact.extras["output_value"] - exact.extras["base_value"])
    assert gap.abs().max() < 1e-5
