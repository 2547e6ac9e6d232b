"""Analyses of many explanations: SpRAy clustering (Lapuschkin et al. 2019) and its embeddings."""

from .spray import SprayResult, eigengap, knn_affinity, laplacian_spectrum, spray

__all__ = ["SprayResult", "eigengap", "knn_affinity", "laplacian_spectrum", "spray"]
