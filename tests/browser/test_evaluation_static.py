"""EvaluationView in headless Chromium against a fake anywidget model (no Jupyter).

The kernel side is real: ``xw.evaluate`` on the demo shapes CNN (64x64; saliency and Grad-CAM on two
images, cascading randomisation of all 9 layers, a SmoothGrad noise sweep) fills the traits, which are
handed to the built view. Checked: both curve plots and the leaderboard render; hovering a curve point
shows exactly the perturbed input of that step (pixels equal to ``PerturbationCurve.display(i, k)``, also
for the second input); a header click sorts the leaderboard best first and a second click reverses it; the
sanity strip shows a map and the Spearman correlation per randomisation step; the sweep plot renders;
an ``xw.to_html`` page shows the same perturbed image on hover, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import WidgetPage
from test_html_export import OfflinePage
from test_scrubber_static import harness_value

import xaiwidgets as xw
from xaiwidgets.demo.shapes import make_shapes
from xaiwidgets.demo.shapes_model import shapes_classifier
from xaiwidgets.widgets.evaluation import EvaluationView

pytestmark = pytest.mark.browser

ROOT = ".xw-evaluation"
CANVAS_RGB = """(sel) => {
  const c = document.querySelector(sel);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
}"""


@pytest.fixture(scope="module")
def view() -> EvaluationView:
    clf = shapes_classifier()
    data = make_shapes(2, seed=1)
    v = xw.evaluate(clf, clf.preprocess(data.images), ["saliency", "gradcam"], masks=data.masks, n_steps=20,
                    sanity=True, sweep={"method": "smoothgrad", "param": "noise_level", "values": [0.05, 0.15, 0.3],
                                        "metric": "sparseness", "params": {"n_samples": 4}}, wait=True)
    assert v.status == "done", v.status
    return v


def state(v: EvaluationView) -> dict[str, Any]:
    return {k: harness_value(getattr(v, k)) for k in (
        "curves", "leaderboard", "sanity", "sweeps", "sample", "sort_column", "sort_reverse", "title", "progress",
        "status", "phase")}


def shown_image(wpage: WidgetPage) -> np.ndarray:
    w, h = wpage.canvas_size("canvas.xw-perturbed")
    rgba = np.array(wpage.page.evaluate(CANVAS_RGB, "canvas.xw-perturbed"), np.uint8).reshape(h, w, 4)
    return rgba[..., :3]


def hover(wpage: WidgetPage, mode: str, method: str, step: int) -> None:
    wpage.page.locator(f'svg[data-mode="{mode}"] circle[data-method="{method}"][data-step="{step}"]').hover(force=True)


def test_curves_and_leaderboard_render_and_hovering_a_point_shows_its_perturbed_image(
    wpage: WidgetPage, view: EvaluationView
) -> None:
    page = wpage.page
    wpage.mount("evaluation", state(view))
    root = page.locator(ROOT)
    assert root.get_attribute("data-state") == "ok", page.locator(".xw-error").inner_text()
    for mode in ("deletion", "insertion"):
        plot = page.locator(f'svg.xw-eval-plot[data-mode="{mode}"]')
        assert plot.locator("polyline.xw-eval-line").count() == 2
        assert plot.locator("circle.xw-eval-point").count() == 2 * 21
        for method in ("saliency", "gradcam"):  # a drawn curve spans the plot, not a point
            pts = plot.locator(f'polyline[data-method="{method}"]').get_attribute("points").split(" ")
            assert len(pts) == 21
    rows = page.locator("table.xw-leaderboard tbody tr")
    assert rows.count() == 2
    table = view.results.table()
    for method in ("saliency", "gradcam"):
        for key in ("deletion", "insertion", "aopc", "sparseness", "pointing_game", "sanity"):
            cell = page.locator(f'tr[data-method="{method}"] td[data-key="{key}"]')
            assert float(cell.get_attribute("data-value")) == pytest.approx(table[method][key], rel=1e-6)
    best = page.locator('td.xw-best[data-key="deletion"]').locator("xpath=..").get_attribute("data-method")
    assert best == min(table, key=lambda m: table[m]["deletion"])

    for mode, method, step in (("deletion", "gradcam", 5), ("insertion", "saliency", 12), ("deletion", "saliency", 20)):
        hover(wpage, mode, method, step)
        assert root.get_attribute("data-hover-mode") == mode
        assert root.get_attribute("data-hover-method") == method
        assert root.get_attribute("data-hover-step") == str(step)
        expected = view.results.curves[mode][method].display(0, step)
        assert np.array_equal(shown_image(wpage), expected), f"{mode} {method} step {step}"
        if (mode, method, step) == ("deletion", "gradcam", 5):
            wpage.screenshot("evaluation_view.png")
    # the second input: its own curves and its own perturbed images
    page.select_option("select.xw-eval-sample", "1")
    assert wpage.state("sample") == 1
    wpage.kernel_set("sample", 1)
    hover(wpage, "insertion", "gradcam", 8)
    expected = view.results.curves["insertion"]["gradcam"].display(1, 8)
    assert np.array_equal(shown_image(wpage), expected)
    assert not np.array_equal(expected, view.results.curves["insertion"]["gradcam"].display(0, 8))
    wpage.assert_clean()


def test_leaderboard_sorts_best_first_on_a_header_click_and_reverses_on_the_next(
    wpage: WidgetPage, view: EvaluationView
) -> None:
    page = wpage.page
    wpage.mount("evaluation", state(view))
    table = view.results.table()

    def order() -> list[str]:
        return page.locator("table.xw-leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.method)")
    for key, higher in (("insertion", True), ("deletion", False), ("sanity", False)):
        expected = sorted(table, key=lambda m: table[m][key], reverse=higher)
        page.locator(f'th[data-key="{key}"] button').click()
        assert order() == expected, key
        assert page.locator(f'th[data-key="{key}"]').get_attribute("aria-sort") == "ascending"
        page.locator(f'th[data-key="{key}"] button').click()
        assert order() == expected[::-1], key
        assert wpage.state("sort_column") == key and wpage.state("sort_reverse") is True
        page.locator(f'th[data-key="{key}"] button').click()  # back to best first for the next column
    assert "sort_column" in wpage.saved()
    wpage.assert_clean()


def test_sanity_strip_and_sweep_plot_render(wpage: WidgetPage, view: EvaluationView) -> None:
    page = wpage.page
    wpage.mount("evaluation", state(view))
    s = view.results.sanity
    assert page.locator("canvas.xw-sanity-map").count() == 2 * len(s.steps) == 20
    rho = page.locator('canvas.xw-sanity-map[data-method="gradcam"]').locator("xpath=..").locator(
        ".xw-sanity-rho").all_inner_texts()
    assert rho[0] == "ρ 1"
    last = float(rho[-1].split()[-1])
    assert last == pytest.approx(s.similarity["gradcam"]["spearman_abs"][-1, 0], abs=5e-3)
    # a randomised map differs from the trained one on the canvas
    first, final = (page.evaluate(
        f"""() => Array.from(document.querySelector('canvas.xw-sanity-map[data-method="saliency"][data-step="{k}"]')
        .getContext('2d').getImageData(0, 0, 64, 64).data).filter((_, i) => i % 4 === 1)""") for k in (0, 9))
    assert np.abs(np.array(first) - np.array(final)).mean() > 5
    sweep = page.locator(".xw-sweep")
    assert sweep.count() == 1 and sweep.get_attribute("data-param") == "noise_level"
    assert len(sweep.locator("polyline").get_attribute("points").split(" ")) == 3
    wpage.assert_clean()


def test_exported_page_shows_the_perturbed_image_on_hover_without_a_kernel(
    chromium_browser: Any, view: EvaluationView, tmp_path: Path
) -> None:
    """``xw.to_html``: the thumbnails travel with the page, so hovering works offline from ``file://``."""
    path = tmp_path / "evaluation.html"
    xw.to_html(view, path)
    op = OfflinePage(chromium_browser)
    try:
        op.open(path)
        page = op.page
        assert page.locator(ROOT).get_attribute("data-state") == "ok"
        assert page.locator("table.xw-leaderboard tbody tr").count() == 2
        page.locator('svg[data-mode="deletion"] circle[data-method="gradcam"][data-step="7"]').hover(force=True)
        assert page.locator(ROOT).get_attribute("data-hover-step") == "7"
        w, h = page.evaluate("() => { const c = document.querySelector('canvas.xw-perturbed'); "
                             "return [c.width, c.height]; }")
        rgba = np.array(page.evaluate(CANVAS_RGB, "canvas.xw-perturbed"), np.uint8).reshape(h, w, 4)
        np.testing.assert_array_equal(rgba[..., :3], view.results.curves["deletion"]["gradcam"].display(0, 7))
        op.assert_clean(path)
    finally:
        op.context.close()


def test_leaderboard_ties_are_all_bold(wpage: WidgetPage, view: EvaluationView) -> None:
    """Two methods equal at the shown precision (3 decimals) in a column: both cells are marked best."""
    import base64

    s = state(view)
    board = s["leaderboard"]
    values = np.frombuffer(base64.b64decode(board["values"]["data"]["__bytes__"]), np.float32).copy()
    values = values.reshape(len(board["methods"]), len(board["columns"]))
    c = [col["key"] for col in board["columns"]].index("insertion")
    values[:, c] = 0.75
    values[1, c] = 0.7500004  # float32 noise: shown as 0.750 too
    board["values"]["data"]["__bytes__"] = base64.b64encode(values.astype(np.float32).tobytes()).decode("ascii")
    wpage.mount("evaluation", s)
    best = wpage.page.locator('td.xw-best[data-key="insertion"]')
    assert best.count() == len(board["methods"]) == 2
    assert best.evaluate_all("els => els.map(e => getComputedStyle(e).fontWeight)") == ["700", "700"]
