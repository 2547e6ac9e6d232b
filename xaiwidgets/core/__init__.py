"""Core: result type, adapters, targets, inputs, layers, state restoration, devices and batching."""

from .adapters import ImageClassifier, unwrap_model
from .attribution import Attribution, reduce_channels
from .errors import Cancelled, InputError, LayerError, ModelError, ParameterError, TargetError, XAIError
from .layers import find_last_spatial_layer, get_layer
from .progress import Progress
from .state import Hooks, preserved
from .targets import resolve_target, scores_from_output

__all__ = [
    "Attribution", "Cancelled", "Hooks", "ImageClassifier", "InputError", "LayerError", "ModelError",
    "ParameterError", "Progress", "TargetError", "XAIError", "find_last_spatial_layer", "get_layer",
    "preserved", "reduce_channels", "resolve_target", "scores_from_output", "unwrap_model",
]
