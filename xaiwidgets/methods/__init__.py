"""Attribution methods, one module per family, all reachable by canonical name.

``xw.methods.available()`` lists them; ``xw.methods.get_method(name)`` returns the class;
``xw.attribute(model, inputs, method=name, ...)`` runs one.
"""

from . import gradients  # noqa: F401  (registers methods)
from .base import Method
from .gradients import Gradient, InputXGradient, Saliency
from .registry import available, get_method, register

__all__ = ["Gradient", "InputXGradient", "Method", "Saliency", "available", "get_method", "register"]
