"""Relevance propagation: LRP rules and composites, DeepLIFT and DeepSHAP.

Importing this package registers ``lrp_epsilon``, ``lrp_gamma``, ``lrp_alpha_beta``, ``lrp_zplus``,
``lrp_composite``, ``deeplift`` and ``deepshap``.
"""

from . import deeplift, lrp  # noqa: F401  (registers methods)
from .canonizers import CANONIZERS, Patcher, Sum, register_canonizer
from .composites import COMPOSITE_NAMES, Composite, make_composite
from .deeplift import DeepLift, DeepShap
from .guard import ConservationWarning
from .lrp import LRPAlphaBeta, LRPComposite, LRPEpsilon, LRPGamma, LRPZPlus, propagate
from .rules import (
    RULES,
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    Norm,
    Pass,
    Rule,
    Term,
    WSquare,
    ZBox,
    Zero,
    ZPlus,
)

__all__ = [
    "CANONIZERS",
    "COMPOSITE_NAMES",
    "RULES",
    "AlphaBeta",
    "Composite",
    "ConservationWarning",
    "DeepLift",
    "DeepShap",
    "Epsilon",
    "Flat",
    "Gamma",
    "GeneralizedGamma",
    "LRPAlphaBeta",
    "LRPComposite",
    "LRPEpsilon",
    "LRPGamma",
    "LRPZPlus",
    "Norm",
    "Pass",
    "Patcher",
    "Rule",
    "Sum",
    "Term",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "make_composite",
    "propagate",
    "register_canonizer",
]
