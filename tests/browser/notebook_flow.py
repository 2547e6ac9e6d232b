"""The explain-dashboard flow shared by the JupyterLab and Notebook 7 end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_server import JupyterServer

ARTIFACTS = Path(__file__).parent / "artifacts"

NOTEBOOK_CELLS = [
    "import xaiwidgets as xw\n"
    "clf = xw.demo.imagenet_classifier()\n"
    "dash = xw.explain(clf, xw.demo.load_image('chelsea'), methods=['saliency', 'gradcam'])\n"
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



def run_explain_flow(browser: Any, server: JupyterServer, path: str, prefix: str) -> None:
    """Open ``path`` (a notebook URL path), run all cells, check the canvas, click a class, check again."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{server.url}{path}?token={server.token}", timeout=60_000)
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
        page.wait_for_selector('.xw-panel[data-method="gradcam"][data-state="done"]', timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard.png"), full_page=False)

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
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard_recomputed.png"), full_page=False)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_failure.png"), full_page=True)
        print("page errors:", errors)
        print("server log:", server.log.read_text()[-4000:])
        raise
    finally:
        context.close()
