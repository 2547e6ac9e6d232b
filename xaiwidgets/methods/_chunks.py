"""How many rows to send through the model per call, chosen by the method itself.

On CPU the per-row cost of a forward+backward grows once activations spill out of cache (captum's IG with
all 50 steps in one batch is ~4x slower than chunks of 10 on EfficientNet-Lite0 at 224x224), so the planner
*measures*: it starts at half of an input-size cap (about 6 rows at 3x224x224; single rows leave the cores
idle) and doubles up to the cap while the time per row improves by more than 5%, then keeps the best size
(the probes are real work, nothing is wasted). Before that, a first one-row call counts the bytes autograd
saves for the backward pass (a saved-tensors hook) and the largest module output (a global forward hook, this
thread only, for that call), and caps the chunk so that those activations fit
``core.batching.cpu_chunk_budget()`` (128 MiB, less when little memory is left): the fastest chunk is not
worth a kernel that a memory-limited host (Binder) kills. On CUDA it measures the peak memory of a first
one-row call and sizes chunks to half the free memory, and it halves the chunk and retries when a call runs out of
memory anyway. A user's ``batch_size`` fixes the size. The measured sizes depend on timing, so two runs may
sum in a different order (equal up to float rounding); pass ``batch_size`` for bitwise reproducible results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ..core.batching import cpu_chunk_budget, free_cuda_memory

T = TypeVar("T")

#: bytes of model input per CPU chunk beyond which probing stops (about 13 rows at 3x224x224 float32)
CPU_INPUT_BUDGET = 8 * 2**20
MAX_ROWS = 512
_OOM = getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", RuntimeError))


class ChunkPlanner:
    """Chooses chunk sizes (rows per model call) for a loop over ``total`` rows."""

    def __init__(self, row_bytes: int, device: torch.device, batch_size: int | None = None) -> None:
        self.device = torch.device(device)
        self.fixed = batch_size is not None
        self.cuda = self.device.type == "cuda" and not self.fixed
        if self.fixed:
            self.size, self.cap = int(batch_size), int(batch_size)
        else:
            self.cap = MAX_ROWS if self.cuda else max(1, min(MAX_ROWS, CPU_INPUT_BUDGET // max(1, row_bytes)))
            self.size = 1
        self.start = max(1, self.cap // 2)  # where throughput probing starts
        self.probing = not self.fixed
        # CPU: the first call (one row) measures the activation memory per row, then throughput probing starts
        self.measuring = self.probing and not self.cuda
        self.saved_bytes_per_row: int | None = None
        self.best_rate = float("inf")
        self.best_size = 1
        self.history: list[tuple[int, float]] = []

    def next(self, remaining: int) -> int:
        return max(1, min(self.size, remaining))

    def run(self, rows: int, call: Callable[[int], T]) -> T:
        """``call(rows)`` timed and fed back; on out-of-memory halve ``rows`` and raise :class:`Retry`."""
        if self.cuda and self.probing:
            torch.cuda.reset_peak_memory_stats(self.device)
            start_mem = torch.cuda.memory_allocated(self.device)
        start = time.perf_counter()
        try:
            if self.measuring:
                with _SavedBytes() as saved:
                    out = call(rows)
            else:
                out = call(rows)
        except _OOM:
            if rows <= 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.size = self.cap = max(1, rows // 2)
            self.probing = False
            raise Retry from None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.history.append((rows, seconds))
        if self.cuda and self.probing:
            per_row = max(1, (torch.cuda.max_memory_allocated(self.device) - start_mem) // rows)
            free = free_cuda_memory(self.device) or per_row
            self.size = max(1, min(self.cap, int(free * 0.5 // per_row)))
            self.probing = False
        elif self.measuring:
            self._fit_memory(saved.total // max(1, rows))
        elif self.probing and rows == self.size:
            self._probe(rows, seconds / rows)
        return out

    def _fit_memory(self, per_row: int) -> None:
        """Cap the chunk by the activation memory per row, then start throughput probing at half the cap."""
        self.measuring = False
        self.saved_bytes_per_row = per_row
        if per_row > 0:
            self.cap = max(1, min(self.cap, cpu_chunk_budget() // per_row))
        self.size = max(1, min(self.start, self.cap // 2))

    def _probe(self, rows: int, rate: float) -> None:
        if rate < 0.95 * self.best_rate:
            self.best_rate, self.best_size = rate, rows
            if rows < self.cap:
                self.size = min(self.cap, rows * 2)
                return
        self.size = self.best_size
        self.probing = False


class _SavedBytes:
    """Activation memory of the calls inside the block: the bytes of the tensors autograd saves for backward
    (each storage once; the model's parameters are not per-row memory and are not counted) plus, for the
    transient forward activations, three times the largest module output (a layer's input, its output and a
    temporary). Only this thread's calls are counted; tensors are kept as they are."""

    def __init__(self) -> None:
        self.saved = 0
        self.largest_output = 0
        self._seen: set[int] = set()
        self._thread = threading.get_ident()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
        self._handle: Any = None

    @property
    def total(self) -> int:
        return self.saved + 3 * self.largest_output

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter) and t.device.type == "cpu":
            storage = t.untyped_storage()
            if storage.data_ptr() not in self._seen:
                self._seen.add(storage.data_ptr())
                self.saved += storage.nbytes()
        return t

    def _output(self, _module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and threading.get_ident() == self._thread:
            self.largest_output = max(self.largest_output, output.numel() * output.element_size())

    def __enter__(self) -> _SavedBytes:
        self._handle = torch.nn.modules.module.register_module_forward_hook(self._output)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
        self._handle.remove()


def _unpack(t: torch.Tensor) -> torch.Tensor:
    return t


class Retry(Exception):
    """Raised by :meth:`ChunkPlanner.run` after an out-of-memory error: redo the chunk with fewer rows."""


def row_bytes(x: torch.Tensor) -> int:
    """Bytes of one row (sample) of ``x``."""
    return int(x[0].numel() * x.element_size())
