"""Old module paths kept as aliases of the modules' new homes: importing one warns with the new path."""

from __future__ import annotations

import importlib
import sys
import warnings

#: old module (under xaiwidgets.methods) -> its new path
MOVED = {
    **{name: f"xaiwidgets.methods.gradient.{name}" for name in (
        "gradients", "integrated_gradients", "smoothgrad", "guided", "guided_gradcam", "expected_gradients",
        "quadrature", "layerwise")},
    "anchors": "xaiwidgets.methods.perturbation.anchors",
    "_chunks": "xaiwidgets.core.batching",
}


def alias(old: str, new: str) -> None:
    """Make module ``old`` the module ``new`` (same object: attributes and monkeypatches are shared) and warn."""
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will be removed)",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
