"""``xw.to_html`` without a browser: the embedded state round-trips, buffers included; and displaying a widget
leaves the notebook's matplotlib backend alone (the PNG fallback must not call ``matplotlib.use``)."""

from __future__ import annotations

import base64
import json

import matplotlib
import numpy as np
import pytest

import xaiwidgets as xw
from xaiwidgets.widgets.base import STATIC
from xaiwidgets.widgets.export import to_html


def embedded(text: str, element_id: str):
    return json.loads(text.split(f'id="{element_id}">', 1)[1].split("</script>", 1)[0])


def test_state_and_buffers_round_trip() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    values = rng.normal(size=(6, 5)).astype(np.float32)
    view = xw.HeatmapView.from_arrays(image, values, title="t", opacity=0.3)
    text = to_html(view)
    [item] = embedded(text, "xw-export-state")
    state, buffers = item["state"], {tuple(b["path"]): base64.b64decode(b["data"]) for b in item["buffers"]}
    assert set(buffers) == {("image", "data"), ("heatmap", "data")}
    assert buffers[("image", "data")] == image.tobytes()
    assert buffers[("heatmap", "data")] == bytes(view.heatmap["data"])
    assert state["heatmap"]["data"] is None and state["heatmap"]["shape"] == [6, 5]
    assert state["heatmap"]["vmax"] == pytest.approx(float(np.abs(values).max()))
    assert state["opacity"] == 0.3 and state["title"] == "t"
    assert "layout" not in state and "_esm" not in state, "ipywidgets internals and the module stay out of the state"
    [source] = embedded(text, "xw-export-esm")
    assert source == (STATIC / "heatmap.js").read_text("utf-8")
    assert "<noscript><img" in text, "a static picture for browsers without JavaScript"


def test_several_widgets_share_one_module(tmp_path) -> None:
    views = [xw.HeatmapView.from_arrays(None, np.eye(4) * k) for k in (1, 2)]
    path = tmp_path / "two.html"
    text = to_html(views, path, theme="dark")
    assert path.read_text("utf-8") == text
    items = embedded(text, "xw-export-state")
    assert [i["esm"] for i in items] == [0, 0] and len(embedded(text, "xw-export-esm")) == 1
    assert 'data-jp-theme-light="false"' in text


def test_non_finite_numbers_become_null() -> None:
    view = xw.HeatmapView.from_arrays(None, np.ones((3, 3)))
    view.heatmap = {**view.heatmap, "vmin": float("nan")}
    [item] = embedded(to_html(view), "xw-export-state")
    assert item["state"]["heatmap"]["vmin"] is None


def test_displaying_a_widget_keeps_the_matplotlib_backend() -> None:
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for the notebook's inline backend
    try:
        view = xw.HeatmapView.from_arrays(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8)))
        data, _ = view._repr_mimebundle_()
        assert "image/png" in data
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
