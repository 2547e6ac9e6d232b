"""Deprecated path: ``ChunkPlanner`` moved to :mod:`xaiwidgets.core.batching` (importing this warns)."""

from ._moved import alias

alias(__name__, "xaiwidgets.core.batching")
