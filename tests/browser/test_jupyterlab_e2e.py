"""End to end in a real JupyterLab: kernel computes, comm carries binary buffers, Chromium draws.

A JupyterLab 4 server on loopback (token auth) and Debian's chromium via Playwright open a notebook
that calls ``xw.explain`` on the demo EfficientNet-Lite0; the heatmap canvases must become non-blank,
and clicking another class must make the kernel recompute and change the canvas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from explorer_flow import EXPLORER_CELLS, run_explorer_flow
from lab_server import JupyterServer, start_server, write_notebook
from notebook_flow import NOTEBOOK_CELLS, run_explain_flow
from shapplots_flow import SHAPPLOTS_CELLS, run_shapplots_flow
from text_views_flow import FORCE_CELLS, run_forceplot_flow

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_server(tmp_path_factory.mktemp("jupyterlab"), app="lab")
    write_notebook(server.root / "e2e.ipynb", NOTEBOOK_CELLS)
    try:
        yield server
    finally:
        server.stop()


def test_explain_in_jupyterlab(lab: JupyterServer, chromium_browser: Any) -> None:
    run_explain_flow(chromium_browser, lab, "/lab/tree/e2e.ipynb", "jupyterlab")


def test_forceplot_in_jupyterlab(lab: JupyterServer, chromium_browser: Any) -> None:
    """A ForcePlot from a real kernel in the same JupyterLab server (the dashboard's kernel is shut down
    first): arrows against the axis, hover, and a click that reaches the kernel."""
    lab.shutdown_sessions()
    write_notebook(lab.root / "forceplot.ipynb", FORCE_CELLS)
    numbers = run_forceplot_flow(chromium_browser, lab, "/lab/tree/forceplot.ipynb", "jupyterlab")
    print(f"\n[forceplot in JupyterLab] red - blue = {numbers['red'] - numbers['blue']:.5f}, "
          f"end - base = {numbers['end'] - numbers['base']:.5f}, output = {numbers['output']:.5f}")


def test_shapplots_in_jupyterlab(lab: JupyterServer, chromium_browser: Any) -> None:
    """TabularPlots from a real kernel: a beeswarm dot clicked in the page selects its row in the kernel and
    opens its waterfall, which ends at the kernel's f(x)."""
    lab.shutdown_sessions()
    write_notebook(lab.root / "shapplots.ipynb", SHAPPLOTS_CELLS)
    got = run_shapplots_flow(chromium_browser, lab, "/lab/tree/shapplots.ipynb", "jupyterlab")
    assert abs(got["drawn_end"] - got["kernel_end"]) < 1e-4, got
    print(f"\n[shapplots in JupyterLab] row {got['row']}: waterfall ends at {got['drawn_end']:.5f} "
          f"(kernel {got['kernel_end']:.5f})")


def test_explorer_in_jupyterlab(lab: JupyterServer, chromium_browser: Any) -> None:
    """A DatasetExplorer over 120 shapes explained in the kernel (other kernels shut down first): filter to
    the wrong predictions, SpRAy, brush, click a tile, the dashboard draws its heatmap inside the explorer."""
    lab.shutdown_sessions()
    write_notebook(lab.root / "explorer.ipynb", EXPLORER_CELLS)
    run_explorer_flow(chromium_browser, lab, "/lab/tree/explorer.ipynb")
