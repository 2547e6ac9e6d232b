"""Widgets: anywidget classes that turn results into buffers and route requests to methods."""

from .anchor import AnchorView
from .dashboard import ExplainDashboard, explain
from .estimate import EstimateView, stream
from .evaluation import EvaluationView, evaluate
from .explorer import DatasetExplorer, explore
from .export import to_html
from .forceplot import ForcePlot
from .gallery import FeatureGallery, feature_gallery
from .heatmap import HeatmapView
from .scrubber import ScrubberView
from .shapplots import TabularPlots
from .tokens import TokenView

__all__ = [
    "AnchorView", "DatasetExplorer", "EstimateView", "EvaluationView", "ExplainDashboard", "FeatureGallery",
    "ForcePlot", "HeatmapView", "ScrubberView", "TabularPlots", "TokenView", "evaluate", "explain", "explore",
    "feature_gallery", "stream", "to_html",
]
