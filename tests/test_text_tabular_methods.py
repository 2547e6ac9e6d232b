"""Attribution methods on texts (TextClassifier) and table rows (TabularModel): the result contract,
axioms (efficiency, completeness, exactness), reproducibility, restoration and errors. Tiny seeded models;
the demo MiniLM only where word pieces and offsets matter."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled, InputError, ModelError, ParameterError, TargetError
from xaiwidgets.core.progress import Progress
from xaiwidgets.core.tabular import TabularModel
from xaiwidgets.core.text import TextClassifier

VOCAB = ["[PAD]", "[UNK]", "[MASK]", "a", "good", "bad", "film", "not", "very", "plot", ".", ","]


class BagText(nn.Module):
    """Masked mean of token embeddings -> tanh MLP -> 2 logits (non-linear, ignores padding)."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Embedding(len(VOCAB), 6)
        self.hidden = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.to(dtype)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        m = mask.to(e.dtype).unsqueeze(-1)
        pooled = (e * m).sum(1) / m.sum(1).clamp_min(1)
        return self.out(torch.tanh(self.hidden(pooled)))


def bag_classifier(dtype: torch.dtype = torch.float32) -> TextClassifier:
    from xaiwidgets.core.text import SimpleTokenizer

    tok = SimpleTokenizer(VOCAB, mask_token="[MASK]")
    return TextClassifier(BagText(dtype).eval(), tok, labels=["neg", "pos"])


class RowMLP(nn.Module):
    def __init__(self, d: int = 5, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Linear(d, 12), nn.ReLU(), nn.Linear(12, 3)).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def text_clf() -> TextClassifier:
    return bag_classifier()


@pytest.fixture(scope="module")
def table() -> TabularModel:
    g = torch.Generator().manual_seed(7)
    background = torch.randn(40, 5, generator=g)
    return TabularModel(RowMLP().eval(), feature_names=list("abcde"), background=background,
                        labels=["x", "y", "z"])


@pytest.fixture(scope="module")
def rows() -> torch.Tensor:
    return torch.randn(3, 5, generator=torch.Generator().manual_seed(8))


TEXTS = ["a good film .", "not a very good plot , a bad film"]


def brute_force_shapley(value, m: int) -> torch.Tensor:
    """phi_i = sum_S |S|!(m-|S|-1)!/m! (v(S+i) - v(S)) by explicit enumeration (definition)."""
    coalitions = list(itertools.product([0, 1], repeat=m))
    z = torch.tensor(coalitions, dtype=torch.bool)
    v = dict(zip(coalitions, value(z).tolist()))
    phi = torch.zeros(m, dtype=torch.float64)
    for s in coalitions:
        for i in range(m):
            if s[i]:
                continue
            k = sum(s)
            w = math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
            with_i = list(s)
            with_i[i] = 1
            phi[i] += w * (v[tuple(with_i)] - v[s])
    return phi


# --- text: the result contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["kernel_shap", "lime", "integrated_gradients", "saliency"])
def test_text_contract(text_clf, method):
    a = xw.attribute(text_clf, TEXTS, method, progress=False)
    e = a.extras
    assert a.values.shape == (2, 9) and a.values.dtype == torch.float32
    assert e["text"] == TEXTS and e["n_features"] == [4, 9]
    assert e["features"][0] == ["a", "good", "film", "."]
    for text, feats, spans in zip(TEXTS, e["features"], e["spans"]):
        assert [text[s:t] for s, t in spans] == feats  # offsets point into the original text
    assert (a.values[0, 4:] == 0).all()  # zero-padded to the longest text
    assert e["output_value"].shape == (2,) and a.target.tolist() == text_clf.scores(TEXTS).argmax(1).tolist()
    torch.testing.assert_close(e["output_value"].float(), text_clf.scores(TEXTS).gather(1, a.target[:, None])[:, 0],
                               atol=1e-5, rtol=1e-5)
    assert e["level"] == ("token" if method in ("integrated_gradients", "saliency") else "word")
    assert e["prediction"] == [text_clf.label(int(t)) for t in a.target]
    if method == "lime":
        assert {"intercept", "r2", "weights"} <= set(e) and e["replace"] == "remove"
        torch.testing.assert_close(a.values[1], e["weights"][1].float())
    if method in ("kernel_shap", "integrated_gradients"):
        assert e["base_value"].shape == (2,)
    if method == "saliency":
        assert not a.signed and (a.values >= 0).all()


def test_text_shapley_methods_efficiency_and_exactness(text_clf):
    """Efficiency (sum phi = v(all) - v(empty)) to 1e-6 for all three; exact_shapley equals the definition
    computed by brute force and kernel_shap when it enumerates every coalition (M=4 <= log2 n_samples)."""
    text = "not a good film"
    exact = xw.attribute(text_clf, text, "exact_shapley", target=1, progress=False)
    ks = xw.attribute(text_clf, text, "kernel_shap", target=1, progress=False, n_samples=64)
    ss = xw.attribute(text_clf, text, "shapley_sampling", target=1, progress=False, n_samples=16, seed=1)
    for a in (exact, ks, ss):
        e = a.extras
        gap = a.values.double().sum(1) - (e["output_value"] - e["base_value"])
        assert gap.abs().max() < 1e-6
        assert e["replace"] == "mask"
    enc = text_clf.encode(text)
    reference = brute_force_shapley(
        lambda z: text_clf.score_coalitions(enc, z, level="word", replace="mask")[:, 1].double(), 4
    )
    torch.testing.assert_close(exact.values[0].double(), reference, atol=1e-6, rtol=0)
    torch.testing.assert_close(ks.values[0], exact.values[0], atol=1e-6, rtol=0)
    assert ks.extras["exact"] == [True]
    assert (ss.values[0].double() - reference).abs().max() < 5 * ss.extras["stderr"][0].max() + 1e-6


def test_text_replacements_change_the_game(text_clf):
    text = "a good film"
    base = {}
    for replace in ("mask", "unk", "pad", "remove"):
        a = xw.attribute(text_clf, text, "exact_shapley", progress=False, replace=replace, target=0)
        ids, mask = text_clf.coalition_inputs(text_clf.encode(text), torch.zeros(1, 3), level="word", replace=replace)
        expected = float(text_clf(ids, mask).detach()[0, 0])
        assert a.extras["base_value"][0] == pytest.approx(expected, abs=1e-6)
        base[replace] = expected
    assert base["mask"] != base["unk"]


def test_text_lime_reproducible_and_injectable(text_clf):
    a = xw.attribute(text_clf, TEXTS[1], "lime", progress=False, n_samples=300, seed=4)
    b = xw.attribute(text_clf, TEXTS[1], "lime", progress=False, n_samples=300, seed=4)
    torch.testing.assert_close(a.values, b.values, atol=0, rtol=0)
    assert a.extras["n_evaluations"] == [300]
    # lime's text sampling: each row removes k ~ U{1..M} words
    from xaiwidgets.methods.modalities.lime_sampling import text_coalitions

    z = text_coalitions(9, 4000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert z[0].all() and ((~z[1:]).sum(1) >= 1).all()
    counts = torch.bincount((~z[1:]).sum(1), minlength=10)[1:].double() / 3999
    assert (counts - 1 / 9).abs().max() < 0.02
    c = xw.attribute(text_clf, TEXTS[1], "lime", progress=False, coalitions=z[:300])
    d = xw.attribute(text_clf, TEXTS[1], "lime", progress=False, coalitions=z[:300].int())
    torch.testing.assert_close(c.values, d.values, atol=0, rtol=0)


# --- text: gradient methods on the embeddings ------------------------------------------------------------


def manual_embedding_grad(clf: TextClassifier, text: str, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    enc = clf.encode(text)
    emb = clf.embed(enc).requires_grad_(True)
    out = clf.embedding_model(enc)(emb)[0, target]
    (grad,) = torch.autograd.grad(out, emb)
    return emb.detach()[0], grad[0]


def test_text_gradient_methods_match_autograd(text_clf):
    text = TEXTS[1]
    emb, grad = manual_embedding_grad(text_clf, text, 1)
    g = xw.attribute(text_clf, text, "gradient", target=1, progress=False)
    s = xw.attribute(text_clf, text, "saliency", target=1, progress=False)
    ixg = xw.attribute(text_clf, text, "input_x_gradient", target=1, progress=False)
    torch.testing.assert_close(g.values[0], grad.sum(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(s.values[0], grad.abs().sum(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ixg.values[0], (emb * grad).sum(-1), atol=1e-6, rtol=1e-5)


def test_text_integrated_gradients_completeness(text_clf):
    """Completeness (Sundararajan et al. 2017): sum(IG) = F(x) - F(x'); the reported delta is the exact
    residual (1e-5) and, with 64 Gauss-Legendre steps on this smooth model, below 1e-4 relative."""
    for baseline in ("pad", "zeros", "mask"):
        a = xw.attribute(text_clf, TEXTS, "integrated_gradients", progress=False, baseline=baseline, n_steps=64)
        e = a.extras
        total = a.values.double().sum(1)
        torch.testing.assert_close(total - e["delta"], e["output_value"] - e["base_value"], atol=1e-5, rtol=0)
        assert e["completeness_gap"].max() < 1e-4
        assert a.params["baseline"] == baseline
    # the baseline replaces every token: F(x') is the score of an all-[PAD] text
    ids = torch.full((1, 4), VOCAB.index("[PAD]"))
    pad = xw.attribute(text_clf, TEXTS[0], "integrated_gradients", progress=False, target=0)
    assert pad.extras["base_value"][0] == pytest.approx(float(text_clf(ids).detach()[0, 0]), abs=1e-5)


def test_minilm_word_pieces_spans_and_special_tokens():
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    clf = sentiment_classifier()
    text = "Unbelievably boring."
    a = xw.attribute(clf, text, "integrated_gradients", progress=False, n_steps=4, target=0)
    w = xw.attribute(clf, text, "integrated_gradients", progress=False, n_steps=4, target=0, level="word")
    e = a.extras
    assert e["features"][0] == ["un", "##bel", "##ie", "##va", "##bly", "boring", "."]  # no [CLS]/[SEP]
    assert [text[s:t] for s, t in e["spans"][0]] == ["Un", "bel", "ie", "va", "bly", "boring", "."]
    assert w.extras["features"][0] == ["Unbelievably", "boring", "."]
    assert [text[s:t] for s, t in w.extras["spans"][0]] == w.extras["features"][0]
    torch.testing.assert_close(w.values[0, 0], a.values[0, :5].sum(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w.values.sum(), a.values.sum(), atol=1e-6, rtol=1e-5)
    # special tokens keep their embedding in the baseline: the features carry all of F(x) - F(x')
    torch.testing.assert_close(a.values.double().sum() - e["delta"][0], e["output_value"][0] - e["base_value"][0],
                               atol=1e-5, rtol=0)
    with pytest.warns(UserWarning, match="layer-normalises"):
        xw.attribute(clf, text, "gradient", progress=False)


# --- tabular -----------------------------------------------------------------------------------------------


def test_tabular_shapley_methods_exact_and_efficient(table, rows):
    """exact_shapley = the definition over the interventional game (brute force, 1e-6); kernel_shap with
    n_samples >= 2**d equals it; shapley_sampling within 5 standard errors; efficiency to 1e-6."""
    exact = xw.attribute(table, rows, "exact_shapley", target=2, progress=False)
    ks = xw.attribute(table, rows, "kernel_shap", target=2, progress=False, n_samples=64)
    ss = xw.attribute(table, rows, "shapley_sampling", target=2, progress=False, n_samples=64, seed=0)
    for i in range(3):
        ref = brute_force_shapley(lambda z, i=i: table.score_coalitions(rows[i], z)[:, 2].double(), 5)
        torch.testing.assert_close(exact.values[i].double(), ref, atol=1e-6, rtol=0)
        assert (ss.values[i].double() - ref).abs().max() < 5 * ss.extras["stderr"][i].max() + 1e-6
    torch.testing.assert_close(ks.values, exact.values, atol=1e-6, rtol=0)
    base = table.predict(table.background)[:, 2].mean()
    for a in (exact, ks, ss):
        e = a.extras
        assert e["features"] == list("abcde") and e["feature_values"].shape == (3, 5)
        torch.testing.assert_close(e["feature_values"], rows.double())
        torch.testing.assert_close(e["base_value"].float(), base.expand(3), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(e["output_value"].float(), table.predict(rows)[:, 2], atol=1e-6, rtol=1e-6)
        gap = a.values.double().sum(1) - (e["output_value"] - e["base_value"])
        assert gap.abs().max() < 1e-6
        assert a.extras["background_size"] == 40


def test_tabular_background_override_and_numpy_model(table, rows):
    small = table.background[:5]
    a = xw.attribute(table, rows[:1], "exact_shapley", progress=False, background=small)
    assert a.extras["background_size"] == 5
    assert a.extras["base_value"][0] == pytest.approx(float(table.predict(small)[:, int(a.target[0])].mean()), abs=1e-6)
    # a numpy model (scikit-learn style): model-agnostic methods work, gradient methods say what to do
    net = table.model

    def predict(x):
        with torch.no_grad():
            return net(torch.as_tensor(x)).numpy()

    np_table = TabularModel(predict, numpy=True, feature_names=list("abcde"), background=table.background)
    b = xw.attribute(np_table, rows[:1], "exact_shapley", progress=False, background=small)
    torch.testing.assert_close(b.values, a.values, atol=1e-6, rtol=0)
    with pytest.raises(ModelError, match="kernel_shap"):
        xw.attribute(np_table, rows, "integrated_gradients")


def test_tabular_lime_quartile_sampling(table, rows):
    from xaiwidgets.methods.modalities.lime_sampling import QuartileBins, tabular_samples

    bins = QuartileBins(table.background)
    gen = torch.Generator().manual_seed(0)
    samples, data, dist = tabular_samples(rows[:1], table.background, 4000, gen, discretize=True,
                                          sample_around_instance=True)
    assert torch.equal(samples[0], rows[0]) and data[0].eq(1).all()
    drawn = bins.discretize(samples[1:])
    # each feature's bins follow the background's quartile frequencies (1/4 each, 40 rows)
    freq = torch.stack([torch.bincount(drawn[:, f], minlength=4) for f in range(5)]).double() / 3999
    assert (freq - 0.25).abs().max() < 0.03
    # values stay inside their bin and the binary design is "same bin as the instance"
    same = (drawn == bins.discretize(rows[:1])).double()
    torch.testing.assert_close(data[1:], same)
    torch.testing.assert_close(dist, (data - 1).norm(dim=1))
    a = xw.attribute(table, rows[:2], "lime", progress=False, n_samples=500, seed=0)
    e = a.extras
    assert e["kernel_width"] == pytest.approx(math.sqrt(5) * 0.75)
    assert a.values.shape == (2, 5) and e["intercept"].shape == (2,) and (e["r2"] <= 1).all()
    again = xw.attribute(table, rows[:2], "lime", progress=False, n_samples=500, seed=0)
    torch.testing.assert_close(a.values, again.values, atol=0, rtol=0)
    injected = xw.attribute(table, rows[:1], "lime", progress=False, samples=samples[:500])
    assert injected.extras["n_evaluations"] == [500]


def test_tabular_lime_continuous_sampling(table, rows):
    from xaiwidgets.methods.modalities.lime_sampling import standardiser, tabular_samples

    gen = torch.Generator().manual_seed(1)
    samples, data, _ = tabular_samples(rows[:1], table.background, 5000, gen, discretize=False,
                                       sample_around_instance=True)
    mean, std = standardiser(table.background)
    assert (samples[1:].double().mean(0) - rows[0].double()).abs().max() < 4 * std.max() / math.sqrt(5000)
    torch.testing.assert_close(samples[1:].double().std(0), std, atol=0.05, rtol=0.05)
    torch.testing.assert_close(data, (samples.double() - mean) / std, atol=1e-6, rtol=1e-6)
    a = xw.attribute(table, rows[:1], "lime", progress=False, discretize=False, n_samples=800)
    assert a.params["discretize"] is False and torch.isfinite(a.values).all()


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "deepshap"])
def test_tabular_gradient_methods_base_values(table, rows, method):
    a = xw.attribute(table, rows, method, progress=False, target=1)
    e = a.extras
    assert a.values.shape == (3, 5) and e["features"] == list("abcde")
    # the default reference is the background: its mean row (IG, DeepLIFT) or the rows (DeepSHAP)
    bg = table.background
    ref = table.predict(bg.mean(0, keepdim=True))[0, 1] if method != "deepshap" else table.predict(bg)[:, 1].mean()
    torch.testing.assert_close(e["base_value"].float(), ref.expand(3), atol=1e-5, rtol=1e-5)
    gap = a.values.double().sum(1) - (e["output_value"] - e["base_value"])
    assert gap.abs().max() < (0.02 if method == "integrated_gradients" else 1e-5)  # ReLU kinks for IG
    explicit = xw.attribute(table, rows, "integrated_gradients", progress=False, target=1, baseline=0.0)
    torch.testing.assert_close(explicit.extras["base_value"].float(), table.predict(torch.zeros(1, 5))[0, 1].expand(3),
                               atol=1e-6, rtol=1e-6)


# --- errors, restoration, cancellation ---------------------------------------------------------------------


def test_errors(text_clf, table, rows):
    with pytest.raises(InputError, match="have 3 features but the model takes 5"):
        xw.attribute(table, torch.zeros(2, 3), "kernel_shap")
    with pytest.raises(InputError, match="empty"):
        xw.attribute(text_clf, "   ", "lime")
    with pytest.raises(InputError, match="empty"):
        xw.attribute(text_clf, ["a good film", ""], "integrated_gradients")
    with pytest.raises(InputError, match="list of texts"):
        xw.attribute(text_clf, torch.zeros(1, 3), "lime")
    with pytest.raises(TargetError, match="out of range"):
        xw.attribute(text_clf, "a good film", "kernel_shap", target=5)
    with pytest.raises(TargetError, match="out of range"):
        xw.attribute(table, rows, "integrated_gradients", target=3)
    with pytest.raises(ParameterError, match="does not explain texts"):
        xw.attribute(text_clf, "a good film", "gradcam")
    with pytest.raises(ParameterError, match=r"'levle' \(did you mean 'level'\?\)"):
        xw.attribute(text_clf, "a good film", "lime", levle="word")
    with pytest.raises(ParameterError, match="level must be"):
        xw.attribute(text_clf, "a good film", "lime", level="sentence")
    with pytest.raises(ParameterError, match="baseline for a text"):
        xw.attribute(text_clf, "a good film", "integrated_gradients", baseline="black")
    with pytest.raises(ParameterError, match="background"):
        xw.attribute(table, rows, "kernel_shap", baseline=0.0)
    with pytest.raises(ParameterError, match="background="):
        xw.attribute(TabularModel(table.model, feature_names=list("abcde")), rows, "kernel_shap")
    wide = TabularModel(nn.Linear(17, 2), background=torch.zeros(3, 17))
    with pytest.raises(ParameterError, match="M=17"):
        xw.attribute(wide, torch.zeros(1, 17), "exact_shapley")


def test_model_restored_after_success_and_failure(text_clf):
    model = text_clf.model
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    for method in ("integrated_gradients", "lime"):
        xw.attribute(text_clf, "a good film", method, progress=False,
                     **({"n_samples": 20} if method == "lime" else {"n_steps": 4}))
    with pytest.raises(ParameterError):
        xw.attribute(text_clf, "a good film", "integrated_gradients", baseline=torch.zeros(1, 2, 2))
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model.eval()


def test_cancel_keeps_finished_inputs(table, rows):
    progress = Progress(tqdm=False)
    calls = []

    def callback(fraction, _message):
        calls.append(fraction)
        if fraction >= 0.5:
            progress.cancel()

    progress.callback = callback
    with pytest.raises(Cancelled) as info:
        xw.attribute(table, rows, "exact_shapley", progress=progress, batch_size=40 * 8)
    partial = info.value.partial
    assert partial.values.shape == (3, 5) and partial.extras["complete"][0] and not partial.extras["complete"][2]
    done = xw.attribute(table, rows[:1], "exact_shapley", progress=False)
    torch.testing.assert_close(partial.values[0], done.values[0])


def test_registry_modalities_match_what_runs(table, rows):
    """``xw.methods.available(modality=...)`` lists exactly the methods the text path runs (plus the methods
    with their own text handling), and tabular methods that only mask images say so."""
    text = {r["name"] for r in xw.methods.available(modality="text")}
    assert text == {"gradient", "saliency", "input_x_gradient", "integrated_gradients", "lime", "kernel_shap",
                    "exact_shapley", "shapley_sampling", "anchors", "attention_rollout", "transformer_relevance",
                    "qii"}
    assert "rise" not in {r["name"] for r in xw.methods.available(modality="tabular")}
    with pytest.raises(ParameterError, match="does not explain table rows"):
        xw.attribute(table, rows, "rise")
    with pytest.raises(ParameterError, match="'discretize'"):
        xw.attribute(table, rows, "kernel_shap", discretize=False)


def test_remove_drops_padding_columns_without_changing_scores(text_clf):
    """With ``replace="remove"`` the padding tail of each chunk is cut for models that read the attention
    mask; scores equal the full-width forward (1e-6) whatever the chunking."""
    text = TEXTS[1]
    z = torch.rand(50, 9, generator=torch.Generator().manual_seed(3)) < 0.5
    ids, mask = text_clf.coalition_inputs(text_clf.encode(text), z, level="word", replace="remove")
    full = text_clf(ids, mask).detach()
    for batch in (1, 7, 64):
        got = text_clf.score_coalitions(text, z, level="word", replace="remove", batch_size=batch)
        torch.testing.assert_close(got, full, atol=1e-6, rtol=1e-6)
