"""Widgets (kernel side): wire format, HeatmapView, the explain dashboard's jobs and requests."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.widgets.buffers import array_payload, dequantize, heatmap_payload, image_payload, quantize


def test_quantize_round_trip() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(31, 17)).astype(np.float32)
    p = heatmap_payload(values, signed=True)
    assert p["dtype"] == "uint8" and p["shape"] == [31, 17]
    assert p["vmin"] == -p["vmax"] == -float(np.abs(values).max())
    q = np.frombuffer(p["data"], dtype=np.uint8).reshape(31, 17)
    step = (p["vmax"] - p["vmin"]) / 255
    assert np.abs(dequantize(q, p["vmin"], p["vmax"]) - values).max() <= step / 2 + 1e-6
    assert not quantize(np.ones((3, 3)), 1.0, 1.0).any()  # constant maps quantise to zeros


def test_payloads_are_bytes_not_lists() -> None:
    p = array_payload(torch.arange(6, dtype=torch.float64).view(2, 3))
    assert isinstance(p["data"], memoryview) and p["dtype"] == "float32"
    assert np.frombuffer(p["data"], dtype=np.float32).tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image_payload(np.zeros((4, 4)))


def test_heatmap_view_from_attribution(tiny_cnn) -> None:
    x = torch.rand(2, 3, 12, 12)
    a = xw.attribute(tiny_cnn, x, method="input_x_gradient", target=1)
    view = a.show(index=1)
    assert view.heatmap["shape"] == [12, 12] and view.image["shape"] == [12, 12, 3]
    assert "input_x_gradient" in view.title and view.signed
    data, _meta = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    with pytest.raises(IndexError, match="out of range"):
        a.show(index=2)


def test_explain_dashboard_computes_and_recomputes(effnet) -> None:
    image = xw.demo.load_image("chelsea")
    dash = xw.explain(effnet, image, methods=["saliency", "input_x_gradient"], wait=True)
    assert [p["label"] for p in dash.predictions][:1] == ["Egyptian cat"]
    assert dash.target == 285 and dash.status == "done" and dash.progress == 1.0
    assert [p["state"] for p in dash.panels] == ["done", "done"]
    first = dash.result("saliency")
    assert first is not None and first.shape == (224, 224)
    expected = xw.attribute(effnet, effnet.preprocess(image), method="saliency", target=285).heatmap()[0]
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-7)

    sent = []
    dash.send = sent.append  # capture kernel -> browser messages
    dash._on_message(dash, {"type": "compute", "id": "r1", "target": 281}, [])
    assert dash.wait(60)
    assert dash.target == 281
    assert sent[0] == {"type": "accepted", "id": "r1"}
    assert sent[-1] == {"type": "done", "id": "r1", "status": "done"}
    assert not np.array_equal(dash.result("saliency", 281), first)
    assert all(p["target"] == 281 and p["state"] == "done" for p in dash.panels)

    data, _ = dash._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")


def test_dashboard_cancel_and_errors(effnet) -> None:
    image = xw.demo.load_image("coffee")
    with pytest.raises(Exception, match="unknown method"):
        xw.explain(effnet, image, methods=["nope"])
    dash = xw.explain(effnet, image, methods=["saliency"], params={"saliency": {"bogus": 1}}, wait=True)
    assert dash.panels[0]["state"] == "error" and "does not take 'bogus'" in dash.panels[0]["error"]
    dash = xw.explain(effnet, image, methods=["saliency", "input_x_gradient"])
    dash.cancel()
    assert dash.wait(60)
    assert dash.status in ("done", "cancelled")


def test_explain_accepts_module_and_tensor(tiny_cnn) -> None:
    dash = xw.explain(tiny_cnn, torch.rand(3, 16, 16), methods=["gradient"], labels=list("abcd"), wait=True)
    assert {p["label"] for p in dash.predictions} <= set("abcd")
    assert dash.panels[0]["state"] == "done"
