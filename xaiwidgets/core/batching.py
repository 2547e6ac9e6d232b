"""Chunked batching: split large evaluations into pieces that fit in memory, and how many rows to send
through the model per call (:class:`ChunkPlanner`, below)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

#: Activation memory one CPU chunk may keep for its backward pass. A course lab on Binder gets 1-2 GB for the
#: whole kernel, and torch, the model and the notebook's own tensors already take ~0.9 GB of it; each thread that
#: computes (a dashboard's worker, the notebook's cells) can keep a chunk's worth of freed memory in its own
#: allocator arena. EfficientNet-Lite0 at 224x224 keeps ~95 MiB per row (saved for backward, plus the largest
#: layer outputs): one row per chunk, which costs no speed there (24.6 ms per row at 1 to 4 rows on 2 cores).
CPU_CHUNK_BYTES = 128 * 2**20


def chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``size``."""
    size = max(1, int(size))
    for start in range(0, total, size):
        yield start, min(total, start + size)


def free_cuda_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (None on CPU)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def _read_int(path: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = Path(path).read_text().strip()
        return None if text == "max" else int(text)
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` of ``/proc/meminfo``, lowered to the headroom of
    a cgroup memory limit (containers, Binder: the host's free memory is not what the kernel may use).
    ``None`` where neither can be read (not Linux)."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes "no limit" as ~2**63
            found.append(max(0, limit - usage))
    return min(found) if found else None


def cpu_chunk_budget() -> int:
    """Bytes of saved activations one CPU chunk may hold: ``CPU_CHUNK_BYTES``, or an eighth of the memory still
    available when that is less."""
    free = available_memory()
    return CPU_CHUNK_BYTES if free is None else max(16 * 2**20, min(CPU_CHUNK_BYTES, free // 8))


def batched_forward(
    fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``fn`` over ``inputs`` in chunks of ``batch_size`` along dim 0, concatenated."""
    outputs = [fn(inputs[a:b]) for a, b in chunk_ranges(inputs.shape[0], batch_size)]
    return torch.cat(outputs, 0)


def memory_chunk_size(
    per_item_bytes: int, device: torch.device, *, default: int = 16, fraction: float = 0.5, cap: int = 256
) -> int:
    """How many items of ``per_item_bytes`` fit in ``fraction`` of free CUDA memory; ``default`` on CPU."""
    free = free_cuda_memory(device)
    if free is None or per_item_bytes <= 0:
        return default
    return max(1, min(cap, int(free * fraction // per_item_bytes)))


# ------------------------------------------------------------------------------------------------------------
# How many rows to send through the model per call, chosen by the method itself.
#
# On CPU the per-row cost of a forward+backward grows once activations spill out of cache (captum's IG with
# all 50 steps in one batch is ~4x slower than chunks of 10 on EfficientNet-Lite0 at 224x224), so the planner
# *measures*: it starts at half of an input-size cap (about 6 rows at 3x224x224; single rows leave the cores
# idle) and doubles up to the cap while the time per row improves by more than 5%, then keeps the best size
# (the probes are real work, nothing is wasted). Before that, a first one-row call counts the bytes autograd
# saves for the backward pass (a saved-tensors hook) and the largest module output (a global forward hook, this
# thread only, for that call), and caps the chunk so that those activations fit
# ``core.batching.cpu_chunk_budget()`` (128 MiB, less when little memory is left): the fastest chunk is not
# worth a kernel that a memory-limited host (Binder) kills. On CUDA it measures the peak memory of a first
# one-row call and sizes chunks to half the free memory, and it halves the chunk and retries when a call runs out of
# memory anyway. A user's ``batch_size`` fixes the size. The measured sizes depend on timing, so two runs may
# sum in a different order (equal up to float rounding); pass ``batch_size`` for bitwise reproducible results.

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
