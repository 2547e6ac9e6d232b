"""xaiwidgets: explain PyTorch models in the notebook.

>>> import xaiwidgets as xw
>>> a = xw.attribute(model, inputs, method="saliency")
>>> a.show()
>>> xw.explain(xw.demo.imagenet_classifier(), xw.demo.load_image("chelsea"))
"""

from . import analysis, core, dataset, demo, featurevis, methods, metrics, plots
from .api import attribute
from .core import Attribution, ImageClassifier, TabularModel, TextClassifier
from .dataset import DatasetExplanations, explain_dataset, open_explanations
from .plots import TabularPlots, beeswarm, waterfall
from .widgets import (
    AnchorView,
    DatasetExplorer,
    EvaluationView,
    ExplainDashboard,
    FeatureGallery,
    ForcePlot,
    HeatmapView,
    ScrubberView,
    TokenView,
    evaluate,
    explain,
    explore,
    to_html,
)

__version__ = "0.1.0"

__all__ = [
    "AnchorView", "Attribution", "DatasetExplanations", "DatasetExplorer", "EvaluationView", "ExplainDashboard",
    "FeatureGallery", "ForcePlot", "HeatmapView", "ImageClassifier", "ScrubberView", "TabularModel", "TabularPlots",
    "TextClassifier", "TokenView", "__version__", "analysis", "attribute", "beeswarm", "core", "dataset", "demo",
    "evaluate", "explain", "explain_dataset", "explore", "featurevis", "methods", "metrics", "open_explanations",
    "plots", "to_html", "waterfall",
]
