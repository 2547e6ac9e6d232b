"""The DatasetExplorer flow of the JupyterLab end-to-end test (test_jupyterlab_e2e.py): in a real
JupyterLab the kernel explains 120 shapes (streaming), the browser filters to the wrong predictions, runs
SpRAy, brushes a group of points and clicks a tile; the explain dashboard opens inside the explorer (a
child widget model through the host's widget manager) and draws its heatmap. Every 7th label is shifted,
so there are wrong predictions to filter to whatever the demo CNN's accuracy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lab_server import JupyterServer
from notebook_flow import ARTIFACTS, failure_report, open_and_run_all, wait_for_canvas

EXPLORER_CELLS = [
    "import torch, xaiwidgets as xw\n"
    "clf = xw.demo.shapes_classifier()\n"
    "d = xw.demo.make_shapes(120, seed=3)\n"
    "x = (d.images - 0.5) / 0.5\n"
    "y = d.labels.clone(); y[::7] = (y[::7] + 1) % 4\n"
    "ex = xw.explore(clf, x, methods=('gradcam',), labels=y, batch_size=32, map_size=16,\n"
    "                spray={'embedding': 'spectral'})\n"
    "ex",
]


def count_of(page: Any) -> tuple[int, int]:
    shown, _, total, _ = page.inner_text(".xw-count").replace(",", "").split()
    return int(shown), int(total)


@contextlib.contextmanager
def recorded_page(browser: Any, lab: JupyterServer, prefix: str) -> Iterator[tuple[Any, list[str]]]:
    """A 1400x1000 page and its page errors; on failure a screenshot and the server log (failure_report)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page, errors
    except Exception:
        failure_report(page, prefix, errors, lab.log)
        raise
    finally:
        context.close()


def run_explorer_flow(browser: Any, lab: JupyterServer, path: str) -> None:
    """Run the notebook at ``path``; filter, SpRAy, brush, click a tile; the dashboard's heatmap is drawn."""
    with recorded_page(browser, lab, "jupyterlab_explorer") as (page, errors):
        open_and_run_all(page, lab, path)
        page.wait_for_selector('.xw-explorer[data-status="done"]', timeout=240_000)
        page.wait_for_function("() => document.querySelector('.xw-count').textContent.startsWith('120 of 120')",
                               timeout=60_000)
        page.wait_for_selector('.xw-etile canvas[data-loaded="true"]', timeout=60_000)
        wait_for_canvas(page, '.xw-etile canvas[data-loaded="true"]', "() => s && s.std > 5", None, 30_000)

        page.select_option(".xw-f-correct", "wrong")
        shown, total = count_of(page)
        assert 0 < shown < total
        assert all("xw-wrong" in (c or "") for c in page.locator(".xw-etile-pred").evaluate_all(
            "(els) => els.filter((e) => !e.closest('[hidden]')).map((e) => e.className)"))
        page.select_option(".xw-f-correct", "any")

        # SpRAy on the class with most predictions, then brush the left half of the scatter
        options = page.locator(".xw-spray-class option").evaluate_all(
            "(os) => os.map((o) => [o.value, Number(o.textContent.match(/\\((\\d+) predicted/)[1])])")
        cls = max(options, key=lambda o: o[1])[0]
        page.select_option(".xw-spray-class", cls)
        page.click(".xw-spray-run")
        page.wait_for_function("() => document.querySelector('.xw-eigen').dataset.gap !== undefined",
                               timeout=120_000)
        assert page.locator(".xw-mean").count() >= 1
        scatter = page.locator(".xw-scatter")
        scatter.scroll_into_view_if_needed()
        box = scatter.bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2, steps=6)
        page.mouse.up()
        page.wait_for_function("() => document.querySelector('.xw-f-only').checked", timeout=10_000)
        shown, _ = count_of(page)
        assert 0 < shown < 120
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_explorer_brushed.png"), full_page=False)

        # click a tile: the dashboard opens inside the explorer and draws its heatmap
        page.locator(".xw-etile").first.click()
        panel = '.xw-drill-host .xw-panel[data-method="gradcam"]'
        page.wait_for_selector(f'{panel}[data-state="done"]', timeout=120_000)
        wait_for_canvas(page, f"{panel} canvas.xw-heatmap-canvas", "() => s && s.std > 5", None, 60_000)
        page.locator(".xw-drill").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_explorer_drill.png"), full_page=False)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
