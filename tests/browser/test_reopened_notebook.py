"""A saved notebook reopened in JupyterLab shows each widget's PNG, not "model not found".

The flow of a reader: run a cell that shows a HeatmapView, save the notebook, stop its kernel, open it again.
The output is trusted (JupyterLab signed it on save), so JupyterLab renders the highest-ranked mime type, the
widget view, whose model died with the kernel; @jupyter-widgets' renderer then writes "Error displaying
widget: model not found". xaiwidgets' JupyterLab extension (xaiwidgets/labextensions/xaiwidgets) shows the
output's image/png instead. Checked in pixels: the image is decoded and is not blank.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_server import JupyterServer, start_server, write_notebook
from notebook_flow import ARTIFACTS, open_and_run_all

pytestmark = pytest.mark.browser

EXTENSIONS = Path(__file__).resolve().parents[2] / "xaiwidgets" / "labextensions"

CELLS = [
    "import torch\n"
    "import xaiwidgets as xw\n"
    "torch.manual_seed(0)\n"
    "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),\n"
    "                          torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()\n"
    "xw.attribute(net, torch.rand(1, 3, 48, 48), method='input_x_gradient', target=0).show()",
]

IMAGE_STATS = """() => {
  const img = document.querySelector('.jp-OutputArea-output img.xw-fallback-png');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 4) { const v = d[i] + d[i + 1] + d[i + 2]; sum += v; sq += v * v; }
  const n = d.length / 4, mean = sum / n;
  return { width: c.width, height: c.height, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_server(tmp_path_factory.mktemp("reopen"), app="lab",
                          extra_args=[f"--LabApp.extra_labextensions_path={EXTENSIONS}"])
    write_notebook(server.root / "saved.ipynb", CELLS)
    try:
        yield server
    finally:
        server.stop()


def test_reopened_notebook_shows_the_png(lab: JupyterServer, chromium_browser: Any) -> None:
    context = chromium_browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        open_and_run_all(page, lab, "/lab/tree/saved.ipynb")
        page.wait_for_selector(".xw-heatmap-canvas", timeout=180_000)
        page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
        saved = lab.root / "saved.ipynb"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            outputs = json.loads(saved.read_text())["cells"][0].get("outputs", [])
            if any("image/png" in o.get("data", {}) for o in outputs):
                break
            time.sleep(0.5)
        output = next(o for o in outputs if "image/png" in o.get("data", {}))
        assert "application/vnd.jupyter.widget-view+json" in output["data"] and "xaiwidgets" in output["metadata"]

        lab.shutdown_sessions()  # the kernel, and with it the widget model, is gone
        page.goto(f"{lab.url}/lab/tree/saved.ipynb?token={lab.token}", timeout=60_000)
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        page.wait_for_function(f"() => !!({IMAGE_STATS})()", timeout=120_000)
        stats = page.evaluate(IMAGE_STATS)
        assert stats["width"] > 100 and stats["std"] > 5, stats
        text = page.locator(".jp-OutputArea-output").first.inner_text()
        assert "model not found" not in text, text
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_reopened_png.png"), full_page=False)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_reopened_failure.png"), full_page=True)
        print("server log:", lab.log.read_text()[-4000:])
        raise
    finally:
        context.close()
