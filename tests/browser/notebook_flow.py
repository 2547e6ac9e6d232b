"""The explain-dashboard flow shared by the JupyterLab and Notebook 7 end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


def failure_report(page: Any, prefix: str, errors: list[str], log: Path | None = None) -> None:
    """On a failed browser test: a full-page screenshot ``artifacts/<prefix>_failure.png``, the page errors and
    the end of the server log."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{prefix}_failure.png"), full_page=True)
    print("page errors:", errors)
    if log is not None:
        print("server log:", log.read_text()[-4000:])


@contextlib.contextmanager
def notebook_page(
    browser: Any, server: JupyterServer, path: str, prefix: str, viewport: tuple[int, int] = (1300, 1000)
) -> Iterator[tuple[Any, list[str]]]:
    """A page with the notebook ``path`` open and every cell run, and the page errors so far; afterwards no
    error may name xaiwidgets or anywidget. On failure: :func:`failure_report`. The context is closed at the end."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_and_run_all(page, server, path)
        yield page, errors
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        failure_report(page, prefix, errors, server.log)
        raise
    finally:
        context.close()


def wait_for_canvas(page: Any, canvas: str, condition: str, arg: Any, timeout: float) -> None:
    """Wait until ``condition`` (a JS function of ``arg`` in which ``s`` is the canvas's CANVAS_STATS) holds;
    on timeout fail with the canvas's stats."""
    check = f"(arg) => {{ const s = ({CANVAS_STATS})({canvas!r}); return ({condition})(arg); }}"
    try:
        page.wait_for_function(check, arg=arg, timeout=timeout)
    except Exception as exc:
        stats = page.evaluate(CANVAS_STATS, canvas)
        message = f"{canvas}: {condition} did not hold within {timeout / 1000:.0f} s; stats {stats}"
        raise AssertionError(message) from exc


def open_and_run_all(page: Any, server: JupyterServer, path: str) -> None:
    """Open the notebook at URL ``path`` (``/lab/tree/x.ipynb`` or ``/notebooks/x.ipynb``), wait until it is
    the current widget and its kernel is idle, then run all its cells.

    JupyterLab restores the workspace: a notebook opened by an earlier test comes back too and can be the
    current widget (with an idle kernel) for a while, so the notebook's own path is checked before running.
    """
    notebook = path.split("/tree/", 1)[-1] if "/tree/" in path else path.split("/notebooks/", 1)[-1]
    page.goto(f"{server.url}{path}?token={server.token}", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    ready = """(nb) => {
      const w = window.jupyterapp.shell.currentWidget;
      const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
      return !!w && !!w.context && (w.context.localPath || w.context.path) === nb && !!k && k.status === 'idle';
    }"""
    # the kernel may turn busy for a moment between the wait and the run (JupyterLab asks it for comm and
    # completion info on start): wait again and retry rather than fail
    ran = False
    for _attempt in range(10):
        page.wait_for_function(ready, arg=notebook, timeout=120_000)
        ran = page.evaluate(
            f"""async (nb) => {{
              if (!({ready})(nb)) return false;
              await window.jupyterapp.commands.execute('notebook:run-all-cells');
              return true;
            }}""",
            notebook,
        )
        if ran:
            break
        page.wait_for_timeout(500)
    assert ran, f"{notebook} was never the current notebook with an idle kernel long enough to run its cells"


def run_explain_flow(browser: Any, server: JupyterServer, path: str, prefix: str) -> None:
    """Open ``path`` (a notebook URL path), run all cells, check the canvas, click a class, check again."""
    with notebook_page(browser, server, path, prefix, (1400, 1000)) as (page, _errors):
        # the first cell imports torch, loads the model and computes: minutes on a loaded 2-core machine
        panel = '.xw-panel[data-method="saliency"]'
        page.wait_for_selector(f'{panel}[data-state="done"]', timeout=180_000)
        canvas = f"{panel} canvas.xw-heatmap-canvas"
        # the map's buffer may arrive after the panel's state: wait (bounded) for the drawn heatmap
        wait_for_canvas(page, canvas, "() => s && s.std > 5", None, 60_000)
        before = page.evaluate(CANVAS_STATS, canvas)
        assert before is not None and before["std"] > 5, f"heatmap canvas is blank: {before}"
        page.wait_for_selector('.xw-panel[data-method="gradcam"][data-state="done"]', timeout=120_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard.png"), full_page=False)

        # click the second prediction: the kernel recomputes for that class, the canvas changes
        rows = page.locator(".xw-prediction")
        assert rows.count() == 5
        second = rows.nth(1)
        index = second.get_attribute("data-index")
        second.click()
        page.wait_for_selector(f'.xw-prediction.xw-selected[data-index="{index}"]', timeout=60_000)
        # the panel may still say "done" from the first class: wait for the new class's map itself (panel
        # done again, a different, non-blank canvas), not for a state that may be the old one
        wait_for_canvas(page, canvas, f"(h) => document.querySelector('{panel}').dataset.state === 'done' && "
                        "s && s.hash !== h && s.std > 5", before["hash"], 120_000)
        after = page.evaluate(CANVAS_STATS, canvas)
        assert after["std"] > 5 and after["hash"] != before["hash"]
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard_recomputed.png"), full_page=False)
