"""Attribution methods, one package per family (``gradient``, ``cam``, ``relevance``, ``perturbation``,
``optimisation``) plus
the attention methods (``transformers``), all reachable by canonical name.

``xw.methods.available()`` lists them; ``xw.methods.get_method(name)`` returns the class;
``xw.attribute(model, inputs, method=name, ...)`` runs one. docs/adding-a-method.md says how to add one.
"""

from typing import Any

# importing a family registers its methods
from . import cam, gradient, optimisation, perturbation, relevance, transformers  # noqa: F401
from .base import Method
from .cam import spatial_layers
from .gradient import *  # noqa: F403  (the gradient family's classes)
from .perturbation.anchors import Anchors, anchor_precision, masked_lm_perturber
from .registry import available, get_method, register
from .transformers import AttentionRollout, TransformerRelevance

__all__ = [
    *gradient.__all__,
    "Anchors",
    "AttentionRollout",
    "Method",
    "TransformerRelevance",
    "anchor_precision",
    "available",
    "get_method",
    "masked_lm_perturber",
    "register",
    "spatial_layers",
]


def __getattr__(name: str) -> Any:
    """Modules that moved (``xw.methods.gradients`` and the like): the old path, which warns."""
    from ._moved import MOVED

    if name in MOVED:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
