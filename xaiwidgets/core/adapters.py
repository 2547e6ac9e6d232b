"""Model adapters: an image classifier knows its preprocessing, its display mapping and its labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import model_device
from .targets import scores_from_output

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def tensor_to_display(x: torch.Tensor) -> np.ndarray:
    """Min-max map a ``(N, C, H, W)`` tensor to uint8 ``(N, H, W, 3)`` (per image) for display."""
    x = x.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        x = x[:, :3] if x.shape[1] > 3 else x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def image_to_tensor(image: Any) -> torch.Tensor:
    """A PIL image, uint8/float HxWx(1|3|4) array, or (C, H, W) tensor as float ``(1, 3, H, W)`` in [0, 1]."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, -1)
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"expected an image array (H, W, 3); got shape {arr.shape}")
        arr = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr, 3, -1)
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
        t = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
        return t.unsqueeze(0)
    if isinstance(image, torch.Tensor):
        t = image.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        return t
    raise TypeError(f"cannot read an image from {type(image).__name__}")


class ImageClassifier:
    """An image classifier with its preprocessing, display mapping and labels.

    ``preprocess`` maps a raw image (PIL, uint8 array) to a normalised ``(1, C, H, W)`` tensor; the default
    resizes to ``input_size`` and normalises with ``mean``/``std``. ``to_display`` inverts the
    normalisation for drawing. Methods accept the adapter wherever they accept a model.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        *,
        labels: Sequence[str] | None = None,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        input_size: int | tuple[int, int] | None = 224,
        preprocess: Callable[[Any], torch.Tensor] | None = None,
        name: str = "model",
    ) -> None:
        self.model = model
        self.labels = list(labels) if labels is not None else None
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else input_size
        self._preprocess = preprocess
        self.name = name

    def __repr__(self) -> str:
        n = len(self.labels) if self.labels else "?"
        return f"ImageClassifier({self.name}, {n} classes, input {self.input_size})"

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def eval(self) -> ImageClassifier:
        if isinstance(self.model, nn.Module):
            self.model.eval()
        return self

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        mean = torch.tensor(self.mean if self.mean else (0.0,) * c, dtype=x.dtype, device=x.device)
        std = torch.tensor(self.std if self.std else (1.0,) * c, dtype=x.dtype, device=x.device)
        return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)

    def preprocess(self, image: Any) -> torch.Tensor:
        """A raw image (or list of images) as a normalised batch on the model's device."""
        if isinstance(image, (list, tuple)):
            return torch.cat([self.preprocess(im) for im in image], 0)
        if self._preprocess is not None:
            x = self._preprocess(image)
            x = x.unsqueeze(0) if x.dim() == 3 else x
            return x.to(self.device)
        x = image_to_tensor(image)
        if self.input_size is not None and tuple(x.shape[-2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        mean, std = self._stats(x)
        return ((x - mean) / std).to(self.device)

    def to_display(self, x: torch.Tensor) -> np.ndarray:
        """Normalised ``(N, C, H, W)`` inputs back to uint8 ``(N, H, W, 3)`` images."""
        x = x.detach().float().cpu()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if self.mean is None and self.std is None:
            return tensor_to_display(x)
        mean, std = self._stats(x)
        x = (x * std + mean).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x[:, :3].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)

    def label(self, index: int) -> str:
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class {index}"

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        scores = scores_from_output(self.model(x.to(self.device)), x.shape[0])
        return scores.float().softmax(1)

    def top_k(self, x: torch.Tensor, k: int = 5) -> list[list[dict[str, Any]]]:
        """Top-``k`` predictions per sample: ``[{"index", "label", "prob"}, ...]``."""
        probs = self.probabilities(x)
        values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            [{"index": int(i), "label": self.label(int(i)), "prob": float(p)} for p, i in zip(pv, iv)]
            for pv, iv in zip(values.cpu(), indices.cpu())
        ]


def unwrap_model(model: object) -> tuple[Any, ImageClassifier | None]:
    """``(callable model, adapter or None)`` for a model or an adapter."""
    if isinstance(model, ImageClassifier):
        return model.model, model
    if not callable(model):
        raise TypeError(f"model must be a torch.nn.Module or a callable, got {type(model).__name__}")
    return model, None
