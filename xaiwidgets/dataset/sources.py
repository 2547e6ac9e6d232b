"""Index-addressable views of the data a user hands to :func:`~xaiwidgets.explain_dataset`.

Every source answers ``len()`` and ``load(i) -> (input (C, H, W) float tensor, label or -1)``, so a run
can compute any chunk of items on its own (resume, Ray actors) and in the same order each time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.adapters import ImageClassifier, image_to_tensor
from ..core.errors import InputError

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class UnreadableItem(InputError):
    """An item (usually an image file) could not be read; the message names it."""

    def __init__(self, index: int, what: str, reason: str) -> None:
        super().__init__(f"item {index}: cannot read {what}: {reason}")
        self.index, self.what, self.reason = index, what, reason


def _is_raw_image(obj: Any) -> bool:
    import numpy as np

    return isinstance(obj, (str, os.PathLike, np.ndarray)) or (hasattr(obj, "convert") and hasattr(obj, "size"))


class Source:
    """A sequence of ``(input, label)`` items; raw images go through the adapter's preprocessing."""

    def __init__(self, items: Any, adapter: ImageClassifier | None, kind: str) -> None:
        self.items = items
        self.adapter = adapter
        self.kind = kind

    def __len__(self) -> int:
        return len(self.items)

    def _to_tensor(self, index: int, obj: Any) -> torch.Tensor:
        what = f"{obj!s}" if isinstance(obj, (str, os.PathLike)) else f"a {type(obj).__name__}"
        if isinstance(obj, (str, os.PathLike)):
            try:
                from PIL import Image

                with Image.open(obj) as im:
                    obj = im.convert("RGB")
            except Exception as exc:  # PIL raises many types for a bad file
                raise UnreadableItem(index, f"file {what}", f"{type(exc).__name__}: {exc}") from exc
        if isinstance(obj, torch.Tensor):
            x = obj.detach()
            if x.dim() == 4 and x.shape[0] == 1:
                x = x[0]
            if x.dim() != 3:
                raise InputError(f"item {index}: expected an image tensor (C, H, W); got shape {tuple(x.shape)}")
            return x.float().cpu()
        if not _is_raw_image(obj):
            raise InputError(f"item {index}: cannot read an image from {type(obj).__name__}")
        if self.adapter is not None:
            return self.adapter.preprocess(obj)[0].float().cpu()
        return image_to_tensor(obj)[0]

    def load(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            item = self.items[index]
        except (OSError, ValueError) as exc:  # e.g. an ImageFolder or user Dataset failing to open a file
            raise UnreadableItem(index, self._name(index), f"{type(exc).__name__}: {exc}") from exc
        label: Any = -1
        if isinstance(item, (tuple, list)) and len(item) == 2:
            item, label = item
        if isinstance(label, torch.Tensor):
            if label.numel() != 1:
                raise InputError(f"item {index}: the label must be one class index; got shape {tuple(label.shape)}")
            label = label.item()
        try:
            label = int(label) if label is not None else -1
        except (TypeError, ValueError) as exc:
            raise InputError(f"item {index}: the label must be an int class index; got {label!r}") from exc
        return self._to_tensor(index, item), label

    def _name(self, index: int) -> str:
        samples = getattr(self.items, "samples", None)
        if samples is not None and index < len(samples):
            return f"file {samples[index][0]}"
        return f"item {index}"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": len(self)}


class _TensorItems:
    """An ``(N, C, H, W)`` tensor, optionally with labels, as a sequence of items."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor | None) -> None:
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> Any:
        return self.x[i] if self.labels is None else (self.x[i], self.labels[i])


class _FolderItems:
    """A ``torchvision.datasets.ImageFolder`` layout read lazily (file paths, class index from the folder)."""

    def __init__(self, root: Path) -> None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not classes:
            raise InputError(f"{root} holds no class folders (expected the ImageFolder layout root/class/image)")
        self.classes = classes
        self.samples = [
            (str(f), c)
            for c, name in enumerate(classes)
            for f in sorted((root / name).rglob("*"))
            if f.suffix.lower() in _IMAGE_SUFFIXES
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.samples[i]


def make_source(data: Any, adapter: ImageClassifier | None, labels: Sequence[int] | None = None) -> Source:
    """Wrap a Dataset, DataLoader, tensor, list of images/paths or an ImageFolder path as a :class:`Source`."""
    if isinstance(data, torch.utils.data.DataLoader):
        if isinstance(data.dataset, torch.utils.data.IterableDataset):
            raise InputError("an IterableDataset cannot be resumed by index; pass a map-style Dataset")
        return Source(data.dataset, adapter, "dataloader")
    if isinstance(data, torch.Tensor):
        if data.dim() != 4:
            raise InputError(f"a tensor of inputs must be (N, C, H, W); got shape {tuple(data.shape)}")
        lab = torch.as_tensor(labels) if labels is not None else None
        if lab is not None and lab.shape[0] != data.shape[0]:
            raise InputError(f"{lab.shape[0]} labels for {data.shape[0]} inputs")
        return Source(_TensorItems(data.detach().cpu(), lab), adapter, "tensor")
    if isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if not root.is_dir():
            raise InputError(f"{root} is not a directory (an image folder path must be a directory)")
        return Source(_FolderItems(root), adapter, "image_folder")
    if isinstance(data, torch.utils.data.IterableDataset):
        raise InputError("an IterableDataset cannot be resumed by index; pass a map-style Dataset")
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise InputError(f"cannot explain a dataset of type {type(data).__name__}: pass a map-style Dataset, a "
                         "DataLoader, an (N, C, H, W) tensor, a list of images or paths, or an image folder path")
    if labels is not None:
        if len(labels) != len(data):
            raise InputError(f"{len(labels)} labels for {len(data)} items")
        data = list(zip(data, labels))
    return Source(data, adapter, "list" if isinstance(data, (list, tuple)) else "dataset")
