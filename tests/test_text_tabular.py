"""Text and tabular adapters, the demo models and coalition scoring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xaiwidgets.core.errors import InputError, ParameterError
from xaiwidgets.core.tabular import TabularModel
from xaiwidgets.core.text import TextClassifier


@pytest.fixture(scope="session")
def minilm():
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    return sentiment_classifier()


@pytest.fixture(scope="session")
def cancer():
    from xaiwidgets.demo.tabular import breast_cancer_classifier, breast_cancer_split

    return breast_cancer_classifier(), breast_cancer_split()


class BagModel(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids).mean(1))


VOCAB = ["[PAD]", "[UNK]", "good", "bad", "film", "a", "."]


def test_plain_vocab_classifier_and_coalitions():
    torch.manual_seed(0)
    clf = TextClassifier(BagModel(len(VOCAB)).eval(), vocab=VOCAB)
    enc = clf.encode("A good film.")
    assert enc.tokens == ["A", "good", "film", "."]
    assert enc.input_ids.tolist() == [[5, 2, 4, 6]]
    masks = torch.tensor([[1, 1, 1, 1], [0, 1, 0, 1]], dtype=torch.bool)
    scores = clf.score_coalitions("A good film.", masks)
    ids = torch.tensor([[5, 2, 4, 6], [1, 2, 1, 6]])
    torch.testing.assert_close(scores, clf(ids))
    removed = clf.score_coalitions("A good film.", masks[1:], replace="remove")
    assert removed.shape == (1, 2)  # kept tokens shifted left, padding masked


def test_minilm_accuracy_and_prediction(minilm):
    probs = minilm.predict_proba(["A gorgeous, moving film.", "Dull, lifeless and far too long."])
    assert probs[0].argmax() == 1 and probs[1].argmax() == 0
    # head test accuracy is 0.784 on 2,561 held-out snippets (train_text.py); check the shipped head is it
    head = torch.load(__import__("xaiwidgets.demo.text", fromlist=["HEAD_PATH"]).HEAD_PATH, weights_only=True)
    assert head["0.weight"].shape == (64, 384)


def test_minilm_coalitions_word_level_and_restoration(minilm):
    text = "Unbelievably boring, a waste."
    words = minilm.features(text, "word")
    assert words == ["Unbelievably", "boring", ",", "a", "waste", "."]
    masks = torch.ones(3, len(words), dtype=torch.bool)
    masks[1, 1] = False
    masks[2, :] = False
    before = {k: v.clone() for k, v in minilm.model.state_dict().items()}
    scores = minilm.score_coalitions(text, masks, level="word", batch_size=2)
    full = minilm.scores(text)
    torch.testing.assert_close(scores[0], full[0], atol=1e-5, rtol=1e-5)
    enc = minilm.encode(text)
    ids, _ = minilm.coalition_inputs(enc, masks, level="word", replace="mask")
    assert (ids[1] == minilm.tokenizer.mask_token_id).sum() == 1
    assert (ids[2] == minilm.tokenizer.mask_token_id).sum() == len(enc) - 2  # every piece, not [CLS]/[SEP]
    assert all(torch.equal(v, before[k]) for k, v in minilm.model.state_dict().items())
    assert not minilm.model.training


def test_minilm_embedding_model_and_merge(minilm):
    text = "Unbelievably boring."
    enc = minilm.encode(text)
    fwd = minilm.embedding_model(enc)
    emb = minilm.embed(enc)
    torch.testing.assert_close(fwd(emb), minilm.scores(text), atol=1e-5, rtol=1e-5)
    hooks = len(minilm.embedding_layer._forward_hooks)
    values = torch.randn(1, len(enc), emb.shape[-1])
    tok = values.sum(-1).masked_fill(enc.special[None], 0.0)  # token values, special tokens 0
    assert tok[0, 0] == 0 and tok[0, -1] == 0
    words, merged = minilm.merge_words(enc, tok)
    assert words == ["Unbelievably", "boring", "."]
    torch.testing.assert_close(merged.sum(), tok.sum())
    assert len(minilm.embedding_layer._forward_hooks) == hooks == 0


def test_text_errors(minilm):
    with pytest.raises(InputError, match="empty"):
        minilm.encode("   ")
    with pytest.raises(ParameterError, match="one column per word"):
        minilm.score_coalitions("good film", torch.ones(1, 5, dtype=torch.bool), level="word")
    with pytest.raises(ParameterError, match="replace must be"):
        minilm.score_coalitions("good film", torch.ones(1, 2, dtype=torch.bool), replace="zero")
    with pytest.raises(ParameterError, match="tokenizer"):
        TextClassifier(nn.Linear(2, 2))


def test_tabular_demo_accuracy_and_interventional_coalitions(cancer):
    model, (_x_tr, x_te, _y_tr, y_te, names) = cancer
    acc = float((model.predict(x_te).argmax(1) == y_te).float().mean())
    assert acc >= 0.95  # 0.972 on the 143 held-out rows
    assert model.feature_names == names and model.background.shape == (100, 30)
    x = x_te[0]
    masks = torch.rand(6, 30, generator=torch.Generator().manual_seed(0)) < 0.5
    got = model.score_coalitions(x, masks, batch_size=150)
    bg = model.background
    expect = torch.stack([model(torch.where(m, x, bg)).mean(0) for m in masks])
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.score_coalitions(x, torch.ones(1, 30, dtype=torch.bool))[0], model(x[None])[0])


def test_tabular_errors(cancer):
    model, _ = cancer
    with pytest.raises(InputError, match="30"):
        model.rows(torch.zeros(2, 3))
    with pytest.raises(ParameterError, match="background"):
        TabularModel(lambda x: x[:, :2], feature_names=["a", "b"]).score_coalitions(torch.zeros(2), torch.ones(1, 2))
    with pytest.raises(InputError, match="NaN"):
        model.rows(torch.full((1, 30), float("nan")))
