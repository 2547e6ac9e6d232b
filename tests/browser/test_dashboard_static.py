"""ExplainDashboard in headless Chromium against a fake anywidget model (no Jupyter).

Checks the message contract of docs/widget-protocol.md (compute/cancel with ids, `target` left to the
kernel) and that panels, predictions and the job line follow their traits.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage, heatmap_dict, image_dict

pytestmark = pytest.mark.browser

S = 48
PREDICTIONS = [
    {"index": 281, "label": "tabby cat", "prob": 0.62},
    {"index": 285, "label": "Egyptian cat", "prob": 0.21},
    {"index": 7, "label": "cock", "prob": 0.05},
]
METHODS = ["integrated_gradients", "gradcam", "occlusion"]


def picture() -> np.ndarray:
    """A soft gradient with an orange disc: something recognisable in the screenshot."""
    y, x = np.mgrid[0:S, 0:S] / (S - 1)
    img = np.stack([60 + 80 * x, 90 + 60 * y, 150 - 50 * x], -1)
    disc = (x - 0.4) ** 2 + (y - 0.45) ** 2 < 0.07
    img[disc] = [235, 140, 40]
    return img.astype(np.uint8)


def gaussian(cx: float, cy: float, size: int = S, sigma: float = 0.15) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def signed_map() -> np.ndarray:
    return gaussian(0.4, 0.45) - 0.6 * gaussian(0.8, 0.8, sigma=0.1)


def panel(method: str, state: str, heatmap=None, signed=False, error="", seconds=0.0, target=281) -> dict:
    return {
        "method": method,
        "state": state,
        "heatmap": heatmap,
        "signed": signed,
        "error": error,
        "seconds": seconds,
        "target": target,
    }


def dashboard_state(view: str) -> dict:
    return {
        "image": image_dict(picture(), view=view),
        "predictions": PREDICTIONS,
        "target": 281,
        "methods": METHODS,
        "panels": [
            panel("integrated_gradients", "done", heatmap_dict(signed_map(), view=view), signed=True, seconds=0.84),
            # layer resolution (7 x 7), scaled to the image by the canvas
            panel("gradcam", "done", heatmap_dict(gaussian(0.4, 0.45, size=7, sigma=0.25), view=view), seconds=0.05),
            panel("occlusion", "running"),
        ],
        "progress": 0.0,
        "status": "idle",
        "colormap": "auto",
        "opacity": 0.6,
        "absolute": False,
        "clip_percentile": 99.5,
    }


def panel_canvas(method: str) -> str:
    return f'.xw-panel[data-method="{method}"] canvas.xw-heatmap-canvas'


@pytest.mark.parametrize("view", ["dataview", "uint8"])
def test_predictions_and_panels(wpage: WidgetPage, view: str) -> None:
    wpage.mount("dashboard", dashboard_state(view))
    page = wpage.page

    rows = page.locator(".xw-prediction")
    assert rows.count() == 3
    assert [int(i) for i in rows.evaluate_all("els => els.map(e => e.dataset.index)")] == [281, 285, 7]
    top = page.locator('.xw-prediction[data-index="281"]')
    assert "xw-selected" in top.get_attribute("class")
    assert "62.0%" in top.inner_text() and "tabby cat" in top.inner_text()
    assert "xw-selected" not in page.locator('.xw-prediction[data-index="285"]').get_attribute("class")

    assert page.locator(".xw-panel").count() == 3
    assert [p.get_attribute("data-method") for p in page.locator(".xw-panel").all()] == METHODS
    for method in ("integrated_gradients", "gradcam"):
        assert page.locator(f'.xw-panel[data-method="{method}"]').get_attribute("data-state") == "done"
        assert page.locator(panel_canvas(method)).is_visible()
        assert wpage.canvas_size(panel_canvas(method)) == (S, S)
        # the hot spot is coloured, far from it the image shows through untouched
        assert wpage.pixel(panel_canvas(method), 19, 21) != wpage.pixel("canvas.xw-input-canvas", 19, 21)
    assert wpage.pixel(panel_canvas("gradcam"), 47, 47) == wpage.pixel("canvas.xw-input-canvas", 47, 47)
    assert page.locator('.xw-panel[data-method="integrated_gradients"] .xw-seconds').inner_text() == "840 ms"
    occl = page.locator('.xw-panel[data-method="occlusion"]')
    assert occl.get_attribute("data-state") == "running"
    assert occl.locator(".xw-pending").is_visible() and "running" in occl.inner_text()
    assert not occl.locator("canvas.xw-heatmap-canvas").is_visible()


def test_messages_and_updates(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", dashboard_state("dataview"))
    page = wpage.page

    # clicking a prediction asks the kernel; the view does not change `target` itself
    page.locator('.xw-prediction[data-index="285"]').click()
    sent = wpage.sent()
    assert len(sent) == 1
    assert sent[0]["type"] == "compute" and sent[0]["target"] == 285
    assert isinstance(sent[0]["id"], str) and sent[0]["id"]
    assert wpage.state("target") == 281 and "target" not in wpage.saved()
    row = page.locator('.xw-prediction[data-index="285"]')
    assert "xw-requested" in row.get_attribute("class")
    wpage.emit_custom({"type": "accepted", "id": sent[0]["id"]})
    wpage.emit_custom({"type": "done", "id": sent[0]["id"], "status": "done"})
    page.wait_for_function(
        "() => !document.querySelector('.xw-prediction[data-index=\"285\"]').classList.contains('xw-requested')"
    )

    # the kernel moves the target: selection follows, old panels are marked stale
    wpage.kernel_set("target", 285)
    assert "xw-selected" in row.get_attribute("class")
    assert "xw-selected" not in page.locator('.xw-prediction[data-index="281"]').get_attribute("class")
    assert "xw-stale" in page.locator('.xw-panel[data-method="gradcam"]').get_attribute("class")

    # a new `panels` value redraws what changed
    ig_before = wpage.pixel(panel_canvas("integrated_gradients"), 19, 21)
    cam_before = wpage.pixel(panel_canvas("gradcam"), 40, 40)
    panels = dashboard_state("dataview")["panels"]
    moved = heatmap_dict(gaussian(0.85, 0.85, size=7, sigma=0.2))
    panels[1] = panel("gradcam", "done", moved, seconds=0.04, target=285)
    panels[2] = panel("occlusion", "error", error="CUDA out of memory", target=285)
    wpage.kernel_set("panels", panels)
    assert wpage.pixel(panel_canvas("gradcam"), 40, 40) != cam_before
    assert wpage.pixel(panel_canvas("integrated_gradients"), 19, 21) == ig_before
    assert "xw-stale" not in page.locator('.xw-panel[data-method="gradcam"]').get_attribute("class")
    err = page.locator('.xw-panel[data-method="occlusion"]')
    assert err.get_attribute("data-state") == "error"
    assert "CUDA out of memory" in err.locator(".xw-panel-error").inner_text()

    # shared controls apply to every panel
    page.locator("input.xw-opacity").fill("1")
    assert wpage.state("opacity") == 1 and "opacity" in wpage.saved()
    assert wpage.pixel(panel_canvas("integrated_gradients"), 19, 21) != ig_before
    page.locator("input.xw-opacity").fill("0.6")

    # progress, status and cancel
    cancel = page.locator("button.xw-cancel")
    assert cancel.is_disabled()
    wpage.kernel_set("status", "running")
    wpage.kernel_set("progress", 0.4)
    bar = page.locator(".xw-progress")
    assert float(bar.get_attribute("aria-valuenow")) == pytest.approx(0.4)
    assert page.locator(".xw-progress-fill").evaluate("e => e.style.width") == "40%"
    assert page.locator(".xw-status").inner_text() == "running"
    assert cancel.is_enabled()
    cancel.click()
    last = wpage.sent()[-1]
    assert last["type"] == "cancel" and isinstance(last["id"], str) and last["id"] != sent[0]["id"]

    wpage.kernel_set("error", "kernel said no")
    wpage.kernel_set("status", "error")
    assert page.locator(".xw-status").get_attribute("data-kind") == "error"
    assert page.locator(".xw-status").inner_text() == "error: kernel said no"
    assert page.locator(".xw-dashboard").get_attribute("data-status") == "error"
    wpage.kernel_set("status", "error: saved before the status enum")  # an old notebook's state still reads
    assert page.locator(".xw-status").inner_text() == "error: kernel said no"
    wpage.kernel_set("error", "")
    assert page.locator(".xw-status").inner_text() == "error: saved before the status enum"

    assert wpage.unmount() == 0, "cleanup must remove every model listener"


def test_screenshots(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", dashboard_state("dataview"))
    wpage.kernel_set("status", "running")
    wpage.kernel_set("progress", 0.67)
    wpage.screenshot("dashboard.png")
    wpage.page.evaluate("document.body.classList.add('dark')")
    wpage.screenshot("dashboard-dark.png")
