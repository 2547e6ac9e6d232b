"""Saliency by optimisation through the model: adversarial perturbations on the perceptual ball and
masks trained with in/out losses (importing this package registers them)."""

from . import masking_saliency, perceptual_ball  # noqa: F401  (registers methods)
from .masking_saliency import MaskGenerator, MaskingSaliency, fit_masker
from .perceptual_ball import PerceptualBall

__all__ = ["MaskGenerator", "MaskingSaliency", "PerceptualBall", "fit_masker"]
