"""End to end in marimo: `marimo run --headless` on loopback, the widgets through `mo.ui.anywidget`.

marimo renders each anywidget in a shadow root under its own stylesheet reset (Tailwind's preflight makes
buttons transparent and borderless); the views carry their own control styles. Checked in pixels: the
dashboard's heatmaps drawn and coloured, its buttons drawn as buttons, the layer dropdown inside its panel,
a recomputation after clicking another class, and a HeatmapView below it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from host_flow import ARTIFACTS, canvas, check_dashboard, free_port, start, stop

pytestmark = pytest.mark.browser
pytest.importorskip("marimo")

APP = '''import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo

    import xaiwidgets as xw

    clf = xw.demo.imagenet_classifier()
    image = xw.demo.load_image("chelsea")
    return clf, image, mo, xw


@app.cell
def _(clf, image, mo, xw):
    dash = mo.ui.anywidget(xw.explain(clf, image, methods=["saliency", "gradcam"], wait=True))
    dash
    return (dash,)


@app.cell
def _(clf, dash, image, mo, xw):
    heat = mo.ui.anywidget(xw.attribute(clf, clf.preprocess(image), method="gradcam").show())
    heat
    return


if __name__ == "__main__":
    app.run()
'''


@pytest.fixture(scope="module")
def marimo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("marimo")
    (root / "app.py").write_text(APP)
    port = free_port()
    command = [sys.executable, "-m", "marimo", "run", "app.py", "--headless", "--host", "127.0.0.1",
               "--port", str(port), "--no-token", "--no-sandbox", "--no-check"]
    url = f"http://127.0.0.1:{port}/"
    process = start(command, root, url, root / "marimo.log")
    try:
        yield url
    finally:
        stop(process)


def test_dashboard_and_heatmap_in_marimo(marimo_url: str, chromium_browser: Any) -> None:
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(marimo_url, timeout=60_000)
        check_dashboard(page, "marimo")
        # the HeatmapView of the third cell: Grad-CAM drawn in colour over the photo
        heat = canvas(page, ".xw-heatmap-view canvas.xw-heatmap-canvas", "s.std > 5 && s.coloured > 0.05")
        assert heat["coloured"] > 0.05, heat
        page.screenshot(path=str(ARTIFACTS / "marimo_page.png"), full_page=True)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "marimo_failure.png"), full_page=True)
        print("page errors:", errors)
        raise
    finally:
        context.close()
