"""Kernel-side colour mapping for the PNG fallback (the browser has its own in ``js/src/lib``)."""

from __future__ import annotations

import numpy as np


def _cmap_name(colormap: str, signed: bool) -> str:
    if colormap == "auto":
        return "bwr" if signed else "viridis"
    return {"diverging": "bwr"}.get(colormap, colormap)


def overlay_rgba(
    values: np.ndarray,
    signed: bool,
    *,
    opacity: float = 0.6,
    colormap: str = "auto",
    clip_percentile: float = 99.5,
    absolute: bool = False,
    alpha: str = "linear",
) -> np.ndarray:
    """RGBA float ``(H, W, 4)``: colour from the colour map, alpha = opacity * f(normalised magnitude m),
    f = m ("linear"), sqrt(m) ("sqrt") or 1 where m > 0 ("flat"), as the browser (js/src/lib/overlay.ts)."""
    from matplotlib import colormaps

    v = np.abs(values) if absolute else values.astype(np.float32)
    signed = signed and not absolute
    mag = np.abs(v)
    clip = float(np.percentile(mag, clip_percentile)) if mag.size else 0.0
    clip = clip if clip > 0 else float(mag.max()) or 1.0
    if signed:
        norm = np.clip(v / clip, -1, 1)
        colour_pos = (norm + 1) / 2
        strength = np.abs(norm)
    else:
        lo = float(v.min())
        norm = np.clip((v - lo) / max(clip - lo, 1e-12), 0, 1)
        colour_pos = norm
        strength = norm
    rgba = colormaps[_cmap_name(colormap, signed)](colour_pos).astype(np.float32)
    if alpha == "sqrt":
        strength = np.sqrt(strength)
    elif alpha == "flat":
        strength = (strength > 0).astype(np.float32)
    rgba[..., 3] = opacity * strength
    return rgba
