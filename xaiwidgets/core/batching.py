"""Chunked batching helpers: split large evaluations into pieces that fit in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


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
