"""ExplainDashboard usability (issue 17) against a fake anywidget model: the method picker (grouped,
unavailable methods disabled with the reason, nothing preselected), cancelled panels that say so and
offer Recompute, the progress bar outside a job, IG's completeness badge, the CAM layer list (block
outputs first, the full list behind a filter, no overflow), untruncated titles."""

from __future__ import annotations

import pytest
from harness import WidgetPage, heatmap_dict
from test_dashboard_static import dashboard_state, gaussian, panel, signed_map

from xaiwidgets.methods.registry import available, get_method
from xaiwidgets.widgets.methodinfo import method_info

pytestmark = pytest.mark.browser


def infos() -> list[dict]:
    """available_methods as the kernel sends them for a small CNN (no attention layers, a GAP head)."""
    import torch
    import torch.nn as nn

    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    image = torch.rand(1, 3, 16, 16)  # attention is found by what one forward on the input computes
    return [method_info(get_method(r["name"]), cnn, inputs=image) for r in available(modality="image")]


def state(**overrides) -> dict:
    s = dashboard_state("dataview")
    s.update(available_methods=infos(), clip_percentile=None, alpha="auto", smoothing=None, map_layout="overlay")
    s.update(overrides)
    return s


def test_picker_groups_disables_and_describes(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", state())
    page = wpage.page
    select = page.locator("select.xw-add-method")
    assert select.input_value() == ""  # nothing preselected (was ablationcam)
    assert page.locator("button.xw-add").is_disabled()
    groups = select.locator("optgroup").evaluate_all("els => els.map(e => e.label)")
    assert groups[:2] == ["Gradients (pixel level)", "CAM (layer maps)"]
    rollout = select.locator('option[value="attention_rollout"]')
    assert rollout.is_disabled() and "attention" in rollout.inner_text()
    assert select.locator('option[value="exact_shapley"]').is_disabled()
    assert select.locator('option[value="gradcam"]').is_disabled()  # shown already
    assert "1 forward per channel" in select.locator('option[value="scorecam"]').inner_text()
    select.select_option("smoothgrad")
    assert "noisy copies" in page.locator(".xw-method-desc").inner_text()
    assert "cost: n_samples backwards" in page.locator(".xw-method-desc").inner_text()
    page.locator("button.xw-add").click()
    sent = wpage.sent()[-1]
    assert sent["type"] == "set_methods" and sent["methods"][-1] == "smoothgrad"
    assert select.input_value() == ""
    wpage.screenshot("dashboard-picker.png")


def test_cancelled_panel_says_so_and_recomputes(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", state())
    page = wpage.page
    occl = page.locator('.xw-panel[data-method="occlusion"]')
    wpage.kernel_set("status", "running")
    wpage.kernel_set("progress", 0.7)
    assert occl.get_attribute("data-state") == "running"
    page.locator("button.xw-cancel").click()
    # the kernel stops: the panel goes back to pending, the status says cancelled, progress stays at 0.7
    panels = state()["panels"]
    panels[2] = panel("occlusion", "pending")
    wpage.kernel_set("panels", panels)
    wpage.kernel_set("status", "cancelled")
    assert occl.get_attribute("data-state") == "cancelled"
    assert "cancelled" in occl.locator(".xw-pending").inner_text()
    assert occl.locator("button.xw-recompute").is_visible()
    # outside a job the bar shows the panels that have a result (2 of 3), not the job's stale 70%
    assert float(page.locator(".xw-progress").get_attribute("aria-valuenow")) == pytest.approx(2 / 3)
    # a later job for another panel ends "done": the cancelled panel still says so
    wpage.kernel_set("status", "running")
    assert occl.get_attribute("data-state") == "pending"
    wpage.kernel_set("status", "done")
    assert occl.get_attribute("data-state") == "cancelled"
    wpage.screenshot("dashboard-cancelled.png")
    occl.locator("button.xw-recompute").click()
    sent = wpage.sent()[-1]
    assert sent["type"] == "set_params" and sent["method"] == "occlusion" and sent["params"] == {}
    assert occl.get_attribute("data-state") == "pending"
    panels[2] = panel("occlusion", "done", heatmap_dict(gaussian(0.5, 0.5, size=8)), seconds=1.2)
    wpage.kernel_set("panels", panels)
    assert occl.get_attribute("data-state") == "done"
    assert float(page.locator(".xw-progress").get_attribute("aria-valuenow")) == pytest.approx(1.0)


def test_ig_gap_badge(wpage: WidgetPage) -> None:
    wpage.mount("dashboard", state())
    page = wpage.page
    badge = page.locator('.xw-panel[data-method="integrated_gradients"] .xw-gap-badge')
    assert badge.is_hidden()
    panels = state()["panels"]
    ig = panel("integrated_gradients", "done", heatmap_dict(signed_map()), signed=True, seconds=3.0)
    panels[0] = {**ig, "notes": {"completeness_gap": 0.004, "tolerance": 0.01, "n_steps": 65}}
    wpage.kernel_set("panels", panels)
    assert badge.is_visible() and badge.inner_text() == "gap 0.40%"
    assert "xw-bad" not in badge.get_attribute("class") and "65 steps" in badge.get_attribute("title")
    panels[0] = {**ig, "notes": {"completeness_gap": 0.117, "tolerance": 0.01}}
    wpage.kernel_set("panels", panels)
    assert badge.inner_text() == "gap 11.7%" and "xw-bad" in badge.get_attribute("class")
    assert "not converged" in badge.get_attribute("title")
    wpage.screenshot("dashboard-ig-gap.png")


def test_layer_list_and_titles_fit(wpage: WidgetPage) -> None:
    raw = [f"_blocks.{i}.{leaf}" for i in range(16) for leaf in ("_expand_conv", "static_padding", "_swish")]
    blocks = [f"_blocks.{i}" for i in range(16)]
    methods = ["input_x_gradient", "integrated_gradients", "gradcam"]
    panels = [panel("input_x_gradient", "done", heatmap_dict(signed_map()), signed=True),
              panel("integrated_gradients", "done", heatmap_dict(signed_map()), signed=True),
              {**panel("gradcam", "done", heatmap_dict(gaussian(0.4, 0.4, size=7))),
               "layer": "input of _avg_pooling_with_a_very_long_module_name"}]
    wpage.page.evaluate("document.querySelector('#root').style.cssText = 'display:block;width:640px'")
    wpage.mount("dashboard", state(methods=methods, panels=panels, layers=blocks + raw, cam_layers=blocks))
    page = wpage.page
    layer = page.locator('.xw-panel[data-method="gradcam"] select.xw-layer')
    assert layer.locator("option").count() == 1 + len(blocks)
    page.locator('.xw-panel[data-method="gradcam"] input.xw-layer-all').check()
    assert layer.locator("option").count() == 1 + len(blocks) + len(raw)
    for method in methods:
        p = page.locator(f'.xw-panel[data-method="{method}"]')
        assert p.locator(".xw-panel-title").evaluate("e => e.scrollWidth <= e.clientWidth + 1"), method
        # nothing in a panel sticks out of it
        assert p.evaluate("e => { const r = e.getBoundingClientRect(); return Array.from(e.querySelectorAll('*'))"
                          ".every(c => c.getBoundingClientRect().right <= r.right + 1); }"), method
    assert page.evaluate("() => { const d = document.querySelector('.xw-dashboard');"
                         " return d.scrollWidth <= d.clientWidth + 1; }")
    wpage.screenshot("dashboard-layers-narrow.png")


@pytest.mark.parametrize("width", [700])
def test_dashboard_fits_a_700px_window(wpage: WidgetPage, width: int) -> None:
    page = wpage.page
    page.set_viewport_size({"width": width, "height": 900})
    page.evaluate(f"document.querySelector('#root').style.cssText = 'display:block;width:{width - 140}px'")
    wpage.mount("dashboard", state())
    assert page.evaluate("() => { const d = document.querySelector('.xw-dashboard');"
                         " return d.scrollWidth <= d.clientWidth + 1; }")
    wpage.screenshot("dashboard-700.png")
