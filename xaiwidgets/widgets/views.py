"""Which view shows an :class:`~xaiwidgets.core.attribution.Attribution` (``Attribution.show()``)."""

from __future__ import annotations

from typing import Any

from ..core.attribution import Attribution


def view_for(attribution: Attribution, index: int = 0, **view_options: Any) -> Any:
    """Text and tabular results (one value per token, word or column): a TokenView, AnchorView or
    ForcePlot; images: a ScrubberView when the result has frames (``return_frames=True``), an
    EstimateView when it has running estimates (``stream_every``: ``frame_kind="estimate"``), else a
    HeatmapView."""
    if attribution.values.dim() == 2 or attribution.method == "anchors":
        from .featureviews import feature_view

        return feature_view(attribution, index, **view_options)
    if attribution.frames is not None and attribution.frame_kind in ("ig_path", "noise"):
        from .scrubber import ScrubberView

        return ScrubberView.from_attribution(attribution, index=index, **view_options)
    if attribution.frames is not None and attribution.frame_kind == "estimate" and attribution.values.dim() == 4:
        from .estimate import EstimateView

        return EstimateView.from_attribution(attribution, index=index, **view_options)
    from .heatmap import HeatmapView

    return HeatmapView.from_attribution(attribution, index=index, **view_options)
