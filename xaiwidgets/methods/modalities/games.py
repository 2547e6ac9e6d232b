"""Deprecated path: moved to :mod:`xaiwidgets.methods.modalities.coalition_games` (importing this warns)."""

from .._moved import alias

alias(__name__, "xaiwidgets.methods.modalities.coalition_games")
