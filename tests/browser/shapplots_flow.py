"""TabularPlots from a real kernel in JupyterLab: KernelSHAP on the demo breast-cancer MLP (30 rows), a
beeswarm linked to a waterfall; a click on a beeswarm dot travels to the kernel (``selection``, ``row``) and
opens that row's waterfall, whose bars walk from the base value to f(x)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_server import JupyterServer
from notebook_flow import notebook_page

ARTIFACTS = Path(__file__).parent / "artifacts"

SHAPPLOTS_CELLS = [
    "import xaiwidgets as xw\n"
    "tab = xw.demo.breast_cancer_classifier()\n"
    "x_train, x_test, *_ = xw.demo.breast_cancer_split()\n"
    "a = xw.attribute(tab, x_test[:30], 'kernel_shap', target=1, n_samples=200, seed=0, progress=False)\n"
    "plots = xw.plots.tabular(a, views=['beeswarm', 'waterfall'])\n"
    "plots",
    "print('selected', plots.selection, 'row', plots.row, 'end', round(plots.plot_data('waterfall')['end'][0], 5))",
]

OUTPUT_TEXT = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
  .map(o => o.innerText).join('\\n')"""

DOTS = """() => { const c = document.querySelector('canvas.xw-sp-beeswarm'); const p = c.xwPoints;
  return { x: Array.from(p.x.slice(0, 30)), y: Array.from(p.y.slice(0, 30)),
           value: Array.from(p.value.slice(0, 30)) }; }"""


def run_shapplots_flow(browser: Any, server: JupyterServer, path: str, prefix: str) -> dict[str, Any]:
    with notebook_page(browser, server, path, f"{prefix}_shapplots", (1300, 1100)) as (page, _errors):
        page.wait_for_selector('.xw-shapplots[data-state="ok"] canvas.xw-sp-beeswarm', timeout=180_000)
        dots = page.evaluate(DOTS)
        k = max(range(30), key=lambda i: dots["value"][i])  # the largest attribution of the top feature
        box = page.locator("canvas.xw-sp-beeswarm").bounding_box()
        page.mouse.click(box["x"] + dots["x"][k], box["y"] + dots["y"][k])
        page.wait_for_selector(f'svg.xw-sp-waterfall[data-row="{k}"]', timeout=30_000)
        bars = page.evaluate(
            "() => Array.from(document.querySelectorAll('polygon.xw-sp-bar')).map(p => Number(p.dataset.end))"
        )
        page.evaluate(
            """() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;
                       return window.jupyterapp.commands.execute('notebook:run-cell'); }"""
        )
        page.wait_for_function(f"() => ({OUTPUT_TEXT})().includes('selected [{k}] row {k}')", timeout=60_000)
        text = page.evaluate(OUTPUT_TEXT)
        end = float(text.split(f"selected [{k}] row {k} end ")[1].split()[0])
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".xw-shapplots").screenshot(path=str(ARTIFACTS / f"{prefix}_shapplots.png"))
        return {"row": k, "drawn_end": bars[0], "kernel_end": end}
