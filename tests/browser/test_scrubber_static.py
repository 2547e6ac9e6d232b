"""ScrubberView in headless Chromium against a fake anywidget model (no Jupyter).

The page gets the REAL payload of a ScrubberView built in this process (real Integrated Gradients and
SmoothGrad with ``return_frames=True`` on a small seeded CNN at 224x224, 50 frames), buffers passed as
base64. Oracle for the accumulated panel at the last frame: a HeatmapView (another code path: its own
trait, its own style resolution) of the FINAL attribution's channel sum downsampled the same way, over
the same image; the two canvases must agree within one quantisation step's colour change.
"""

from __future__ import annotations

import base64
import statistics
from typing import Any

import pytest
import torch
from harness import WidgetPage
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.gradient.integrated_gradients
import xaiwidgets.methods.gradient.smoothgrad
from xaiwidgets.widgets.buffers import heatmap_payload
from xaiwidgets.widgets.scrubber import ScrubberView, downsample_maps

pytestmark = pytest.mark.browser

ROOT = ".xw-scrubber"
GRAD, ACC, PATH = "canvas.xw-frame-gradient", "canvas.xw-frame-accumulated", "canvas.xw-path-input"


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()


@pytest.fixture(scope="module")
def image224() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 224), torch.linspace(-1, 1, 224), indexing="ij")
    blob = torch.exp(-((xx - 0.3) ** 2 + (yy + 0.2) ** 2) * 6)
    return (torch.stack([blob, 0.5 * blob + 0.2 * xx, 1 - blob]) + 0.1 * torch.randn(3, 224, 224, generator=g))[None]


def harness_value(x: Any) -> Any:
    """Trait value → harness JSON: every binary buffer as base64 (becomes a DataView in the page)."""
    if isinstance(x, (memoryview, bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(x)).decode("ascii"), "view": "dataview"}
    if isinstance(x, dict):
        return {k: harness_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [harness_value(v) for v in x]
    return x


def view_state(view: ScrubberView) -> dict[str, Any]:
    return {
        "kind": view.kind, "frames": harness_value(view.frames), "frame": view.frame, "title": view.title,
        "progress": view.progress, "status": view.status, **view.view_options(),
    }


def reference_state(view: ScrubberView, attribution) -> dict[str, Any]:
    """HeatmapView state of the final attribution at the scrubber's resolution, over the same image."""
    f = view.frames
    final = attribution.values[0].detach().float().sum(0)
    small = downsample_maps(final[None], tuple(f["shape"]))[0].numpy()
    return {
        "image": harness_value(f["image"]), "heatmap": harness_value(heatmap_payload(small, f["accumulated_signed"])),
        "signed": f["accumulated_signed"], "title": "reference", **view.view_options(),
    }


CANVAS_DIFF = """([a, b]) => {
  const ca = document.querySelector(a), cb = document.querySelectorAll(b)[0];
  if (ca.width !== cb.width || ca.height !== cb.height) return {size: [ca.width, ca.height, cb.width, cb.height]};
  const da = ca.getContext('2d').getImageData(0, 0, ca.width, ca.height).data;
  const db = cb.getContext('2d').getImageData(0, 0, cb.width, cb.height).data;
  let max = 0, sum = 0, over = 0;
  for (let i = 0; i < da.length; i++) {
    const d = Math.abs(da[i] - db[i]); sum += d; if (d > max) max = d; if (d > 6) over++;
  }
  return {max, mean: sum / da.length, over, n: da.length};
}"""

CANVAS_HASH = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) | 0; return h;
}"""

# performance.now() around the synchronous draw triggered by each slider input event, every frame
TIME_SWITCH = """() => {
  const s = document.querySelector('input.xw-frame-slider');
  const n = Number(s.max) + 1, times = [];
  for (let round = 0; round < 2; round++) {
    for (let k = 0; k < n; k++) {
      const t0 = performance.now();
      s.value = String(k); s.dispatchEvent(new Event('input'));
      times.push(performance.now() - t0);
    }
  }
  return times.slice(n);  // the second pass: styles resolved once, as while scrubbing
}"""


def check_scrubber(wpage: WidgetPage, view: ScrubberView, attribution, name: str) -> None:
    page = wpage.page
    wpage.mount("scrubber", view_state(view))
    root = page.locator(ROOT)
    assert root.get_attribute("data-state") == "ok", page.locator(".xw-error").inner_text()
    f = view.frames
    h, w = f["shape"]
    k_last = f["count"] - 1
    for sel in (GRAD, ACC, PATH):
        assert wpage.canvas_size(sel) == (w, h)
    slider = page.locator("input.xw-frame-slider")
    assert slider.get_attribute("max") == str(k_last)
    assert root.get_attribute("data-frame") == str(k_last), "a finished result opens on its last frame"

    # the accumulated panel at the last frame equals the final attribution's rendering
    ref = wpage.mount("heatmap", reference_state(view, attribution))
    assert ref == 1
    diff = page.evaluate(CANVAS_DIFF, [ACC, "canvas.xw-heatmap-canvas"])
    print(f"\n[{name}] accumulated vs final-map reference: max |d| = {diff['max']}, mean = {diff['mean']:.4f}, "
          f">6: {diff['over']} of {diff['n']}")
    assert "size" not in diff, diff
    assert diff["mean"] < 0.5 and diff["over"] <= diff["n"] * 0.002, diff
    assert wpage.unmount(ref) == 0

    # moving the slider changes the canvases and the label
    before = {sel: page.evaluate(CANVAS_HASH, sel) for sel in (GRAD, ACC, PATH)}
    label_before = page.locator(".xw-frame-label").inner_text()
    slider.fill("3")
    assert root.get_attribute("data-frame") == "3"
    after = {sel: page.evaluate(CANVAS_HASH, sel) for sel in (GRAD, ACC, PATH)}
    assert all(before[s] != after[s] for s in before), (before, after)
    assert page.locator(".xw-frame-label").inner_text() != label_before
    assert wpage.state("frame") == 3 and "frame" in wpage.saved(), "the slider's release writes the frame trait"

    # play advances frames, pause stops. At 10 fps playback reached the last frame 4 s after the wait
    # below and stopped by itself, so a test process stalled that long (a loaded machine) clicked Play
    # again instead of Pause. At the slowest speed (2 fps) the end is 22 s away from frame 5.
    page.locator("select.xw-speed").select_option("2")
    slider_box = slider.bounding_box()
    page.locator("button.xw-play").click()
    assert root.get_attribute("data-playing") == "true"
    # "Play" became "Pause": the slider does not move sideways or change width
    moved = slider.bounding_box()
    assert (moved["x"], moved["width"]) == (slider_box["x"], slider_box["width"]), (slider_box, moved)
    page.wait_for_function("Number(document.querySelector('.xw-scrubber').dataset.frame) >= 5", timeout=30_000)
    page.locator("button.xw-play").click()
    assert root.get_attribute("data-playing") == "false", f"paused on frame {root.get_attribute('data-frame')}"
    stopped = root.get_attribute("data-frame")
    assert 5 <= int(stopped) < k_last
    page.wait_for_timeout(1200)  # more than two playback intervals at 2 fps: no frame advances once paused
    assert root.get_attribute("data-frame") == stopped

    # the line plot is drawn: a polyline with one point per frame and the marker on the current frame
    points = page.locator(".xw-lineplot polyline").first.get_attribute("points").split(" ")
    assert len(points) == f["count"]
    assert page.locator(".xw-lineplot").get_attribute("data-marker") == stopped
    cx = float(page.locator("circle.xw-lineplot-marker").get_attribute("cx"))
    assert cx > 0

    # frame-switch draw time (reported, not asserted)
    times = page.evaluate(TIME_SWITCH)
    print(f"[{name}] frame switch ({f['count']} frames, maps {w}x{h}, payload {f['bytes'] / 1e6:.2f} MB): "
          f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms")
    slider.fill(str(k_last // 2))
    wpage.screenshot(name)


def test_ig_scrubber(wpage: WidgetPage, image224: torch.Tensor) -> None:
    a = xw.attribute(small_cnn(), image224, method="integrated_gradients", n_steps=50, return_frames=True,
                     progress=False)
    view = ScrubberView.from_attribution(a)
    assert view.frames["count"] == 50
    check_scrubber(wpage, view, a, "scrubber_ig.png")
    page = wpage.page
    assert page.locator(ROOT).get_attribute("data-kind") == "ig_path"
    assert page.locator(".xw-lineplot polyline.xw-series-sum").count() == 1
    assert page.locator(".xw-lineplot .xw-lineplot-bracket").count() == 1
    assert "completeness gap" in page.locator(".xw-gap").inner_text()
    # the path input at alpha is the blend of input and baseline: at the first step (small alpha) it is
    # close to the black baseline, at the last close to the input
    page.locator("input.xw-frame-slider").fill("0")
    first = wpage.pixel(PATH, 100, 100)
    page.locator("input.xw-frame-slider").fill("49")
    last = wpage.pixel(PATH, 100, 100)
    assert sum(first[:3]) < sum(last[:3])
    assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_noise_scrubber(wpage: WidgetPage, image224: torch.Tensor) -> None:
    a = xw.attribute(small_cnn(), image224, method="smoothgrad", n_samples=50, noise_level=0.15, seed=0,
                     return_frames=True, progress=False)
    view = ScrubberView.from_attribution(a)
    assert view.frames["count"] == 50
    check_scrubber(wpage, view, a, "scrubber_noise.png")
    page = wpage.page
    assert page.locator(ROOT).get_attribute("data-kind") == "noise"
    assert "running mean" in page.locator(".xw-gap").inner_text()
    # the summary follows the slider (it used to describe the last sample only)
    page.locator("input.xw-frame-slider").fill("9")
    assert page.locator(".xw-gap").inner_text().startswith("after 10 of 50 samples")
    page.locator("input.xw-frame-slider").fill("49")
    assert page.locator(".xw-gap").inner_text().startswith("after 50 of 50 samples")
    assert "0.0%" in page.locator(".xw-gap").inner_text()  # the final mean is the final mean
    assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_streaming_and_cancel(wpage: WidgetPage, image224: torch.Tensor) -> None:
    """Frames arriving while computing: the view follows the newest frame; cancel sends its message."""
    a = xw.attribute(small_cnn(), image224[..., :64, :64], method="integrated_gradients", n_steps=12,
                     return_frames=True, progress=False)
    view = ScrubberView.from_attribution(a)
    full = harness_value(view.frames)
    partial = {**full, "count": 5, "done": False, "expected": 12}
    for key in ("gradients", "accumulated"):
        stack = view.frames[key]
        n = stack["shape"][1] * stack["shape"][2]
        partial[key] = harness_value({**stack, "shape": [5, *stack["shape"][1:]], "data": stack["data"][: 5 * n]})
        if "vmins" in stack:
            partial[key]["vmins"], partial[key]["vmaxs"] = stack["vmins"][:5], stack["vmaxs"][:5]
    for key in ("alphas", "path_scores", "partial_sums"):
        partial[key] = harness_value({**view.frames[key], "shape": [5], "data": view.frames[key]["data"][:20]})
    state = {**view_state(view), "frames": {}, "status": "running", "progress": 0.0}
    wpage.mount("scrubber", state)
    page = wpage.page
    root = page.locator(ROOT)
    assert root.get_attribute("data-state") == "empty"
    assert root.get_attribute("data-status") == "running"
    wpage.kernel_set("frames", partial)
    assert root.get_attribute("data-frame") == "4"
    assert "/12" in page.locator(".xw-frame-label").inner_text()
    wpage.kernel_set("frames", full)
    assert root.get_attribute("data-frame") == "11", "the view follows the newest frame"
    page.locator("button.xw-cancel").click()
    assert any(m["type"] == "cancel" for m in wpage.sent())
    wpage.kernel_set("status", "cancelled")
    assert page.locator("button.xw-cancel").is_disabled()
