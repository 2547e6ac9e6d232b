"""Explaining a whole dataset: the run loop, the resumable zarr store, the local and Ray backends."""

from .results import DatasetExplanations, LazyMaps, open_explanations
from .run import explain_dataset
from .store import StoreError, StoreWriteError, model_fingerprint

__all__ = ["DatasetExplanations", "LazyMaps", "StoreError", "StoreWriteError", "explain_dataset", "model_fingerprint",
           "open_explanations"]
