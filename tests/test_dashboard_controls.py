"""ExplainDashboard controls (kernel side): set_methods, set_params (CAM layer), list_layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.widgets.dashboard import ExplainDashboard


@pytest.fixture
def dash(resnet18) -> ExplainDashboard:
    classifier = xw.ImageClassifier(resnet18, labels=[str(i) for i in range(1000)])
    torch.manual_seed(0)
    dashboard = xw.explain(classifier, torch.rand(1, 3, 64, 64), methods=["saliency"], wait=True)
    sent: list[dict] = []
    dashboard.send = sent.append  # capture kernel -> browser messages
    dashboard.sent = sent
    return dashboard


def request(dash: ExplainDashboard, msg: dict) -> dict:
    """Send ``msg`` as the browser would, wait for the worker, return the ``done`` message for its id."""
    dash._on_message(dash, msg, [])
    assert dash.wait(120)
    done = [m for m in dash.sent if m.get("id") == msg["id"] and m["type"] == "done"]
    assert len(done) == 1, dash.sent
    return done[0]


def panel(dash: ExplainDashboard, method: str) -> dict:
    return next(p for p in dash.panels if p["method"] == method)


def test_available_methods_are_image_methods(dash) -> None:
    names = {m["name"]: m["family"] for m in dash.available_methods}
    assert names["gradcam"] == "cam" and names["saliency"] == "gradient" and names["occlusion"] == "perturbation"
    assert all(set(m) == {"name", "family"} for m in dash.available_methods)
    assert dash.layers == [] and dash.method_params == {}


def test_set_methods_adds_and_removes_without_recomputing(dash) -> None:
    saliency = dash.panels[0]
    done = request(dash, {"type": "set_methods", "id": "a", "methods": ["saliency", "gradcam"]})
    assert done["status"] == "done" and {"type": "accepted", "id": "a"} in dash.sent
    assert dash.methods == ["saliency", "gradcam"]
    assert [p["method"] for p in dash.panels] == ["saliency", "gradcam"]
    assert dash.panels[0] is saliency or dash.panels[0] == saliency  # cached panel kept, not recomputed
    cam = panel(dash, "gradcam")
    assert cam["state"] == "done" and cam["layer"] == "layer4"  # the automatic layer, resolved
    assert "layer4" in dash.layers  # a CAM panel fills the layer list

    done = request(dash, {"type": "set_methods", "id": "b", "methods": ["gradcam"]})
    assert done["status"] == "done"
    assert dash.methods == ["gradcam"] and [p["method"] for p in dash.panels] == ["gradcam"]
    assert dash.result("saliency") is not None  # cache stays

    for bad in (["nope"], "gradcam", [1]):
        done = request(dash, {"type": "set_methods", "id": f"bad-{bad}", "methods": bad})
        assert done["status"] == "error" and done["error"]
    assert dash.methods == ["gradcam"]


def test_set_params_layer_recomputes_one_panel(dash) -> None:
    request(dash, {"type": "set_methods", "id": "a", "methods": ["saliency", "gradcam"]})
    auto = dash.result("gradcam").copy()
    saliency = panel(dash, "saliency")
    done = request(dash, {"type": "set_params", "id": "p", "method": "gradcam", "params": {"layer": "layer3"}})
    assert done["status"] == "done"
    assert dash.method_params == {"gradcam": {"layer": "layer3"}}
    cam = panel(dash, "gradcam")
    assert cam["state"] == "done" and cam["layer"] == "layer3"
    assert panel(dash, "saliency") == saliency
    assert not np.allclose(dash.result("gradcam"), auto)

    # back to automatic
    request(dash, {"type": "set_params", "id": "q", "method": "gradcam", "params": {"layer": None}})
    assert dash.method_params == {} and panel(dash, "gradcam")["layer"] == "layer4"
    np.testing.assert_allclose(dash.result("gradcam"), auto, rtol=1e-5, atol=1e-6)

    # a bad layer is an error in that panel only
    request(dash, {"type": "set_params", "id": "r", "method": "gradcam", "params": {"layer": "nolayer"}})
    cam = panel(dash, "gradcam")
    assert cam["state"] == "error" and "nolayer" in cam["error"]
    assert panel(dash, "saliency")["state"] == "done"

    done = request(dash, {"type": "set_params", "id": "s", "method": "occlusion", "params": {"layer": "x"}})
    assert done["status"] == "error"


def test_list_layers(dash) -> None:
    done = request(dash, {"type": "list_layers", "id": "l"})
    assert done["status"] == "done"
    assert "layer4" in dash.layers and "layer1.0.conv1" in dash.layers
    assert "fc" not in dash.layers and "avgpool" not in dash.layers
    assert request(dash, {"type": "list_layers", "id": "l2"})["status"] == "done"


def test_method_params_sync_is_json_safe(dash) -> None:
    dash.method_params = {"integrated_gradients": {"baseline": torch.zeros(1), "steps": 8}}
    state = dash.get_state("method_params")["method_params"]
    assert state["integrated_gradients"]["steps"] == 8
    assert isinstance(state["integrated_gradients"]["baseline"], str)
