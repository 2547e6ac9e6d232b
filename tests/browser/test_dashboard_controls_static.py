"""ExplainDashboard method and layer pickers in headless Chromium against a fake anywidget model.

The view only asks (set_methods, set_params, list_layers); the kernel changes the traits.
"""

from __future__ import annotations

import pytest
from harness import WidgetPage, heatmap_dict
from test_dashboard_static import dashboard_state, gaussian, panel

pytestmark = pytest.mark.browser

AVAILABLE = [
    {"name": "gradcam", "family": "cam", "cam": True},
    {"name": "scorecam", "family": "cam", "cam": True},
    {"name": "integrated_gradients", "family": "gradient"},
    {"name": "saliency", "family": "gradient"},
    {"name": "occlusion", "family": "perturbation"},
]
LAYERS = ["layer1", "layer2", "layer3", "layer4"]


def controls_state() -> dict:
    state = dashboard_state("dataview")
    state["panels"][1]["layer"] = "layer4"  # the resolved automatic layer
    state.update(available_methods=AVAILABLE, layers=LAYERS, method_params={})
    return state


def sent_of(wpage: WidgetPage, kind: str) -> list[dict]:
    return [m for m in wpage.sent() if m["type"] == kind]


def test_method_picker_add_and_remove(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", controls_state())
    page = wpage.page
    select = page.locator("select.xw-add-method")
    groups = select.locator("optgroup").evaluate_all("els => els.map(e => e.label)")
    # families in a fixed order (gradients first), a placeholder first: nothing is preselected
    assert groups == ["Gradients (pixel level)", "CAM (layer maps)", "Perturbation (model-agnostic)"]
    options = select.locator("option").evaluate_all("els => els.map(e => [e.value, e.disabled])")
    assert options == [["", False], ["integrated_gradients", True], ["saliency", False], ["gradcam", True],
                       ["scorecam", False], ["occlusion", True]]
    assert select.input_value() == "" and page.locator("button.xw-add").is_disabled()

    select.select_option("saliency")
    page.locator("button.xw-add").click()
    (msg,) = sent_of(wpage, "set_methods")
    assert msg["methods"] == ["integrated_gradients", "gradcam", "occlusion", "saliency"]
    assert isinstance(msg["id"], str) and msg["id"]
    assert wpage.state("methods") == ["integrated_gradients", "gradcam", "occlusion"]  # the kernel decides

    # the kernel accepts: a new pending panel appears, the option is disabled
    wpage.kernel_set("methods", msg["methods"])
    wpage.kernel_set("panels", controls_state()["panels"] + [panel("saliency", "running")])
    assert page.locator('.xw-panel[data-method="saliency"]').get_attribute("data-state") == "running"
    assert select.locator('option[value="saliency"]').evaluate("e => e.disabled")

    # remove asks for the list without that method
    page.locator('.xw-panel[data-method="gradcam"] button.xw-remove').click()
    msg = sent_of(wpage, "set_methods")[-1]
    assert msg["methods"] == ["integrated_gradients", "occlusion", "saliency"]

    # a refusal shows next to the picker
    wpage.emit_custom({"type": "done", "id": msg["id"], "status": "error", "error": "unknown method 'x'"})
    page.wait_for_function("() => document.querySelector('.xw-picker-error').textContent.includes('unknown')")
    assert wpage.unmount() == 0


def test_layer_picker(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", controls_state())
    page = wpage.page
    # only CAM panels get a layer menu
    assert page.locator("select.xw-layer").count() == 3  # one per panel, hidden when not a CAM
    assert page.locator('.xw-panel[data-method="gradcam"] select.xw-layer').is_visible()
    assert not page.locator('.xw-panel[data-method="occlusion"] select.xw-layer').is_visible()
    layer = page.locator('.xw-panel[data-method="gradcam"] select.xw-layer')
    options = layer.locator("option").evaluate_all("els => els.map(e => [e.value, e.textContent])")
    assert options == [["", "auto (layer4)"]] + [[n, n] for n in LAYERS]
    assert layer.input_value() == ""
    assert not sent_of(wpage, "list_layers")  # `layers` already known

    layer.select_option("layer2")
    (msg,) = sent_of(wpage, "set_params")
    assert msg["method"] == "gradcam" and msg["params"] == {"layer": "layer2"} and msg["id"]

    # the kernel records the choice and recomputes that panel
    wpage.kernel_set("method_params", {"gradcam": {"layer": "layer2"}})
    panels = controls_state()["panels"]
    panels[1] = panel("gradcam", "done", heatmap_dict(gaussian(0.8, 0.2, size=14)), seconds=0.03)
    panels[1]["layer"] = "layer2"
    wpage.kernel_set("panels", panels)
    assert layer.input_value() == "layer2"
    assert layer.locator("option").first.inner_text() == "auto"

    # back to auto sends layer: null
    layer.select_option("")
    assert sent_of(wpage, "set_params")[-1]["params"] == {"layer": None}

    # a bad layer comes back as the panel's error
    panels[1] = panel("gradcam", "error", error="LayerError: no layer 'nolayer' in ResNet")
    wpage.kernel_set("panels", panels)
    cam = page.locator('.xw-panel[data-method="gradcam"]')
    assert cam.get_attribute("data-state") == "error" and "nolayer" in cam.locator(".xw-panel-error").inner_text()
    assert cam.locator("select.xw-layer").is_visible()  # still there to pick another


def test_layers_requested_when_unknown(wpage: WidgetPage) -> None:
    state = controls_state()
    state["layers"] = []
    wpage.mount("dashboard", state)
    (msg,) = sent_of(wpage, "list_layers")
    assert msg["id"]
    wpage.kernel_set("layers", ["features.0", "features.3"])
    values = wpage.page.locator('.xw-panel[data-method="gradcam"] select.xw-layer option').evaluate_all(
        "els => els.map(e => e.value)"
    )
    assert values == ["", "features.0", "features.3"]
    assert len(sent_of(wpage, "list_layers")) == 1


def test_screenshot(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", controls_state())
    wpage.page.locator("select.xw-add-method").select_option("saliency")
    wpage.screenshot("dashboard_controls.png")
