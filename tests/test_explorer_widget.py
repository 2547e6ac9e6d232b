"""DatasetExplorer's kernel side: metadata, pages, requests, drill-down, selection, export and bad input.

Oracles: the explanations themselves (``DatasetExplanations`` columns and ``maps``): a page's uint8 maps
decode to the stored maps within half a quantisation step of each map's range (the protocol's rounding),
and its thumbnails are the inputs through the display function. Every request gets a ``done`` answer.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.widgets.explorer import DatasetExplorer, outside_centre

N, SIDE, MAP = 24, 16, 8


def tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(64, 3)).eval()
    x = torch.rand(N, 3, SIDE, SIDE)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[::4] = (y[::4] + 1) % 3  # some wrong predictions
    return net, x, y


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, torch.Tensor, torch.Tensor, Any]:
    net, x, y = tiny()
    path = tmp_path_factory.mktemp("ex") / "store"
    expl = xw.explain_dataset(net, x, ("gradcam", "saliency"), labels=y, store=path, batch_size=8, map_size=MAP,
                              progress=False)
    return net, x, y, expl


class Recorder:
    """Stands in for the comm: records (content, buffers) of every message the widget sends."""

    def __init__(self, view: DatasetExplorer) -> None:
        self.view, self.sent = view, []
        view.send = lambda content, buffers=None: self.sent.append((json.loads(json.dumps(content)), buffers))

    def ask(self, content: dict[str, Any]) -> dict[str, Any]:
        self.view._on_message(self.view, {**content, "id": "r1"}, [])
        self.view.wait(30)
        return [m for m, _ in self.sent if m.get("id") == "r1" and m["type"] == "done"][-1]


@contextlib.contextmanager
def opened(run: Any, *, with_model: bool = True, **kw: Any) -> Iterator[tuple[DatasetExplorer, Recorder]]:
    """An explorer over the module's store (with its model and data unless ``with_model=False``), closed after."""
    net, x, _y, expl = run
    reopened = xw.open_explanations(expl.path, data=x, model=net) if with_model else xw.open_explanations(expl.path)
    view = xw.explore(reopened, wait=True, **kw)
    try:
        yield view, Recorder(view)
    finally:
        view.close()


def arrays(meta: dict[str, Any], key: str) -> np.ndarray:
    d = meta[key]
    return np.frombuffer(bytes(d["data"]), d["dtype"]).reshape(d["shape"])


def test_explore_streams_chunks_and_meta_matches_the_explanations(tmp_path):
    net, x, y = tiny()
    sizes: list[int] = []
    view = xw.explore(net, x, ("gradcam",), labels=y, store=tmp_path / "s", batch_size=8, map_size=MAP, wait=True)
    view.observe(lambda ch: sizes.append(ch["new"].get("n", 0)), "meta")
    try:
        expl = view.explanations
        assert view.status == "done" and len(expl) == N and view.progress == 1.0
        m = view.meta
        assert m["n"] == N
        np.testing.assert_array_equal(arrays(m, "index"), np.arange(N))
        np.testing.assert_array_equal(arrays(m, "label"), y.numpy())
        np.testing.assert_array_equal(arrays(m, "pred"), expl.predictions)
        np.testing.assert_array_equal(arrays(m, "correct"), expl.correct.astype(np.uint8))
        np.testing.assert_allclose(arrays(m, "conf"), expl.probabilities[:, 0])
        stat = arrays(m, "stat")
        np.testing.assert_allclose(stat, outside_centre(np.asarray(expl.maps("gradcam"))), equal_nan=True)
        assert view.classes == ["class 0", "class 1", "class 2"]
    finally:
        view.close()


def test_streaming_shows_partial_results_before_the_end(tmp_path, monkeypatch):
    import xaiwidgets.widgets.explorer as ex

    monkeypatch.setattr(ex, "META_INTERVAL", 0.0)
    net, x, _y = tiny()
    seen: list[int] = []
    orig = ex.DatasetExplorer._adopt

    def spy(self, expl, method=None):
        seen.append(len(expl))
        return orig(self, expl, method)

    monkeypatch.setattr(ex.DatasetExplorer, "_adopt", spy)
    view = xw.explore(net, x, ("gradcam",), store=tmp_path / "s", batch_size=8, map_size=MAP, wait=True)
    view.close()
    assert seen[:3] == [8, 16, 24], seen


def test_cancel_keeps_the_finished_chunks(tmp_path, monkeypatch):
    import xaiwidgets.widgets.explorer as ex

    monkeypatch.setattr(ex, "META_INTERVAL", 0.0)
    net, x, _y = tiny()
    orig = ex.DatasetExplorer._adopt

    def cancel_after_first(self, expl, method=None):
        orig(self, expl, method)
        self.cancel()  # as the view's Cancel button: the run stops after its current chunk

    monkeypatch.setattr(ex.DatasetExplorer, "_adopt", cancel_after_first)
    view = xw.explore(net, x, ("gradcam",), store=tmp_path / "s", batch_size=8, map_size=MAP, wait=True)
    try:
        assert view.status == "cancelled"
        assert 8 <= len(view.explanations) < N and view.meta["n"] == len(view.explanations)
        assert len(xw.open_explanations(tmp_path / "s")) == len(view.explanations)
    finally:
        view.close()


def test_page_request_answers_with_the_stored_maps_and_thumbnails(run):
    _net, x, _y, expl = run
    with opened(run) as (_view, rec):
        done = rec.ask({"type": "page", "indices": [5, 0, 17], "method": "saliency"})
        assert done["status"] == "done"
        header, buffers = [(m, b) for m, b in rec.sent if m["type"] == "page"][-1]
        codes = np.frombuffer(buffers[0], np.uint8).reshape(header["maps"]["shape"])
        ranges = np.asarray(header["ranges"]).reshape(-1, 2)
        want = np.asarray(expl.maps("saliency")[[5, 0, 17]])
        for k in range(3):
            lo, hi = ranges[k]
            got = lo + codes[k] / 255.0 * (hi - lo)
            np.testing.assert_allclose(got, want[k], atol=(hi - lo) / 255 / 2 + 1e-6)
        thumbs = np.frombuffer(buffers[1], np.uint8).reshape(header["images"]["shape"])
        assert thumbs.shape == (3, SIDE, SIDE, 3)
        lo, hi = float(x[:16].min()), float(x[:16].max())  # the display's range: the first 16 items
        ref = (x[[5, 0, 17]].permute(0, 2, 3, 1).numpy() - lo) / (hi - lo)
        np.testing.assert_allclose(thumbs / 255.0, np.clip(ref, 0, 1), atol=1 / 255 + 1e-6)


def test_bad_requests_get_an_error_answer(run):
    with opened(run) as (view, rec):
        assert rec.ask({"type": "page", "indices": "all"})["status"] == "error"
        assert rec.ask({"type": "page", "indices": list(range(300))})["status"] == "error"
        gone = rec.ask({"type": "page", "indices": [3, 999]})
        assert gone["status"] == "error" and "item 999 is not in these explanations" in gone["error"]
        bad_method = rec.ask({"type": "page", "indices": [1], "method": "lime"})
        assert "no maps for 'lime'" in bad_method["error"]
        assert rec.ask({"type": "nonsense"})["status"] == "error"
        assert rec.ask({"type": "drill", "index": 999})["status"] == "error"
        assert "not in these explanations" in view.drill["error"]


def test_drill_down_opens_the_item_in_a_dashboard(run):
    _net, x, _y, _expl = run
    with opened(run) as (view, rec):
        assert rec.ask({"type": "drill", "index": 7})["status"] == "done"
        dash = view.dashboard
        assert isinstance(dash, xw.ExplainDashboard)
        torch.testing.assert_close(dash.inputs[0], x[7])
        assert view.drill == {"index": 7, "model_id": dash.model_id, "error": ""}
        assert dash.methods == ["gradcam", "saliency"]
        assert rec.ask({"type": "drill", "index": -1})["status"] == "done"
        assert view.dashboard is None and view.drill == {}


def test_drill_without_model_says_so(run):
    with opened(run, with_model=False) as (view, rec):
        assert not view.has_model and not view.has_images
        done = rec.ask({"type": "drill", "index": 2})
        assert done["status"] == "error" and "no model" in done["error"]
        header, buffers = view.page([1, 2])
        assert "images" not in header and len(buffers) == 1  # maps only: no data at hand


def test_spray_request_and_a_class_too_small(run):
    _net, _x, _y, expl = run
    with opened(run, spray={"embedding": "spectral"}) as (view, rec):
        counts = np.bincount(expl.predictions, minlength=3)
        big = int(np.argmax(counts))
        assert rec.ask({"type": "spray", "cls": big})["status"] == "done"
        s = view.spray
        assert s["state"] == "done" and sum(s["sizes"]) == counts[big]
        assert s["embedding"]["shape"] == [int(counts[big]), 2]
        np.testing.assert_array_equal(arrays(s, "indices"), np.flatnonzero(expl.predictions == big))
        acts = rec.ask({"type": "spray", "cls": big, "space": "activations"})
        assert acts["status"] == "done" and view.spray["space"] == "activations"
        assert view._spray_result.eigenvectors.shape[0] == counts[big]
        assert rec.ask({"type": "spray", "cls": big, "space": "pixels"})["status"] == "error"
        absent = int(np.argmin(counts)) if counts.min() < 3 else 7
        small = rec.ask({"type": "spray", "cls": absent})
        assert small["status"] == "error" and "at least 3" in small["error"]
        assert view.spray["state"] == "error" and "at least 3" in view.spray["error"]


def test_selection_export_and_fallback_are_bounded(run):
    with opened(run) as (view, _rec):
        view.selection = [9, 2, 2, 4]
        assert view.selection == [2, 4, 9]
        state = view._export_state()
        assert state["meta"]["n"] == 3 and state["preview"]["indices"] == [2, 4, 9]
        html = xw.to_html(view)
        assert "xw-export-0" in html and len(html) < 2_000_000
        assert view.meta["n"] == N  # the export did not touch the live view
        png = view._fallback_png()
        assert png and png[:4] == b"\x89PNG"


def test_bad_input_messages(run, tmp_path):
    net, x, _y, _expl = run
    only_gradcam = xw.explain_dataset(net, x[:8], ("gradcam",), store=tmp_path / "g", batch_size=8, map_size=MAP,
                                      progress=False)
    view = xw.explore(only_gradcam, method="saliency", wait=True)
    assert "no maps for 'saliency'" in view.message
    view.close()
    view = xw.explore(net, torch.zeros(0, 3, SIDE, SIDE), ("gradcam",))
    view.wait(30)
    try:
        assert view.status == "error" and "empty" in view.message
    finally:
        view.close()
    view = xw.explore(only_gradcam.select(np.zeros(len(only_gradcam), bool)), wait=True)
    assert "no items" in view.message
    view.close()


def test_outside_centre():
    m = np.zeros((3, 8, 8), np.float32)
    m[0, 0, 0] = 1  # a corner
    m[1, 3:5, 3:5] = 1  # the centre
    m[2] = 1  # uniform: the centre box (4x4 of 8x8) holds a quarter
    np.testing.assert_allclose(outside_centre(m), [1.0, 0.0, 0.75])
    assert np.isnan(outside_centre(-np.ones((1, 4, 4))))[0]


def test_close_stops_the_threads_and_frees_the_model(tmp_path):
    """Closing the explorer closes its drill-down dashboard too; no worker stays, the model is collected."""
    import gc
    import threading
    import time
    import weakref

    def workers() -> int:
        return sum(t.name.startswith("xaiwidgets-") and t.is_alive() for t in threading.enumerate())

    before = workers()
    net, x, y = tiny()
    ref = weakref.ref(net)
    view = xw.explore(net, x, ("gradcam",), labels=y, batch_size=8, map_size=MAP, wait=True)
    view.page([0, 1])
    view.open_item(1).wait()
    assert workers() == before + 2  # the explorer's and the dashboard's
    view.close()
    del net
    end = time.monotonic() + 10
    while (ref() is not None or workers() > before) and time.monotonic() < end:
        gc.collect()
        time.sleep(0.05)
    assert workers() == before and ref() is None
