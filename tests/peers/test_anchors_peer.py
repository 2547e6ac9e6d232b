"""Peer: marcotcr's ``anchor`` package (anchor-exp 0.0.2.0, ``AnchorText`` with ``use_unk_distribution``,
mask string ``[UNK]`` so both replace words by the tokenizer's unknown token) on the demo MiniLM sentiment
classifier, threshold 0.95, same delta/tau/batch_size/beam_size. Acceptance: our anchors are as short or
shorter than theirs in a majority of the sentences. Differences expected: the peer replaces a whole word by
one [UNK] while we replace each of its word pieces, and the two use different random streams."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.demo.texts import SAMPLE_TEXTS
from xaiwidgets.methods.anchors import Anchors

pytestmark = pytest.mark.peers


def _compare(sentences):
    anchor_text = pytest.importorskip("anchor.anchor_text")
    spacy = pytest.importorskip("spacy")
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    clf = sentiment_classifier()
    peer = anchor_text.AnchorText(spacy.blank("en"), ["negative", "positive"], use_unk_distribution=True,
                                  mask_string="[UNK]")

    def predict(texts):
        return clf.scores(list(texts), batch_size=64).argmax(1).numpy()

    ours_len, peer_len = [], []
    for text in sentences:
        np.random.seed(0)
        exp = peer.explain_instance(text, predict, threshold=0.95, delta=0.1, tau=0.15, batch_size=10)
        peer_len.append(len(exp.names()))
        a = Anchors(clf).attribute(text, progress=False, threshold=0.95, delta=0.1, epsilon=0.15, batch_size=10,
                                   beam_size=4, seed=0)
        ours_len.append(len(a.extras["anchor"][0]))
    wins = sum(o <= p for o, p in zip(ours_len, peer_len))
    assert wins > len(sentences) / 2, (ours_len, peer_len)


def test_anchor_length_vs_anchor_package_5():
    _compare(SAMPLE_TEXTS[:5])


@pytest.mark.slow
def test_anchor_length_vs_anchor_package_20():
    _compare(SAMPLE_TEXTS[:20])
