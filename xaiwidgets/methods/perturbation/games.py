"""Deprecated path: moved to :mod:`xaiwidgets.methods.perturbation.shapley_solvers` (importing this warns)."""

from .._moved import alias

alias(__name__, "xaiwidgets.methods.perturbation.shapley_solvers")
