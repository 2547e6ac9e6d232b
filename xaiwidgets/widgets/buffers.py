"""Arrays to wire format: dicts of ``{dtype, shape, data}`` with raw bytes, never JSON lists.

Heatmaps are quantised to uint8 with ``(vmin, vmax)``; see ``docs/widget-protocol.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def array_payload(array: Any, dtype: str | None = None) -> dict[str, Any]:
    """An array dict carrying the raw bytes of ``array`` (C order), optionally cast to ``dtype``."""
    arr = _to_numpy(array)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    arr = np.ascontiguousarray(arr)
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": memoryview(arr.tobytes())}


def image_payload(image: Any) -> dict[str, Any]:
    """A uint8 ``(H, W, 3)`` image as an array dict."""
    arr = _to_numpy(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"display images are (H, W, 3); got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return array_payload(arr)


#: the longest side of an image or map sent to the browser; larger inputs are shown downscaled
MAX_DISPLAY_SIDE = 1024


def display_shape(shape: tuple[int, ...], max_side: int = MAX_DISPLAY_SIDE) -> tuple[int, int]:
    """``(H, W)`` of ``shape[:2]`` scaled down (aspect kept) so that neither side exceeds ``max_side``."""
    h, w = int(shape[0]), int(shape[1])
    scale = min(1.0, max_side / max(h, w, 1))
    return max(1, round(h * scale)), max(1, round(w * scale))


def fit_display(array: Any, size: tuple[int, int]) -> np.ndarray:
    """A ``(H, W)`` map or ``(H, W, 3)`` uint8 image resampled to ``size`` (antialiased bilinear, so a
    downscaled map keeps local means); returned unchanged when it already has that size."""
    arr = _to_numpy(array)
    if tuple(arr.shape[:2]) == tuple(size):
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    t = t[None, None] if arr.ndim == 2 else t.permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    out = t[0, 0].numpy() if arr.ndim == 2 else t[0].permute(1, 2, 0).numpy()
    return out.round().clip(0, 255).astype(np.uint8) if arr.dtype == np.uint8 else out.astype(np.float32)


def value_range(values: np.ndarray, signed: bool) -> tuple[float, float]:
    """``(vmin, vmax)`` of a map: symmetric around zero when ``signed``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 0.0
    if signed:
        m = float(np.abs(finite).max())
        return -m, m
    return float(finite.min()), float(finite.max())


def quantize(values: Any, vmin: float, vmax: float) -> np.ndarray:
    """``round((v - vmin) / (vmax - vmin) * 255)`` clipped to uint8; all zeros when vmin == vmax."""
    arr = _to_numpy(values).astype(np.float64)
    if vmax <= vmin:
        return np.zeros(arr.shape, dtype=np.uint8)
    q = np.round((arr - vmin) / (vmax - vmin) * 255.0)
    return np.clip(np.nan_to_num(q, nan=0.0), 0, 255).astype(np.uint8)


def dequantize(q: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Inverse of :func:`quantize` (up to half a quantisation step)."""
    return vmin + q.astype(np.float32) / 255.0 * (vmax - vmin)


def heatmap_payload(values: Any, signed: bool | None = None) -> dict[str, Any]:
    """A ``(H, W)`` map as a quantised uint8 array dict with ``vmin``/``vmax``."""
    arr = _to_numpy(values).astype(np.float32)
    if arr.ndim != 2:
        raise ValueError(f"heatmaps are (H, W); got shape {arr.shape}")
    if signed is None:
        signed = bool((arr < 0).any() and (arr > 0).any())
    vmin, vmax = value_range(arr, signed)
    payload = array_payload(quantize(arr, vmin, vmax))
    payload.update(vmin=vmin, vmax=vmax)
    return payload
