"""IG and SmoothGrad stream "frames" snapshots through Progress.emit while they compute."""

from __future__ import annotations

import torch

import xaiwidgets as xw
from xaiwidgets.core.progress import Progress


def _collect(model, method: str, **params) -> tuple[list[dict], xw.Attribution]:
    events: list[dict] = []
    progress = Progress(tqdm=False, on_event=lambda kind, data: events.append(data) if kind == "frames" else None)
    result = xw.attribute(model, torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0)),
                          method=method, return_frames=True, progress=progress, **params)
    return events, result


def test_ig_streams_growing_snapshots_ending_in_the_final_frames(tiny_cnn) -> None:
    events, result = _collect(tiny_cnn, "integrated_gradients", n_steps=12, batch_size=4)
    counts = [e["alphas"].numel() for e in events]
    assert counts == sorted(counts) and len(counts) == 3 and counts[-1] == 12
    last = events[-1]
    for key in ("alphas", "path_scores", "gradient_maps", "partial_maps"):
        torch.testing.assert_close(last[key], result.frames[key])


def test_ig_auto_streams_once_per_refinement_level(tiny_cnn) -> None:
    events, result = _collect(tiny_cnn, "integrated_gradients", n_steps="auto", tolerance=1e-4, max_steps=64)
    assert len(events) == len(result.extras["refinement"])
    assert events[-1]["alphas"].numel() == result.frames["alphas"].numel()


def test_smoothgrad_streams_running_mean(tiny_cnn) -> None:
    events, result = _collect(tiny_cnn, "smoothgrad", n_samples=6, batch_size=2, seed=3)
    assert [e["running_maps"].shape[1] for e in events] == [2, 4, 6]
    torch.testing.assert_close(events[-1]["running_maps"][:, -1], result.values.sum(1))
