"""TabularPlots (SHAP's plot family) in headless Chromium against a fake anywidget model (no Jupyter).

Oracle: ``TabularPlots.plot_data`` (shap's rules applied to the arrays). Every waterfall bar is read back
from the SVG (polygon ends against the axis ticks), every beeswarm / dependence dot and heatmap cell from the
canvas' drawn points (``xwPoints``) and the canvas pixels under them, the cohort bars and decision paths from
their SVG. Hover texts and the linked selection are checked too.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage
from test_text_views_static import state_of

from xaiwidgets.widgets.explanationtable import from_arrays
from xaiwidgets.widgets.shapplots import VIEWS, TabularPlots

pytestmark = pytest.mark.browser

N, D = 60, 12


def make_plots(views: list[str], **kwargs) -> TabularPlots:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(N, D)) * np.arange(1, D + 1)
    values = 0.05 * data * rng.uniform(0.2, 1.0, size=D)
    values[:, 1] += 0.1 * data[:, 1] * data[:, 4]  # feature 1 interacts with feature 4
    table = from_arrays(
        values, 0.37, features=[f"feature {j}" for j in range(D)], feature_values=data, title="synthetic"
    )
    return TabularPlots(table, views=views, **kwargs)


AXIS = """(sel) => Array.from(document.querySelectorAll(sel + ' .xw-sp-tick'))
  .map(t => [Number(t.dataset.value), Number(t.getAttribute('x1'))])"""

WATERFALL = """() => Array.from(document.querySelectorAll('polygon.xw-sp-bar')).map(p => {
  const xs = p.getAttribute('points').trim().split(/\\s+/).map(s => Number(s.split(',')[0]));
  return { feature: Number(p.dataset.feature), value: Number(p.dataset.value),
           lo: Math.min(...xs), hi: Math.max(...xs) };
})"""

POINTS = """(sel) => { const p = document.querySelector(sel).xwPoints;
  return { x: Array.from(p.x), y: Array.from(p.y), row: Array.from(p.row), feature: Array.from(p.feature),
           value: Array.from(p.value) }; }"""


def axis_map(wpage: WidgetPage, sel: str) -> tuple[float, float]:
    """(value per px, value at x = 0) from the first and last tick of an axis."""
    ticks = wpage.page.evaluate(AXIS, sel)
    (v0, x0), (v1, x1) = ticks[0], ticks[-1]
    per_px = (v1 - v0) / (x1 - x0)
    return per_px, v0 - x0 * per_px


def test_waterfall_bars_walk_from_base_to_fx(wpage: WidgetPage) -> None:
    plots = make_plots(["waterfall"], row=5)
    wpage.mount("shapplots", state_of(plots))
    page = wpage.page
    assert page.locator(".xw-shapplots").get_attribute("data-state") == "ok"
    oracle = plots.plot_data("waterfall")
    per_px, at0 = axis_map(wpage, "svg.xw-sp-waterfall")
    bars = page.evaluate(WATERFALL)
    assert [b["feature"] for b in bars] == [int(j) for j in oracle["order"]] + [-1]
    assert len(oracle["folded"]) == D - 9
    for b, v, s, e in zip(bars, oracle["value"], oracle["start"], oracle["end"]):
        assert b["value"] == pytest.approx(v, rel=1e-5, abs=1e-6)
        # drawn extent (px -> value) equals [start, end]; 0.5 px of slack for the coordinates' rounding
        assert at0 + b["lo"] * per_px == pytest.approx(min(s, e), abs=0.5 * abs(per_px))
        assert at0 + b["hi"] * per_px == pytest.approx(max(s, e), abs=0.5 * abs(per_px))
    # additivity: the bottom bar starts at the base value, the top one ends at f(x)
    assert oracle["start"][-1] == pytest.approx(0.37) and oracle["end"][0] == pytest.approx(oracle["output"], abs=1e-5)
    assert float(page.locator(".xw-sp-output").get_attribute("data-value")) == pytest.approx(oracle["output"], abs=1e-5)
    assert page.locator(".xw-sp-gap").count() == 0
    page.locator(f'polygon.xw-sp-bar[data-feature="{oracle["order"][0]}"]').hover()
    tip = page.locator(".xw-tooltip").inner_text()
    assert f"feature {oracle['order'][0]}" in tip and "contribution" in tip
    wpage.screenshot("shapplots_waterfall.png")


def test_beeswarm_dots_are_the_attributions_coloured_by_value(wpage: WidgetPage) -> None:
    plots = make_plots(["beeswarm"])
    wpage.mount("shapplots", state_of(plots))
    page = wpage.page
    oracle = plots.plot_data("beeswarm")
    labels = page.evaluate(
        "() => Array.from(document.querySelectorAll('.xw-sp-beeswarm + svg .xw-sp-label')).map(t => t.textContent)"
    )
    assert labels == oracle["labels"]
    pts = page.evaluate(POINTS, "canvas.xw-sp-beeswarm")
    per_px, at0 = axis_map(wpage, ".xw-sp-panel[data-kind=beeswarm]")
    values = np.array(pts["value"]).reshape(len(labels), N)
    np.testing.assert_allclose(values, oracle["x"], rtol=1e-5, atol=1e-6)
    xs = at0 + np.array(pts["x"]).reshape(len(labels), N) * per_px
    np.testing.assert_allclose(xs, oracle["x"], atol=0.01 * abs(per_px))
    # the pixel under a dot has its feature-value colour: high values red, low values blue
    row0 = oracle["color"][0]
    lo, hi = oracle["color_range"][0]
    for i in (int(np.argmax(row0)), int(np.argmin(row0))):
        k = i  # first summary row
        r, g, b, _ = wpage.pixel("canvas.xw-sp-beeswarm", round(pts["x"][k]), round(pts["y"][k]))
        assert (r > b) == (row0[i] >= hi), (r, g, b, row0[i], lo, hi)
    # hover the dot of the largest attribution of the top feature: its row and value
    k = int(np.argmax(oracle["x"][0]))
    box = page.locator("canvas.xw-sp-beeswarm").bounding_box()
    page.mouse.move(box["x"] + pts["x"][k], box["y"] + pts["y"][k])
    tip = page.locator(".xw-tooltip").inner_text()
    assert f"row {k}" in tip and oracle["labels"][0] in tip, tip
    wpage.screenshot("shapplots_beeswarm.png")


def test_linked_selection_and_cohorts(wpage: WidgetPage) -> None:
    mask = np.arange(N) % 3 == 0
    plots = make_plots(["beeswarm", "heatmap", "waterfall", "bar", "dependence", "decision"], cohorts=mask)
    wpage.mount("shapplots", state_of(plots))
    page = wpage.page
    assert page.locator(".xw-sp-panel").count() == 6
    # bar: every cohort bar equals mean |attribution| of its cohort
    bar = plots.plot_data("bar")
    drawn = page.evaluate(
        "() => Array.from(document.querySelectorAll('rect.xw-sp-cbar')).map(r => Number(r.dataset.value))"
    )
    np.testing.assert_allclose(np.array(drawn).reshape(bar["bars"].T.shape).T, bar["bars"], rtol=1e-5)
    assert bar["sizes"].tolist() == [int(mask.sum()), int((~mask).sum())]
    # heatmap: columns in the clustering order, cells = attributions
    heat = plots.plot_data("heatmap")
    order = page.locator("canvas.xw-sp-heatmap").get_attribute("data-order")
    assert [int(v) for v in order.split(",")] == heat["rows"].tolist()
    cells = page.evaluate(POINTS, "canvas.xw-sp-heatmap")
    np.testing.assert_allclose(
        np.array(cells["value"]).reshape(heat["matrix"].shape), heat["matrix"], rtol=1e-5, atol=1e-6
    )
    # dependence: shap's interaction choice, dots = (feature value, attribution)
    dep = plots.plot_data("dependence")
    canvas = page.locator("canvas.xw-sp-dependence")
    assert int(canvas.get_attribute("data-feature")) == dep["feature"]
    assert int(canvas.get_attribute("data-color-feature")) == dep["color_feature"]
    np.testing.assert_allclose(
        page.evaluate(POINTS, "canvas.xw-sp-dependence")["value"], dep["y"], rtol=1e-5, atol=1e-6
    )
    # decision: every path's points are the cumulative sums
    dec = plots.plot_data("decision")
    assert page.locator("polyline.xw-sp-path").count() == N
    per_px, at0 = axis_map(wpage, "svg.xw-sp-decision")
    lines = page.evaluate(
        "() => Array.from(document.querySelectorAll('polyline.xw-sp-path'))"
        ".map(p => [Number(p.dataset.row), p.getAttribute('points')])"
    )
    for row, points in lines:
        xs = np.array([float(q.split(",")[0]) for q in points.split()])
        np.testing.assert_allclose(at0 + xs * per_px, dec["paths"][row], atol=0.01 * abs(per_px))
    # click a beeswarm dot: the row is selected everywhere and its waterfall opens
    pts = page.evaluate(POINTS, "canvas.xw-sp-beeswarm")
    k = int(np.argmin(np.array(pts["value"][:N])))
    box = page.locator("canvas.xw-sp-beeswarm").bounding_box()
    page.mouse.click(box["x"] + pts["x"][k], box["y"] + pts["y"][k])
    assert wpage.state("selection") == [k] and wpage.state("row") == k
    assert "selection" in wpage.saved() and "row" in wpage.saved()
    assert page.locator("svg.xw-sp-waterfall").get_attribute("data-row") == str(k)
    assert page.locator(f'rect.xw-sp-colsel[data-row="{k}"]').count() == 1
    assert page.locator(f'polyline.xw-sp-path-selected[data-row="{k}"]').count() == 1
    assert len(dec["paths"]) == N
    # a brush over the heatmap's first columns selects those rows
    hb = page.locator("canvas.xw-sp-heatmap").bounding_box()
    cells_x = np.array(cells["x"][:N])
    y = cells["y"][0]
    page.mouse.move(hb["x"] + cells_x[0] - 1, hb["y"] + y)
    page.mouse.down()
    page.mouse.move(hb["x"] + cells_x[4] + 1, hb["y"] + y + 20, steps=4)
    page.mouse.up()
    assert wpage.state("selection") == sorted(heat["rows"][:5].tolist())
    wpage.screenshot("shapplots_linked.png")
    page.evaluate("document.body.classList.add('dark')")
    wpage.kernel_set("row", int(heat["rows"][0]))
    wpage.screenshot("shapplots_linked-dark.png")
    assert wpage.unmount(0) == 0


def test_exported_page_links_views_without_a_kernel(chromium_browser, tmp_path) -> None:
    """``xw.to_html``: the plots render from ``file://`` offline, and a click on a beeswarm dot opens that
    row's waterfall (laid out in the page: no kernel behind it)."""
    from test_html_export import OfflinePage

    import xaiwidgets as xw

    plots = make_plots(["beeswarm", "waterfall"], row=0)
    path = tmp_path / "plots.html"
    xw.to_html(plots, path, theme="dark")
    op = OfflinePage(chromium_browser)
    try:
        op.open(path)
        page = op.page
        assert page.locator(".xw-shapplots").get_attribute("data-state") == "ok"
        pts = page.evaluate(POINTS, "canvas.xw-sp-beeswarm")
        k = int(np.argmax(np.array(pts["value"][:N])))
        box = page.locator("canvas.xw-sp-beeswarm").bounding_box()
        page.mouse.click(box["x"] + pts["x"][k], box["y"] + pts["y"][k])
        assert page.locator("svg.xw-sp-waterfall").get_attribute("data-row") == str(k)
        ends = page.evaluate(
            "() => Array.from(document.querySelectorAll('polygon.xw-sp-bar')).map(p => Number(p.dataset.end))"
        )
        assert ends[0] == pytest.approx(plots.plot_data("waterfall", row=k)["end"][0], abs=1e-5)
        op.assert_clean(path)
    finally:
        op.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_both_themes_are_legible(wpage: WidgetPage, theme: str) -> None:
    """Every text of the six views reaches WCAG AA contrast (4.5:1) in JupyterLab's light and dark themes."""
    from test_themes_static import check_legible, set_theme

    plots = make_plots(list(VIEWS), cohorts=np.arange(N) % 2 == 0)
    set_theme(wpage, theme)
    wpage.mount("shapplots", state_of(plots))
    check_legible(wpage, ".xw-shapplots", theme)
    wpage.screenshot(f"shapplots_all_{theme}.png")


def test_waterfall_marks_a_completeness_gap(wpage: WidgetPage) -> None:
    """When base + sum misses the output (an IG completeness gap), the bars end at base + sum and the gap is
    written out, never hidden."""
    values = np.array([[0.3, -0.1, 0.05]])
    table = from_arrays(values, 0.2, features=list("abc"), output_value=[0.6], title="integrated_gradients")
    wpage.mount("shapplots", state_of(TabularPlots(table, views=["waterfall"])))
    gap = wpage.page.locator(".xw-sp-gap")
    assert float(gap.get_attribute("data-gap")) == pytest.approx(0.6 - 0.45, abs=1e-6)
    assert "miss the output by 0.15" in gap.inner_text()
