"""bounding_box: the Grad-CAM paper's localisation protocol (largest segment over 15 % of the max)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiwidgets.core.errors import InputError, ParameterError
from xaiwidgets.metrics.localisation import _label, bounding_box


def test_single_blob_box():
    m = torch.zeros(20, 30)
    m[5:9, 10:17] = 1.0
    assert bounding_box(m) == (10, 5, 17, 9)  # (x0, y0, x1, y1), ends exclusive
    assert bounding_box(m[None, None]) == (10, 5, 17, 9)


def test_largest_segment_wins_and_threshold_applies():
    m = np.zeros((40, 40))
    m[2:6, 2:6] = 1.0  # 16 pixels, holds the maximum
    m[20:30, 10:35] = 0.5  # 250 pixels, above 15 % of max
    m[35:38, 35:38] = 0.1  # below 15 % of the max: ignored
    assert bounding_box(m) == (10, 20, 35, 30)
    assert bounding_box(m, threshold=0.6) == (2, 2, 6, 6)  # the 0.5 segment drops out


def test_diagonal_pixels_are_connected_and_ties_go_to_the_peak():
    m = np.zeros((10, 10))
    m[1, 1] = m[2, 2] = m[3, 3] = 0.5  # one 8-connected diagonal segment of 3
    m[6, 6] = m[6, 7] = 1.0
    m[7, 6] = 0.8  # 3 pixels too, and it holds the max
    assert bounding_box(m) == (6, 6, 8, 8)
    m[6, 6] = m[6, 7] = m[7, 6] = 0.4
    m[1, 1] = 1.0
    assert bounding_box(m) == (1, 1, 4, 4)


def test_flood_fill_matches_scipy_labels():
    rng = np.random.default_rng(0)
    mask = rng.random((25, 25)) > 0.6
    from scipy import ndimage

    ours, n = _label(mask)  # scipy path
    import xaiwidgets.metrics.localisation as loc

    saved = loc._ndimage
    loc._ndimage = None
    try:
        fill, m = _label(mask)
    finally:
        loc._ndimage = saved
    ref, k = ndimage.label(mask, structure=np.ones((3, 3)))
    assert n == m == k
    # same partition (labels may be numbered differently)
    pairs = set(zip(fill[mask].tolist(), ref[mask].tolist()))
    assert len(pairs) == k and np.array_equal(ours, ref)


def test_empty_and_bad_inputs():
    assert bounding_box(torch.zeros(5, 5)) is None
    assert bounding_box(-torch.ones(5, 5)) is None
    with pytest.raises(ParameterError, match="threshold"):
        bounding_box(torch.ones(4, 4), threshold=1.5)
    with pytest.raises(InputError, match=r"\(H, W\)"):
        bounding_box(torch.ones(2, 4, 4))
    with pytest.raises(InputError, match="NaN"):
        bounding_box(torch.full((4, 4), float("nan")))


def test_ground_truth_masks_of_the_shapes_data():
    """On the demo shapes data, the box of each ground-truth mask (as a map) is the ground-truth box."""
    from xaiwidgets.demo.shapes import make_shapes

    data = make_shapes(32, 64, seed=3)
    for mask, box in zip(data.masks, data.boxes):
        assert bounding_box(mask.float()) == tuple(int(v) for v in box)
