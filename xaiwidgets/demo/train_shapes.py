"""Train the demo shapes CNN on CPU and write its weights: ``python -m xaiwidgets.demo.train_shapes``.

Training data: ``make_shapes(n_train, seed=0)``; test data: ``make_shapes(n_test, seed=1)`` (held out:
generated from another seed, never trained on). AdamW with a one-cycle schedule, cross-entropy; a couple
of minutes on two CPU cores. The state dict is saved in float32 (about 70 kB).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .shapes import make_shapes
from .shapes_model import SHAPES_MEAN, SHAPES_STD, WEIGHTS_FILE, ShapesCNN

TRAIN_SEED = 0
TEST_SEED = 1
DEFAULT_OUT = Path(__file__).resolve().parent / "weights" / WEIGHTS_FILE


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(SHAPES_MEAN).view(1, -1, 1, 1)
    std = torch.tensor(SHAPES_STD).view(1, -1, 1, 1)
    return (images - mean) / std


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on normalised ``images``."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        correct += int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
    return correct / max(1, len(labels))


def train(
    n_train: int = 10000, n_test: int = 2000, epochs: int = 3, batch_size: int = 128, lr: float = 4e-3,
    seed: int = 0, log: bool = True,
) -> tuple[ShapesCNN, float]:
    """A trained :class:`ShapesCNN` and its test accuracy on the held-out seed."""
    torch.manual_seed(seed)
    train_data, test_data = make_shapes(n_train, seed=TRAIN_SEED), make_shapes(n_test, seed=TEST_SEED)
    x_train, y_train = normalise(train_data.images), train_data.labels
    x_test, y_test = normalise(test_data.images), test_data.labels

    model = ShapesCNN()
    steps = epochs * ((n_train + batch_size - 1) // batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    shuffle = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=shuffle)
        total = 0.0
        for i in range(0, n_train, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        if log:
            acc = accuracy(model, x_test, y_test)
            print(
                f"epoch {epoch + 1}/{epochs}: train loss {total / n_train:.4f}, test accuracy {acc:.4f} "
                f"({time.perf_counter() - start:.0f} s)"
            )
    model.eval()
    return model, accuracy(model, x_test, y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the state dict")
    args = parser.parse_args(argv)

    model, acc = train(args.n_train, args.n_test, args.epochs, args.batch_size, args.lr, args.seed)
    print(f"test accuracy (seed {TEST_SEED}, {args.n_test} images): {acc:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
