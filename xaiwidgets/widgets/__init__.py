"""Widgets: anywidget classes that turn results into buffers and route requests to methods."""

from .dashboard import ExplainDashboard, explain
from .export import to_html
from .heatmap import HeatmapView
from .scrubber import ScrubberView

__all__ = ["ExplainDashboard", "HeatmapView", "ScrubberView", "explain", "to_html"]
