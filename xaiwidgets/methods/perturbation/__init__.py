"""Model-agnostic perturbation and Shapley methods: occlusion, RISE, extremal perturbation, LIME,
KernelSHAP, Shapley value sampling, exact Shapley values and Anchors (importing this package registers them).
"""

from typing import Any

from . import anchors, extremal, kernel_shap, lime, occlusion, qii, rise, shapley  # noqa: F401  (registers methods)
from .kernel_shap import KernelShap
from .shapley_solvers import exact_shapley_values, shapley_from_table

__all__ = ["KernelShap", "exact_shapley_values", "shapley_from_table"]


def __getattr__(name: str) -> Any:
    """``games``, the old name of :mod:`.shapley_solvers` (warns)."""
    if name == "games":
        import importlib

        return importlib.import_module(f"{__name__}.games")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
