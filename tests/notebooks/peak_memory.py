"""Execute a notebook and measure its kernel's peak memory.

The kernel's resident set size plus that of every child process (a DataLoader worker, a subprocess) is
polled every 0.2 s while the notebook executes; the peak is what a memory-limited host (Binder gives a lab
1 to 2 GB) sees before it kills the kernel.

    python3 tests/notebooks/peak_memory.py notebooks/cams.ipynb [...]     # prints one JSON line per notebook
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

POLL_SECONDS = 0.2


def tree_rss(process: psutil.Process) -> int:
    """RSS of ``process`` and all its descendants, in bytes (processes that exit meanwhile count as 0)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class PeakSampler:
    """Polls a process tree's RSS on a thread; ``peak`` is the largest sample."""

    def __init__(self, pid: int, interval: float = POLL_SECONDS) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.cell_peak = 0  # the peak since the last reset_cell()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = tree_rss(self.process)
                self.peak = max(self.peak, rss)
                self.cell_peak = max(self.cell_peak, rss)
                self.samples += 1
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self.interval)

    def reset_cell(self) -> int:
        """The peak since the last call (the cell that just ran), and start a new one."""
        peak, self.cell_peak = self.cell_peak, 0
        return peak

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_notebook(path: Path, timeout: int = 900) -> dict[str, object]:
    """Execute ``path`` in a fresh python3 kernel (cwd: its folder); return the peak RSS (also per code cell,
    in GiB) and the run time. A cell error raises ``nbclient.exceptions.CellExecutionError``."""
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources)
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        with PeakSampler(pid) as sampler:
            cells = []
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    time.sleep(POLL_SECONDS)  # one more sample of the cell's end state
                    cells.append(round(sampler.reset_cell() / 2**30, 3))
    return {
        "notebook": path.name,
        "peak_bytes": sampler.peak,
        "peak_gib": round(sampler.peak / 2**30, 3),
        "cells": cells,
        "samples": sampler.samples,
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(run_notebook(Path(arg))), flush=True)
