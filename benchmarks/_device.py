"""``--device`` for the benchmarks: where the model and the inputs live, and a clock that waits for the GPU.

Each benchmark moves its model and inputs to ``--device`` (default ``cpu``); ours and the peer then run on
the same device, and every reading of the clock first waits for queued CUDA work (``torch.cuda.synchronize``),
so a ratio compares finished computations.
"""

from __future__ import annotations

import argparse
import time

import torch


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda or cuda:N: model and inputs there, ours and the peer alike")


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device on this machine")
    return device


def clock() -> float:
    """``time.perf_counter()`` after the GPU's queued work has finished (no wait on CPU-only runs)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"device {torch.cuda.get_device_name(device)}"
    return f"device cpu, threads {torch.get_num_threads()}"
