"""SHAP's plot family as one linked widget: waterfall, beeswarm, bar (with cohorts), heatmap, dependence
(scatter) and decision plots of one explanation (Lundberg & Lee 2017; Lundberg et al. 2020), drawn by our own
SVG / canvas code in every host, with a PNG fallback.

``TabularPlots`` holds the explanation once and shows any of the views; they share ``selection`` (rows
picked in the beeswarm, heatmap, dependence or decision plot are highlighted in the others) and ``row``
(the row the waterfall shows). ``xw.plots.waterfall(a, row)``, ``beeswarm(a)``, ``bar(a, cohorts=...)``,
``heatmap(a)``, ``scatter(a, feature)``, ``decision(a)`` give one view each. The numbers drawn are those of
:meth:`TabularPlots.plot_data` (``xaiwidgets.analysis.shapplots`` applies shap's ordering and folding rules).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ..analysis import shapplots as rules
from .base import PngFallbackWidget, esm
from .buffers import array_payload
from .explanationtable import ExplanationTable, as_table

VIEWS = ("beeswarm", "waterfall", "bar", "heatmap", "dependence", "decision")
ROW_ORDERS = ("clustering", "output", "original")


def _f32(x: Any) -> dict[str, Any]:
    return array_payload(np.asarray(x, dtype=np.float32))


def _i32(x: Any) -> dict[str, Any]:
    return array_payload(np.asarray(x, dtype=np.int32))


class TabularPlots(PngFallbackWidget):
    """Linked SHAP-style plots of one explanation. Build it with :meth:`of` (an ``Attribution`` or a
    ``shap.Explanation``) or the functions of :mod:`xaiwidgets.plots`."""

    _esm = esm("shapplots")
    _bundle_name = "shapplots"

    views = traitlets.List(traitlets.Unicode(), list(VIEWS)).tag(sync=True)
    features = traitlets.List(traitlets.Unicode()).tag(sync=True)
    values = traitlets.Dict().tag(sync=True)  # float32 (N, d), NaN = absent
    feature_values = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)  # float32 (N, d)
    base_value = traitlets.Dict().tag(sync=True)  # float32 (N,)
    output_value = traitlets.Dict().tag(sync=True)  # float32 (N,)
    output_name = traitlets.Unicode("f(x)").tag(sync=True)
    row_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    max_display = traitlets.Int(10, min=2).tag(sync=True)
    #: precomputed by shap's rules (analysis.shapplots): summary order and fold, colour ranges, the
    #: clustering order, interaction partners, cohort bars, decision paths
    plot = traitlets.Dict().tag(sync=True)
    row_order = traitlets.Unicode("clustering").tag(sync=True)
    dependence_feature = traitlets.Int(-1).tag(sync=True)  # -1: the most important feature
    color_feature = traitlets.Int(-1).tag(sync=True)  # -1: the strongest interaction (shap's choice)
    selection = traitlets.List(traitlets.Int()).tag(sync=True)
    row = traitlets.Int(0).tag(sync=True)

    @traitlets.validate("views")
    def _check_views(self, proposal: dict[str, Any]) -> list[str]:
        bad = [v for v in proposal["value"] if v not in VIEWS]
        if bad:
            raise traitlets.TraitError(f"unknown views {bad}; choose from {', '.join(VIEWS)}")
        return proposal["value"]

    @traitlets.validate("row_order")
    def _check_row_order(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in ROW_ORDERS:
            raise traitlets.TraitError(f"row_order must be one of {', '.join(ROW_ORDERS)}, got {proposal['value']!r}")
        return proposal["value"]

    def __init__(self, table: ExplanationTable, *, cohorts: Any = None, **kwargs: Any) -> None:
        self.table = table
        self._cohorts = rules.cohorts_of(cohorts, table.data, table.features, table.values.shape[0])
        t = table
        super().__init__(
            features=t.features,
            values=_f32(t.values),
            base_value=_f32(t.base),
            output_value=_f32(t.output),
            feature_values=None if t.data is None else _f32(t.data),
            output_name=t.output_name,
            row_names=t.row_names,
            title=kwargs.pop("title", t.title),
            **kwargs,
        )
        n = t.values.shape[0]
        if not 0 <= self.row < n:
            raise IndexError(f"row {self.row} is out of range for {n} rows")
        self._send_plot()
        self.observe(lambda _: self._send_plot(), names="max_display")

    @classmethod
    def of(cls, source: Any, **kwargs: Any) -> TabularPlots:
        """From an ``Attribution`` (tabular rows or texts), a ``shap.Explanation`` or an ``ExplanationTable``.
        ``cohorts``: a feature name or index, a boolean mask or one label per row (the bar plot's groups)."""
        return cls(as_table(source), **kwargs)

    # --- the numbers ---------------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        return rules.summary(self.table.values, self.max_display)

    def _label(self, j: int, count: int = 0) -> str:
        return self.table.features[j] if j >= 0 else f"Sum of {count} other features"

    def _send_plot(self) -> None:
        t = self.table
        s = self._summary()
        data = t.data
        ranges = np.array([rules.color_range(data[:, j]) for j in range(data.shape[1])]) if data is not None else None
        partners = (
            [rules.interaction_partner(t.values, data, j) for j in range(data.shape[1])] if data is not None else None
        )
        c = self.plot_data("bar")
        dec = rules.decision(t.values, t.base, 2 * self.max_display)
        self.plot = {
            "order": _i32(s["order"]),
            "fold_count": int(s["folded"].size),
            "fold": None if s["fold"] is None else _f32(s["fold"]),
            "color_range": None if ranges is None else _f32(ranges),
            "clustering": _i32(rules.row_order(t.values, t.output, "clustering")),
            "heat_clip": rules.heat_clip(self.plot_data("beeswarm")["x"]),
            "interactions": None if partners is None else _i32(partners),
            "cohorts": {
                "names": c["names"],
                "sizes": c["sizes"].tolist(),
                "order": _i32(c["order"]),
                "bars": _f32(c["bars"]),
                "fold_count": int(c["folded"].size),
            },
            "decision": {"order": _i32(dec["order"]), "paths": _f32(dec["paths"])},
        }

    def plot_data(self, kind: str, row: int | None = None) -> dict[str, Any]:
        """The numbers a view draws (float64, before float32 transport): ``"waterfall"`` (of ``row``, default
        the ``row`` trait), ``"beeswarm"``, ``"bar"``, ``"heatmap"``, ``"dependence"``, ``"decision"``."""
        t = self.table
        if kind == "waterfall":
            i = self.row if row is None else row
            w = rules.waterfall(t.values[i], float(t.base[i]), self.max_display)
            n_fold = int(w["folded"].size)
            labels = [self._label(int(j)) for j in w["order"]] + ([f"{n_fold} other features"] if n_fold else [])
            shown = [int(j) for j in w["order"]]
            data = [float(t.data[i, j]) for j in shown] if t.data is not None else None
            return {**w, "labels": labels, "data": data, "output": float(t.output[i]), "row": i}
        if kind in ("beeswarm", "heatmap"):
            s = self._summary()
            cols = [t.values[:, j] for j in s["order"]] + ([s["fold"]] if s["fold"] is not None else [])
            labels = [self._label(int(j)) for j in s["order"]] + (
                [self._label(-1, int(s["folded"].size))] if s["fold"] is not None else []
            )
            out = {"order": s["order"], "labels": labels, "x": np.stack(cols)}
            if kind == "heatmap":
                rows = rules.row_order(t.values, t.output, self.row_order)
                return {**out, "rows": rows, "matrix": out["x"][:, rows], "output": t.output[rows]}
            colour = [t.data[:, j] if t.data is not None else None for j in s["order"]] + (
                [None] if s["fold"] is not None else []
            )
            out["color"] = colour
            out["color_range"] = [rules.color_range(c) if c is not None else None for c in colour]
            return out
        if kind == "bar":
            cohort, names = self._cohorts
            c = rules.cohort_bars(t.values, cohort, names, self.max_display)
            n_fold = int(c["folded"].size)
            labels = [self._label(int(j)) for j in c["order"]] + ([self._label(-1, n_fold)] if n_fold else [])
            return {**c, "names": names, "labels": labels}
        if kind == "dependence":
            if t.data is None:
                raise ValueError(
                    "a dependence plot needs the features' values (tabular rows); this explanation has none"
                )
            j = self.dependence_feature if self.dependence_feature >= 0 else int(rules.by_importance(t.values)[0])
            c = self.color_feature if self.color_feature >= 0 else rules.interaction_partner(t.values, t.data, j)
            return {
                "feature": j,
                "color_feature": c,
                "x": t.data[:, j],
                "y": t.values[:, j],
                "color": t.data[:, c] if c >= 0 else None,
            }
        if kind == "decision":
            d = rules.decision(t.values, t.base, 2 * self.max_display)
            return {**d, "labels": [t.features[j] for j in d["order"]]}
        raise ValueError(f"unknown plot {kind!r}; choose from {', '.join(VIEWS)}")

    def feature_index(self, feature: int | str) -> int:
        """A feature given by name or index."""
        names = self.table.features
        if isinstance(feature, str):
            if feature not in names:
                more = " ..." if len(names) > 12 else ""
                raise ValueError(f"no feature named {feature!r}; features: {', '.join(names[:12])}{more}")
            return names.index(feature)
        j = int(feature)
        if not 0 <= j < len(names):
            raise IndexError(f"feature {j} is out of range for {len(names)} features")
        return j

    def _fallback_png(self) -> bytes | None:
        from .shapfallback import render_plots_png

        return render_plots_png(self)


def _view(source: Any, views: list[str], **kwargs: Any) -> TabularPlots:
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise ValueError(f"unknown views {bad}; choose from {', '.join(VIEWS)}")
    return TabularPlots.of(source, views=views, **kwargs)


def waterfall(source: Any, row: int = 0, *, max_display: int = 10, **kwargs: Any) -> TabularPlots:
    """One row's contributions from the base value to f(x), largest first, the rest folded."""
    return _view(source, ["waterfall"], row=row, max_display=max_display, **kwargs)


def beeswarm(source: Any, *, max_display: int = 10, **kwargs: Any) -> TabularPlots:
    """One dot per row per feature (x: attribution, colour: the feature's value), features by mean |value|."""
    return _view(source, ["beeswarm"], max_display=max_display, **kwargs)


def bar(source: Any, *, cohorts: Any = None, max_display: int = 10, **kwargs: Any) -> TabularPlots:
    """Mean |attribution| per feature; ``cohorts`` (a feature, a boolean mask or labels) side by side."""
    return _view(source, ["bar"], cohorts=cohorts, max_display=max_display, **kwargs)


def heatmap(source: Any, *, order: str = "clustering", max_display: int = 10, **kwargs: Any) -> TabularPlots:
    """Rows x features, rows ordered by clustering, by f(x) or as given, the f(x) line on top."""
    return _view(source, ["heatmap"], row_order=order, max_display=max_display, **kwargs)


def scatter(
    source: Any, feature: int | str | None = None, *, color: int | str | None = None, **kwargs: Any
) -> TabularPlots:
    """Dependence plot: a feature's value against its attribution, coloured by ``color`` or by the feature
    with the strongest approximate interaction."""
    plots = _view(source, ["dependence"], **kwargs)
    if plots.table.data is None:
        raise ValueError("a dependence plot needs the features' values (tabular rows); this explanation has none")
    plots.dependence_feature = plots.feature_index(feature) if feature is not None else -1
    plots.color_feature = plots.feature_index(color) if color is not None else -1
    return plots


def decision(source: Any, *, max_display: int = 10, **kwargs: Any) -> TabularPlots:
    """Each row's path from the base value to its output, adding features from the least important; shows
    the ``2 * max_display`` most important features (shap's 20 by default)."""
    return _view(source, ["decision"], max_display=max_display, **kwargs)


def tabular(source: Any, views: list[str] | None = None, **kwargs: Any) -> TabularPlots:
    """All the views, linked (``views`` picks some)."""
    return _view(source, list(views or VIEWS), **kwargs)
