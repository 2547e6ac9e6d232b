"""Demo tabular classifier: a small MLP on scikit-learn's breast-cancer data set (malignant / benign).

The model takes the 30 features standardised with the training set's mean and standard deviation
(``TabularMLP`` carries them as buffers, so it is fed raw feature values). Weights, statistics and a
background sample ship in ``weights/tabular_mlp.pt``; ``python -m xaiwidgets.demo.train_tabular`` retrains.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..core.tabular import TabularModel

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "tabular_mlp.pt"
LABELS = ("malignant", "benign")  # scikit-learn's target_names
N_FEATURES = 30


class TabularMLP(nn.Module):
    """Standardise, then 30 -> 32 -> 16 -> 2 with ReLU."""

    def __init__(self, n_features: int = N_FEATURES, n_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def breast_cancer_split(seed: int = 0, test_fraction: float = 0.25):
    """``(x_train, x_test, y_train, y_test, feature_names)`` as float32/long tensors (stratified split)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=test_fraction, random_state=seed, stratify=data.target
    )
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)
    as_y = lambda a: torch.tensor(a, dtype=torch.long)
    return as_x(x_tr), as_x(x_te), as_y(y_tr), as_y(y_te), [str(n) for n in data.feature_names]


def breast_cancer_classifier(weights: str | Path | None = None) -> TabularModel:
    """The demo MLP as a :class:`TabularModel` with feature names and its shipped background sample."""
    path = Path(weights) if weights is not None else WEIGHTS_PATH
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}; train them with python -m xaiwidgets.demo.train_tabular")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = TabularMLP()
    model.load_state_dict(blob["state_dict"])
    return TabularModel(
        model.eval(), feature_names=blob["feature_names"], background=blob["background"], labels=LABELS,
        name="breast-cancer MLP",
    )
