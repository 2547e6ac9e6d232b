"""Model-agnostic perturbation and Shapley methods: occlusion, RISE, extremal perturbation, LIME,
KernelSHAP, Shapley value sampling and exact Shapley values (importing this package registers them)."""

from . import extremal, kernel_shap, lime, occlusion, qii, rise, shapley  # noqa: F401  (registers methods)
from .games import exact_shapley_values, shapley_from_table
from .kernel_shap import KernelShap

__all__ = ["KernelShap", "exact_shapley_values", "shapley_from_table"]
