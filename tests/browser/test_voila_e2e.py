"""End to end in Voilà: `voila --no-browser` on loopback renders a notebook as a page with live widgets.

Checked in pixels: the dashboard's heatmaps drawn and coloured, its buttons drawn as buttons, the layer
dropdown inside its panel, a recomputation in the kernel after clicking another class, and a HeatmapView.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from host_flow import ARTIFACTS, canvas, check_dashboard, free_port, start, stop
from lab_server import write_notebook

pytestmark = pytest.mark.browser
pytest.importorskip("voila")

CELLS = [
    "import xaiwidgets as xw\n"
    "clf = xw.demo.imagenet_classifier()\n"
    "image = xw.demo.load_image('chelsea')\n"
    "xw.explain(clf, image, methods=['saliency', 'gradcam'], wait=True)",
    "xw.attribute(clf, clf.preprocess(image), method='gradcam').show()",
]


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("voila")
    write_notebook(root / "app.ipynb", CELLS)
    port = free_port()
    command = [sys.executable, "-m", "voila", "app.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
               "--show_tracebacks=True"]
    url = f"http://127.0.0.1:{port}/"
    process = start(command, root, f"{url}api/status", root / "voila.log")  # not the page: that starts a kernel
    try:
        yield url
    finally:
        stop(process)


def test_dashboard_and_heatmap_in_voila(voila_url: str, chromium_browser: Any) -> None:
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(voila_url, timeout=240_000)
        check_dashboard(page, "voila")
        heat = canvas(page, ".xw-heatmap-view canvas.xw-heatmap-canvas", "s.std > 5 && s.coloured > 0.05")
        assert heat["coloured"] > 0.05, heat
        page.screenshot(path=str(ARTIFACTS / "voila_page.png"), full_page=True)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "voila_failure.png"), full_page=True)
        print("page errors:", errors)
        raise
    finally:
        context.close()
