"""The view of a text or tabular result: AnchorView for anchors, TokenView for texts, ForcePlot for rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .anchor import AnchorView
from .forceplot import ForcePlot, _is_text
from .tokens import TokenView

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution


def feature_view(attribution: Attribution, index: int = 0, **options: Any) -> AnchorView | TokenView | ForcePlot:
    """AnchorView (anchors), TokenView (text: one value per token or word) or ForcePlot (tabular rows: all
    rows stacked when there are several, row ``index`` drawn below)."""
    a = attribution
    n = len(a)
    if not 0 <= index < n:
        raise IndexError(f"index {index} is out of range for {n} explained inputs")
    ex = a.extras or {}
    if a.method == "anchors" or ("precision" in ex and "anchor" in ex):
        return AnchorView.from_attribution(a, index, **options)
    if _is_text(ex):
        return TokenView.from_attribution(a, index, **options)
    plot = ForcePlot.from_attribution(a, **options)
    if n > 1:
        plot.selected = index
    return plot
