"""An explanation as a rows x features table for SHAP's plot family: from our ``Attribution`` (tabular rows or
texts, any method with one value per feature) or from a ``shap.Explanation``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError
from .forceplot import _array, _base_and_output, _is_text, _tabular_names
from .tokens import _per_input, target_label


@dataclass
class ExplanationTable:
    """``values`` ``(N, d)`` (NaN: the feature is absent from that row, e.g. a word not in a text), the base
    value and output per row, feature names, the features' values ``(N, d)`` when known."""

    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    features: list[str]
    data: np.ndarray | None
    row_names: list[str]
    output_name: str = "f(x)"
    title: str = ""

    def __post_init__(self) -> None:
        n, d = self.values.shape
        if n == 0 or d == 0:
            raise InputError(f"nothing to plot: {n} rows x {d} features")
        if self.base.shape != (n,) or self.output.shape != (n,):
            raise InputError(f"base and output need one value per row ({n})")
        if len(self.features) != d or len(self.row_names) != n:
            raise InputError(
                f"{len(self.features)} feature names for {d} features, {len(self.row_names)} names for {n} rows"
            )
        if self.data is not None and self.data.shape != (n, d):
            raise InputError(f"feature values must be (N, d) = {(n, d)}; got {self.data.shape}")


def _vocabulary(rows: list[tuple[list[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """Texts: one column per distinct word (first seen first); a word's value in a row is the sum over its
    occurrences there, NaN where it does not occur."""
    columns: dict[str, int] = {}
    for words, _ in rows:
        for w in words:
            columns.setdefault(w, len(columns))
    table = np.full((len(rows), len(columns)), np.nan)
    for i, (words, vals) in enumerate(rows):
        for w, v in zip(words, vals):
            j = columns[w]
            table[i, j] = v if np.isnan(table[i, j]) else table[i, j] + v
    return list(columns), table


def from_attribution(a: Any) -> ExplanationTable:
    ex = a.extras or {}
    if a.values.dim() != 2:
        raise InputError(
            f"SHAP's plots need one value per feature (tabular rows or texts); {a.method} gave values of shape "
            f"{tuple(a.values.shape)}. Image results: use a.show() (HeatmapView) or a ForcePlot of superpixels."
        )
    n = len(a)
    rows = list(range(n))
    vals = _array(a.values)
    if _is_text(ex):
        per_row = []
        for i in rows:
            words = [str(w) for w in (_per_input(ex.get("features"), i) or [])]
            per_row.append((words, vals[i, : len(words)]))
        features, table = _vocabulary(per_row)
        data = None
        sums = np.array([np.nansum(table[i]) for i in rows])
    else:
        table = vals
        features = _tabular_names(a, vals.shape[1])
        fv = ex.get("feature_values", a.inputs)
        data = _array(fv) if fv is not None and _array(fv).shape == vals.shape else None
        sums = vals.sum(1)
    base, output, output_name = _base_and_output(a, rows, np.nan_to_num(table))
    output = base + sums if output is None else np.asarray(output, dtype=np.float64)
    labels = [target_label(a, i) for i in rows]
    same = len(set(labels)) == 1
    return ExplanationTable(
        values=table,
        base=np.asarray(base, dtype=np.float64),
        output=output,
        features=features,
        data=data,
        row_names=[f"row {i}" if same else f"row {i} · {lab}" for i, lab in zip(rows, labels)],
        output_name=output_name,
        title=f"{a.method} · {labels[0]}" if same else f"{a.method} · each row's own class",
    )


def from_shap(e: Any) -> ExplanationTable:
    """A ``shap.Explanation`` of one output: values ``(N, d)`` (or one row ``(d,)``), ``base_values``,
    ``data`` and ``feature_names``; text explanations (ragged rows of tokens) become one column per token."""
    values, base, data = e.values, e.base_values, e.data
    names = e.feature_names
    ragged = isinstance(values, np.ndarray) and values.dtype == object
    if not ragged and np.ndim(values) == 1:
        values, data, base = (
            np.asarray(values)[None],
            None if data is None else np.asarray(data)[None],
            np.atleast_1d(base),
        )
        names = None if names is None else list(names)
    if not ragged and np.ndim(values) != 2:
        raise InputError(
            f"a shap Explanation of shape {np.shape(values)} has several outputs; pick one, e.g. "
            "shap_values[..., 1], and plot that"
        )
    n = len(values)
    base = np.broadcast_to(np.asarray(base, dtype=np.float64).reshape(-1), (n,)).copy()
    if ragged:
        # shap's text tokens carry their trailing whitespace ("good "): one column per word, spaces aside
        token_rows = [
            [str(t).strip() for t in (names[i] if names is not None and np.ndim(names[i]) else data[i])]
            for i in range(n)
        ]
        features, table = _vocabulary([(t, np.asarray(values[i], dtype=np.float64)) for i, t in enumerate(token_rows)])
        fv = None
    else:
        table = np.asarray(values, dtype=np.float64)
        d = table.shape[1]
        features = (
            [str(f) for f in names] if names is not None and len(names) == d else [f"Feature {j}" for j in range(d)]
        )
        fv = None
        if data is not None:
            try:
                fv = np.asarray(data, dtype=np.float64).reshape(table.shape)
            except (TypeError, ValueError):
                fv = None  # non-numeric display data: no colours
    output = base + np.nansum(table, axis=1)
    return ExplanationTable(
        values=table,
        base=base,
        output=output,
        features=features,
        data=fv,
        row_names=[f"row {i}" for i in range(n)],
        output_name="f(x)",
        title="shap Explanation",
    )


def as_table(source: Any) -> ExplanationTable:
    """An ``ExplanationTable`` from an ``Attribution``, a ``shap.Explanation`` or a table."""
    if isinstance(source, ExplanationTable):
        return source
    if type(source).__name__ == "Explanation" and hasattr(source, "base_values"):
        return from_shap(source)
    if hasattr(source, "values") and hasattr(source, "extras") and hasattr(source, "method"):
        return from_attribution(source)
    raise TypeError(f"expected an xaiwidgets Attribution or a shap Explanation, got {type(source).__name__}")


def from_arrays(values: Any, base_value: Any, *, features: Sequence[str] | None = None, feature_values: Any = None,
                output_value: Any = None, output_name: str = "f(x)", title: str = "") -> ExplanationTable:
    """A table from plain arrays: contributions ``(N, d)``, base value (scalar or ``(N,)``), optionally the
    output (default base + sum), names and the features' values."""
    vals = _array(values)
    vals = vals[None] if vals.ndim == 1 else vals
    if vals.ndim != 2:
        raise InputError(f"values must be (N, d); got shape {vals.shape}")
    n, d = vals.shape
    base = np.broadcast_to(_array(base_value).reshape(-1), (n,)).copy()
    out = base + np.nansum(vals, 1) if output_value is None else _array(output_value).reshape(-1)
    fv = None if feature_values is None else _array(feature_values).reshape(n, d)
    names = [str(f) for f in features] if features is not None else [f"feature {j}" for j in range(d)]
    return ExplanationTable(vals, base, out, names, fv, [f"row {i}" for i in range(n)], output_name, title)
