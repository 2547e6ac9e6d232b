"""Metrics on explanations: localisation (more families follow: faithfulness, axioms, sanity)."""

from .localisation import bounding_box

__all__ = ["bounding_box"]
