"""Metrics on explanations: faithfulness, robustness, localisation, axioms, sanity, complexity, selection."""

from .axioms import (
    completeness,
    continuity,
    implementation_invariance,
    input_invariance,
    max_networks,
    selectivity,
)
from .complexity import effective_complexity, sparseness
from .faithfulness import (
    deletion,
    faithfulness_correlation,
    insertion,
    perturbation_curve,
    pixel_flipping,
    region_perturbation,
    road,
)
from .localisation import (
    bounding_box,
    energy_pointing_game,
    localisation_error,
    localisation_report,
    pointing_game,
    top_k_intersection,
)
from .results import PerturbationCurve, SampleScores
from .robustness import infidelity, max_sensitivity
from .sanity import data_randomisation, model_randomisation, shuffled_labels, sobel_edges
from .selection import sweep
from .similarity import hog_similarity, spearman, ssim

__all__ = [
    "PerturbationCurve",
    "SampleScores",
    "bounding_box",
    "completeness",
    "continuity",
    "data_randomisation",
    "deletion",
    "effective_complexity",
    "energy_pointing_game",
    "faithfulness_correlation",
    "hog_similarity",
    "implementation_invariance",
    "infidelity",
    "input_invariance",
    "insertion",
    "localisation_error",
    "localisation_report",
    "max_networks",
    "max_sensitivity",
    "model_randomisation",
    "perturbation_curve",
    "pixel_flipping",
    "pointing_game",
    "region_perturbation",
    "road",
    "selectivity",
    "shuffled_labels",
    "sobel_edges",
    "sparseness",
    "spearman",
    "ssim",
    "sweep",
    "top_k_intersection",
]
