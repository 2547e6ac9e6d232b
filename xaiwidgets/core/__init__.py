"""Core: result type, adapters, targets, inputs, layers, state restoration, devices and batching."""

from .adapters import ImageClassifier, unwrap_model
from .attribution import Attribution, reduce_channels
from .errors import Cancelled, InputError, LayerError, ModelError, ParameterError, TargetError, XAIError
from .layers import find_last_spatial_layer, get_layer
from .progress import Progress
from .state import Hooks, preserved
from .tabular import TabularModel
from .targets import resolve_target, scores_from_output
from .text import Encoding, TextClassifier

__all__ = [
    "Attribution", "Cancelled", "Encoding", "Hooks", "ImageClassifier", "InputError", "LayerError", "ModelError",
    "ParameterError", "Progress", "TabularModel", "TargetError", "TextClassifier", "XAIError",
    "find_last_spatial_layer", "get_layer",
    "preserved", "reduce_channels", "resolve_target", "scores_from_output", "unwrap_model",
]
