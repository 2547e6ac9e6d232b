"""Localisation from a saliency map: the bounding box protocol of the Grad-CAM paper.

Selvaraju et al. 2017 (arXiv:1610.02391, sec. 4.1) follow the ILSVRC weakly supervised localisation
protocol of Zhou et al. 2016: threshold the map at a fraction (15 %) of its maximum and take the box
around the largest connected segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import InputError, ParameterError

try:  # scipy ships with scikit-image (a dependency); the flood fill below is the fallback
    from scipy import ndimage as _ndimage
except ImportError:  # pragma: no cover - exercised only without scipy
    _ndimage = None


def _as_2d(saliency: Any) -> np.ndarray:
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().float().cpu().numpy()
    arr = np.asarray(saliency, dtype=np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"bounding_box takes one (H, W) map (or (1, H, W), (1, 1, H, W)); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("the map contains NaN or infinite values")
    return arr


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: scipy.ndimage.label, else a breadth-first flood fill."""
    if _ndimage is not None:
        labels, count = _ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        return labels, int(count)
    labels = np.zeros(mask.shape, dtype=np.int64)
    count = 0
    h, w = mask.shape
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        count += 1
        labels[y0, x0] = count
        stack = [(y0, x0)]
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not labels[v, u]:
                        labels[v, u] = count
                        stack.append((v, u))
    return labels, count


def bounding_box(saliency: Any, threshold: float = 0.15) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (ends exclusive, like ``make_shapes`` boxes) of the largest 8-connected segment
    of ``saliency > threshold * saliency.max()``; ``None`` when the map has no positive value.

    ``saliency`` is an ``(H, W)`` tensor or array (or ``(1, H, W)``, ``(1, 1, H, W)``), e.g.
    ``attribution.values[i, 0]``. Ties between equally large segments go to the one holding the maximum.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ParameterError(f"threshold must be a fraction of the maximum in [0, 1), got {threshold!r}")
    arr = _as_2d(saliency)
    peak = float(arr.max())
    if peak <= 0:
        return None
    mask = arr > threshold * peak
    labels, count = _label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    best = np.flatnonzero(sizes == sizes.max()) + 1
    at_peak = labels[np.unravel_index(int(np.argmax(arr)), arr.shape)]
    chosen = at_peak if at_peak in best else int(best[0])
    ys, xs = np.nonzero(labels == chosen)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
