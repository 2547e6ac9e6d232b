"""FeatureGallery in headless Chromium against the static harness, with the kernel in the loop.

The page gets the REAL traits of a gallery computed in this process, and a small bridge plays the comm:
messages the view sends (``select``, ``activations``, ``cancel``) go to the widget's own handler, and the
traits it changes in answer (and its ``accepted``/``done`` messages) are pushed back into the page.

CI run: the demo shapes CNN (``last_conv.bn``, 32 units at 8x8) on 32 synthetic shapes with their masks,
6 channels optimised in one batched run of 24 steps at 64 px (seconds). The slow test renders the demo
EfficientNet-Lite0 with the default recipe (Fourier + decorrelated colour, lucid's transforms) at 112 px
and saves the screenshots that show the features look like features (looked at by hand; the test also
checks the images have far less high-frequency energy than noise and drive their channels far above
the photos).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
import pytest
import torch
from harness import WidgetPage

from xaiwidgets.widgets.gallery import FeatureGallery, feature_gallery

pytestmark = pytest.mark.browser

ROOT = ".xw-gallery"
LAYER = "last_conv.bn"
TRAITS = ("layer", "title", "channels", "tiles", "objective", "step", "n_steps", "selected", "detail", "frame",
          "thumbnails", "activations", "dissection", "tab", "progress", "status", "phase")
SHAPES_CHANNELS = [0, 4, 8, 12, 16, 28]

CANVAS_HASH = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 3) h = (h * 31 + d[i]) | 0; return h;
}"""

CANVAS_PIXELS = """([sel, n]) => {
  const c = document.querySelectorAll(sel)[n];
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
}"""


def harness_value(x: Any, view: str = "dataview") -> Any:
    """Trait value → harness JSON: every binary buffer as base64 (a DataView or Uint8Array in the page)."""
    if isinstance(x, (memoryview, bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(x)).decode("ascii"), "view": view}
    if isinstance(x, dict):
        return {k: harness_value(v, view) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [harness_value(v, view) for v in x]
    return x


def fmt(x: float) -> str:
    """js/src/lib/format.ts formatValue for moderate magnitudes: 3 significant digits, no trailing zeros."""
    v = float(f"{float(x):.3g}")
    return str(int(v)) if v.is_integer() else repr(v)


def arr(d: dict) -> np.ndarray:
    return np.frombuffer(d["data"], dtype=d["dtype"]).reshape(d["shape"])


class Bridge:
    """The comm between a FeatureGallery in this process and its view in the page."""

    def __init__(self, view: FeatureGallery, wpage: WidgetPage, buffers: str = "dataview") -> None:
        self.view, self.wpage, self.buffers = view, wpage, buffers
        self.changed: set[str] = set()
        self.outbox: list[dict] = []
        self.seen = 0
        view.observe(lambda change: self.changed.add(change["name"]), names=list(TRAITS))
        view.send = lambda msg, buffers=None: self.outbox.append(msg)  # type: ignore[method-assign]

    def mount(self) -> int:
        return self.wpage.mount("gallery", {k: harness_value(getattr(self.view, k), self.buffers) for k in TRAITS})

    def pump(self, wait: float = 60.0) -> list[dict]:
        """Deliver the page's new messages to the kernel, wait for the work they queued, push the answers."""
        self.pull()
        sent = self.wpage.sent()[self.seen :]
        self.seen += len(sent)
        for msg in sent:
            self.view._on_message(self.view, msg, [])
        assert self.view.wait(wait)
        self.push()
        self.pull()
        return sent

    def pull(self) -> None:
        """Browser-side trait writes (``tab``, ``frame``) reach the kernel, as ``save_changes`` would."""
        page_model = self.wpage.page.evaluate("() => window.xw.model(0).state")
        for key in set(self.wpage.saved()):
            self.view.set_trait(key, page_model[key])
        self.changed -= set(self.wpage.saved())
        self.wpage.page.evaluate("() => { window.xw.model(0).saved = []; }")

    def push(self) -> None:
        for name in sorted(self.changed):
            self.wpage.kernel_set(name, harness_value(getattr(self.view, name), self.buffers))
        self.changed.clear()
        out, self.outbox = self.outbox, []
        for msg in out:
            self.wpage.emit_custom(msg)


@pytest.fixture(scope="module")
def shapes_gallery() -> FeatureGallery:
    from xaiwidgets.demo import SHAPE_CLASSES, make_shapes, shapes_classifier
    from xaiwidgets.demo.train_shapes import normalise

    data = make_shapes(32, size=64, seed=1)
    concepts = {"object": data.masks, "background": ~data.masks}
    for c, name in enumerate(SHAPE_CLASSES):
        concepts[name] = data.masks & (data.labels == c).view(-1, 1, 1)
    # pre-activation (BatchNorm) outputs, as lucid does; no transformation robustness for a 64 px model
    return feature_gallery(shapes_classifier(), LAYER, channels=SHAPES_CHANNELS, images=normalise(data.images),
                           concept_masks=concepts, quantile=0.95, k=6, n_steps=24, size=64, snapshot_every=2,
                           lr=0.2, transforms=None, wait=True)


def test_gallery_renders_the_tiles_of_a_real_run(wpage: WidgetPage, shapes_gallery: FeatureGallery) -> None:
    g = shapes_gallery
    assert g.status == "done"
    for buffers in ("dataview", "uint8"):  # JupyterLab / VS Code and Colab deliveries
        page = wpage.page
        page.goto(page.url)
        page.wait_for_function("window.xwReady === true")
        Bridge(g, wpage, buffers).mount()
        tiles = page.locator(".xw-tile")
        assert tiles.count() == len(SHAPES_CHANNELS)
        assert [int(tiles.nth(i).get_attribute("data-channel")) for i in range(tiles.count())] == SHAPES_CHANNELS
        expected = arr(g.tiles)
        for i in (0, 3, 5):
            assert wpage.canvas_size("canvas.xw-tile-canvas", i) == (64, 64)
            px = np.array(page.evaluate(CANVAS_PIXELS, ["canvas.xw-tile-canvas", i]), np.uint8).reshape(64, 64, 4)
            np.testing.assert_array_equal(px[..., :3], expected[i])  # offset-correct decoding, exact pixels
        values = arr(g.objective)
        assert page.locator(".xw-tile-value").nth(1).inner_text() == fmt(values[1])
        assert page.locator(".xw-tile-metric").nth(1).inner_text() == f"obj {fmt(values[1])}"  # labelled
        assert page.locator(ROOT).get_attribute("data-status") == "done"
        assert page.locator(".xw-detail").is_hidden()
        assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_click_opens_the_scrubber_and_top_patches(wpage: WidgetPage, shapes_gallery: FeatureGallery) -> None:
    g = shapes_gallery
    page = wpage.page
    bridge = Bridge(g, wpage)
    g.select(-1)
    bridge.changed.clear()
    bridge.mount()
    page.locator('.xw-tile[data-channel="12"]').click()
    sent = bridge.pump()
    assert [(m["type"], m["channel"]) for m in sent] == [("select", 12)]
    root = page.locator(ROOT)
    assert root.get_attribute("data-selected") == "12"
    assert page.locator('.xw-tile[data-channel="12"]').get_attribute("class").split().count("xw-selected") == 1
    detail = page.locator(".xw-detail")
    assert detail.is_visible() and detail.get_attribute("data-channel") == "12"
    frames = arr(g.detail["frames"])
    n = frames.shape[0]
    assert n == 13  # step 0 and every 2 steps to 24
    slider = page.locator("input.xw-gallery-slider")
    assert slider.get_attribute("max") == str(n - 1) and detail.get_attribute("data-step") == "24"

    def shown() -> np.ndarray:
        w, h = wpage.canvas_size("canvas.xw-gallery-frame")
        px = np.array(page.evaluate(CANVAS_PIXELS, ["canvas.xw-gallery-frame", 0]), np.uint8)
        return px.reshape(h, w, 4)[..., :3]

    np.testing.assert_array_equal(shown(), frames[-1])
    last = page.evaluate(CANVAS_HASH, "canvas.xw-gallery-frame")
    slider.fill("0")  # scrub back to the start: the initial (near-grey) image
    assert detail.get_attribute("data-step") == "0" and page.locator(".xw-frame-label").inner_text() == "step 0 / 24"
    assert page.evaluate(CANVAS_HASH, "canvas.xw-gallery-frame") != last
    np.testing.assert_array_equal(shown(), frames[0])
    contrast = np.abs(frames.astype(float) - 127.5).mean((1, 2, 3))
    assert contrast[0] < 2 < 10 < contrast[-1], contrast  # grey start, a pattern at the end
    bridge.pump()
    assert g.frame == 0, "the slider's release writes the frame trait"
    page.locator("button.xw-play").click()
    page.wait_for_function("Number(document.querySelector('.xw-detail').dataset.frame) >= 4", timeout=30_000)
    page.locator("button.xw-play").click()
    # the objective curve: one point per step, the marker on the scrubbed step
    points = page.locator(".xw-lineplot polyline.xw-series-objective").get_attribute("points").split(" ")
    assert len(points) == 24
    assert float(page.locator("circle.xw-lineplot-marker").get_attribute("cx")) > 0
    # top patches: k crops with their activation and image index
    p = g.patches[12]
    items = page.locator(".xw-patch")
    assert items.count() == 6
    assert [int(items.nth(i).get_attribute("data-image")) for i in range(6)] == p.indices.tolist()
    assert page.locator(".xw-patch-value").first.inner_text() == f"{fmt(p.values[0])} · img {int(p.indices[0])}"
    assert "receptive field" in page.locator(".xw-detail .xw-note").inner_text()
    slider.fill(str(n // 2))
    wpage.screenshot("gallery_shapes_features.png")
    # selecting another channel replaces the detail
    page.locator('.xw-tile[data-channel="4"]').click()
    bridge.pump()
    assert detail.get_attribute("data-channel") == "4" and detail.get_attribute("data-step") == "24"
    assert wpage.unmount(0) == 0


def test_activation_grid_and_dissection_tabs(wpage: WidgetPage, shapes_gallery: FeatureGallery) -> None:
    g = shapes_gallery
    page = wpage.page
    bridge = Bridge(g, wpage)
    g.select(8)
    bridge.changed.clear()
    bridge.mount()
    root = page.locator(ROOT)
    # a click on a top patch shows the activations of the image it comes from
    item = page.locator(".xw-patch").nth(1)
    image = int(item.get_attribute("data-image"))
    item.click()
    sent = bridge.pump()
    assert [(m["type"], m["image"]) for m in sent] == [("activations", image)]
    assert root.get_attribute("data-tab") == "activations" and g.tab == "activations"
    assert g.activations["index"] == image
    assert page.locator(".xw-thumb").count() == 16
    if image < 16:
        assert "xw-selected" in page.locator(f'.xw-thumb[data-index="{image}"]').get_attribute("class")
    w, h = wpage.canvas_size("canvas.xw-actgrid")
    assert w > 200 and h > 100
    # the first cell shows channel 0's map through the colour map: its min and max codes differ in colour
    maps = arr(g.activations["maps"])
    grid = page.locator("canvas.xw-actgrid")
    grid.hover(position={"x": 3, "y": 3})
    assert page.locator(".xw-act-info").inner_text().startswith("channel 0 ·")
    assert maps.shape == (32, 8, 8)
    wpage.screenshot("gallery_shapes_activations.png")
    # a click on a thumbnail switches the image
    page.locator('.xw-thumb[data-index="2"]').click()
    bridge.pump()
    assert g.activations["index"] == 2 and "image 2:" in page.locator(".xw-activations .xw-note").inner_text()
    # a click on a gallery channel's cell opens it on the features tab (cell geometry as lib/gallery.ts lays
    # out 32 maps: ceil(sqrt(32 * 1.5)) = 7 columns, 2 px gutters, canvas scaled by CSS)
    layout = page.evaluate("""() => { const c = document.querySelector('canvas.xw-actgrid');
        return [c.width, c.height, c.getBoundingClientRect().width]; }""")
    scale = layout[2] / layout[0]
    pitch_cols = int(np.ceil(np.sqrt(32 * 1.5)))
    cell = (layout[0] - (pitch_cols - 1) * 2) / pitch_cols
    c = 16
    x = ((c % pitch_cols) * (cell + 2) + cell / 2) * scale
    y = ((c // pitch_cols) * (cell + 2) + cell / 2) * scale
    grid.click(position={"x": x, "y": y})
    sent = bridge.pump()
    assert [(m["type"], m.get("channel")) for m in sent] == [("select", 16)]
    assert root.get_attribute("data-tab") == "features" and root.get_attribute("data-selected") == "16"

    # dissection: one row per unit, best IoU first; gallery units clickable
    page.locator('button.xw-tab[data-tab="dissection"]').click()
    bridge.pump()
    assert root.get_attribute("data-tab") == "dissection"
    rows = page.locator("table.xw-dissection tbody tr")
    assert rows.count() == 32
    ious = [float(rows.nth(i).locator("td").nth(2).inner_text()) for i in range(32)]
    assert ious == sorted(ious, reverse=True)
    best = g.dissection_result.best()
    top = max(best, key=lambda r: (r[2], -r[0]))
    assert int(rows.first.get_attribute("data-unit")) == top[0]
    assert rows.first.locator("td").nth(1).inner_text() == top[1]
    headers = page.locator("table.xw-dissection th").all_inner_texts()
    assert headers[3:] == ["object", "background", "circle", "square", "triangle", "cross"]
    assert page.locator("tr.xw-in-gallery").count() == len(SHAPES_CHANNELS)
    wpage.screenshot("gallery_shapes_dissection.png")
    page.locator('tr.xw-in-gallery[data-unit="28"]').click()
    sent = bridge.pump()
    assert [(m["type"], m.get("channel")) for m in sent][-1] == ("select", 28)
    assert root.get_attribute("data-tab") == "features" and root.get_attribute("data-selected") == "28"
    assert wpage.unmount(0) == 0


def test_streaming_tiles_and_cancel(wpage: WidgetPage, tiny_cnn: torch.nn.Module) -> None:
    """Tiles arrive while optimising; the status shows the step; Cancel stops the run and keeps them."""
    g = feature_gallery(tiny_cnn, "features.3", channels=[0, 1, 2], n_steps=100_000, size=24, snapshot_every=10,
                        normalize=False)
    deadline = time.monotonic() + 60
    while g.step == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert g.step > 0, "no snapshot within 60 s"
    page = wpage.page
    bridge = Bridge(g, wpage)
    bridge.mount()
    # the tiles the page may show: the ones mounted or (set while mounting) newer ones; wait for a snapshot
    # newer than these (the worker sets `tiles` before `step`, so waiting on `step` could end on the very
    # tiles already mounted)
    mounted = g.tiles
    root = page.locator(ROOT)
    assert root.get_attribute("data-status") == "running"
    assert page.locator(".xw-status").inner_text().startswith("optimising · step ")
    assert page.locator(".xw-tile").count() == 3 and wpage.canvas_size("canvas.xw-tile-canvas") == (24, 24)
    before = page.evaluate(CANVAS_HASH, "canvas.xw-tile-canvas")
    deadline = time.monotonic() + 60
    while g.tiles is mounted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert g.tiles is not mounted, "no newer snapshot within 60 s"
    bridge.push()
    assert page.evaluate(CANVAS_HASH, "canvas.xw-tile-canvas") != before, "a newer snapshot is drawn"
    page.locator("button.xw-cancel").click()
    sent = bridge.pump()
    assert [m["type"] for m in sent] == ["cancel"]
    assert g.status == "cancelled" and root.get_attribute("data-status") == "cancelled"
    assert page.locator("button.xw-cancel").is_disabled() and page.locator(".xw-tile").count() == 3
    assert wpage.unmount(0) == 0


# ---------------------------------------------------------------- the real thing (slow, screenshots)
def _photo_set(clf) -> torch.Tensor:
    """The five bundled photos and their four quadrant crops (resized to the model's 224 px): 25 images."""
    from xaiwidgets.demo import SAMPLE_IMAGES, load_image

    images = []
    for name in SAMPLE_IMAGES:
        im = load_image(name)
        h, w = im.shape[:2]
        images.append(im)
        images += [im[y : y + h // 2, x : x + w // 2] for y in (0, h // 2) for x in (0, w // 2)]
    return clf.preprocess(images).cpu()


def _high_frequency_fraction(images: np.ndarray, cutoff: float = 0.25) -> np.ndarray:
    x = images.astype(np.float64).mean(-1)
    x = x - x.mean((1, 2), keepdims=True)
    power = np.abs(np.fft.rfft2(x)) ** 2
    fy = np.fft.fftfreq(x.shape[1])[:, None]
    fx = np.fft.rfftfreq(x.shape[2])[None, :]
    return (power * (np.sqrt(fx**2 + fy**2) > cutoff)).sum((1, 2)) / power.sum((1, 2))


@pytest.mark.slow
def test_effnet_gallery_screenshots(wpage: WidgetPage) -> None:
    """EfficientNet-Lite0 ``_blocks.10``, 8 channels at 112 px, 256 steps, the default lucid recipe."""
    import xaiwidgets.featurevis as fv
    from xaiwidgets.demo import imagenet_classifier

    clf = imagenet_classifier()
    photos = _photo_set(clf)
    channels = [1, 12, 27, 40, 55, 63, 81, 99]
    g = feature_gallery(clf, "_blocks.10", channels=channels, images=photos, n_steps=256, size=112,
                        snapshot_every=16, wait=True)
    tiles = arr(g.tiles)
    noise = np.random.default_rng(0).integers(0, 256, tiles.shape, dtype=np.uint8)
    hf, hf_noise = _high_frequency_fraction(tiles), _high_frequency_fraction(noise)
    print(f"\nhigh-frequency energy fraction: features {np.round(hf, 3)}, uniform noise {hf_noise.mean():.3f}")
    assert (hf < 0.25 * hf_noise).all(), (hf, hf_noise)
    on_photos = fv.activations(clf, "_blocks.10", photos)[:, channels].mean((2, 3)).mean(0)
    print(f"objective {g.result.final_values.numpy().round(1)} vs photo mean {on_photos.numpy().round(2)}")
    assert (g.result.final_values > on_photos + 5).all()
    page = wpage.page
    bridge = Bridge(g, wpage)
    bridge.mount()
    page.locator('.xw-tile[data-channel="27"]').click()
    bridge.pump()
    page.locator("input.xw-gallery-slider").fill("8")
    wpage.screenshot("gallery_effnet_features.png")
    page.locator(".xw-patch").first.click()
    bridge.pump()
    wpage.screenshot("gallery_effnet_activations.png")
    assert wpage.unmount(0) == 0
