"""ACE (Ghorbani, Wexler, Zou & Kim 2019, NeurIPS): on circles and squares where every square carries a
magenta watermark and a small CNN learned that shortcut, the top concept for "square" is made of watermark
patches, and random concepts (random patches) are rejected by the test against fixed random concepts; clear
errors for bad input."""

from __future__ import annotations

import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.core.errors import InputError, LayerError
from xaiwidgets.demo.watermark import shortcut_cnn, watermarked_shapes


@pytest.fixture(scope="module")
def biased():
    net = shortcut_cnn(watermarked_shapes(2000, seed=10), epochs=4)
    test = watermarked_shapes(120, seed=11)
    with torch.no_grad():
        acc = float((net((test.images - 0.5) / 0.5).argmax(1) == test.labels).float().mean())
    assert acc > 0.95  # the shortcut is learned (held-out accuracy ~100%)
    return net, test


def shows_watermark(mask: torch.Tensor, region: torch.Tensor) -> bool:
    """The segment holds at least half of the watermark's pixels (its patch shows the watermark)."""
    return int((mask & region).sum()) >= 0.5 * int(region.sum())


def test_top_concept_is_the_watermark_and_random_concepts_are_rejected(biased):
    net, test = biased
    squares = (test.images[test.labels == 1][:24] - 0.5) / 0.5
    # features.4: at features.1 no concept, the watermark included, stands out from fixed random sets of
    # patches (docs/featurevis.md); n_null=20 random concepts per concept size make the null
    r = xw.featurevis.ace(net, squares, "features.4", n_clusters=12, n_repeats=10, progress=False)
    assert r.target == 1 and r.n_images == 24 and r.n_patches > 24 * 10
    top = r.top()
    share = sum(shows_watermark(m, test.region) for m in top.masks) / len(top.masks)
    assert top.significant and share >= 0.8, (share, top.score, top.p_value)
    assert top.patches.shape[:2] == (len(top.masks), 3) and top.images.shape == (len(top.masks),)
    assert bool((top.images < 24).all()) and top.masks.shape[1:] == (32, 32)
    # the controls: random patches, as many as the largest concept, through the same test
    assert len(r.random_concepts) == 5
    assert not any(c.significant for c in r.random_concepts), [c.p_value for c in r.random_concepts]  # alpha 0.01
    assert all(c.random_sensitivities.shape == (20,) for c in [top, *r.random_concepts])
    # the FeatureGallery's concepts tab carries every concept, in rank order, with at most 8 example patches
    g = r.show()
    payload = g.concepts
    assert g.tab == "concepts" and [c["index"] for c in payload["concepts"]] == [c.index for c in r.concepts]
    first = payload["concepts"][0]
    assert first["patches"]["shape"][0] == min(8, len(top.masks)) and first["patches"]["dtype"] == "uint8"
    assert first["p_value"] == top.p_value and len(payload["random"]) == 5


def test_errors(biased):
    net, test = biased
    squares = (test.images[test.labels == 1][:3] - 0.5) / 0.5
    with pytest.raises(InputError, match="too few images"):
        xw.featurevis.ace(net, squares[:2], "features.4", n_segments=(4,), n_clusters=25, progress=False)
    with pytest.raises(InputError, match="at least 2 images"):
        xw.featurevis.ace(net, squares[:1], "features.4", progress=False)
    with pytest.raises(LayerError):
        xw.featurevis.ace(net, squares, "features.40", progress=False)
