"""Sample photos that ship inside installed wheels (scikit-image and matplotlib): nothing is downloaded."""

from __future__ import annotations

import numpy as np

#: name -> (package, loader description)
SAMPLE_IMAGES = ("chelsea", "coffee", "rocket", "astronaut", "grace_hopper")


def load_image(name: str = "chelsea") -> np.ndarray:
    """A sample photo as a uint8 ``(H, W, 3)`` RGB array.

    ``chelsea`` (a cat), ``coffee``, ``rocket``, ``astronaut`` come from ``skimage.data``;
    ``grace_hopper`` from matplotlib's sample data.
    """
    if name == "grace_hopper":
        import matplotlib.image as mpimg
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            image = mpimg.imread(f, format="jpg")
        return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}; choose one of {', '.join(SAMPLE_IMAGES)}")
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - demo extra missing
        raise ImportError("sample photos need scikit-image: pip install 'xaiwidgets[demo]'") from exc
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]).astype(np.uint8)


def sample_images() -> dict[str, np.ndarray]:
    """All sample photos by name."""
    return {name: load_image(name) for name in SAMPLE_IMAGES}
