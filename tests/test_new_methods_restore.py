"""The methods added for issue 21 leave the user's model exactly as it was: parameters and buffers bitwise,
``training`` flags, ``requires_grad`` flags (a frozen layer stays frozen), no ``.grad`` on parameters, no
hooks left behind; also when the computation ends by an error or a cancel half way."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled
from xaiwidgets.core.progress import Progress

CASES = {
    "perceptual_ball": {"n_steps": 3, "max_rounds": 1},
    "masking_saliency": {"n_steps": 3},
    "qii": {"n_samples": 4, "mode": "sample", "segments": "grid"},
}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.f = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.f(x))


def snapshot(model: nn.Module) -> tuple:
    return ({k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()],
            [p.requires_grad for p in model.parameters()],
            [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()])


def assert_same(model: nn.Module, before: tuple) -> None:
    state, training, flags, hooks = before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()] == hooks


@pytest.fixture
def model() -> Net:
    net = Net()
    net.f[0].weight.requires_grad_(False)  # a frozen layer must stay frozen
    net.f[1].train()  # a mixed-mode model: one batch norm in training mode
    return net


@pytest.mark.parametrize("method", sorted(CASES))
def test_model_restored_after_a_run(model: Net, method: str) -> None:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    before = snapshot(model)
    with _maybe_warns():
        a = xw.attribute(model, x, method, target=1, **CASES[method])
    assert a.values.shape[0] == 2 and torch.isfinite(a.values).all()
    assert_same(model, before)


@pytest.mark.parametrize("method", sorted(CASES))
def test_model_restored_after_a_cancel(model: Net, method: str) -> None:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    before = snapshot(model)
    event = threading.Event()
    calls = []

    def on_update(_fraction: float, _message: str) -> None:
        calls.append(1)
        if len(calls) == 2:
            event.set()

    with pytest.raises(Cancelled), _maybe_warns():
        xw.attribute(model, x, method, target=1, progress=Progress(on_update, cancel_event=event), **CASES[method])
    assert_same(model, before)


class _maybe_warns:
    """Accept (and swallow) any warnings: the training-mode and missed-margin warnings are not the point."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
