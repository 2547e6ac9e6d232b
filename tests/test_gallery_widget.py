"""FeatureGallery widget (issue 7): traits, binary buffers, the browser's requests answered by the kernel,
streaming and cancel, the static fallback. Small seeded CNNs, so every kernel run takes well under a second
of compute."""

from __future__ import annotations

import base64
import time

import matplotlib
import numpy as np
import pytest
import torch

import xaiwidgets as xw
import xaiwidgets.featurevis as fv
from xaiwidgets.core.errors import InputError, LayerError, ParameterError
from xaiwidgets.core.state import _hook_keys
from xaiwidgets.widgets.buffers import dequantize
from xaiwidgets.widgets.gallery import (
    FeatureGallery,
    activations_payload,
    detail_payload,
    feature_gallery,
    tiles_payload,
)

LAYER = "features.3"
CHANNELS = [1, 4, 6, 9]


def arr(d: dict) -> np.ndarray:
    """An array dict back to numpy (checks the bytes are a binary buffer, not a JSON list)."""
    assert isinstance(d["data"], (memoryview, bytes)), type(d["data"])
    return np.frombuffer(d["data"], dtype=d["dtype"]).reshape(d["shape"])


@pytest.fixture
def data() -> torch.Tensor:
    return torch.rand(12, 3, 24, 24, generator=torch.Generator().manual_seed(2))


class Recorder:
    """Stands in for the comm: collects what the widget sends to the browser."""

    def __init__(self, view: FeatureGallery) -> None:
        self.sent: list[dict] = []
        view.send = lambda msg, buffers=None: self.sent.append(msg)  # type: ignore[method-assign]

    def of(self, request_id: str) -> list[dict]:
        return [m for m in self.sent if m.get("id") == request_id]


@pytest.fixture
def gallery(tiny_cnn, data) -> FeatureGallery:
    return feature_gallery(tiny_cnn, LAYER, channels=CHANNELS, images=data, k=4, n_steps=8, size=16,
                           snapshot_every=2, activation_images=5, wait=True, normalize=False)


def test_traits_and_buffers_after_a_run(gallery, tiny_cnn, data):
    g = gallery
    assert g.status == "done" and g.progress == pytest.approx(1.0) and g.phase == ""
    assert g.channels == CHANNELS and g.layer == LAYER and g.step == g.n_steps == 8
    # tiles: the final images of ONE batched run, one per channel, uint8 HxWx3
    tiles = arr(g.tiles)
    assert tiles.dtype == np.uint8 and tiles.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(tiles, g.result.to_uint8())
    np.testing.assert_allclose(arr(g.objective), g.result.final_values.numpy(), rtol=1e-6)
    assert g.result.frame_steps == [0, 2, 4, 6, 8]
    # the same optimisation run directly (seeded): identical images
    again = fv.maximize(tiny_cnn, fv.channel_objectives(LAYER, CHANNELS), size=16, n_steps=8, normalize=False,
                        progress=False)
    torch.testing.assert_close(again.images, g.result.images)
    # activations of the first 5 images, thumbnails of those
    assert arr(g.thumbnails["images"]).shape == (5, 24, 24, 3) and g.thumbnails["count"] == 12
    a = g.activations
    assert a["index"] == 0 and arr(a["maps"]).shape == (16, 24, 24) and arr(a["ranges"]).shape == (16, 2)
    # top patches of every channel from one pass, equal to the one-channel function
    assert sorted(g.patches) == CHANNELS
    one = fv.top_patches(tiny_cnn, LAYER, 6, data, k=4, progress=False)
    torch.testing.assert_close(g.patches[6].values, one.values)
    assert g.patches[6].indices.tolist() == one.indices.tolist()
    assert g.dissection == {} and g.selected == -1 and g.detail == {}


def test_select_request_is_answered_with_the_channels_frames_and_patches(gallery):
    g = gallery
    rec = Recorder(g)
    g._on_message(g, {"type": "select", "id": "r1", "channel": 6}, [])
    assert [m["type"] for m in rec.of("r1")] == ["accepted", "done"] and rec.of("r1")[-1]["status"] == "done"
    assert g.selected == 6 and g.frame == -1
    d = g.detail
    assert d["channel"] == 6 and d["index"] == 2 and d["done"] and d["n_steps"] == 8
    frames = arr(d["frames"])
    np.testing.assert_array_equal(frames, g.result.frames[:, 2])  # the scrubber's snapshots of that channel
    assert arr(d["frame_steps"]).tolist() == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(arr(d["curve"]), g.result.objective_values[:, 2].numpy())
    assert d["value"] == pytest.approx(float(g.result.final_values[2]))
    # top patches shown as uint8 crops, best first, with their image indices and boxes
    p = g.patches[6]
    assert arr(d["patches"]).shape[0] == 4 and arr(d["patches"]).dtype == np.uint8
    assert arr(d["patch_images"]).tolist() == p.indices.tolist()
    np.testing.assert_allclose(arr(d["patch_values"]), p.values.numpy())
    assert arr(d["patch_boxes"]).tolist() == p.boxes.tolist()
    assert d["receptive_field"] == list(p.receptive_field.size)
    assert 0 < d["bytes"] < 3e6
    # closing and errors
    g._on_message(g, {"type": "select", "id": "r2", "channel": 5}, [])
    done = rec.of("r2")[-1]
    assert done["status"] == "error" and "not in this gallery" in done["error"] and g.selected == 6
    g._on_message(g, {"type": "select", "id": "r3", "channel": -1}, [])
    assert g.selected == -1 and g.detail == {}


def test_activations_request_from_cache_computed_and_out_of_range(gallery, tiny_cnn, data):
    g = gallery
    rec = Recorder(g)
    g._on_message(g, {"type": "activations", "id": "a1", "image": 3}, [])
    assert rec.of("a1")[-1]["status"] == "done" and g.activations["index"] == 3
    g._on_message(g, {"type": "activations", "id": "a2", "image": 10}, [])  # beyond the 5 precomputed
    assert g.wait(30)
    assert rec.of("a2")[-1]["status"] == "done" and g.activations["index"] == 10
    maps = fv.activations(tiny_cnn, LAYER, data[10])
    a = g.activations
    q, ranges = arr(a["maps"]), arr(a["ranges"])
    for c in (0, 7):
        back = dequantize(q[c], float(ranges[c, 0]), float(ranges[c, 1]))
        step = (ranges[c, 1] - ranges[c, 0]) / 255
        assert np.abs(back - maps[c].numpy()).max() <= step / 2 + 1e-6
    g._on_message(g, {"type": "activations", "id": "a3", "image": 12}, [])
    assert rec.of("a3")[-1]["status"] == "error" and "no data-set image 12" in rec.of("a3")[-1]["error"]


def test_streams_tiles_while_optimising_and_cancel_keeps_them(tiny_cnn):
    before = [_hook_keys(m) for m in tiny_cnn.modules()]
    g = feature_gallery(tiny_cnn, LAYER, channels=[0, 2], n_steps=100_000, size=16, snapshot_every=5,
                        normalize=False)
    rec = Recorder(g)
    deadline = time.time() + 60
    while g.step == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert g.status == "running" and g.phase == "optimising" and g.step > 0 and g.tiles
    g._on_message(g, {"type": "select", "id": "s", "channel": 2}, [])  # answered mid-run from the snapshots
    assert rec.of("s")[-1]["status"] == "done" and not g.detail["done"] and g.detail["value"] is None
    g._on_message(g, {"type": "cancel", "id": "c"}, [])
    assert rec.of("c") == [{"type": "accepted", "id": "c"}]
    assert g.wait(60)
    assert g.status == "cancelled" and g.result is None
    assert arr(g.tiles).shape == (2, 16, 16, 3) and 0 < g.step < 100_000
    assert {"type": "done", "id": "", "status": "cancelled"} in rec.sent
    assert [_hook_keys(m) for m in tiny_cnn.modules()] == before  # hooks removed on cancel


def test_dissection_table_payload(tiny_cnn, data):
    masks = {"left": torch.zeros(12, 24, 24, dtype=torch.bool), "top": torch.zeros(12, 24, 24, dtype=torch.bool)}
    masks["left"][:, :, :12] = True
    masks["top"][:, :8] = True
    g = feature_gallery(tiny_cnn, LAYER, channels=[0, 1], images=data, concept_masks=masks, quantile=0.9,
                        n_steps=2, size=16, wait=True, normalize=False)
    direct = fv.dissect(tiny_cnn, LAYER, data, masks, quantile=0.9, progress=False)
    d = g.dissection
    assert d["concepts"] == ["left", "top"] and d["layer"] == LAYER and d["quantile"] == 0.9
    np.testing.assert_allclose(arr(d["iou"]), direct.iou.numpy())
    np.testing.assert_allclose(arr(d["thresholds"]), direct.thresholds.numpy())


def test_payload_helpers():
    big = np.random.default_rng(0).integers(0, 256, (3, 320, 200, 3), dtype=np.uint8)
    t = arr(tiles_payload(big))
    assert t.shape == (3, 160, 100, 3)  # longer side down to 160, aspect kept, area-averaged
    assert abs(float(t.mean()) - float(big.mean())) < 1.0
    frames = [np.full((2, 64, 64, 3), k, np.uint8) for k in range(40)]
    history = [torch.tensor([float(k), -float(k)]) for k in range(100)]
    d = detail_payload(7, 1, frames, list(range(0, 200, 5)), history, n_steps=100, budget=1_000_000)
    assert d["bytes"] <= 1_000_000 and arr(d["frames"]).shape == (40, 64, 64, 3)  # fits: full size
    d = detail_payload(7, 1, frames, list(range(0, 200, 5)), history, n_steps=100, budget=300_000)
    # (300000 - 4096 - 4 * 140) / (3 * 40) = 2461 px per frame: 49 x 49
    assert d["bytes"] <= 300_000 and arr(d["frames"]).shape == (40, 49, 49, 3)  # shrunk to fit, all kept
    assert arr(d["frames"])[:, 0, 0, 0].tolist() == list(range(40))
    d = detail_payload(7, 1, frames, list(range(0, 200, 5)), history, n_steps=100, budget=100_000)
    kept = arr(d["frames"])[:, 0, 0, 0]  # 32 px is the floor: snapshots dropped evenly, first and last kept
    assert d["bytes"] <= 100_000 and arr(d["frames"]).shape[1:] == (32, 32, 3) and 20 < len(kept) < 40
    assert kept[0] == 0 and kept[-1] == 39 and (arr(d["frame_steps"]) == 5 * kept).all()
    np.testing.assert_allclose(arr(d["curve"]), -np.arange(100))
    assert d["patches"] is None and not d["done"]
    maps = torch.tensor([[[-1.0, 0.5], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    a = activations_payload(maps, np.zeros((4, 4, 3), np.uint8), 0)
    assert a["signed"] and arr(a["ranges"]).tolist() == [[-2.0, 2.0], [0.0, 0.0]]
    assert arr(a["maps"])[0].tolist() == [[64, 159], [128, 255]] and not arr(a["maps"])[1].any()


def test_from_results_without_a_model(tiny_cnn, data):
    vis = fv.maximize(tiny_cnn, fv.channel_objectives(LAYER, [3, 5]), size=16, n_steps=4, snapshot_every=2,
                      normalize=False, progress=False)
    patches = fv.top_patches_per_channel(tiny_cnn, LAYER, [3, 5], data, k=3, progress=False)
    maps = fv.activations(tiny_cnn, LAYER, data[:2])
    g = FeatureGallery.from_results(vis, [3, 5], layer=LAYER, patches=patches, images=data, activation_maps=maps)
    rec = Recorder(g)
    assert arr(g.tiles).shape == (2, 16, 16, 3) and g.activations["index"] == 0
    g.select(5)
    assert arr(g.detail["frames"]).shape == (3, 16, 16, 3) and arr(g.detail["patches"]).shape[0] == 3
    g._on_message(g, {"type": "activations", "id": "x", "image": 7}, [])
    assert "no model" in rec.of("x")[-1]["error"]
    with pytest.raises(ParameterError, match="3 channels for 2"):
        FeatureGallery.from_results(vis, [1, 2, 3])
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for the notebook's inline backend
    try:
        bundle = g._repr_mimebundle_()[0]
        assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert matplotlib.get_backend() == "svg", "the PNG fallback must not switch the notebook's backend"
    finally:
        matplotlib.use(before)


def test_errors_say_what_to_do(tiny_cnn, data):
    with pytest.raises(LayerError, match="Did you mean"):
        feature_gallery(tiny_cnn, "features.33", channels=[0])
    with pytest.raises(ParameterError, match="channel 99 is out of range"):
        feature_gallery(tiny_cnn, LAYER, channels=[0, 99], images=data, n_steps=2, size=16, wait=True)
    with pytest.raises(InputError, match="ImageClassifier"):
        feature_gallery(tiny_cnn, LAYER, channels=[0], images=[np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ParameterError, match="set by the gallery"):
        feature_gallery(tiny_cnn, LAYER, channels=[0], batch=3)


def test_public_names_and_default_channels(tiny_cnn):
    assert xw.FeatureGallery is FeatureGallery and xw.widgets.FeatureGallery is FeatureGallery
    g = fv.gallery(tiny_cnn, LAYER, n_steps=1, size=16, wait=True, normalize=False)
    assert isinstance(g, FeatureGallery) and g.channels == list(range(16))  # the layer has 16 channels
    assert arr(g.tiles).shape[0] == 16


def test_model_is_unchanged(tiny_cnn, data):
    x = torch.rand(2, 3, 16, 16)
    out = tiny_cnn(x)
    before = [_hook_keys(m) for m in tiny_cnn.modules()]
    feature_gallery(tiny_cnn, LAYER, channels=[0, 1], images=data, n_steps=3, size=16, wait=True)
    assert [_hook_keys(m) for m in tiny_cnn.modules()] == before
    assert all(p.grad is None and p.requires_grad for p in tiny_cnn.parameters())
    assert not any(m.training for m in tiny_cnn.modules())
    torch.testing.assert_close(tiny_cnn(x), out)


def test_raw_images_through_an_image_classifier(tiny_cnn):
    """Raw uint8 photos are preprocessed by the adapter; patches and thumbnails are shown de-normalised."""
    clf = xw.ImageClassifier(tiny_cnn, input_size=20)
    rng = np.random.default_rng(0)
    raw = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    g = feature_gallery(clf, LAYER, channels=[2], images=raw, k=2, n_steps=2, size=16, wait=True)
    x = clf.preprocess(raw)
    assert g.thumbnails["count"] == 3
    np.testing.assert_array_equal(arr(g.thumbnails["images"]), clf.to_display(x))
    g.select(2)
    np.testing.assert_array_equal(arr(g.detail["patches"]), clf.to_display(g.patches[2].patches))
