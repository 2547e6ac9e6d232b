"""Exceptions raised by xaiwidgets, each with a message that says what to do."""

from __future__ import annotations


class XAIError(Exception):
    """Base class for every error xaiwidgets raises on purpose."""


class InputError(XAIError, ValueError):
    """The inputs have the wrong rank, channel count, dtype, or contain NaN/inf."""


class TargetError(XAIError, ValueError):
    """A target class index is out of range or has the wrong shape."""


class LayerError(XAIError, KeyError):
    """A layer name does not exist or the layer cannot be used by the method."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelError(XAIError, RuntimeError):
    """The model's output is not of the form the method needs (e.g. not (N, C) scores)."""


class ParameterError(XAIError, ValueError):
    """A method parameter is invalid (unknown name, out of range, wrong shape)."""


class Cancelled(XAIError):
    """The computation was cancelled by the user; partial results may be attached."""

    def __init__(self, message: str = "cancelled", partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial
