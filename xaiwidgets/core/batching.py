"""Chunked batching helpers: split large evaluations into pieces that fit in memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

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
