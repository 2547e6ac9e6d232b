"""CPU chunk sizes are bounded by memory, not only by throughput (course labs on Binder get 1-2 GB)."""

from __future__ import annotations

import torch

import xaiwidgets as xw
from xaiwidgets.core import batching
from xaiwidgets.featurevis import patches


def _activation_bytes_per_row(model: torch.nn.Module, x: torch.Tensor) -> int:
    """What the planner's first call measures: saved-for-backward bytes plus 3x the largest module output."""
    with batching._SavedBytes() as probe:
        xr = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xr)[:, 0].sum(), xr)
    return probe.total


def test_available_memory_reads_the_machine() -> None:
    free = batching.available_memory()
    assert free is not None and free > 0  # Linux: /proc/meminfo (and a cgroup limit where one is set)
    assert 16 * 2**20 <= batching.cpu_chunk_budget() <= batching.CPU_CHUNK_BYTES


def test_saved_bytes_counts_activations_not_parameters(tiny_cnn: torch.nn.Module) -> None:
    x = torch.randn(1, 3, 32, 32)
    one, four = _activation_bytes_per_row(tiny_cnn, x), _activation_bytes_per_row(tiny_cnn, x.repeat(4, 1, 1, 1))
    # per-row memory: four rows save four times as much (the parameters, which do not grow, are not counted)
    assert one > 0 and abs(four - 4 * one) <= 0.02 * four


def test_ig_chunks_fit_the_memory_budget(monkeypatch, tiny_cnn: torch.nn.Module) -> None:
    x = torch.randn(1, 3, 32, 32)
    per_row = _activation_bytes_per_row(tiny_cnn, x)
    monkeypatch.setattr(batching, "cpu_chunk_budget", lambda: 3 * per_row + per_row // 2)
    a = xw.attribute(tiny_cnn, x, "integrated_gradients", n_steps=32, target=0)
    rows = [r for r, _ in a.extras["chunk_history"]]
    # one measuring row, then chunks of at most 3 rows (which sizes up to 3 the speed probing picks varies with load)
    assert rows[0] == 1 and max(rows) <= 3 and sum(rows) == 32, rows
    # the result does not depend on the chunking (the same path points and weights, float32 summation order)
    b = xw.attribute(tiny_cnn, x, "integrated_gradients", n_steps=32, target=0, batch_size=32)
    scale = float(b.values.abs().max())
    assert torch.allclose(a.values, b.values, rtol=0, atol=64 * torch.finfo(torch.float32).eps * scale)


def test_receptive_field_in_memory_sized_chunks_is_unchanged(monkeypatch, tiny_cnn: torch.nn.Module) -> None:
    """Probes in chunks of one give the field of the default chunks (the support is a union over probes)."""
    whole = patches.receptive_field(tiny_cnn, "features.2", (3, 24, 24))
    monkeypatch.setattr(batching, "cpu_chunk_budget", lambda: 1)  # every chunk is one probe
    assert patches.receptive_field(tiny_cnn, "features.2", (3, 24, 24)) == whole == patches.ReceptiveField(
        size=(5, 5), stride=(1, 1), offset=(-2, -2), map_size=(24, 24))  # two 3x3 convs, padding 1
