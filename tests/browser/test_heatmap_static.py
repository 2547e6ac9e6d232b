"""HeatmapView in headless Chromium against a fake anywidget model (no Jupyter).

Oracle: the protocol's rendering rule (docs/widget-protocol.md): alpha = opacity * m, so pixels
where the map is zero show the image unmodified, and at opacity 1 a saturated pixel is exactly the
colour map's end colour (read from the legend bar, which draws the same LUT).
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage, heatmap_dict, image_dict

pytestmark = pytest.mark.browser

H, W = 40, 64
GREY = (128, 128, 128, 255)
CANVAS = "canvas.xw-heatmap-canvas"
# probe points (x, y): hot (+1), cold-negative (-0.5), zero
HOT, NEG, ZERO = (10, 8), (10, 32), (50, 20)


def signed_map() -> np.ndarray:
    """Left half: +1 in the top half, -0.5 in the bottom half. Right half: 0."""
    v = np.zeros((H, W), np.float32)
    v[: H // 2, : W // 2] = 1.0
    v[H // 2 :, : W // 2] = -0.5
    return v


def state(view: str, **over) -> dict:
    s = {
        "image": image_dict(np.full((H, W, 3), 128, np.uint8), view=view),
        "heatmap": heatmap_dict(signed_map(), view=view),
        "signed": True,
        "title": "integrated_gradients · tabby cat",
        "colormap": "auto",
        "opacity": 0.6,
        "absolute": False,
        "clip_percentile": 99.5,
    }
    s.update(over)
    return s


def legend_end(wp: WidgetPage, end: str) -> tuple[int, int, int]:
    x = 0 if end == "min" else 127
    return wp.pixel("canvas.xw-legend-bar", x, 0)[:3]


def close(a, b, tol=2) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


@pytest.mark.parametrize("view", ["dataview", "uint8"])
def test_overlay_pixels_follow_the_rule(wpage: WidgetPage, view: str) -> None:
    wpage.mount("heatmap", state(view))
    assert wpage.canvas_size(CANVAS) == (W, H)

    hot, neg, zero = (wpage.pixel(CANVAS, *p) for p in (HOT, NEG, ZERO))
    assert zero == GREY, "zero attribution must leave the image untouched"
    red = legend_end(wpage, "max")
    # hot: 60 % of the red end over grey
    assert close(hot[:3], [round(0.6 * c + 0.4 * 128) for c in red]), (hot, red)
    assert hot[0] > hot[2] + 20
    # -0.5: blue side, weaker
    assert neg[2] > neg[0] + 10 and neg != GREY

    # legend labels reflect the symmetric clip range
    page = wpage.page
    assert page.locator(".xw-legend").is_visible()
    assert page.locator(".xw-legend-min").inner_text() == "-1"
    assert page.locator(".xw-legend-max").inner_text() == "1"
    assert page.locator(".xw-title").inner_text().startswith("integrated_gradients")
    if view == "dataview":
        wpage.screenshot("heatmap.png")


def test_controls_write_traits_and_redraw(wpage: WidgetPage) -> None:
    wpage.mount("heatmap", state("dataview"))
    page = wpage.page
    before = wpage.pixel(CANVAS, *HOT)

    # opacity slider
    page.locator("input.xw-opacity").fill("1")
    assert wpage.state("opacity") == 1
    assert "opacity" in wpage.saved()
    full = wpage.pixel(CANVAS, *HOT)
    assert full != before
    assert close(full[:3], legend_end(wpage, "max"), tol=1), "opacity 1 shows the colour map's end colour"
    page.locator("input.xw-opacity").fill("0")
    assert wpage.pixel(CANVAS, *HOT) == GREY
    page.locator("input.xw-opacity").fill("0.6")
    assert wpage.pixel(CANVAS, *HOT) == before
    assert wpage.pixel(CANVAS, *ZERO) == GREY

    # absolute: |v| on a sequential map (auto → viridis): the negative half turns the same hue family
    page.locator("input.xw-absolute").check()
    assert wpage.state("absolute") is True and "absolute" in wpage.saved()
    hot_abs, neg_abs = wpage.pixel(CANVAS, *HOT), wpage.pixel(CANVAS, *NEG)
    assert hot_abs != before
    assert hot_abs[1] > hot_abs[2], "viridis top is yellow-green"
    assert page.locator(".xw-legend-min").inner_text() == "0"
    assert wpage.pixel(CANVAS, *ZERO) == GREY
    page.locator("input.xw-absolute").uncheck()
    assert wpage.pixel(CANVAS, *HOT) == before
    assert neg_abs != wpage.pixel(CANVAS, *NEG)

    # colour map select: gray → the hot pixel is a neutral light grey
    page.locator("select.xw-colormap").select_option("gray")
    assert wpage.state("colormap") == "gray" and "colormap" in wpage.saved()
    g = wpage.pixel(CANVAS, *HOT)
    assert g != before and abs(g[0] - g[1]) <= 1 and abs(g[1] - g[2]) <= 1 and g[0] > 150

    # clip slider: at the 50th percentile of |v| the -0.5 half saturates too
    page.locator("select.xw-colormap").select_option("auto")
    neg_before = wpage.pixel(CANVAS, *NEG)
    page.locator("input.xw-clip").fill("50")
    assert wpage.state("clip_percentile") == 50 and "clip_percentile" in wpage.saved()
    neg_clipped = wpage.pixel(CANVAS, *NEG)
    assert neg_clipped != neg_before
    assert close(neg_clipped[:3], [round(0.6 * c + 0.4 * 128) for c in legend_end(wpage, "min")])
    assert page.locator(".xw-legend-max").inner_text() != "1"

    assert wpage.unmount() == 0, "cleanup must remove every model listener"


def test_kernel_updates_and_sizes(wpage: WidgetPage) -> None:
    wpage.mount("heatmap", state("uint8"))
    before = wpage.pixel(CANVAS, *HOT)

    # a kernel-side change of a display trait redraws and moves the control
    wpage.kernel_set("opacity", 1.0)
    assert wpage.pixel(CANVAS, *HOT) != before
    assert wpage.page.locator("input.xw-opacity").input_value() == "1"

    # a heatmap smaller than the image is scaled to the image size
    small = np.zeros((10, 16), np.float32)
    small[:, :8] = 1.0
    wpage.kernel_set("heatmap", heatmap_dict(small, view="uint8"))
    wpage.kernel_set("signed", False)
    assert wpage.canvas_size(CANVAS) == (W, H)
    assert wpage.pixel(CANVAS, *HOT) != GREY
    assert wpage.pixel(CANVAS, 60, 20) == GREY

    # no image: the heatmap alone, opaque, at its own size
    wpage.kernel_set("image", None)
    assert wpage.canvas_size(CANVAS) == (16, 10)
    assert wpage.pixel(CANVAS, 2, 2)[3] == 255
    assert wpage.pixel(CANVAS, 14, 5)[3] == 255

    # an unset heatmap trait (traitlets.Dict default {}) is an empty view, not an error
    wpage.kernel_set("heatmap", {})
    assert wpage.page.locator(".xw-heatmap-view").get_attribute("data-state") == "empty"

    # a bad array shows an error instead of throwing
    wpage.kernel_set("heatmap", {"dtype": "uint8", "shape": [5, 5], "data": {"__bytes__": "AAAA", "view": "uint8"}})
    assert "needs 25 bytes" in wpage.page.locator(".xw-error").inner_text()


def test_alpha_modes_layouts_and_quantity(wpage: WidgetPage) -> None:
    """sqrt alpha lifts weak values (alpha = opacity * sqrt(m)); "map" draws the map alone, "side" the
    photo next to it; the legend names the quantity and states the real range and the clip."""
    wpage.mount("heatmap", state("dataview", alpha="sqrt", quantity="IG (score units)", map_layout="overlay"))
    page = wpage.page
    neg = wpage.pixel(CANVAS, *NEG)  # m = 0.5 at opacity 0.6: alpha 0.6 * sqrt(0.5) = 0.42
    blue = wpage.pixel("canvas.xw-legend-bar", 32, 0)[:3]  # -0.5 of a +-1 bar: a quarter along the LUT
    expected = [round(c * 0.6 * 0.5**0.5 + 128 * (1 - 0.6 * 0.5**0.5)) for c in blue]
    assert close(neg[:3], expected, tol=4), (neg, expected)
    linear = [round(c * 0.6 * 0.5 + 128 * (1 - 0.6 * 0.5)) for c in blue]
    assert not close(neg[:3], linear, tol=4)
    assert page.locator(".xw-legend-quantity").inner_text() == "IG (score units)"
    # the range of the values as sent (uint8 levels: -0.5 is the level -0.498, within half a step of 2/255)
    assert "range -0.498 to 1" in page.locator(".xw-legend-note").inner_text()
    assert wpage.pixel(CANVAS, *ZERO) == GREY
    wpage.kernel_set("map_layout", "map")
    assert wpage.pixel(CANVAS, *ZERO)[3] == 255 and wpage.pixel(CANVAS, *ZERO) != GREY  # no photo under it
    assert page.locator("canvas.xw-photo-canvas").is_hidden()
    wpage.kernel_set("map_layout", "side")
    assert page.locator("canvas.xw-photo-canvas").is_visible()
    assert wpage.pixel("canvas.xw-photo-canvas", 5, 5) == GREY
    photo = page.locator("canvas.xw-photo-canvas").bounding_box()
    heat = page.locator(CANVAS).bounding_box()
    assert photo["x"] + photo["width"] <= heat["x"] + 1 and heat["width"] > 100
    wpage.screenshot("heatmap-side.png")
