"""Deprecated path: moved to :mod:`xaiwidgets.methods.gradient.layerwise` (importing this warns)."""

from ._moved import alias

alias(__name__, "xaiwidgets.methods.gradient.layerwise")
