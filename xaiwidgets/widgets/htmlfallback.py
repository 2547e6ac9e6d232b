"""Static HTML next to the widget view in the mime bundle (text reads better as text than as a PNG)."""

from __future__ import annotations

import html
from typing import Any

from .base import PngFallbackWidget

# Signed colours of the text views and the force plot (js/src/lib/signed.ts holds the same numbers).
POSITIVE = (255, 13, 87)
NEGATIVE = (30, 136, 229)
MAX_ALPHA = 0.8


def signed_rgba(value: float, clip: float, signed: bool = True) -> str:
    """CSS ``rgba()`` of a value: red above zero, blue below, alpha ``MAX_ALPHA * min(1, |v| / clip)``."""
    if not clip > 0 or value != value:  # zero range or NaN
        return "rgba(0,0,0,0)"
    r, g, b = POSITIVE if (value >= 0 or not signed) else NEGATIVE
    alpha = MAX_ALPHA * min(1.0, abs(value) / clip)
    return f"rgba({r},{g},{b},{alpha:.3f})"


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


class HtmlFallbackWidget(PngFallbackWidget):
    """A widget whose mime bundle also carries ``text/html`` (for GitHub, nbviewer, HTML exports)."""

    def _fallback_html(self) -> str | None:
        return None

    def _repr_mimebundle_(self, **kwargs: Any):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        try:
            page = self._fallback_html()
        except Exception:  # a fallback must never break display
            page = None
        if page:
            data = dict(data)
            data["text/html"] = page
        return data, metadata
