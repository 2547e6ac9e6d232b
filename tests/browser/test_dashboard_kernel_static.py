"""ExplainDashboard in headless Chromium with its REAL kernel side (``KernelBridge``: the widget runs in
this process, its traits and messages are relayed into the static harness): the scrubber over an
Integrated-Gradients panel's frames, the lrp_gamma slider with its parameter-keyed cache, and the LRP
composite on the demo EfficientNet-Lite0.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from harness import WidgetPage
from kernel_bridge import KernelBridge
from torch import nn

import xaiwidgets as xw
import xaiwidgets.widgets.dashboard as dashboard_module
from xaiwidgets.widgets.dashboard import ExplainDashboard

pytestmark = pytest.mark.browser

TRAITS = [
    "image", "predictions", "target", "methods", "panels", "progress", "status", "available_methods", "layers",
    "method_params", "scrubber", "colormap", "opacity", "absolute", "clip_percentile",
]
FRAMES = ".xw-frames"
SCRUB = ".xw-frames .xw-scrubber"
GRAD, ACC, PATH = "canvas.xw-frame-gradient", "canvas.xw-frame-accumulated", "canvas.xw-path-input"

CANVAS_HASH = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) | 0; return h;
}"""


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()


def blob_image(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    blob = torch.exp(-((xx - 0.3) ** 2 + (yy + 0.2) ** 2) * 6)
    return (torch.stack([blob, 0.5 * blob + 0.2 * xx, 1 - blob]) + 0.1 * torch.randn(3, size, size, generator=g))[None]


def dashboard(size: int, methods: list[str], **kwargs) -> ExplainDashboard:
    classifier = xw.ImageClassifier(small_cnn(), labels=["disc", "ring", "bar"], mean=None, std=None,
                                    input_size=None)
    return xw.explain(classifier, blob_image(size), methods=methods, wait=True, **kwargs)


def count_calls(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    real = dashboard_module.attribute

    def counted(model, inputs, method, **kwargs):
        calls.append((method, {k: v for k, v in kwargs.items() if k not in ("target", "progress")}))
        return real(model, inputs, method=method, **kwargs)

    monkeypatch.setattr(dashboard_module, "attribute", counted)
    return calls


def panel_canvas(method: str) -> str:
    return f'.xw-panel[data-method="{method}"] canvas.xw-heatmap-canvas'


def test_frames_panel_streams_and_scrubs(wpage: WidgetPage, monkeypatch) -> None:
    """Opening an IG panel's frames shows the scrubber (streamed while computed), its slider moves the
    canvases; closing and re-opening uses the cached frames."""
    monkeypatch.setattr(dashboard_module, "UPDATE_INTERVAL", 0.0)  # stream every chunk's snapshot
    dash = dashboard(224, ["integrated_gradients", "saliency"], params={"integrated_gradients": {"batch_size": 10}})
    bridge = KernelBridge(wpage, dash, TRAITS)
    bridge.mount("dashboard")
    page = wpage.page
    toggle = page.locator('.xw-panel[data-method="integrated_gradients"] button.xw-frames-toggle')
    assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "false"
    assert not page.locator('.xw-panel[data-method="saliency"] button.xw-frames-toggle').is_visible()
    assert page.locator(FRAMES).is_hidden()
    assert page.locator(".xw-panel").count() == 2  # no scrubber built before it is opened

    calls = count_calls(monkeypatch)
    toggle.click()
    (msg,) = [m for m in wpage.sent() if m["type"] == "frames"]
    assert msg["method"] == "integrated_gradients" and msg["id"]
    streamed: list[tuple[str, str]] = []
    # The first partial snapshot holds the worker until the bridge has relayed it (at most 60 s), so the
    # page sees frames while they are computed however fast the worker or slow the relay is.
    relayed = threading.Event()

    def hold_first_partial(change: dict) -> None:  # runs on the worker thread, when it sets the trait
        new = change["new"]
        if not relayed.is_set() and new.get("state") == "running" and new.get("frames", {}).get("count", 0) > 0:
            relayed.wait(60)

    dash.observe(hold_first_partial, names="scrubber")

    def on_push(changed: list[str]) -> None:  # what the page shows after each relayed update
        if "scrubber" in changed:
            streamed.append((page.locator(FRAMES).get_attribute("data-state"),
                             page.locator(".xw-frame-label").inner_text()))
            if dash.scrubber.get("state") == "running" and dash.scrubber.get("frames"):
                relayed.set()

    bridge.pump(on_push=on_push)
    dash.unobserve(hold_first_partial, names="scrubber")
    assert [d["status"] for d in bridge.done("frames")] == ["done"]
    assert calls == [("integrated_gradients", {"batch_size": 10, "return_frames": True})]
    print(f"\nscrubber states seen in the page while streaming: {streamed}")
    partial = [label for state, label in streamed if state == "running" and "/50" in label and "50/50" not in label]
    assert partial, f"frames were shown while being computed: {streamed}"
    assert streamed[-1][0] == "done"

    f = dash.scrubber["frames"]
    assert f["count"] == 50 and f["bytes"] <= 3e6
    print(f"frames on the wire: {f['count']} at {f['shape']}, {f['bytes'] / 1e6:.2f} MB")
    assert page.locator(FRAMES).is_visible() and toggle.get_attribute("aria-pressed") == "true"
    assert page.locator(SCRUB).get_attribute("data-state") == "ok"
    assert page.locator(SCRUB).get_attribute("data-kind") == "ig_path"
    assert "integrated_gradients" in page.locator(".xw-frames-title").inner_text()
    assert "disc" in page.locator(".xw-frames-title").inner_text()
    slider = page.locator(f"{SCRUB} input.xw-frame-slider")
    assert slider.get_attribute("max") == "49"
    assert page.locator(SCRUB).get_attribute("data-frame") == "49"
    h, w = f["shape"]
    assert wpage.canvas_size(GRAD) == (w, h)

    # the slider moves every canvas and the label
    before = {sel: page.evaluate(CANVAS_HASH, sel) for sel in (GRAD, ACC, PATH)}
    label = page.locator(".xw-frame-label").inner_text()
    slider.fill("5")
    assert page.locator(SCRUB).get_attribute("data-frame") == "5"
    after = {sel: page.evaluate(CANVAS_HASH, sel) for sel in (GRAD, ACC, PATH)}
    assert all(before[s] != after[s] for s in before), (before, after)
    assert page.locator(".xw-frame-label").inner_text() != label
    assert not [m for m in wpage.sent() if m["type"] not in ("frames", "list_layers")], "scrubbing is local"
    slider.fill("24")
    wpage.screenshot("dashboard_frames.png")

    # close, re-open: from the cache, no call
    page.locator("button.xw-frames-close").click()
    bridge.pump()
    assert page.locator(FRAMES).is_hidden() and dash.scrubber == {}
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    bridge.pump()
    assert len(calls) == 1 and page.locator(SCRUB).get_attribute("data-state") == "ok"
    assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_gamma_slider_recomputes_and_hits_the_cache(wpage: WidgetPage, monkeypatch) -> None:
    """Moving lrp_gamma's slider recomputes the panel in the kernel; moving back to a gamma already
    computed shows its map again without calling the method."""
    dash = dashboard(64, ["lrp_gamma", "saliency"])
    bridge = KernelBridge(wpage, dash, TRAITS)
    bridge.mount("dashboard")
    page = wpage.page
    calls = count_calls(monkeypatch)
    slider = page.locator('.xw-panel[data-method="lrp_gamma"] input.xw-param[data-param="gamma"]')
    value = page.locator('.xw-panel[data-method="lrp_gamma"] .xw-param-value')
    assert slider.input_value() == "0.8" and value.inner_text() == "0.80"
    assert [slider.get_attribute(a) for a in ("min", "max", "step")] == ["0", "1", "0.05"]
    assert page.locator('.xw-panel[data-method="saliency"] input.xw-param').count() == 0
    seconds = page.locator('.xw-panel[data-method="lrp_gamma"] .xw-seconds').inner_text()
    first = page.evaluate(CANVAS_HASH, panel_canvas("lrp_gamma"))
    saliency = page.evaluate(CANVAS_HASH, panel_canvas("saliency"))

    slider.fill("0.3")
    assert value.inner_text() == "0.30"
    (msg,) = [m for m in wpage.sent() if m["type"] == "set_params"]
    assert msg["method"] == "lrp_gamma" and msg["params"] == {"gamma": 0.3}
    bridge.pump()
    assert calls == [("lrp_gamma", {"gamma": 0.3})]
    assert page.locator('.xw-panel[data-method="lrp_gamma"]').get_attribute("data-state") == "done"
    low = page.evaluate(CANVAS_HASH, panel_canvas("lrp_gamma"))
    assert low != first, "the panel shows the map for gamma = 0.3"
    assert page.evaluate(CANVAS_HASH, panel_canvas("saliency")) == saliency, "other panels untouched"
    wpage.screenshot("dashboard_gamma.png")

    slider.fill("0.8")
    bridge.pump()
    assert len(calls) == 1, "gamma = 0.8 came from the cache"
    assert page.evaluate(CANVAS_HASH, panel_canvas("lrp_gamma")) == first
    assert page.locator('.xw-panel[data-method="lrp_gamma"] .xw-seconds').inner_text() == seconds
    slider.fill("0.3")
    bridge.pump()
    assert len(calls) == 1 and page.evaluate(CANVAS_HASH, panel_canvas("lrp_gamma")) == low
    assert [d["status"] for d in bridge.done("set_params")] == ["done"] * 3


def structure(values: np.ndarray) -> tuple[float, float]:
    """(correlation of horizontally neighbouring pixels, share of the map's variance kept by 8x8 block
    means). Both are near 0 (1/64 for the second) for a map of independent pixels."""
    v = np.asarray(values, np.float64)
    neighbours = float(np.corrcoef(v[:, :-1].ravel(), v[:, 1:].ravel())[0, 1])
    h, w = (v.shape[0] // 8) * 8, (v.shape[1] // 8) * 8
    blocks = v[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    return neighbours, float(blocks.var() / v[:h, :w].var())


def test_lrp_composite_on_the_demo_model(wpage: WidgetPage, effnet) -> None:
    """LRP composites on EfficientNet-Lite0 (BatchNorm canonised) over the chelsea photo: an object map
    (neighbouring pixels correlate, block means keep the variance), not noise (the same values shuffled
    are the contrast). The screenshots are looked at; the report describes them."""
    image = xw.demo.load_image("chelsea")
    dash = xw.explain(effnet, image, methods=["lrp_composite", "lrp_gamma", "saliency"], wait=True,
                      params={"lrp_composite": {"composite": "EpsilonGammaBox"}})
    assert dash.target == 285 and all(p["state"] == "done" for p in dash.panels), dash.panels
    dash.opacity = 0.85  # the maps more visible than the default 0.6 in the screenshots
    bridge = KernelBridge(wpage, dash, TRAITS)
    bridge.mount("dashboard")
    rng = np.random.default_rng(0)
    for composite in ("EpsilonGammaBox", "EpsilonPlusFlat"):
        if composite != "EpsilonGammaBox":
            dash.set_params("lrp_composite", {"composite": composite})
            bridge.pump()
        values = dash.result("lrp_composite")
        neighbours, blocks = structure(values)
        noise_neighbours, noise_blocks = structure(rng.permutation(values.ravel()).reshape(values.shape))
        print(f"\n{composite}: neighbour correlation {neighbours:.3f} (shuffled {noise_neighbours:.3f}), "
              f"variance kept by 8x8 block means {blocks:.3f} (shuffled {noise_blocks:.3f})")
        assert neighbours > 0.5 and abs(noise_neighbours) < 0.05
        assert blocks > 0.2 and noise_blocks < 0.05
        assert wpage.page.locator('.xw-panel[data-method="lrp_composite"]').get_attribute("data-state") == "done"
        name = "lrp_composite_demo.png" if composite == "EpsilonGammaBox" else "lrp_composite_demo_flat.png"
        wpage.screenshot(name)
