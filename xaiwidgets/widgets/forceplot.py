"""ForcePlot: SHAP's additive force plot (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model
Predictions", NeurIPS; Lundberg et al. 2018, Nature BME), drawn by our own SVG code.

One instance: from the base value, features pushing the output up (red) and down (blue) as stacked
arrows on a number line that meet at the output. Several: the same stacks turned vertical, one column
per instance, instances ordered by similarity of their explanations (hierarchical clustering with
optimal leaf order) or by output. Works for tabular features, text tokens and image superpixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .base import PngFallbackWidget, esm
from .buffers import array_payload
from .forcefallback import render_force_png
from .tokens import _item, _per_input, target_label

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution

ORDERS = ("similarity", "output", "original")
MAX_CLUSTERED = 2000


def _array(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def similarity_order(values: np.ndarray) -> np.ndarray:
    """Instances ordered so that similar explanations sit side by side: the leaf order of an average-linkage
    clustering of the rows (optimal leaf ordering); above ``MAX_CLUSTERED`` rows, the order of their
    projection on the first principal component."""
    n = values.shape[0]
    if n <= 2:
        return np.arange(n)
    if n > MAX_CLUSTERED:
        centred = values - values.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return np.argsort(centred @ vt[0], kind="stable")
    from scipy.cluster.hierarchy import leaves_list, linkage

    if np.ptp(values, axis=0).max(initial=0.0) == 0:
        return np.arange(n)
    return np.asarray(leaves_list(linkage(values, method="average", optimal_ordering=True)))


class ForcePlot(PngFallbackWidget):
    """Additive force plot of one or several explanations. Build it with :meth:`from_attribution` or
    :meth:`from_arrays`."""

    _esm = esm("forceplot")
    _bundle_name = "forceplot"

    features = traitlets.List(traitlets.Unicode()).tag(sync=True)
    values = traitlets.Dict().tag(sync=True)  # float32 (N, d)
    feature_values = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)  # float32 (N, d)
    base_value = traitlets.Dict().tag(sync=True)  # float32 (N,)
    output_value = traitlets.Dict().tag(sync=True)  # float32 (N,)
    output_name = traitlets.Unicode("f(x)").tag(sync=True)
    instance_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    similarity_order = traitlets.Dict().tag(sync=True)  # int32 (N,)
    order = traitlets.Unicode("similarity").tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    @traitlets.validate("order")
    def _check_order(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in ORDERS:
            raise traitlets.TraitError(f"order must be one of {', '.join(ORDERS)}, got {proposal['value']!r}")
        return proposal["value"]

    def __init__(self, **kwargs: Any) -> None:
        self._arrays: dict[str, np.ndarray] = kwargs.pop("_arrays", {})
        super().__init__(**kwargs)

    @classmethod
    def from_arrays(
        cls,
        values: Any,
        base_value: Any,
        *,
        features: Sequence[str] | None = None,
        feature_values: Any = None,
        output_value: Any = None,
        output_name: str = "f(x)",
        instance_names: Sequence[str] | None = None,
        order: str = "similarity",
        title: str = "",
        **options: Any,
    ) -> ForcePlot:
        """From contributions ``(d,)`` or ``(N, d)``, the base value (scalar or ``(N,)``) and optionally the
        output (default ``base + sum``), feature names and the features' values ``(N, d)``."""
        vals = _array(values)
        if vals.ndim == 1:
            vals = vals[None]
        if vals.ndim != 2 or vals.shape[1] == 0 or vals.shape[0] == 0:
            raise ValueError(f"values must be (d,) or (N, d) contributions; got shape {vals.shape}")
        n, d = vals.shape
        if not np.isfinite(vals).all():
            raise ValueError("values contain NaN or infinite contributions")
        base = _array(base_value).ravel()
        if base.size == 1:
            base = np.full(n, base[0])
        if base.shape != (n,) or not np.isfinite(base).all():
            raise ValueError(
                f"base_value must be a finite number or one per instance ({n}); got shape {np.shape(base_value)}"
            )
        out = base + vals.sum(1) if output_value is None else _array(output_value).ravel()
        if out.shape != (n,):
            raise ValueError(f"output_value must be one per instance ({n}); got shape {out.shape}")
        names = [str(f) for f in features] if features is not None else [f"feature {j}" for j in range(d)]
        if len(names) != d:
            raise ValueError(f"{len(names)} feature names for {d} contributions per instance")
        fv = None
        if feature_values is not None:
            fv = _array(feature_values)
            if fv.ndim == 1:
                fv = fv[None]
            if fv.shape != (n, d):
                raise ValueError(f"feature_values must be (N, d) = {(n, d)} like values; got {fv.shape}")
        inst = [str(s) for s in instance_names] if instance_names is not None else [f"instance {i}" for i in range(n)]
        if len(inst) != n:
            raise ValueError(f"{len(inst)} instance names for {n} instances")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        arrays = {"values": vals, "base": np.array(base, dtype=np.float64), "output": out}
        if fv is not None:
            arrays["feature_values"] = fv
        return cls(
            features=names,
            values=array_payload(vals.astype(np.float32)),
            feature_values=array_payload(fv.astype(np.float32)) if fv is not None else None,
            base_value=array_payload(np.asarray(base, np.float32)),
            output_value=array_payload(out.astype(np.float32)),
            output_name=output_name,
            instance_names=inst,
            similarity_order=array_payload(similarity_order(vals).astype(np.int32)),
            order=order,
            selected=0 if n == 1 else -1,
            title=title,
            _arrays=arrays,
            **options,
        )

    @classmethod
    def from_attribution(cls, attribution: Attribution, index: int | None = None, **options: Any) -> ForcePlot:
        """Tabular results: every row (a stacked plot) or row ``index``; text and image-superpixel results:
        input ``index`` (default 0). Base value and output from ``extras`` (``base_value``/``output_value``;
        LIME: the surrogate's intercept and local prediction); without them the base is 0 and the output
        the attributions' sum."""
        a = attribution
        ex = a.extras or {}
        n = len(a)
        if index is not None and not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} explained inputs")
        dim = a.values.dim()
        if dim == 2 and _is_text(ex):
            i = index or 0
            rows = [i]
            if "tokens" in ex and "word_ids" in ex:
                keep = [j for j, w in enumerate(ex["word_ids"]) if w is not None]
                names = [ex["tokens"][j] for j in keep]
                vals = _array(a.values[i])[keep][None]
            else:
                names = list(_per_input(ex["features"], i))
                vals = _array(a.values[i])[: len(names)][None]
            fv = None
        elif dim == 2:
            rows = list(range(n)) if index is None else [index]
            vals = _array(a.values)[rows]
            names = _tabular_names(a, vals.shape[1])
            fv_all = ex.get("feature_values", a.inputs)
            fv = _array(fv_all)[rows] if fv_all is not None and _array(fv_all).ndim == 2 else None
        elif "feature_values" in ex and isinstance(ex["feature_values"], (list, tuple)):  # image superpixels
            i = index or 0
            rows = [i]
            vals = _array(ex["feature_values"][i]).ravel()[None]
            names = [f"superpixel {j}" for j in range(vals.shape[1])]
            fv = None
        else:
            raise ValueError(
                f"ForcePlot needs per-feature contributions (tabular, text or superpixel results); {a.method} "
                f"gave values of shape {tuple(a.values.shape)}"
            )
        base, output, output_name = _base_and_output(a, rows, vals)
        labels = [target_label(a, i) for i in rows]
        same = len(set(labels)) == 1
        title = f"{a.method} · {labels[0]}" if same else f"{a.method} · each row's own class"
        instance_names = [f"row {i}" if same else f"row {i} · {lab}" for i, lab in zip(rows, labels)]
        kwargs = {"features": names, "feature_values": fv, "output_value": output, "output_name": output_name,
                  "instance_names": instance_names, "title": title}
        return cls.from_arrays(vals, base, **{**kwargs, **options})

    def _fallback_png(self) -> bytes | None:
        if not self._arrays:
            return None
        return render_force_png(
            self._arrays["values"], self._arrays["base"], self._arrays["output"], self.features,
            self._arrays.get("feature_values"), title=self.title, output_name=self.output_name,
        )


def _is_text(ex: dict[str, Any]) -> bool:
    if "tokens" in ex and "word_ids" in ex:
        return True
    feats = ex.get("features")
    return "text" in ex or "level" in ex or (
        isinstance(feats, (list, tuple)) and bool(feats) and isinstance(feats[0], (list, tuple))
    )


def _tabular_names(a: Attribution, d: int) -> list[str]:
    feats = (a.extras or {}).get("features")
    if isinstance(feats, (list, tuple)) and len(feats) == d and all(isinstance(f, str) for f in feats):
        return list(feats)
    names = getattr(a.classifier, "feature_names", None)
    if isinstance(names, (list, tuple)) and len(names) == d:
        return [str(f) for f in names]
    return [f"feature {j}" for j in range(d)]


def _base_and_output(a: Attribution, rows: list[int], vals: np.ndarray) -> tuple[np.ndarray, Any, str]:
    ex = a.extras or {}
    total = vals.sum(1)
    base = [_item(ex.get("base_value"), i) for i in rows]
    if all(b is not None for b in base):
        out = [_item(ex.get("output_value"), i) for i in rows]
        output = np.array(out) if all(o is not None for o in out) else None
        return np.array(base, dtype=np.float64), output, "f(x)"
    intercept = [_item(ex.get("intercept"), i) for i in rows]
    if all(b is not None for b in intercept):  # LIME: the surrogate at the explained input
        return np.array(intercept, dtype=np.float64), None, "surrogate g(x)"
    return np.zeros(len(rows)), total, "Σ attributions"
