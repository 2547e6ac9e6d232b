"""Cancel is honoured promptly in every long loop: after the cancel flag is set, a method makes at most
a couple more model calls (the batch in flight and at most one more), then raises ``Cancelled``.

Counted in model calls rather than seconds, so the bound holds on a loaded machine.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled
from xaiwidgets.core.progress import Progress


class Counting(nn.Module):
    """A small CNN that counts its forward calls and raises the cancel flag at call ``cancel_at``."""

    def __init__(self, cancel_at: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                                      nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
        self.calls = 0
        self.cancel_at = cancel_at
        self.event = threading.Event()
        self.calls_at_cancel: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.cancel_at:
            self.event.set()
            self.calls_at_cancel = self.calls
        return self.head(self.features(x))


LONG = {
    "integrated_gradients": {"n_steps": 64, "batch_size": 2},
    "smoothgrad": {"n_samples": 40, "batch_size": 2},
    "expected_gradients": {"n_samples": 40, "batch_size": 2},
    "occlusion": {"window": 4, "stride": 2, "batch_size": 2},
    "rise": {"n_masks": 200, "batch_size": 4},
    "kernel_shap": {"n_samples": 400, "batch_size": 4, "segments": "grid", "segmentation_params": {"patch": 4}},
    "lime": {"n_samples": 400, "batch_size": 4, "segments": "grid", "segmentation_params": {"patch": 4}},
    "shapley_sampling": {"n_samples": 50, "batch_size": 4, "segments": "grid", "segmentation_params": {"patch": 4}},
    "extremal_perturbation": {"n_steps": 100},
    "perceptual_ball": {"n_steps": 100},
    "masking_saliency": {"n_steps": 100},
    "scorecam": {"batch_size": 1},
    "ablationcam": {"batch_size": 1},
}


@pytest.mark.parametrize("method", list(LONG))
def test_cancel_stops_within_two_model_calls(method: str) -> None:
    model = Counting(cancel_at=3).eval()
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    progress = Progress(tqdm=False, cancel_event=model.event)
    with pytest.raises(Cancelled):
        xw.attribute(model, x, method=method, target=1, progress=progress, **LONG[method])
    assert model.calls_at_cancel is not None, f"{method} finished in fewer than 3 model calls: make it longer"
    after = model.calls - model.calls_at_cancel
    assert after <= 2, f"{method}: {after} model calls after cancel"
