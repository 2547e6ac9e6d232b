"""Static PNG renderings of the widgets, for GitHub, nbviewer and other hosts without a kernel."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .colormaps import overlay_rgba

#: text in the static pictures is drawn literally: a label such as "$5 bill" is not mathtext (an unpaired
#: ``$`` made matplotlib raise and the picture was dropped), and never goes through LaTeX
_LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def fallback_png(widget: Any) -> bytes | None:
    """``widget._fallback_png()`` with text drawn literally; None when it has none or it fails (a static
    picture is optional: it must never break display or export)."""
    from matplotlib import rc_context

    render: Callable[[], bytes | None] | None = getattr(widget, "_fallback_png", None)
    if not callable(render):
        return None
    try:
        with rc_context(_LITERAL_TEXT):
            return render()
    except Exception:
        return None


def render_png(
    image: np.ndarray | None,
    panels: Sequence[tuple[str, np.ndarray | None, bool] | tuple[str, np.ndarray | None, bool, dict]],
    *,
    opacity: float = 0.6,
    colormap: str = "auto",
    clip_percentile: float = 99.5,
    absolute: bool = False,
    caption: str = "",
) -> bytes:
    """A PNG of the image with one overlay panel per ``(title, map, signed)`` entry; a fourth element, a
    dict, overrides the display options for that panel (``clip_percentile``, ``alpha``: a method's display
    defaults). The PNG never blurs: it shows the values as computed."""
    # a bare Figure renders to PNG without pyplot; never call matplotlib.use() here: it would switch the
    # notebook's own backend (inline plots stop showing after the first widget is displayed)
    from matplotlib.figure import Figure

    n = max(1, len(panels)) + (1 if image is not None else 0)
    fig = Figure(figsize=(2.4 * n, 2.7), dpi=80)
    axes = fig.subplots(1, n, squeeze=False)[0]
    i = 0
    if image is not None:
        axes[0].imshow(image)
        axes[0].set_title("input", fontsize=9)
        i = 1
    for entry, ax in zip(panels, axes[i:]):
        title, values, signed = entry[:3]
        own: dict = entry[3] if len(entry) > 3 else {}  # type: ignore[misc]
        if values is not None:
            rgba = overlay_rgba(values, signed, opacity=opacity, colormap=colormap, absolute=absolute,
                                clip_percentile=own.get("clip_percentile", clip_percentile),
                                alpha=own.get("alpha", "linear"))
            if image is not None and image.shape[:2] == values.shape:
                base = image.astype(np.float32) / 255.0
                alpha = rgba[..., 3:4]
                ax.imshow(base * (1 - alpha) + rgba[..., :3] * alpha)
            else:
                ax.imshow(rgba[..., :3])
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    if caption:
        fig.suptitle(caption, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
