"""Localisation metrics: pointing game, energy pointing game, top-k intersection, box localisation error.

Known answers on the synthetic demo data (``make_shapes``, which ships the true object masks and boxes):
the true mask as an explanation scores 1 on every metric and localises every box; a random map scores
what chance predicts (the object's area fraction) and localises nothing. Hand-computed small cases pin
each definition down (ties, tolerance, boxes vs masks, empty ground truth).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.core.errors import InputError, ParameterError
from xaiwidgets.demo import make_shapes
from xaiwidgets.metrics.localisation import (
    box_iou,
    boxes_to_masks,
    energy_pointing_game,
    ground_truth,
    localisation_error,
    localisation_report,
    mask_boxes,
    pointing_game,
    top_k_intersection,
)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(24, 64, seed=11)


def test_oracle_beats_random_on_every_metric(shapes):
    """The true mask is a perfect explanation; i.i.d. noise is at chance level on every metric."""
    oracle = shapes.masks.float().unsqueeze(1)  # (N, 1, H, W), as a CAM would give
    noise = torch.rand(shapes.masks.shape, generator=torch.Generator().manual_seed(0))
    perfect = localisation_report(oracle, shapes, method="oracle")
    random = localisation_report(noise, shapes, method="random")
    assert perfect.row() == {
        "method": "oracle", "pointing_game": 1.0, "energy_pointing_game": 1.0, "top_k_intersection": 1.0,
        "localisation_error": 0.0, "mean_iou": 1.0,
    }
    rrow = random.row()
    for name in ("pointing_game", "energy_pointing_game", "top_k_intersection"):
        assert perfect.row()[name] > rrow[name] + 0.5
    assert rrow["localisation_error"] == 1.0 and rrow["mean_iou"] < 0.3
    # random is at chance: the energy share and top-k hit rate equal the area fractions (24 samples: 0.03)
    assert abs(rrow["energy_pointing_game"] - random.chance["energy_pointing_game"]) < 0.03
    assert abs(rrow["top_k_intersection"] - random.chance["top_k_intersection"]) < 0.03
    assert random.chance["pointing_game"] == pytest.approx(shapes.masks.float().mean().item())


def test_gradcam_on_the_demo_model_points_at_the_shapes(shapes):
    """A trained model's Grad-CAM is far above chance on the pointing game (measured 8 of 12 hits against
    a chance of 0.09; the 8x8 layer map upsampled to 64 px often peaks just off a thin shape)."""
    clf = xw.demo.shapes_classifier()
    x = clf.preprocess(shapes.images[:12])
    a = xw.attribute(clf, x, "gradcam", target=shapes.labels[:12])
    report = localisation_report(a, make_shapes(12, 64, seed=11))
    assert report.method == "gradcam"
    assert report.row()["pointing_game"] >= 0.5 > 3 * report.chance["pointing_game"]
    assert report.row()["energy_pointing_game"] > 2 * report.chance["energy_pointing_game"]


def test_pointing_game_hits_ties_tolerance_and_empty_masks():
    masks = torch.zeros(4, 10, 10, dtype=torch.bool)
    masks[:, 4:6, 4:6] = True
    maps = torch.zeros(4, 10, 10)
    maps[0, 5, 5] = 1.0  # on the object
    maps[1, 5, 9] = 1.0  # 4 px right of the object's edge (column 5)
    maps[2] = 1.0  # constant: all 100 pixels tie, 4 on the object
    maps[3, 0, 0] = 1.0
    masks[3] = False  # empty ground truth
    hits = pointing_game(maps, masks)
    assert hits[:3].tolist() == [1.0, 0.0, 0.04] and math.isnan(hits[3])
    assert pointing_game(maps[1:2], masks[1:2], tolerance=4).item() == 1.0
    assert pointing_game(maps[1:2], masks[1:2], tolerance=3.9).item() == 0.0
    # two maxima, one on the object: half a hit
    two = torch.zeros(1, 10, 10)
    two[0, 4, 4] = two[0, 0, 0] = 2.0
    assert pointing_game(two, masks[:1]).item() == 0.5
    with pytest.raises(ParameterError, match="tolerance"):
        pointing_game(maps, masks, tolerance=-1)


def test_energy_pointing_game_uses_the_positive_part_and_boxes():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 2, 2] = True
    maps = torch.zeros(1, 8, 8)
    maps[0, 2, 2] = 3.0
    maps[0, 3, 3] = 1.0  # inside the box (2, 2, 5, 5) but outside the mask
    maps[0, 7, 7] = -10.0  # negative: ignored
    maps[0, 0, 7] = 1.0
    assert energy_pointing_game(maps, masks).item() == pytest.approx(3 / 5)
    box = torch.tensor([[2, 2, 5, 5]])
    assert energy_pointing_game(maps, boxes=box).item() == pytest.approx(4 / 5)
    assert energy_pointing_game(-maps.abs(), masks).item() == 0.0  # nothing positive: no energy on the object


def test_top_k_intersection_counts_ties_by_share():
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 0, :2] = True  # 2 pixels
    maps = torch.arange(16.0).flip(0).view(1, 4, 4)  # largest values at (0, 0), (0, 1), ...
    assert top_k_intersection(maps, masks).item() == 1.0  # k = mask size = 2
    assert top_k_intersection(maps, masks, k=4).item() == 0.5
    assert top_k_intersection(maps, masks, k=0.25).item() == 0.5  # 25 % of 16 pixels = 4
    flat = torch.ones(1, 4, 4)
    assert top_k_intersection(flat, masks, k=8).item() == pytest.approx(2 / 16)  # ties: expected share
    with pytest.raises(ParameterError, match="k is a pixel count"):
        top_k_intersection(maps, masks, k=17)


def test_localisation_error_follows_the_box_protocol_and_labels():
    maps = torch.zeros(2, 20, 20)
    maps[0, 5:10, 5:10] = 1.0
    maps[1, 0:4, 0:4] = 1.0
    boxes = torch.tensor([[5, 5, 10, 10], [0, 0, 8, 8]])
    result = localisation_error(maps, boxes)
    assert result.predicted.tolist() == [[5, 5, 10, 10], [0, 0, 4, 4]]
    assert result.iou.tolist() == pytest.approx([1.0, 16 / 64])
    assert result.correct.tolist() == [True, False] and result.error == 0.5
    a = xw.Attribution(values=maps.unsqueeze(1), method="m", target=torch.tensor([1, 2]), scores=torch.zeros(2))
    assert localisation_error(a, boxes, labels=[2, 2]).correct.tolist() == [False, False]  # sample 0: wrong class
    with pytest.raises(ParameterError, match="Attribution"):
        localisation_error(maps, boxes, labels=[1, 2])
    none = localisation_error(torch.zeros(1, 20, 20), boxes[:1])  # no positive value: no box, IoU 0
    assert none.predicted.tolist() == [[-1, -1, -1, -1]] and none.iou.item() == 0.0


def test_ground_truth_forms_agree(shapes):
    masks, boxes = ground_truth(shapes)
    assert torch.equal(masks, shapes.masks) and torch.equal(boxes, shapes.boxes)
    assert torch.equal(mask_boxes(shapes.masks), shapes.boxes)
    filled, _ = ground_truth(boxes=shapes.boxes, size=(64, 64))
    assert torch.equal(filled, boxes_to_masks(shapes.boxes, (64, 64)))
    assert bool((filled | ~shapes.masks).all())  # every mask lies in its box
    as_numpy, _ = ground_truth(shapes.masks.numpy().astype(np.uint8)[:, None])
    assert torch.equal(as_numpy, shapes.masks)
    assert box_iou(shapes.boxes, shapes.boxes).tolist() == [1.0] * len(shapes)


def test_bad_ground_truth_says_what_to_do(shapes):
    maps = torch.rand(2, 32, 32)
    with pytest.raises(InputError, match="resize the masks"):
        pointing_game(maps, shapes.masks[:2])
    with pytest.raises(InputError, match="2 maps but the ground truth 24"):
        pointing_game(torch.rand(2, 64, 64), shapes)
    with pytest.raises(ParameterError, match="give the ground truth"):
        pointing_game(maps)
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        energy_pointing_game(maps, boxes=torch.zeros(2, 3))
    with pytest.raises(InputError, match="image maps"):
        pointing_game(torch.rand(2, 5), torch.ones(2, 5, 1, dtype=torch.bool))
