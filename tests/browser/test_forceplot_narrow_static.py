"""ForcePlot in narrow outputs (issue 17): under 480 px it used to draw at 760 px, hiding f(x) and the
negative contributions with no scrollbar. Now it draws at the output's width (at least 300 px, the
holder scrolls below that), keeps f(x) and every arrow inside the visible box, and labels its axes."""

from __future__ import annotations

import numpy as np
import pytest
from harness import WidgetPage
from test_text_views_static import state_of

from xaiwidgets.widgets.forceplot import ForcePlot

pytestmark = pytest.mark.browser

NAMES = ["mean radius", "worst texture", "worst concavity", "area error", "mean smoothness", "worst symmetry"]
CONTRIB = np.array([0.21, -0.08, 0.34, 0.015, -0.12, 0.004])

VISIBLE = """(sel) => {
  const holder = document.querySelector(sel), r = holder.getBoundingClientRect();
  const svg = holder.querySelector('svg');
  const inside = (e) => { const b = e.getBoundingClientRect(); return b.left >= r.left - 1 && b.right <= r.right + 1; };
  return { svgWidth: svg.getBoundingClientRect().width, holderWidth: r.width,
           scrolls: holder.scrollWidth > holder.clientWidth,
           output: !svg.querySelector('.xw-force-output') || inside(svg.querySelector('.xw-force-output')),
           arrows: Array.from(svg.querySelectorAll('polygon.xw-force-arrow')).every(inside) };
}"""


@pytest.mark.parametrize("width", [420, 340])
def test_force_plot_fits_a_narrow_output(wpage: WidgetPage, width: int) -> None:
    widget = ForcePlot.from_arrays(CONTRIB, 0.373, features=NAMES, feature_values=np.arange(6.0), title="narrow")
    # a block output of `width` px, as a narrow JupyterLab / Voila / marimo column
    wpage.page.evaluate(f"document.querySelector('#root').style.cssText = 'display:block;width:{width}px'")
    wpage.mount("forceplot", state_of(widget, "dataview"))
    g = wpage.page.evaluate(VISIBLE, ".xw-force-single-holder")
    assert g["svgWidth"] <= width + 1 and not g["scrolls"], g
    assert g["output"] and g["arrows"], g
    label = wpage.page.locator("svg.xw-force-single .xw-force-axis-label").text_content()
    assert "model output" in label
    wpage.screenshot(f"forceplot-{width}.png")


def test_force_plot_scrolls_below_its_minimum(wpage: WidgetPage) -> None:
    widget = ForcePlot.from_arrays(CONTRIB, 0.373, features=NAMES, title="very narrow")
    wpage.page.evaluate("document.querySelector('#root').style.cssText = 'display:block;width:220px'")
    wpage.mount("forceplot", state_of(widget, "dataview"))
    g = wpage.page.evaluate(VISIBLE, ".xw-force-single-holder")
    assert g["svgWidth"] == pytest.approx(300, abs=1) and g["scrolls"] and g["holderWidth"] <= 221, g


def test_stacked_force_plot_has_an_axis_label(wpage: WidgetPage) -> None:
    rng = np.random.default_rng(0)
    widget = ForcePlot.from_arrays(rng.normal(size=(8, 4)) * 0.1, np.full(8, 0.4), features=list("abcd"))
    wpage.page.evaluate("document.querySelector('#root').style.cssText = 'display:block;width:400px'")
    wpage.mount("forceplot", state_of(widget, "dataview"))
    assert "model output" in wpage.page.locator("svg.xw-force-stack .xw-force-axis-label").text_content()
    g = wpage.page.evaluate(VISIBLE, ".xw-force-stack-holder")
    assert g["svgWidth"] <= 401 and not g["scrolls"]
    wpage.screenshot("forceplot-stack-400.png")
