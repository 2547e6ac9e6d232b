"""The numbers behind SHAP's plot family (Lundberg & Lee 2017, NeurIPS; Lundberg et al. 2020, "From local
explanations to global understanding with explainable AI for trees", Nature Machine Intelligence), computed
from a rows x features attribution matrix by shap's own display rules, so that our widgets show what
``shap.plots.*`` shows for the same values:

- waterfall: one row's contributions by |value|, the smallest folded into "N other features" when there
  are more than ``max_display``; the bars walk from the base value to base + sum (= f(x) for SHAP values).
- beeswarm / heatmap: features by mean |value|, the rest summed per row into "Sum of N other features";
  colour range of a feature's values its 5th-95th percentile (shap's beeswarm rule, with its fallbacks).
- bar: mean |value| per cohort; features by their mean rank over the cohorts (shap's rule).
- heatmap rows: complete-linkage clustering (squared Euclidean) with optimal leaf order, as
  ``Explanation.hclust()``; or by f(x), largest first.
- dependence: the colouring feature with the strongest approximate interaction (the binned correlation
  heuristic of ``shap.utils.approximate_interactions``).
- decision: features by sum |value| (most important on top, the last ``max_display``), paths cumulative
  from the base value.

``NaN`` marks a feature absent from a row (a word not in a text); it is skipped, as shap's nan-functions do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_CLUSTERED = 1000  # optimal leaf ordering is cubic in the rows; above this, the first principal axis


def importance(values: np.ndarray) -> np.ndarray:
    """Mean |value| per feature over the rows where it is present (0 when never present)."""
    a = np.abs(values)
    present = np.isfinite(a)
    count = present.sum(0)
    return np.where(count > 0, np.where(present, a, 0.0).sum(0) / np.maximum(count, 1), 0.0)


def by_importance(values: np.ndarray) -> np.ndarray:
    """Features by mean |value|, largest first (ties: lower index first)."""
    return np.argsort(-importance(values), kind="stable")


def fold(order: np.ndarray, max_display: int) -> tuple[np.ndarray, np.ndarray]:
    """``(shown, folded)``: the first ``max_display`` features of ``order``, or the first ``max_display - 1``
    and the rest folded into one "other features" entry when there are more."""
    if max_display < 1:
        raise ValueError(f"max_display must be at least 1, got {max_display}")
    if len(order) <= max_display:
        return np.asarray(order), np.asarray(order[:0])
    return np.asarray(order[: max_display - 1]), np.asarray(order[max_display - 1 :])


def color_range(x: np.ndarray) -> tuple[float, float]:
    """Colour range of a feature's values: 5th-95th percentile, else 1st-99th, else min-max (shap's beeswarm)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(x, [5, 95])
    if lo == hi:
        lo, hi = np.percentile(x, [1, 99])
        if lo == hi:
            lo, hi = x.min(), x.max()
    return float(min(lo, hi)), float(hi)


def waterfall(values: np.ndarray, base: float, max_display: int = 10) -> dict[str, Any]:
    """One row: ``order`` (features top to bottom, largest |value| first), ``folded`` (the features summed
    into the last bar), and per bar ``value``, ``start``, ``end`` (top bar first). The bottom bar starts at
    the base value and the top bar ends at base + sum of the row (shap's waterfall)."""
    v = np.asarray(values, dtype=np.float64)
    present = np.flatnonzero(np.isfinite(v))
    order = present[np.argsort(-np.abs(v[present]), kind="stable")]
    shown, folded = fold(order, max_display)
    bars = [float(v[j]) for j in shown] + ([float(v[folded].sum())] if folded.size else [])
    ends, x = [], float(base)
    for b in reversed(bars):  # from the base value upwards
        ends.append((x, x + b))
        x += b
    ends.reverse()
    return {
        "order": shown,
        "folded": folded,
        "value": np.array(bars),
        "start": np.array([s for s, _ in ends]),
        "end": np.array([e for _, e in ends]),
        "base": float(base),
        "total": x,
    }


def summary(values: np.ndarray, max_display: int = 10) -> dict[str, Any]:
    """Beeswarm and heatmap rows: ``order`` (features by mean |value|), ``folded`` and ``fold`` (per row, the
    sum of the folded features; NaN-skipping)."""
    shown, folded = fold(by_importance(values), max_display)
    rest = np.nansum(values[:, folded], axis=1) if folded.size else None
    return {"order": shown, "folded": folded, "fold": rest}


def heat_clip(matrix: np.ndarray) -> float:
    """Symmetric colour limit of the heatmap: the larger magnitude of its 1st and 99th percentiles (shap)."""
    finite = matrix[np.isfinite(matrix)]
    if finite.size == 0:
        return 1.0
    lo, hi = np.percentile(finite, [1, 99])
    return float(max(abs(lo), abs(hi))) or 1.0


def cohort_bars(values: np.ndarray, cohort: np.ndarray, names: Sequence[str], max_display: int = 10) -> dict[str, Any]:
    """Mean |value| per cohort ``(C, d)`` and the bar order: features by their mean rank over the cohorts,
    each cohort ranking by mean |value| descending (shap's bar plot); folded features summed into the last bar."""
    cohort = np.asarray(cohort)
    means = np.stack([importance(values[cohort == c]) for c in range(len(names))])
    ranks = [np.argsort(np.argsort(m, kind="stable")[::-1], kind="stable") for m in means]
    order = np.argsort(np.mean(ranks, 0), kind="stable")
    shown, folded = fold(order, max_display)
    bars = means[:, shown]
    if folded.size:
        bars = np.concatenate([bars, means[:, folded].sum(1, keepdims=True)], 1)
    return {
        "order": shown,
        "folded": folded,
        "bars": bars,
        "means": means,
        "sizes": np.array([int((cohort == c).sum()) for c in range(len(names))]),
    }


def cohorts_of(split: Any, data: np.ndarray | None, features: Sequence[str], n: int) -> tuple[np.ndarray, list[str]]:
    """Cohort index per row and cohort names from ``split``: a boolean mask, a sequence of ``n`` labels, or a
    feature (name or index): one cohort per value when it has at most 8, else two at its median."""
    if split is None:
        return np.zeros(n, dtype=np.int64), ["all rows"]
    if isinstance(split, (str, int, np.integer)) and not isinstance(split, bool):
        j = features.index(split) if isinstance(split, str) else int(split)
        if isinstance(split, str) and split not in features:
            raise ValueError(f"no feature named {split!r}")
        if data is None:
            raise ValueError("cohorts by a feature need the features' values; pass a mask or labels instead")
        col, name = data[:, j], features[j]
        levels = np.unique(col[np.isfinite(col)])
        if len(levels) <= 8:
            idx = np.searchsorted(levels, col)
            return idx, [f"{name} = {lv:.4g}" for lv in levels]
        med = float(np.median(col))
        return (col >= med).astype(np.int64), [f"{name} < {med:.4g}", f"{name} ≥ {med:.4g}"]
    arr = np.asarray(split)
    if arr.shape != (n,):
        raise ValueError(
            f"cohorts must be a feature, or a mask or labels with one entry per row ({n}); got shape {arr.shape}"
        )
    if arr.dtype == bool:
        return (~arr).astype(np.int64), ["True", "False"]
    labels, idx = np.unique(arr.astype(str), return_inverse=True)
    return idx.astype(np.int64), [str(s) for s in labels]


def row_order(values: np.ndarray, output: np.ndarray, how: str = "clustering") -> np.ndarray:
    """Heatmap instance order: ``"clustering"`` (complete linkage on squared Euclidean distances with optimal
    leaf order, shap's ``Explanation.hclust()``; above ``MAX_CLUSTERED`` rows the order along the first
    principal axis), ``"output"`` (f(x), largest first) or ``"original"``."""
    n = values.shape[0]
    if how == "original" or n <= 2:
        return np.arange(n)
    if how == "output":
        return np.argsort(-np.asarray(output, dtype=np.float64), kind="stable")
    if how != "clustering":
        raise ValueError(f"row order must be 'clustering', 'output' or 'original'; got {how!r}")
    x = np.nan_to_num(values)
    if n > MAX_CLUSTERED:
        centred = x - x.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return np.argsort(centred @ vt[0], kind="stable")
    from scipy.cluster.hierarchy import complete, leaves_list, optimal_leaf_ordering
    from scipy.spatial.distance import pdist

    dist = pdist(x, "sqeuclidean")
    if not dist.any():
        return np.arange(n)
    return np.asarray(leaves_list(optimal_leaf_ordering(complete(dist), dist)))


def _binned_correlation(ref: np.ndarray, block: np.ndarray, inc: int) -> np.ndarray:
    """Per column of ``block`` (rows x features), the sum over bins of ``inc`` rows of |corr(ref, column)|,
    skipping bins where either side is constant (or NaN)."""
    total = np.zeros(block.shape[1])
    for a in range(0, len(ref), inc):
        r, b = ref[a : a + inc], block[a : a + inc]
        if not np.ptp(r) > 0:
            continue
        rc, bc = r - r.mean(), b - b.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (rc @ bc) / np.sqrt((rc @ rc) * (bc * bc).sum(0))
        total += np.where(np.ptp(b, axis=0) > 0, np.abs(np.nan_to_num(corr)), 0.0)
    return total


def interaction_scores(values: np.ndarray, data: np.ndarray, index: int) -> np.ndarray:
    """How strongly each feature's value explains the spread of feature ``index``'s attributions at equal
    values of ``index``: rows sorted by ``index``'s value, cut into bins of ``clip(N/10, 1, 50)`` rows,
    |Pearson correlation| of the attributions with each other feature (and with its missingness) summed
    over the bins (shap's ``approximate_interactions`` heuristic; 0 for ``index`` itself)."""
    data = np.asarray(data, dtype=np.float64)
    srt = np.argsort(data[:, index])
    ref = np.asarray(values, dtype=np.float64)[srt, index]
    inc = max(min(int(len(srt) / 10.0), 50), 1)
    block = data[srt]
    skip = np.sum(np.abs(block), 0) < 1e-8  # all-zero columns (NaN sums are not skipped, as in shap)
    scores = np.where(skip, 0.0, _binned_correlation(ref, block, inc))
    miss = np.isnan(block).astype(np.float64)
    if miss.any():
        scores = np.maximum(scores, np.where(miss.sum(0) < 1e-8, 0.0, _binned_correlation(ref, miss, inc)))
    scores[index] = 0.0
    return scores


def interaction_partner(values: np.ndarray, data: np.ndarray, index: int) -> int:
    """The feature that colours ``index``'s dependence plot: the strongest approximate interaction (shap's
    first choice, ``approximate_interactions(index, ...)[0]``); -1 with a single feature."""
    if data.shape[1] < 2:
        return -1
    return int(np.argsort(-np.abs(interaction_scores(values, data, index)), kind="stable")[0])


def decision(values: np.ndarray, base: np.ndarray, max_display: int = 20) -> dict[str, Any]:
    """Decision paths: ``order`` (the shown features, least important first, as drawn bottom to top:
    features by sum |value| ascending, the last ``max_display``) and ``paths`` ``(N, k + 1)``: column 0 is
    base + the sum of the features not shown, column j adds the j-th shown feature; the last column is
    base + sum of the row (shap's ``decision_plot``)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    idx = np.argsort(np.abs(v).sum(0), kind="stable")
    shown = idx[-max_display:] if max_display < len(idx) else idx
    hidden = idx[: len(idx) - len(shown)]
    start = np.asarray(base, dtype=np.float64) + v[:, hidden].sum(1)
    paths = np.concatenate([start[:, None], start[:, None] + np.cumsum(v[:, shown], axis=1)], 1)
    return {"order": shown, "paths": paths}
