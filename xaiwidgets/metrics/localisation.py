"""Localisation: does the explanation point at the object? Ground truth from masks, boxes or the demo data.

- ``bounding_box`` / ``localisation_error``: the Grad-CAM paper's protocol (Selvaraju et al. 2017,
  arXiv:1610.02391, sec. 4.1, after the ILSVRC weakly supervised protocol of Zhou et al. 2016): threshold
  the map at a fraction (15 %) of its maximum, box the largest connected segment, and count a localisation
  as correct when its IoU with the true box is at least 0.5.
- ``pointing_game``: a hit when the map's maximum lies on the object (Zhang et al. 2018, "Top-down Neural
  Attention by Excitation Backprop", IJCV, arXiv:1608.00507), optionally within a tolerance in pixels.
- ``energy_pointing_game``: the share of the positive map inside the box (Wang et al. 2020, "Score-CAM",
  CVPR workshops, arXiv:1910.01279, sec. 5.2).
- ``top_k_intersection``: the share of the ``k`` highest-ranked pixels on the object (Theiner, Müller-Budack
  & Ewerth 2022, "Interpretable Semantic Photo Geolocation", WACV, arXiv:2104.14995); with ``k`` equal to the
  object's size this is the relevance rank accuracy of Arras, Osman & Samek 2022 (CLEVR-XAI,
  arXiv:2003.07258).
- ``localisation_report``: all four per sample, with the chance level of a random map, for a leaderboard.

Ground truth: an ``(N, H, W)`` (or ``(N, 1, H, W)``) boolean mask tensor or array, ``boxes`` ``(N, 4)`` as
``(x0, y0, x1, y1)`` with exclusive ends, or a :class:`~xaiwidgets.demo.ShapesData` (its masks and boxes).
Maps are reduced over channels as ``Attribution.heatmap`` does and must have the ground truth's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.attribution import Attribution
from ..core.errors import InputError, ParameterError
from ._maps import ExplanationLike, as_maps

try:  # scipy ships with scikit-image (a dependency); the flood fill below is the fallback
    from scipy import ndimage as _ndimage
except ImportError:  # pragma: no cover - exercised only without scipy
    _ndimage = None


def _as_2d(saliency: Any) -> np.ndarray:
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().float().cpu().numpy()
    arr = np.asarray(saliency, dtype=np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"bounding_box takes one (H, W) map (or (1, H, W), (1, 1, H, W)); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("the map contains NaN or infinite values")
    return arr


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: scipy.ndimage.label, else a breadth-first flood fill."""
    if _ndimage is not None:
        labels, count = _ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        return labels, int(count)
    labels = np.zeros(mask.shape, dtype=np.int64)
    count = 0
    h, w = mask.shape
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        count += 1
        labels[y0, x0] = count
        stack = [(y0, x0)]
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not labels[v, u]:
                        labels[v, u] = count
                        stack.append((v, u))
    return labels, count


def bounding_box(saliency: Any, threshold: float = 0.15) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (ends exclusive, like ``make_shapes`` boxes) of the largest 8-connected segment
    of ``saliency > threshold * saliency.max()``; ``None`` when the map has no positive value.

    ``saliency`` is an ``(H, W)`` tensor or array (or ``(1, H, W)``, ``(1, 1, H, W)``), e.g.
    ``attribution.values[i, 0]``. Ties between equally large segments go to the one holding the maximum.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ParameterError(f"threshold must be a fraction of the maximum in [0, 1), got {threshold!r}")
    arr = _as_2d(saliency)
    peak = float(arr.max())
    if peak <= 0:
        return None
    mask = arr > threshold * peak
    labels, count = _label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    best = np.flatnonzero(sizes == sizes.max()) + 1
    at_peak = labels[np.unravel_index(int(np.argmax(arr)), arr.shape)]
    chosen = at_peak if at_peak in best else int(best[0])
    ys, xs = np.nonzero(labels == chosen)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# --- ground truth -----------------------------------------------------------------------------------------


def boxes_to_masks(boxes: Any, size: tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` boolean masks of ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` (exclusive ends)."""
    b = torch.as_tensor(boxes).detach().cpu()
    if b.dim() != 2 or b.shape[1] != 4:
        raise InputError(f"boxes are (N, 4) rows (x0, y0, x1, y1); got shape {tuple(b.shape)}")
    b = b.round().long()
    h, w = size
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    x0, y0, x1, y1 = (b[:, i].view(-1, 1, 1) for i in range(4))
    return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(N, 4)`` bounding boxes ``(x0, y0, x1, y1)`` (exclusive ends) of ``(N, H, W)`` masks; -1 rows when empty."""
    m = masks.bool()
    h, w = m.shape[1:]
    cols, rows = m.any(1), m.any(2)
    xs, ys = torch.arange(w), torch.arange(h)
    x0 = torch.where(cols, xs, w).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1) + 1
    y0 = torch.where(rows, ys, h).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], 1).long()
    return torch.where(m.flatten(1).any(1, keepdim=True), boxes, torch.full_like(boxes, -1))


def _mask_tensor(masks: Any) -> torch.Tensor:
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(np.ascontiguousarray(masks))
    if not isinstance(masks, torch.Tensor):
        raise InputError(
            f"ground truth must be masks (a tensor or array (N, H, W)), boxes=..., or the demo ShapesData; "
            f"got {type(masks).__name__}"
        )
    masks = masks.detach().cpu()
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise InputError(f"masks are (N, H, W) (or (N, 1, H, W)); got shape {tuple(masks.shape)}")
    return masks != 0


def ground_truth(
    masks: Any = None, boxes: Any = None, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(masks, boxes)``: ``(N, H, W)`` bool masks and ``(N, 4)`` long boxes (None when only masks are known).

    ``masks`` may be a :class:`~xaiwidgets.demo.ShapesData` (its masks and boxes are used) or a mask tensor;
    with only ``boxes``, the masks are the boxes filled (``size`` gives ``(H, W)``).
    """
    if masks is not None and hasattr(masks, "masks") and hasattr(masks, "boxes"):  # the demo ShapesData
        data = masks
        masks, boxes = data.masks, data.boxes if boxes is None else boxes
    if boxes is not None:
        boxes = torch.as_tensor(boxes).detach().cpu()
        if boxes.dim() == 1 and boxes.numel() == 4:
            boxes = boxes.view(1, 4)
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise InputError(f"boxes are (N, 4) rows (x0, y0, x1, y1); got shape {tuple(boxes.shape)}")
    if masks is None:
        if boxes is None:
            raise ParameterError("give the ground truth: masks (N, H, W), boxes=(N, 4), or the demo ShapesData")
        if size is None:
            raise ParameterError("boxes alone need the map size to become masks")
        return boxes_to_masks(boxes, size), boxes.long()
    masks = _mask_tensor(masks)
    if boxes is not None and boxes.shape[0] != masks.shape[0]:
        raise InputError(f"{boxes.shape[0]} boxes for {masks.shape[0]} masks")
    return masks, None if boxes is None else boxes.long()


def _maps_for(explanation: ExplanationLike, reduce: str | None, masks: torch.Tensor) -> torch.Tensor:
    maps = as_maps(explanation, reduce).cpu().double()
    if maps.dim() != 3:
        raise InputError(
            f"localisation needs image maps (N, H, W) or (N, C, H, W); the explanation has shape {tuple(maps.shape)}"
        )
    if maps.shape[0] != masks.shape[0]:
        raise InputError(f"the explanation has {maps.shape[0]} maps but the ground truth {masks.shape[0]} samples")
    if maps.shape[1:] != masks.shape[1:]:
        raise InputError(
            f"the maps are {tuple(maps.shape[1:])} but the ground truth is {tuple(masks.shape[1:])}; use "
            "input-sized maps (Attribution.values; CAM values are upsampled already) or resize the masks"
        )
    return maps


def _dilate(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """Masks grown by every pixel within Euclidean distance ``radius``."""
    r = int(np.floor(radius))
    if r < 1:
        return masks
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    disc = ((t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) <= radius**2).double()
    grown = F.conv2d(masks.double().unsqueeze(1), disc.view(1, 1, 2 * r + 1, 2 * r + 1), padding=r)
    return grown[:, 0] > 0.5


def _nan_where_empty(scores: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.where(masks.flatten(1).any(1), scores, torch.full_like(scores, float("nan")))


# --- metrics ----------------------------------------------------------------------------------------------


def pointing_game(
    explanation: ExplanationLike,
    masks: Any = None,
    *,
    boxes: Any = None,
    tolerance: float = 0.0,
    reduce: str | None = None,
) -> torch.Tensor:
    """Hit (1) or miss (0) per sample: does the map's maximum lie on the object? ``(N,)`` float64.

    Zhang et al. 2018 count a hit within ``tolerance`` pixels of the object (15 px on 224-px images); the
    default 0 needs the maximum on the mask. When several pixels tie for the maximum, the score is the
    share of them on the object (the expected hit of a random tie-break; a constant map scores the object's
    area fraction, like chance). NaN where the ground truth is empty.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ParameterError(f"tolerance is a distance in pixels >= 0, got {tolerance!r}")
    masks, _ = ground_truth(masks, boxes, _size_of(explanation))
    maps = _maps_for(explanation, reduce, masks)
    region = _dilate(masks, float(tolerance))
    at_peak = maps == maps.flatten(1).amax(1).view(-1, 1, 1)
    hits = (at_peak & region).flatten(1).sum(1).double() / at_peak.flatten(1).sum(1).double()
    return _nan_where_empty(hits, masks)


def energy_pointing_game(
    explanation: ExplanationLike, masks: Any = None, *, boxes: Any = None, reduce: str | None = None
) -> torch.Tensor:
    """Share of the positive map inside the object region, ``sum(L+ in region) / sum(L+)``, ``(N,)`` float64.

    Wang et al. 2020 (Score-CAM, sec. 5.2) use the bounding box as the region: pass ``boxes=`` (for the demo
    data, ``boxes=data.boxes``); with masks the region is the mask. 0 for a map without positive values,
    NaN where the region is empty.
    """
    masks, _ = ground_truth(masks, boxes, _size_of(explanation))
    if boxes is not None:  # the box region, as in the paper
        masks = boxes_to_masks(torch.as_tensor(boxes), tuple(masks.shape[1:]))
    maps = _maps_for(explanation, reduce, masks)
    positive = maps.clamp_min(0).flatten(1)
    total = positive.sum(1)
    inside = (positive * masks.flatten(1)).sum(1)
    share = torch.where(total > 0, inside / total.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    return _nan_where_empty(share, masks)


def top_k_intersection(
    explanation: ExplanationLike,
    masks: Any = None,
    *,
    boxes: Any = None,
    k: int | float | None = None,
    reduce: str | None = None,
) -> torch.Tensor:
    """Share of the ``k`` highest-ranked pixels that lie on the object, ``(N,)`` float64.

    ``k``: a number of pixels, a fraction in (0, 1) of the map, or None for each object's own size (the
    relevance rank accuracy of Arras et al. 2022). Ties at the ``k``-th value count by their share on the
    object (the expected score of a random tie-break). NaN where the ground truth is empty.
    """
    masks, _ = ground_truth(masks, boxes, _size_of(explanation))
    maps = _maps_for(explanation, reduce, masks)
    a, m = maps.flatten(1), masks.flatten(1)
    d = a.shape[1]
    if k is None:
        kk = m.sum(1).clamp_min(1)
    elif isinstance(k, bool) or not isinstance(k, (int, float)) or k <= 0 or (isinstance(k, int) and k > d):
        raise ParameterError(f"k is a pixel count in 1..{d}, a fraction in (0, 1), or None; got {k!r}")
    elif isinstance(k, float) and k < 1:
        kk = torch.full((a.shape[0],), max(1, round(k * d)), dtype=torch.long)
    else:
        kk = torch.full((a.shape[0],), int(k), dtype=torch.long)
    ordered, _ = a.sort(1, descending=True)
    kth = ordered.gather(1, (kk - 1).view(-1, 1))
    above, tied = a > kth, a == kth
    n_above = above.sum(1)
    hits = (above & m).sum(1).double() + (kk - n_above).double() * (tied & m).sum(1).double() / tied.sum(1).double()
    return _nan_where_empty(hits / kk.double(), masks)


@dataclass
class BoxLocalisation:
    """Per-sample results of the Grad-CAM localisation protocol.

    ``predicted``: ``(N, 4)`` boxes from ``bounding_box`` (-1 rows where the map has no positive value);
    ``iou`` with the true boxes; ``correct``: IoU >= ``min_iou`` (and the class right, when labels were
    given); ``error``: the fraction not correct.
    """

    predicted: torch.Tensor
    iou: torch.Tensor
    correct: torch.Tensor
    threshold: float
    min_iou: float

    @property
    def error(self) -> float:
        return float(1.0 - self.correct.double().mean()) if len(self.correct) else float("nan")


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of paired ``(N, 4)`` boxes with exclusive ends; 0 for a ``-1`` (missing) row."""
    a, b = a.double(), b.double()
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = iw * ih
    area = lambda t: (t[:, 2] - t[:, 0]).clamp_min(0) * (t[:, 3] - t[:, 1]).clamp_min(0)
    union = area(a) + area(b) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1e-300), 0.0)
    return torch.where((a < 0).any(1) | (b < 0).any(1), 0.0, iou)


def localisation_error(
    explanation: ExplanationLike,
    boxes: Any,
    *,
    threshold: float = 0.15,
    min_iou: float = 0.5,
    labels: Any = None,
    reduce: str | None = None,
) -> BoxLocalisation:
    """The Grad-CAM paper's localisation: box the map at ``threshold`` of its maximum, correct when the IoU
    with the true box is at least ``min_iou``.

    ``boxes``: ``(N, 4)`` true boxes or the demo ShapesData. With ``labels`` (the true classes), a sample
    also needs the explained class (the Attribution's ``target``, e.g. the prediction) to be right: the
    ILSVRC top-1 localisation error.
    """
    if isinstance(min_iou, bool) or not isinstance(min_iou, (int, float)) or not 0 < min_iou <= 1:
        raise ParameterError(f"min_iou must be in (0, 1], got {min_iou!r}")
    if hasattr(boxes, "boxes") and hasattr(boxes, "masks"):
        boxes = boxes.boxes
    true_boxes = torch.as_tensor(boxes).detach().cpu().long()
    if true_boxes.dim() != 2 or true_boxes.shape[1] != 4:
        raise InputError(f"boxes are (N, 4) rows (x0, y0, x1, y1); got shape {tuple(true_boxes.shape)}")
    maps = as_maps(explanation, reduce).cpu()
    if maps.dim() != 3 or maps.shape[0] != true_boxes.shape[0]:
        raise InputError(
            f"localisation_error needs (N, H, W) maps for the {true_boxes.shape[0]} boxes; got {tuple(maps.shape)}"
        )
    predicted = torch.full_like(true_boxes, -1)
    for i in range(maps.shape[0]):
        box = bounding_box(maps[i], threshold)
        if box is not None:
            predicted[i] = torch.tensor(box)
    iou = box_iou(predicted, true_boxes)
    correct = iou >= min_iou
    if labels is not None:
        if not isinstance(explanation, Attribution):
            raise ParameterError("labels need an Attribution (its target is the class that was explained)")
        labels_t = torch.as_tensor(labels).detach().cpu().long().view(-1)
        correct = correct & (explanation.target.detach().cpu().long().view(-1) == labels_t)
    return BoxLocalisation(predicted=predicted, iou=iou, correct=correct, threshold=threshold, min_iou=min_iou)


def _size_of(explanation: ExplanationLike) -> tuple[int, int] | None:
    try:
        maps = as_maps(explanation)
    except (InputError, ParameterError):
        return None
    return tuple(maps.shape[-2:]) if maps.dim() == 3 else None


# --- report -----------------------------------------------------------------------------------------------


@dataclass
class LocalisationReport:
    """Every localisation metric per sample, with the chance level of a random map (a leaderboard row).

    ``chance``: what a map of independent random pixels scores on average: the (dilated) object's area
    fraction for the pointing game and top-k, the region's area fraction for the energy game.
    """

    method: str
    pointing_game: torch.Tensor
    energy_pointing_game: torch.Tensor
    top_k_intersection: torch.Tensor
    boxes: BoxLocalisation
    chance: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """Means over samples (NaN samples skipped): one leaderboard row."""
        row: dict[str, Any] = {"method": self.method}
        for name in ("pointing_game", "energy_pointing_game", "top_k_intersection"):
            row[name] = float(np.nanmean(getattr(self, name).numpy())) if len(getattr(self, name)) else float("nan")
        row["localisation_error"] = self.boxes.error
        row["mean_iou"] = float(self.boxes.iou.mean()) if len(self.boxes.iou) else float("nan")
        return row


def localisation_report(
    explanation: ExplanationLike,
    masks: Any = None,
    *,
    boxes: Any = None,
    k: int | float | None = None,
    tolerance: float = 0.0,
    threshold: float = 0.15,
    reduce: str | None = None,
    method: str | None = None,
) -> LocalisationReport:
    """Pointing game, energy pointing game (in the boxes when known, else the masks), top-k intersection and
    the box localisation error of one explanation against the ground truth (masks, boxes or ShapesData)."""
    gt_masks, gt_boxes = ground_truth(masks, boxes, _size_of(explanation))
    if gt_boxes is None:  # the boxes of the masks (as the demo data's boxes are)
        gt_boxes = mask_boxes(gt_masks)
    pg = pointing_game(explanation, gt_masks, tolerance=tolerance, reduce=reduce)
    region = boxes_to_masks(gt_boxes, tuple(gt_masks.shape[1:]))
    energy = energy_pointing_game(explanation, region, reduce=reduce)
    topk = top_k_intersection(explanation, gt_masks, k=k, reduce=reduce)
    box_result = localisation_error(explanation, gt_boxes, threshold=threshold, reduce=reduce)
    area = lambda m: float(m.flatten(1).double().mean(1).mean()) if len(m) else float("nan")
    chance = {
        "pointing_game": area(_dilate(gt_masks, float(tolerance))),
        "energy_pointing_game": area(region),
        "top_k_intersection": area(gt_masks),
    }
    if method is None:
        method = explanation.method if isinstance(explanation, Attribution) else "explanation"
    return LocalisationReport(
        method=method, pointing_game=pg, energy_pointing_game=energy, top_k_intersection=topk, boxes=box_result,
        chance=chance,
    )
