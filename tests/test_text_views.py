"""TokenView, AnchorView and ForcePlot (kernel side): text layout, payloads, from_attribution on real and
contract-shaped results, Attribution.show() dispatch, static fallbacks, bad input."""

from __future__ import annotations

import base64
import itertools

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.attribution import Attribution
from xaiwidgets.core.tabular import TabularModel
from xaiwidgets.core.text import TextClassifier
from xaiwidgets.widgets.forcefallback import force_layout
from xaiwidgets.widgets.forceplot import similarity_order
from xaiwidgets.widgets.textspans import align, detokenize, valid_spans, word_groups

TEXT = "It wasn't unwatchable; the cinematographer's work is breathtaking!"
TOKENS = ["it", "wasn", "'", "t", "un", "##watch", "##able", ";", "the", "cinematographer", "'", "s", "work", "is",
          "breath", "##taking", "!"]
VOCAB = ["[PAD]", "[UNK]", "good", "bad", "film", "a", "."]


def floats(payload: dict) -> np.ndarray:
    return np.frombuffer(payload["data"], dtype=payload["dtype"]).reshape(payload["shape"])


class Attn(nn.Module):
    """Embedding -> one multi-head self-attention -> mean -> linear (for attention rollout)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(len(VOCAB), 8)
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)
        self.out = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        h, _ = self.att(e, e, e, key_padding_mask=mask == 0)
        return self.out(h.mean(1))


@pytest.fixture(scope="module")
def tiny_text() -> TextClassifier:
    return TextClassifier(Attn().eval(), vocab=VOCAB, pooling="mean", labels=["neg", "pos"])


@pytest.fixture(scope="module")
def tiny_table() -> TabularModel:
    g = torch.Generator().manual_seed(0)
    background = torch.randn(200, 4, generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    return TabularModel(net, background=background, feature_names=["age", "bmi", "bp", "s1"], labels=["no", "yes"])


# --- text layout --------------------------------------------------------------------------------------


def test_text_layout_helpers() -> None:
    text, spans = detokenize(["A", "gorgeous", ",", "moving", "(", "long", ")", "film", "."])
    assert text == "A gorgeous, moving (long) film."
    assert [text[a:b] for a, b in spans] == ["A", "gorgeous", ",", "moving", "(", "long", ")", "film", "."]
    found = align(TEXT, TOKENS)
    assert found is not None and [TEXT[a:b] for a, b in found][4:7] == ["un", "watch", "able"]
    assert align("a good film", ["a", "[UNK]", "film"]) is None
    assert word_groups(TOKENS) == [0, 1, 2, 3, 4, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 13]
    assert word_groups(["▁un", "watch", "able", "▁film"]) == [0, 0, 0, 1]  # SentencePiece
    assert word_groups(["Ġgood", "Ġfil", "m"]) == [0, 1, 1]  # byte-level BPE
    assert word_groups(["ab", "cd", "!"], [(0, 2), (2, 4), (4, 5)]) == [0, 0, 1]  # adjacency, no markers
    assert valid_spans([(0, 2), (1, 3)], 2, 9) is None and valid_spans([[0, 2], [3, 9]], 2, 9) == [(0, 2), (3, 9)]


# --- TokenView ----------------------------------------------------------------------------------------


def test_token_view_levels_from_arrays() -> None:
    values = np.linspace(-1, 1, len(TOKENS))
    view = xw.TokenView.from_arrays(TOKENS, values, text=TEXT, level="token")
    assert view.level == "token" and set(view.levels) == {"token", "word"}
    token, word = view.levels["token"], view.levels["word"]
    assert [TEXT[a:b] for a, b in token["spans"]][5] == "watch"
    assert word["features"][4] == "unwatchable" and word["features"][12] == "breathtaking"
    assert [TEXT[a:b] for a, b in word["spans"]] == word["features"]
    wv = floats(word["values"])
    assert wv.dtype == np.float32 and isinstance(word["values"]["data"], memoryview)
    assert wv[4] == pytest.approx(values[4:7].sum(), abs=1e-6)  # a word = the sum of its pieces
    assert wv.sum() == pytest.approx(values.sum(), abs=1e-5)
    assert token["groups"][4:7] == [4, 4, 4]
    assert view.signed

    # no text: words joined; a word-level result has one level; every token a word collapses to one level
    plain = xw.TokenView.from_arrays(TOKENS, values, level="token")
    assert plain.text.startswith("it wasn") and "unwatchable;" in plain.text
    assert [plain.text[a:b] for a, b in plain.levels["token"]["spans"]][5] == "watch"
    words = xw.TokenView.from_arrays(["A", "good", "film"], [0.1, 0.5, 0.2], level="word")
    assert set(words.levels) == {"word"} and words.text == "A good film" and not words.signed
    single = xw.TokenView.from_arrays(["a", "good", "film"], [0.1, -0.5, 0.2], level="token")
    assert set(single.levels) == {"word"} and single.level == "word"


def test_token_view_bad_input() -> None:
    with pytest.raises(ValueError, match="3 features but 2 values"):
        xw.TokenView.from_arrays(["a", "b", "c"], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        xw.TokenView.from_arrays(["a"], [float("nan")])
    with pytest.raises(ValueError, match="level must be"):
        xw.TokenView.from_arrays(["a"], [1.0], level="char")
    with pytest.raises(ValueError, match="groups"):
        xw.TokenView.from_arrays(["a", "b"], [1.0, 2.0], level="token", groups=[0])
    with pytest.raises(ValueError, match="no features"):
        xw.TokenView.from_arrays([], [])
    view = xw.TokenView.from_arrays(["a", "b"], [1.0, 2.0])
    with pytest.raises(Exception, match="level must be"):
        view.level = "sentence"


def test_token_view_from_contract_result() -> None:
    """The text contract (docs/widget-protocol.md): values (N, T) padded, per-input features/spans/text."""
    spans = align(TEXT, TOKENS)
    short = "Great film."
    values = torch.zeros(2, len(TOKENS))
    values[0] = torch.linspace(-0.5, 0.5, len(TOKENS))
    values[1, :3] = torch.tensor([0.4, 0.1, 0.0])
    a = Attribution(
        values=values, method="kernel_shap", target=torch.tensor([1, 1]), scores=torch.tensor([0.9, 0.8]),
        extras={"features": [TOKENS, ["great", "film", "."]], "level": "token", "text": [TEXT, short],
                "spans": [spans, [(0, 5), (6, 10), (10, 11)]], "base_value": torch.tensor([0.2, 0.3]),
                "output_value": torch.tensor([0.2, 0.8])},
    )
    view = a.show()
    assert isinstance(view, xw.TokenView) and view.level == "token" and view.text == TEXT
    assert "kernel_shap" in view.title and "f(x) = 0.2" in view.caption and "base = 0.2" in view.caption
    second = a.show(index=1)
    assert second.text == short and floats(second.levels["word"]["values"]).tolist() == pytest.approx([0.4, 0.1, 0.0])
    assert xw.TokenView.from_attribution(a, 0, level="word").level == "word"
    with pytest.raises(ValueError, match="not available"):
        xw.TokenView.from_attribution(a, 1, level="token")  # "great film ." has no word pieces
    with pytest.raises(IndexError, match="out of range"):
        a.show(index=2)


def test_token_view_from_attention_rollout(tiny_text: TextClassifier) -> None:
    a = xw.attribute(tiny_text, "A good film.", "attention_rollout")
    view = a.show()
    assert isinstance(view, xw.TokenView) and view.text == "A good film." and not view.signed
    np.testing.assert_allclose(floats(view.levels["word"]["values"]), a.values[0].numpy(), rtol=1e-6)
    data, _ = view._repr_mimebundle_()
    assert "text/html" in data and "rgba(255,13,87," in data["text/html"] and "good" in data["text/html"]


# --- AnchorView ---------------------------------------------------------------------------------------


def test_anchor_view_from_real_text_anchor(tiny_text: TextClassifier) -> None:
    a = xw.attribute(tiny_text, "A good film.", "anchors", coverage_samples=300, seed=0)
    view = a.show()
    assert isinstance(view, xw.AnchorView) and view.kind == "text"
    assert view.rule == a.extras["anchor"][0] and view.anchor == a.extras["anchor_indices"][0]
    assert view.precision == pytest.approx(a.extras["precision"][0]) and view.threshold == 0.95
    assert view.text == "A good film." and [view.text[s:e] for s, e in view.spans] == a.extras["features"][0]
    for example in view.examples_hold:  # unk replacement: words line up, anchor words always kept
        assert [kind for _, kind in example if kind == "anchor"] == ["anchor"] * len(view.anchor)
        assert all(word == "[UNK]" for word, kind in example if kind == "replaced")
    html = view._repr_mimebundle_()[0]["text/html"]
    assert "IF" in html and "precision" in html


def test_anchor_view_from_real_tabular_anchor(tiny_table: TabularModel) -> None:
    x = tiny_table.background[:1]
    a = xw.attribute(tiny_table, x, "anchors", coverage_samples=300, seed=0)
    view = xw.AnchorView.from_attribution(a)
    assert view.kind == "tabular" and view.features == ["age", "bmi", "bp", "s1"]
    assert view.feature_values == pytest.approx(x[0].tolist())
    assert view.anchor == a.extras["anchor_features"][0] and view.rule == a.extras["anchor"][0]
    hold = view.examples_hold
    assert hold["shape"][1] == 4 and hold["dtype"] == "float32"


def test_anchor_view_constructors_and_errors() -> None:
    view = xw.AnchorView.from_text(["Not", "bad", "at", "all"], [0, 1], prediction="pos", precision=0.96,
                                   coverage=0.2, examples_fail=["Not [UNK] at [UNK]", "Not bad"])
    assert view.rule == ["Not", "bad"] and view.text == "Not bad at all"
    assert view.examples_fail[0][1] == ["[UNK]", "replaced"] and view.examples_fail[1] == [["Not bad", "plain"]]
    with pytest.raises(ValueError, match="anchor indices"):
        xw.AnchorView.from_text(["a"], [3], prediction="p", precision=1, coverage=1)
    with pytest.raises(ValueError, match="precision must be in"):
        xw.AnchorView.from_text(["a"], [0], prediction="p", precision=1.5, coverage=1)
    with pytest.raises(ValueError, match="2 feature names but the row has 3"):
        xw.AnchorView.from_row(["a", "b"], [1, 2, 3], [0], ["a <= 1"], prediction="p", precision=1, coverage=1)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        xw.AnchorView.from_row(["a", "b"], [1, 2], [0], ["a <= 1"], prediction="p", precision=1, coverage=1,
                               examples_hold=np.zeros((2, 3)))
    saliency = Attribution(values=torch.zeros(1, 3), method="saliency", target=torch.tensor([0]),
                           scores=torch.zeros(1))
    with pytest.raises(ValueError, match="anchors result"):
        xw.AnchorView.from_attribution(saliency)


# --- ForcePlot ----------------------------------------------------------------------------------------


def test_force_layout_efficiency() -> None:
    """Efficiency (Lundberg & Lee 2017): red widths - blue widths = base + sum - base; arrows contiguous."""
    values = np.array([0.21, -0.08, 0.34, 0.015, -0.12, 0.004, 0.0])
    end, up, down = force_layout(values, 0.373)
    assert end == pytest.approx(0.373 + values.sum(), abs=1e-12)
    assert sum(s.x1 - s.x0 for s in up) - sum(s.x1 - s.x0 for s in down) == pytest.approx(values.sum(), abs=1e-12)
    assert [s.index for s in up] == [2, 0, 3, 5] and [s.index for s in down] == [4, 1]
    assert up[0].x1 == end and down[0].x0 == end
    assert all(a.x0 == pytest.approx(b.x1) for a, b in itertools.pairwise(up))


def test_force_plot_from_arrays() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]])
    labels = rng.integers(0, 2, 30)
    values = centres[labels] + 0.05 * rng.normal(size=(30, 3))
    plot = xw.ForcePlot.from_arrays(values, 0.5, features=["a", "b", "c"], feature_values=rng.normal(size=(30, 3)))
    assert plot.values["shape"] == [30, 3] and plot.base_value["shape"] == [30] and plot.selected == -1
    np.testing.assert_allclose(floats(plot.output_value), 0.5 + values.sum(1), rtol=1e-6)
    order = floats(plot.similarity_order)
    assert sorted(order.tolist()) == list(range(30))
    assert int((np.diff(labels[order]) != 0).sum()) == 1, "each cluster is contiguous in the similarity order"
    pca = similarity_order(np.repeat(values, 100, axis=0))  # above the clustering cap: 1st principal component
    assert sorted(pca.tolist()) == list(range(3000))
    import matplotlib

    backend = matplotlib.get_backend()
    single = xw.ForcePlot.from_arrays([0.1, -0.2], [1.0], output_value=[0.9])
    assert single.selected == 0 and single.features == ["feature 0", "feature 1"]
    png = single._repr_mimebundle_()[0]["image/png"]
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert base64.b64decode(plot._repr_mimebundle_()[0]["image/png"]).startswith(b"\x89PNG")
    assert matplotlib.get_backend() == backend, "the PNG fallback must not switch the notebook's backend"


def test_force_plot_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(d,\) or \(N, d\)"):
        xw.ForcePlot.from_arrays(np.zeros((2, 2, 2)), 0.0)
    with pytest.raises(ValueError, match="base_value"):
        xw.ForcePlot.from_arrays(np.zeros((3, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="3 feature names for 2"):
        xw.ForcePlot.from_arrays([1.0, 2.0], 0.0, features=["a", "b", "c"])
    with pytest.raises(ValueError, match="feature_values"):
        xw.ForcePlot.from_arrays([1.0, 2.0], 0.0, feature_values=[1.0])
    with pytest.raises(ValueError, match="NaN"):
        xw.ForcePlot.from_arrays([1.0, float("inf")], 0.0)
    with pytest.raises(ValueError, match="order must be"):
        xw.ForcePlot.from_arrays([1.0], 0.0, order="random")


def test_force_plot_from_tabular_results(tiny_table: TabularModel) -> None:
    x = tiny_table.background[:5]
    # the tabular contract: base (N,), output (N,), feature names and row values
    phi = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    a = Attribution(values=phi, method="kernel_shap", target=torch.ones(5, dtype=torch.long), scores=torch.zeros(5),
                    extras={"features": ["age", "bmi", "bp", "s1"], "feature_values": x.numpy(),
                            "base_value": torch.full((5,), 0.25), "output_value": 0.25 + phi.sum(1)})
    view = a.show(index=3)
    assert isinstance(view, xw.ForcePlot) and view.selected == 3 and view.output_name == "f(x)"
    assert view.features == ["age", "bmi", "bp", "s1"] and view.instance_names[3] == "row 3"
    np.testing.assert_allclose(floats(view.feature_values), x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(floats(view.output_value), (0.25 + phi.sum(1)).numpy(), rtol=1e-6)
    one = xw.ForcePlot.from_attribution(a, index=1)
    assert one.values["shape"] == [1, 4] and one.instance_names == ["row 1"]
    # LIME: the surrogate's intercept is the base
    lime = Attribution(values=phi[:1], method="lime", target=torch.tensor([0]), scores=torch.zeros(1),
                       extras={"intercept": torch.tensor([0.7]), "r2": torch.tensor([0.9])})
    lp = xw.ForcePlot.from_attribution(lime)
    assert floats(lp.base_value).tolist() == pytest.approx([0.7]) and lp.output_name == "surrogate g(x)"
    # a real gradient result on the tabular model: no base value, so the plot is of the attribution sum
    g = xw.attribute(tiny_table, x, "saliency", target=1)
    gp = g.show()
    assert gp.output_name == "Σ attributions" and floats(gp.base_value).tolist() == [0.0] * 5
    assert gp.title.startswith("saliency · ") and gp.values["shape"] == [5, 4]
    np.testing.assert_allclose(floats(gp.feature_values), x.numpy(), rtol=1e-6)  # the rows themselves


def test_force_plot_text_and_superpixels(tiny_text: TextClassifier, tiny_cnn) -> None:
    a = xw.attribute(tiny_text, "A good film.", "attention_rollout")
    plot = xw.ForcePlot.from_attribution(a)
    assert plot.features == ["A", "good", "film", "."] and plot.values["shape"] == [1, 4]
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    segments = (torch.arange(16)[:, None] // 8 * 2 + torch.arange(16)[None] // 8).expand(1, 16, 16)
    k = xw.attribute(tiny_cnn, img, "kernel_shap", target=1, segments=segments, n_samples=64, seed=0,
                     progress=False)
    sp = xw.ForcePlot.from_attribution(k)
    assert sp.features == [f"superpixel {j}" for j in range(4)]
    base, out = floats(sp.base_value)[0], floats(sp.output_value)[0]
    # efficiency of KernelSHAP over 4 superpixels: base + sum = the model's score for the target
    assert out == pytest.approx(float(k.scores[0]), abs=1e-4)
    assert base + floats(sp.values).sum() == pytest.approx(out, abs=1e-5)


def test_show_keeps_image_views(tiny_cnn) -> None:
    a = xw.attribute(tiny_cnn, torch.rand(1, 3, 8, 8), "saliency")
    assert isinstance(a.show(), xw.HeatmapView)
