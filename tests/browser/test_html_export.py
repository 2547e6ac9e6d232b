"""``xw.to_html``: exported pages render in Chromium from ``file://`` with every network request blocked.

Oracle for the heatmap: the protocol's rendering rule (docs/widget-protocol.md), as in
test_heatmap_static.py: where the map is zero the canvas shows the image unchanged, a saturated pixel at
opacity 1 is the colour map's end colour (read from the legend bar). The dashboard and the scrubber are
real results (the bundled shapes CNN; Integrated Gradients on a seeded CNN) whose panels must show the
heatmap, i.e. differ from the bare input image, with the export's controls still redrawing them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from harness import ARTIFACTS, require_bundle
from torch import nn

import xaiwidgets as xw
from xaiwidgets.widgets.export import to_html

pytestmark = pytest.mark.browser

H, W = 40, 64
GREY = [128, 128, 128, 255]
CANVAS = "canvas.xw-heatmap-canvas"
HOT, NEG, ZERO = (10, 8), (10, 32), (50, 20)

PIXEL = """([sel, x, y, n]) => {
  const c = document.querySelectorAll(sel)[n];
  return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
}"""

# fraction of pixels where a canvas differs from the dashboard's input thumbnail drawn at the same size
DIFF_FROM_INPUT = """([sel, n]) => {
  const c = document.querySelectorAll(sel)[n];
  const src = document.querySelector('canvas.xw-input-canvas');
  const tmp = document.createElement('canvas');
  tmp.width = c.width; tmp.height = c.height;
  const t = tmp.getContext('2d');
  t.drawImage(src, 0, 0, c.width, c.height);
  const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const b = t.getImageData(0, 0, c.width, c.height).data;
  let differ = 0, colours = new Set();
  for (let i = 0; i < a.length; i += 4) {
    if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 24) differ++;
    colours.add((a[i] << 16) | (a[i + 1] << 8) | a[i + 2]);
  }
  return {differ: differ / (a.length / 4), colours: colours.size, w: c.width, h: c.height};
}"""


class OfflinePage:
    """A page in an offline context: every http(s) request is aborted and recorded, every request logged."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1000, "height": 800}, offline=True)
        self.context.set_default_timeout(60_000)  # as the harness pages: a loaded CI machine is slow
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._block)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _block(self, route: Any, request: Any) -> None:
        if request.url.startswith("file://"):  # the exported page itself (checked in assert_clean)
            route.continue_()
            return
        self.blocked.append(request.url)
        route.abort()

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-xw-ready='true']", timeout=60_000)

    def pixel(self, sel: str, x: int, y: int, n: int = 0) -> list[int]:
        return self.page.evaluate(PIXEL, [sel, x, y, n])

    def assert_clean(self, page_file: Path) -> None:
        assert not self.errors, f"page errors: {self.errors}"
        assert not self.blocked, f"requests that tried to leave the page: {self.blocked}"
        others = [u for u in self.requests if u != page_file.as_uri() and not u.startswith(("blob:", "data:"))]
        assert not others, f"requests other than the page itself: {others}"


@pytest.fixture
def offline(chromium_browser: Any) -> Iterator[OfflinePage]:
    op = OfflinePage(chromium_browser)
    yield op
    op.context.close()


def signed_map() -> np.ndarray:
    """Left half: +1 in the top half, -0.5 in the bottom half. Right half: 0."""
    v = np.zeros((H, W), np.float32)
    v[: H // 2, : W // 2] = 1.0
    v[H // 2 :, : W // 2] = -0.5
    return v


def close(a, b, tol=2) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def test_heatmap_export_renders_offline(offline: OfflinePage, tmp_path: Path) -> None:
    require_bundle("heatmap")
    view = xw.HeatmapView.from_arrays(np.full((H, W, 3), 128, np.uint8), signed_map(), title="exported · tabby")
    path = tmp_path / "heatmap.html"
    text = xw.to_html(view, path)
    assert path.read_text("utf-8") == text
    assert "<script src" not in text and "http://" not in text and "https://" not in text
    print(f"\nexported heatmap page: {len(text) / 1024:.1f} KiB")

    offline.open(path)
    page = offline.page
    assert page.locator(".xw-export-host").get_attribute("data-rendered") == "true"
    assert page.locator(".xw-heatmap-view").get_attribute("data-state") == "ok"
    assert page.locator(".xw-title").inner_text() == "exported · tabby"
    assert page.evaluate(f"(() => {{ const c = document.querySelector('{CANVAS}'); return [c.width, c.height]; }})()") \
        == [W, H]
    hot, neg, zero = (offline.pixel(CANVAS, *p) for p in (HOT, NEG, ZERO))
    assert zero == GREY, "zero attribution leaves the image untouched"
    red = offline.pixel("canvas.xw-legend-bar", 127, 0)[:3]
    assert close(hot[:3], [round(0.6 * c + 0.4 * 128) for c in red]), (hot, red)
    assert hot[0] > hot[2] + 20 and neg[2] > neg[0] + 10, (hot, neg)

    # the display controls work without a kernel: the model updates locally and the view redraws
    page.locator("input.xw-opacity").fill("1")
    assert close(offline.pixel(CANVAS, *HOT)[:3], red, tol=1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export_heatmap.png"), full_page=True)
    offline.assert_clean(path)


def test_dashboard_export_renders_offline(offline: OfflinePage, tmp_path: Path) -> None:
    require_bundle("dashboard")
    clf = xw.demo.shapes_classifier()
    data = xw.demo.make_shapes(2, seed=3)
    dash = xw.explain(clf, clf.preprocess(data.images[1:2]), methods=["saliency", "gradcam"], wait=True)
    assert [p["state"] for p in dash.panels] == ["done", "done"], dash.panels
    path = tmp_path / "dashboard.html"
    text = to_html(dash, path, title="shapes dashboard")
    print(f"\nexported dashboard page: {len(text) / 1024:.1f} KiB")

    offline.open(path)
    page = offline.page
    assert page.locator(".xw-export-host").get_attribute("data-rendered") == "true"
    labels = page.locator(".xw-pred-label").all_inner_texts()
    assert labels[0] == clf.label(int(dash.predictions[0]["index"])), labels
    for i, method in enumerate(["saliency", "gradcam"]):
        panel = page.locator(f'.xw-panel[data-method="{method}"]')
        assert panel.get_attribute("data-state") == "done"
        stats = page.evaluate(DIFF_FROM_INPUT, [CANVAS, i])
        print(f"[{method}] canvas {stats['w']}x{stats['h']}: {stats['differ']:.0%} of pixels show the overlay, "
              f"{stats['colours']} colours")
        assert stats["w"] == 64 and stats["h"] == 64
        assert stats["differ"] > 0.05 and stats["colours"] > 50, stats

    # opacity 0 from the shared control: the panels show the input image again
    page.locator("input.xw-opacity").fill("0")
    assert page.evaluate(DIFF_FROM_INPUT, [CANVAS, 1])["differ"] < 0.01
    page.locator("input.xw-opacity").fill("0.6")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export_dashboard.png"), full_page=True)
    offline.assert_clean(path)


def test_scrubber_export_and_dark_theme(offline: OfflinePage, tmp_path: Path) -> None:
    require_bundle("scrubber")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    a = xw.attribute(model, x, method="integrated_gradients", n_steps=8, return_frames=True, progress=False)
    view = a.show()
    assert isinstance(view, xw.ScrubberView)
    path = tmp_path / "scrubber.html"
    to_html(view, path, theme="dark")

    offline.open(path)
    page = offline.page
    assert page.locator("body").get_attribute("data-jp-theme-light") == "false"
    root = page.locator(".xw-scrubber")
    assert root.get_attribute("data-state") == "ok"
    assert root.get_attribute("data-frame") == "7", "a finished result opens on its last frame"
    acc = "canvas.xw-frame-accumulated"
    last = page.evaluate(f"(() => {{ const c = document.querySelector('{acc}'); "
                         "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")
    page.locator("input.xw-frame-slider").fill("0")
    assert root.get_attribute("data-frame") == "0"
    first = page.evaluate(f"(() => {{ const c = document.querySelector('{acc}'); "
                          "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")
    assert first != last, "moving the slider redraws the accumulated map"
    # dark theme: the body background is dark and the title text light
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    fg = page.evaluate("getComputedStyle(document.querySelector('.xw-title')).color")
    assert bg == "rgb(17, 17, 17)" and fg.startswith("rgba(255, 255, 255"), (bg, fg)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export_scrubber_dark.png"), full_page=True)
    offline.assert_clean(path)


def test_export_errors_and_escaping(tmp_path: Path) -> None:
    require_bundle("heatmap")
    with pytest.raises(TypeError, match="anywidget"):
        to_html(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="theme"):
        to_html(xw.HeatmapView.from_arrays(None, np.ones((4, 4))), theme="sepia")
    # a title that would close the script element stays inside the JSON
    view = xw.HeatmapView.from_arrays(None, np.ones((4, 4)), title="</script><script>alert(1)</script>")
    text = to_html(view)
    assert text.count("</script>") == 3, "only the page's own three script elements close"
    state = text.split('id="xw-export-state">', 1)[1].split("</script>", 1)[0]
    assert json.loads(state)[0]["state"]["title"] == "</script><script>alert(1)</script>"
