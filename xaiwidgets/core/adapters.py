"""Model adapters: an image classifier knows its preprocessing, its display mapping and its labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import model_device
from .errors import InputError
from .inputs import model_dtype
from .state import preserved
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


#: float images within this margin of [0, 1] are clipped to it (resampling overshoot, e.g. bicubic resizing)
UNIT_MARGIN = 0.1
#: a float image whose maximum exceeds this (and stays within [0, 255]) is taken as 8-bit data cast to float
EIGHT_BIT_FLOAT_MIN = 2.0


def unit_range(arr: np.ndarray) -> np.ndarray:
    """An image array's values as float32 in [0, 1], by its dtype (see ``ImageClassifier.preprocess``).

    Unsigned integers are divided by their dtype's maximum (uint8 by 255, uint16 by 65535: a 12-bit image
    stored in uint16 stays dark, as its container says). Signed integers (PIL's 32-bit mode ``"I"``, numpy's
    default int64) carry no bit depth: values in [0, 255] are taken as 8-bit, values up to 65535 as 16-bit,
    anything else is refused. Booleans are 0/1. Floats in [0, 1] (within ``UNIT_MARGIN``, then clipped) are
    used as they are; floats in [0, 255] reaching above ``EIGHT_BIT_FLOAT_MIN`` are 8-bit data cast to float
    and divided by 255; any other float range (negative values: an image normalised already; above 255;
    a maximum just above 1) raises :class:`InputError` saying what to pass instead.
    """
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        return (arr.astype(np.float64) / np.iinfo(arr.dtype).max).astype(np.float32)
    if np.issubdtype(arr.dtype, np.signedinteger):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InputError(
                f"an integer image ({arr.dtype}) with values in [{lo}, {hi}] has no known bit depth; pass "
                "uint8 or uint16 data, or floats in [0, 1]"
            )
        return (arr.astype(np.float64) / (255.0 if hi <= 255 else 65535.0)).astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"cannot read an image of dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.size == 0:
        return arr
    if not np.isfinite(arr).all():
        raise InputError("the image contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= -UNIT_MARGIN and hi <= 1.0 + UNIT_MARGIN:
        return np.clip(arr, 0.0, 1.0)
    if lo >= -0.5 and EIGHT_BIT_FLOAT_MIN < hi <= 255.5:
        return np.clip(arr / 255.0, 0.0, 1.0)
    hint = (
        "it looks normalised already: pass it to xw.explain / xw.attribute as a (C, H, W) or (1, C, H, W) "
        "torch tensor (tensors skip preprocessing), or pass the raw image" if lo < 0 else
        "16-bit data: pass the uint16 array (scaled by 65535) or divide by its range" if hi > 255.5 else
        "scale it to [0, 1] (or pass 8-bit data as uint8)"
    )
    raise InputError(
        f"a float image must hold values in [0, 1] (or 8-bit values in [0, 255]); this one is in "
        f"[{lo:.4g}, {hi:.4g}]: {hint}"
    )


def _pil_array(image: Any) -> np.ndarray:
    """A PIL image as an array, keeping 16-bit, 32-bit integer and float modes (``convert('RGB')`` clips them)."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        arr = np.asarray(image)
        return arr.astype(arr.dtype.newbyteorder("=")) if not arr.dtype.isnative else arr
    return np.asarray(image.convert("RGB"))


def image_to_tensor(image: Any) -> torch.Tensor:
    """A PIL image, HxWx(1|3|4) or HxW array, or ``(C, H, W)`` / ``(N, C, H, W)`` tensor as float32
    ``(N, 3, H, W)`` in [0, 1], scaled by dtype as :func:`unit_range` says (uint8 and uint16 by their
    range; floats in [0, 1] or [0, 255]; anything else raises :class:`InputError`)."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        image = _pil_array(image)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise InputError(f"expected an image array (H, W, 3); got shape {arr.shape}")
        arr = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr, 3, -1)
        t = torch.from_numpy(np.ascontiguousarray(unit_range(arr))).permute(2, 0, 1)
        return t.unsqueeze(0)
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()  # numpy has no bfloat16
        t = torch.from_numpy(unit_range(t.cpu().numpy())).to(image.device)
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

    @property
    def dtype(self) -> torch.dtype | None:
        """The floating dtype of the model's parameters (None for a callable without parameters)."""
        return model_dtype(self.model)

    def _to_model(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the model's device, floating values in the model's dtype (float16/bfloat16 models)."""
        dtype = self.dtype if x.is_floating_point() else None
        return x.to(self.device, dtype=dtype) if dtype is not None else x.to(self.device)

    def preprocess(self, image: Any) -> torch.Tensor:
        """A raw image (or list of images) as a normalised batch on the model's device, in its dtype.

        Without a ``preprocess`` callable: the image's values are taken to [0, 1] by dtype (uint8 / 255,
        uint16 and PIL ``I;16`` / 65535; floats in [0, 1] as they are, floats in [0, 255] / 255; other
        float ranges, e.g. an image normalised already, raise :class:`InputError`: see
        :func:`unit_range`), resized to ``input_size`` and normalised by ``mean``/``std`` in float32, then
        cast to the model's dtype.
        """
        if isinstance(image, (list, tuple)):
            return torch.cat([self.preprocess(im) for im in image], 0)
        if self._preprocess is not None:
            x = self._preprocess(image)
            x = x.unsqueeze(0) if x.dim() == 3 else x
            return self._to_model(x)
        x = image_to_tensor(image)
        if self.input_size is not None and tuple(x.shape[-2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        mean, std = self._stats(x)
        return self._to_model((x - mean) / std)

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
        with preserved(self.model):  # under the model's lock: another thread's hooks are never on it
            scores = scores_from_output(self.model(self._to_model(x)), x.shape[0])
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
