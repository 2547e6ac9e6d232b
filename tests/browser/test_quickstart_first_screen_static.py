"""The quickstart's first screen (issue 17, "What must hold"): the dashboard for saliency,
input_x_gradient and gradcam on the demo EfficientNet-Lite0 and the chelsea photo, computed by the REAL
kernel side (KernelBridge) and drawn in headless Chromium at 1400 x 1000 and in a 900 px window. Every
default map must be legible: a visible share of the photo is coloured, not the bare photo with speckles.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage
from kernel_bridge import KernelBridge

import xaiwidgets as xw

pytestmark = pytest.mark.browser

TRAITS = [
    "image", "predictions", "target", "methods", "panels", "progress", "status", "available_methods", "layers",
    "cam_layers", "method_params", "scrubber", "colormap", "opacity", "absolute", "clip_percentile", "alpha",
    "smoothing", "map_layout",
]
METHODS = ["saliency", "input_x_gradient", "gradcam"]

CHANGED_SHARE = """([sel, ref]) => {
  const c = document.querySelector(sel), r = document.querySelector(ref);
  const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const b = r.getContext('2d').getImageData(0, 0, r.width, r.height).data;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    const d = Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
    if (d > 60) n++;
  }
  return n / (a.length / 4);
}"""


@pytest.fixture(scope="module")
def quickstart_dash():
    clf = xw.demo.imagenet_classifier()
    dash = xw.explain(clf, xw.demo.load_image("chelsea"), methods=METHODS, wait=True)
    assert all(p["state"] == "done" for p in dash.panels), dash.panels
    return dash


def changed_share(wpage: WidgetPage, method: str) -> float:
    """Share of the panel's pixels whose colour differs clearly (L1 > 60 of 765) from the photo."""
    sel = f'.xw-panel[data-method="{method}"] canvas.xw-heatmap-canvas'
    return wpage.page.evaluate(CHANGED_SHARE, [sel, "canvas.xw-input-canvas"])


@pytest.mark.parametrize("width,height,root", [(1400, 1000, 1250), (900, 1000, 760)])
def test_first_screen_is_legible(wpage: WidgetPage, quickstart_dash, width: int, height: int, root: int) -> None:
    page = wpage.page
    page.set_viewport_size({"width": width, "height": height})
    # the notebook's output area: the window minus JupyterLab's side bar, prompt and margins
    page.evaluate(f"document.querySelector('#root').style.cssText = 'display:block;width:{root}px;padding:16px'")
    bridge = KernelBridge(wpage, quickstart_dash, TRAITS)
    bridge.mount("dashboard")
    shares = {m: changed_share(wpage, m) for m in METHODS}
    print(f"\n{width}px: share of pixels visibly coloured by the map: "
          + ", ".join(f"{m} {s:.0%}" for m, s in shares.items()))
    # Before the per-method defaults (alpha = 0.6 |v| / clip at 99.5) saliency changed 4% of the pixels and
    # input_x_gradient 2%: the bare photo with speckles.
    for method, share in shares.items():
        assert share > 0.15, (method, share)
    for method in METHODS:
        panel = page.locator(f'.xw-panel[data-method="{method}"]')
        assert panel.get_attribute("data-state") == "done"
        title = panel.locator(".xw-panel-title")
        assert title.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), f"{method} title truncated"
        assert panel.locator(".xw-legend-quantity").inner_text()
        note = panel.locator(".xw-legend-note").inner_text()
        assert "range" in note and "saturates" in note
    assert "|d score / d pixel|" in page.locator('.xw-panel[data-method="saliency"] .xw-legend-quantity').inner_text()
    assert "98th pct" in page.locator('.xw-panel[data-method="saliency"] .xw-legend-note').inner_text()
    # nothing sticks out of the dashboard
    assert page.evaluate("() => { const d = document.querySelector('.xw-dashboard');"
                         " return d.scrollWidth <= d.clientWidth + 1; }")
    wpage.screenshot(f"quickstart-first-screen-{width}.png")


def test_old_defaults_were_speckles(wpage: WidgetPage, quickstart_dash) -> None:
    """The measurement behind the new defaults: with the old rule (linear alpha, 99.5 clip, no blur) the
    pixel-level maps colour only a few per cent of the photo."""
    bridge = KernelBridge(wpage, quickstart_dash, TRAITS)
    state = bridge.state()
    state.update(clip_percentile=99.5, alpha="linear", smoothing=0.0)
    wpage.mount("dashboard", state)
    shares = {m: changed_share(wpage, m) for m in METHODS}
    print("\nold defaults: " + ", ".join(f"{m} {s:.0%}" for m, s in shares.items()))
    assert shares["saliency"] < 0.15 and shares["input_x_gradient"] < 0.15
    wpage.screenshot("quickstart-first-screen-old-defaults.png")


def test_map_only_and_side_by_side(wpage: WidgetPage, quickstart_dash) -> None:
    page = wpage.page
    bridge = KernelBridge(wpage, quickstart_dash, TRAITS)
    bridge.mount("dashboard")
    page.locator("select.xw-layout").select_option("side")
    assert wpage.state("map_layout") == "side"
    photo = '.xw-panel[data-method="saliency"] canvas.xw-photo-canvas'
    assert page.locator(photo).is_visible()
    assert wpage.pixel(photo, 100, 100) == wpage.pixel("canvas.xw-input-canvas", 100, 100)
    wpage.screenshot("quickstart-side-by-side.png")
    page.locator("select.xw-layout").select_option("map")
    assert page.locator(photo).is_hidden()
    # the map alone: opaque everywhere, no photo under it
    rgba = wpage.pixel('.xw-panel[data-method="gradcam"] canvas.xw-heatmap-canvas', 5, 5)
    assert rgba[3] == 255 and rgba != wpage.pixel("canvas.xw-input-canvas", 5, 5)
    wpage.screenshot("quickstart-map-only.png")
    assert np.isfinite(quickstart_dash.result("saliency")).all()
