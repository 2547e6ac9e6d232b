"""Metrics on explanations: localisation, axioms, sanity checks, complexity, explanation selection."""

from .axioms import (
    completeness,
    continuity,
    implementation_invariance,
    input_invariance,
    max_networks,
    selectivity,
)
from .complexity import effective_complexity, sparseness
from .localisation import (
    bounding_box,
    energy_pointing_game,
    localisation_error,
    localisation_report,
    pointing_game,
    top_k_intersection,
)
from .sanity import data_randomisation, model_randomisation, shuffled_labels, sobel_edges
from .selection import sweep
from .similarity import hog_similarity, spearman, ssim

__all__ = [
    "bounding_box",
    "completeness",
    "continuity",
    "data_randomisation",
    "effective_complexity",
    "energy_pointing_game",
    "hog_similarity",
    "implementation_invariance",
    "input_invariance",
    "localisation_error",
    "localisation_report",
    "max_networks",
    "model_randomisation",
    "pointing_game",
    "selectivity",
    "shuffled_labels",
    "sobel_edges",
    "sparseness",
    "spearman",
    "ssim",
    "sweep",
    "top_k_intersection",
]
