"""Every method family once on a CUDA device: `bash scripts/gpu-check.sh` runs these (`-m cuda`).

Without a GPU they skip, with the reason, and this is the one documented skip of the suite (README,
"Testing"). On a GPU each check asserts, for one method of each family:

* **the CPU's result**: the same call on a CPU copy of the model agrees within 1e-4 of the map's maximum.
  float32 on both sides, cuDNN's TF32 and non-deterministic algorithms off for the test: what remains is
  the summation order of other convolution/reduction kernels (a relative ~1e-6 per layer on these small
  models, a few layers deep). Methods that draw random numbers on the device (SmoothGrad's noise,
  KernelSHAP's coalitions, feature visualisation's initial image) use CUDA's generator, whose stream
  differs from the CPU's: they are compared by Pearson correlation with the CPU's map instead (>= 0.85:
  on the CPU two SmoothGrad estimates of 64 samples with different seeds correlate at 0.95, two
  KernelSHAP estimates of 256 samples at 0.998);
* **results stay on the device**: ``values`` is a CUDA tensor;
* **no host-device copies in the hot loop**: with ``torch.cuda.set_sync_debug_mode("warn")`` every
  synchronising operation (``.item()``, ``.cpu()``, ``nonzero``...) warns; the number of warnings must not
  grow with the loop's length (a short and a long run of the same method, e.g. 8 vs 32 IG steps in chunks
  of 4, synchronise equally often): per-call setup may synchronise, a per-step copy may not;
* **memory is freed**: ``torch.cuda.memory_allocated()`` is back to its value before the call once the
  result is dropped.
"""

from __future__ import annotations

import copy
import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device: the cuda tests run on a GPU machine with bash scripts/gpu-check.sh"),
]

RTOL_OF_MAX = 1e-4


class SmallNet(nn.Module):
    """Conv-BN-ReLU x2, max-pool, GAP, linear: every layer type the LRP rules and DeepLIFT handle."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 5)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[nn.Module, nn.Module]]:
    cpu = SmallNet().eval()
    gpu = copy.deepcopy(cpu).cuda()
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    yield cpu, gpu
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = flags


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def count_syncs(fn: Callable[[], Any]) -> tuple[Any, int]:
    """``(fn(), number of synchronising CUDA operations it ran)``."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            out = fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return out, sum("synchroniz" in str(w.message) for w in caught)


def assert_frees_memory(fn: Callable[[], Any]) -> None:
    """After ``fn()``'s result is dropped, the allocator holds what it held before."""
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out = fn()
    del out
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before


def check_family(method: str, cpu: nn.Module, gpu: nn.Module, x: torch.Tensor, short: dict[str, Any],
                 long: dict[str, Any], *, random: bool = False) -> None:
    target = [1, 3]
    expected = xw.attribute(cpu, x, method=method, target=target, progress=False, **long).values

    def run(params: dict[str, Any]) -> Any:
        return xw.attribute(gpu, x.cuda(), method=method, target=target, progress=False, **params)

    result, long_syncs = count_syncs(lambda: run(long))
    _, short_syncs = count_syncs(lambda: run(short))
    values = result.values
    assert values.device.type == "cuda", f"{method}: the result left the device"
    assert bool(torch.isfinite(values).all())
    got = values.detach().cpu()
    if random:
        r = np.corrcoef(got.flatten().numpy(), expected.flatten().numpy())[0, 1]
        assert r >= 0.85, f"{method}: Pearson {r:.3f} with the CPU's map"
    else:
        scale = float(expected.abs().max())
        assert float((got - expected).abs().max()) <= RTOL_OF_MAX * scale, method
    assert long_syncs <= short_syncs, f"{method}: {long_syncs} syncs for the long run, {short_syncs} for the short"
    del result, values
    assert_frees_memory(lambda: run(short))


#: 16 square segments of 8x8 for KernelSHAP: the same features on both devices
GRID = (torch.arange(32)[:, None] // 8 * 4 + torch.arange(32)[None, :] // 8).long()

FAMILIES: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    # method: (short run, long run: the same work in more chunks or steps, random on the device)
    "saliency": ({}, {}, False),
    "integrated_gradients": ({"n_steps": 8, "batch_size": 4}, {"n_steps": 32, "batch_size": 4}, False),
    "smoothgrad": ({"n_samples": 16, "batch_size": 4}, {"n_samples": 64, "batch_size": 4}, True),
    "gradcam": ({"layer": "features.4"}, {"layer": "features.4"}, False),
    "lrp_epsilon": ({}, {}, False),
    "deeplift": ({"batch_size": 4}, {"batch_size": 4}, False),
    "occlusion": ({"window": 8, "stride": 8, "batch_size": 4}, {"window": 8, "stride": 4, "batch_size": 4}, False),
    "kernel_shap": ({"n_samples": 64, "batch_size": 16, "segments": GRID},
                    {"n_samples": 256, "batch_size": 16, "segments": GRID}, True),
}


@pytest.mark.parametrize("method", list(FAMILIES))
def test_family_on_cuda(models, inputs, method) -> None:
    cpu, gpu = models
    short, long, random = FAMILIES[method]
    check_family(method, cpu, gpu, inputs, short, long, random=random)


def test_metric_on_cuda(models, inputs) -> None:
    from xaiwidgets.metrics import deletion

    cpu, gpu = models
    a_cpu = xw.attribute(cpu, inputs, method="saliency", target=[1, 3], progress=False)
    expected = deletion(cpu, inputs, a_cpu.values, target=[1, 3], n_steps=16, progress=False).scores
    x = inputs.cuda()
    a = a_cpu.values.cuda()
    curve, long_syncs = count_syncs(lambda: deletion(gpu, x, a, target=[1, 3], n_steps=32, progress=False))
    _, short_syncs = count_syncs(lambda: deletion(gpu, x, a, target=[1, 3], n_steps=8, progress=False))
    short_curve = deletion(gpu, x, a, target=[1, 3], n_steps=16, progress=False)
    np.testing.assert_allclose(np.asarray(short_curve.scores), np.asarray(expected), rtol=0,
                               atol=RTOL_OF_MAX * float(np.abs(np.asarray(expected)).max()))
    assert long_syncs <= short_syncs
    del curve, short_curve
    assert_frees_memory(lambda: deletion(gpu, x, a, target=[1, 3], n_steps=8, progress=False))


def test_featurevis_on_cuda(models) -> None:
    from xaiwidgets import featurevis as fv

    _cpu, gpu = models

    def run(steps: int) -> Any:
        return fv.maximize(gpu, fv.channel("features.4", 3), size=32, n_steps=steps, progress=False)

    res, long_syncs = count_syncs(lambda: run(32))
    _, short_syncs = count_syncs(lambda: run(8))
    assert bool(torch.isfinite(res.images).all()) and res.objective_values.shape[0] == 32
    assert float(res.objective_values[-1].mean()) > float(res.objective_values[0].mean())  # it optimises
    assert long_syncs <= short_syncs
    del res
    assert_frees_memory(lambda: run(8))
