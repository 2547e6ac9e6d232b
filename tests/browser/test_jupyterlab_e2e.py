"""End to end in a real JupyterLab: kernel computes, comm carries binary buffers, Chromium draws.

A JupyterLab 4 server on loopback (token auth) and Debian's chromium via Playwright open a notebook
that calls ``xw.explain`` on the demo EfficientNet-Lite0; the heatmap canvases must become non-blank,
and clicking another class must make the kernel recompute and change the canvas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server import JupyterServer, start_server, write_notebook

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"

CELLS = [
    "import xaiwidgets as xw\n"
    "clf = xw.demo.imagenet_classifier()\n"
    "dash = xw.explain(clf, xw.demo.load_image('chelsea'), methods=['saliency', 'input_x_gradient'])\n"
    "dash",
]

CANVAS_STATS = """(sel) => {
  const c = document.querySelector(sel);
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, hash = 0;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i] + d[i + 1] + d[i + 2];
    sum += v; sq += v * v; hash = (hash * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) % 1000000007;
  }
  const n = d.length / 4, mean = sum / n;
  return { std: Math.sqrt(Math.max(0, sq / n - mean * mean)), hash };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_server(tmp_path_factory.mktemp("jupyterlab"), app="lab")
    write_notebook(server.root / "e2e.ipynb", CELLS)
    try:
        yield server
    finally:
        server.stop()


def test_explain_in_jupyterlab(lab: JupyterServer, chromium_browser: Any) -> None:
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{lab.url}/lab/tree/e2e.ipynb?token={lab.token}", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        page.evaluate("async () => { await window.jupyterapp.restored; }")
        # wait for the notebook's kernel to be ready, then run every cell
        page.wait_for_function(
            """() => {
              const w = window.jupyterapp.shell.currentWidget;
              const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
              return !!k && k.status === 'idle';
            }""",
            timeout=90_000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

        panel = '.xw-panel[data-method="saliency"]'
        page.wait_for_selector(f'{panel}[data-state="done"]', timeout=60_000)
        canvas = f"{panel} canvas.xw-heatmap-canvas"
        before = page.evaluate(CANVAS_STATS, canvas)
        assert before is not None and before["std"] > 5, f"heatmap canvas is blank: {before}"
        page.wait_for_selector('.xw-panel[data-method="input_x_gradient"][data-state="done"]', timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_dashboard.png"), full_page=False)

        # click the second prediction: the kernel recomputes for that class, the canvas changes
        rows = page.locator(".xw-prediction")
        assert rows.count() == 5
        second = rows.nth(1)
        index = second.get_attribute("data-index")
        second.click()
        page.wait_for_selector(f'.xw-prediction.xw-selected[data-index="{index}"]', timeout=60_000)
        page.wait_for_selector(f'{panel}[data-state="done"]', timeout=60_000)
        page.wait_for_function(
            f"(h) => {{ const s = ({CANVAS_STATS})({canvas!r}); return s && s.hash !== h; }}",
            arg=before["hash"],
            timeout=60_000,
        )
        after = page.evaluate(CANVAS_STATS, canvas)
        assert after["std"] > 5 and after["hash"] != before["hash"]
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_dashboard_recomputed.png"), full_page=False)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_failure.png"), full_page=True)
        print("page errors:", errors)
        print("server log:", lab.log.read_text()[-4000:])
        raise
    finally:
        context.close()
