"""FeatureGallery's "concepts" tab (ACE) in headless Chromium against the static harness: the real traits of
a gallery built from an ACE run on the watermarked shapes (the shortcut CNN, 20 squares, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage
from test_gallery_static import CANVAS_PIXELS, arr, harness_value

import xaiwidgets as xw
from xaiwidgets.demo.watermark import shortcut_cnn, watermarked_shapes
from xaiwidgets.widgets.gallery import FeatureGallery

pytestmark = pytest.mark.browser

TRAITS = ("layer", "title", "channels", "tiles", "objective", "step", "n_steps", "selected", "detail", "frame",
          "thumbnails", "activations", "dissection", "concepts", "tab", "progress", "status", "phase")


def test_concepts_tab_shows_each_concept_with_its_test(wpage: WidgetPage) -> None:
    net = shortcut_cnn(watermarked_shapes(2000, seed=10), epochs=4)
    test = watermarked_shapes(80, seed=11)
    squares = (test.images[test.labels == 1][:20] - 0.5) / 0.5
    result = xw.featurevis.ace(net, squares, "features.4", n_clusters=10, n_repeats=8, progress=False)
    g = FeatureGallery.from_concepts(result, labels=["circle", "square"])
    assert g.tab == "concepts" and len(g.concepts["concepts"]) == len(result.concepts)
    page = wpage.page
    wpage.mount("gallery", {k: harness_value(getattr(g, k)) for k in TRAITS})
    root = page.locator(".xw-gallery")
    assert root.get_attribute("data-tab") == "concepts"
    assert page.locator('button.xw-tab[data-tab="concepts"]').get_attribute("aria-selected") == "true"
    cards = page.locator(".xw-concept-card")
    assert cards.count() == len(result.concepts)
    first = result.concepts[0]
    assert int(cards.first.get_attribute("data-concept")) == first.index
    assert cards.first.get_attribute("data-significant") == str(first.significant).lower()
    head = cards.first.locator(".xw-concept-head").inner_text()
    assert f"TCAV {first.score:.2f}" in head
    assert "square" in page.locator('[data-pane="concepts"] .xw-note').first.inner_text()
    patches = cards.first.locator("canvas.xw-concept-patch")
    shown = min(8, len(first.masks))
    assert patches.count() == shown
    assert [int(patches.nth(i).get_attribute("data-image")) for i in range(shown)] == first.images[:shown].tolist()
    expected = arr(g.concepts["concepts"][0]["patches"])
    h, w = expected.shape[1:3]
    px = np.array(page.evaluate(CANVAS_PIXELS, ["canvas.xw-concept-patch", 0]), np.uint8).reshape(h, w, 4)
    np.testing.assert_array_equal(px[..., :3], expected[0])  # exact pixels, offset-correct decoding
    assert "random controls" in page.locator(".xw-concept-random").inner_text()
    wpage.screenshot("gallery_concepts_watermark.png")
    assert wpage.unmount(0) == 0
    assert isinstance(g._fallback_png(), bytes)
