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
from host_flow import free_port, run_host_page, start, stop

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
    run_host_page(chromium_browser, marimo_url, "marimo")
