"""End to end in Voilà: `voila --no-browser` on loopback renders a notebook as a page with live widgets.

Checked in pixels: the dashboard's heatmaps drawn and coloured, its buttons drawn as buttons, the layer
dropdown inside its panel, a recomputation in the kernel after clicking another class, and a HeatmapView.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from host_flow import free_port, run_host_page, start, stop
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
    run_host_page(chromium_browser, voila_url, "voila")
