"""A ForcePlot from a real kernel in JupyterLab: Integrated Gradients on the demo breast-cancer MLP (12
rows), shown with ``Attribution.show()``; the SVG geometry is checked in the page, and a click on the
stacked plot travels back to the kernel through the ``selected`` trait."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lab_server import JupyterServer
from notebook_flow import notebook_page
from playwright.sync_api import expect

ARTIFACTS = Path(__file__).parent / "artifacts"

FORCE_CELLS = [
    "import xaiwidgets as xw\n"
    "tab = xw.demo.breast_cancer_classifier()\n"
    "x_train, x_test, *_ = xw.demo.breast_cancer_split()\n"
    "ig = xw.attribute(tab, x_test[:12], 'integrated_gradients', target=0, progress=False)\n"
    "plot = ig.show()\n"
    "plot",
    "print('selected', plot.selected, 'of', len(ig))",
]

GEOMETRY = """() => {
  const svg = document.querySelector('svg.xw-force-single');
  if (!svg) return null;
  const ticks = Array.from(svg.querySelectorAll('.xw-force-tick'))
    .map(t => [Number(t.dataset.value), Number(t.getAttribute('x1'))]);
  const arrows = Array.from(svg.querySelectorAll('polygon.xw-force-arrow')).map(p => {
    const pts = p.getAttribute('points').trim().split(/\\s+/).map(s => s.split(',').map(Number));
    return { kind: p.dataset.kind, width: Math.abs(pts[1][0] - pts[0][0]) };
  });
  return { ticks, arrows, end: Number(svg.querySelector('.xw-force-out-line').getAttribute('x1')),
           base: Number(svg.querySelector('.xw-force-base').dataset.value),
           output: Number(svg.querySelector('.xw-force-output').dataset.value),
           bands: document.querySelectorAll('svg.xw-force-stack polygon.xw-force-band').length };
}"""

OUTPUT_TEXT = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
  .map(o => o.innerText).join('\\n')"""


def run_forceplot_flow(browser: Any, server: JupyterServer, path: str, prefix: str) -> dict[str, float]:
    """Open ``path``, run every cell, check the force plot's arrows against its axis, click an instance."""
    with notebook_page(browser, server, path, f"{prefix}_forceplot") as (page, _errors):
        # the first cell imports torch and computes: minutes on a loaded 2-core machine
        page.wait_for_selector('.xw-forceplot[data-state="ok"] svg.xw-force-single', timeout=180_000)
        g = page.evaluate(GEOMETRY)
        assert g is not None and g["bands"] > 0, g
        (v0, x0), (v1, x1) = g["ticks"][0], g["ticks"][-1]
        per_unit = (x1 - x0) / (v1 - v0)
        red = sum(a["width"] for a in g["arrows"] if a["kind"] == "up") / per_unit
        blue = sum(a["width"] for a in g["arrows"] if a["kind"] == "down") / per_unit
        end = v0 + (g["end"] - x0) / per_unit
        # arrows sum to (where they meet) - base, read from the drawing; 1 px of slack on the axis reading
        assert abs((red - blue) - (end - g["base"])) < 1.0 / per_unit, (red, blue, end, g["base"])
        page.wait_for_function(f"() => ({OUTPUT_TEXT})().includes('selected 0 of 12')", timeout=60_000)

        # hover an arrow: the tooltip names a feature and its contribution
        page.locator("svg.xw-force-single polygon.xw-force-arrow").last.hover()
        tip = page.locator(".xw-forceplot .xw-tooltip")
        expect(tip).to_be_visible(timeout=30_000)
        expect(tip).to_contain_text("contribution", timeout=30_000)

        # click the right edge of the stack (an instance), then ask the kernel which one it has
        box = page.locator("rect.xw-force-hit").bounding_box()
        page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        guide = page.locator("line.xw-force-guide")
        expect(guide).to_have_attribute("data-instance", re.compile(r"^\d+$"), timeout=30_000)
        chosen = guide.get_attribute("data-instance")
        page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(f'line.xw-force-selected[data-instance="{chosen}"]', state="attached", timeout=30_000)
        page.evaluate(
            """() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;
                       return window.jupyterapp.commands.execute('notebook:run-cell'); }"""
        )
        page.wait_for_function(f"() => ({OUTPUT_TEXT})().includes('selected {chosen} of 12')", timeout=60_000)
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".xw-forceplot").screenshot(path=str(ARTIFACTS / f"{prefix}_forceplot.png"))
    return {"red": red, "blue": blue, "end": end, "base": g["base"], "output": g["output"]}
