"""Every course-lab notebook runs without error and fits a Binder lab's memory.

mybinder.org gives a lab 1 to 2 GB; a kernel that is killed halfway teaches nothing. Each notebook is
executed in a fresh kernel while the RSS of the kernel and its children is polled every 0.2 s
(``peak_memory.py``); the peak must stay under 1.5 GiB. This replaces ``pytest --nbmake notebooks`` (the
notebooks are executed once). Run in its own pytest call (scripts/test.sh), apart from the browser tests:
nbclient's event loop and Playwright's sync loop must not share a process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("psutil")
pytest.importorskip("nbclient")

from peak_memory import run_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
PEAK_LIMIT = int(1.5 * 2**30)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_within_binder_memory(path: Path) -> None:
    result = run_notebook(path)
    print(f"\n[{path.stem}] peak {result['peak_gib']:.3f} GiB in {result['seconds']} s; per cell {result['cells']}")
    assert result["samples"] > 0
    assert result["peak_bytes"] < PEAK_LIMIT, (
        f"{path.name} peaked at {result['peak_gib']:.2f} GiB (kernel and children), over the 1.5 GiB bound of a "
        f"Binder lab; per code cell: {result['cells']}"
    )
