"""AnchorView: an anchor's words (or predicates) in context, its rule with precision and coverage, and
samples drawn with the anchor held fixed that keep or change the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .base import esm
from .buffers import array_payload
from .htmlfallback import HtmlFallbackWidget, escape
from .textspans import align, detokenize
from .tokens import _per_input, target_label

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution

REPLACED = {"[UNK]", "[MASK]", "[PAD]", "<unk>", "<mask>", "<pad>", "UNK"}


def example_segments(example: str, words: Sequence[str], anchor: Sequence[int]) -> list[list[str]]:
    """One perturbed text as ``[word, kind]`` pairs, kind ``anchor`` | ``kept`` | ``replaced``, when its
    words line up with the original's (replacement perturbations); else the text as one ``plain`` part."""
    parts = example.split(" ")
    if len(parts) != len(words):
        return [[example, "plain"]]
    fixed = set(int(i) for i in anchor)
    out = []
    for j, (part, word) in enumerate(zip(parts, words)):
        kind = "replaced" if part != word or part in REPLACED else "anchor" if j in fixed else "kept"
        out.append([part, kind])
    return out


def _prob(value: Any, name: str) -> float | None:
    """A probability for the wire: None when unknown (NaN is not valid JSON)."""
    if value is None:
        return None
    v = float(value)
    if v != v:
        return None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {v}")
    return v


class AnchorView(HtmlFallbackWidget):
    """One anchor explanation. Build it with :meth:`from_attribution`, :meth:`from_text` or :meth:`from_row`."""

    _esm = esm("anchor")
    _bundle_name = "anchor"

    kind = traitlets.Unicode("text").tag(sync=True)  # "text" | "tabular"
    title = traitlets.Unicode("").tag(sync=True)
    prediction = traitlets.Unicode("").tag(sync=True)
    rule = traitlets.List(traitlets.Unicode()).tag(sync=True)
    precision = traitlets.Float(None, allow_none=True).tag(sync=True)  # None: unknown
    coverage = traitlets.Float(None, allow_none=True).tag(sync=True)
    threshold = traitlets.Float(None, allow_none=True).tag(sync=True)
    n_samples = traitlets.Int(0).tag(sync=True)
    converged = traitlets.Bool(True).tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    features = traitlets.List(traitlets.Unicode()).tag(sync=True)
    spans = traitlets.List(allow_none=True, default_value=None).tag(sync=True)
    anchor = traitlets.List(traitlets.Int()).tag(sync=True)
    feature_values = traitlets.List(traitlets.Float()).tag(sync=True)
    examples_hold = traitlets.Any(None, allow_none=True).tag(sync=True)
    examples_fail = traitlets.Any(None, allow_none=True).tag(sync=True)

    @classmethod
    def from_text(
        cls,
        words: Sequence[str],
        anchor: Sequence[int],
        *,
        prediction: str,
        precision: float,
        coverage: float,
        text: str | None = None,
        examples_hold: Sequence[str] = (),
        examples_fail: Sequence[str] = (),
        threshold: float | None = None,
        n_samples: int = 0,
        converged: bool = True,
        title: str = "",
        **options: Any,
    ) -> AnchorView:
        """A text anchor: the text's ``words``, the anchor as word indices, the predicted label, precision
        and coverage, and perturbed texts (words joined by spaces) where the prediction holds / changes."""
        words = [str(w) for w in words]
        anchor = sorted({int(i) for i in anchor})
        if any(not 0 <= i < len(words) for i in anchor):
            raise ValueError(f"anchor indices must be in [0, {len(words)}); got {anchor}")
        if text is None:
            text, spans = detokenize(words)
        else:
            spans = align(text, words)
        return cls(
            kind="text", title=title, prediction=str(prediction), rule=[words[i] for i in anchor],
            precision=_prob(precision, "precision"), coverage=_prob(coverage, "coverage"), threshold=threshold,
            n_samples=int(n_samples), converged=bool(converged), text=text, features=words,
            spans=[list(s) for s in spans] if spans is not None else None, anchor=anchor,
            examples_hold=[example_segments(str(e), words, anchor) for e in examples_hold],
            examples_fail=[example_segments(str(e), words, anchor) for e in examples_fail],
            **options,
        )

    @classmethod
    def from_row(
        cls,
        features: Sequence[str],
        row: Any,
        anchor: Sequence[int],
        rule: Sequence[str],
        *,
        prediction: str,
        precision: float,
        coverage: float,
        examples_hold: Any = None,
        examples_fail: Any = None,
        threshold: float | None = None,
        n_samples: int = 0,
        converged: bool = True,
        title: str = "",
        **options: Any,
    ) -> AnchorView:
        """A tabular anchor: feature names, the explained row ``(d,)``, the anchored feature indices, the
        rule's predicates (``"mean radius <= 13.4"``), and sample rows ``(n, d)`` where it holds / fails."""
        names = [str(f) for f in features]
        values = np.asarray(row.detach().cpu() if hasattr(row, "detach") else row, dtype=np.float64).ravel()
        if len(values) != len(names):
            raise ValueError(f"{len(names)} feature names but the row has {len(values)} values")
        anchor = sorted({int(i) for i in anchor})
        if any(not 0 <= i < len(names) for i in anchor):
            raise ValueError(f"anchor feature indices must be in [0, {len(names)}); got {anchor}")
        return cls(
            kind="tabular", title=title, prediction=str(prediction), rule=[str(r) for r in rule],
            precision=_prob(precision, "precision"), coverage=_prob(coverage, "coverage"), threshold=threshold,
            n_samples=int(n_samples), converged=bool(converged), features=names,
            feature_values=[float(v) for v in values], anchor=anchor,
            examples_hold=_rows(examples_hold, len(names)), examples_fail=_rows(examples_fail, len(names)),
            **options,
        )

    @classmethod
    def from_attribution(cls, attribution: Attribution, index: int = 0, *, text: str | None = None,
                         **options: Any) -> AnchorView:
        """Input ``index`` of an ``anchors`` result (``text`` overrides the sentence shown)."""
        a = attribution
        ex = a.extras or {}
        if "precision" not in ex or "anchor" not in ex:
            raise ValueError(f"AnchorView shows an anchors result; {a.method} has no anchor in its extras")
        n = len(a)
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} explained inputs")
        common = {
            "prediction": ex["prediction"][index] if "prediction" in ex else target_label(a, index),
            "precision": ex["precision"][index],
            "coverage": ex["coverage"][index],
            "threshold": a.params.get("threshold"),
            "n_samples": int(ex.get("n_samples", [0] * n)[index]),
            "converged": bool(ex.get("converged", [True] * n)[index]),
            "title": f"{a.method} · {target_label(a, index)}",
        }
        features = ex["features"][index]
        if "anchor_features" in ex:  # tabular: predicates over columns
            row = a.inputs[index] if a.inputs is not None else np.full(len(features), np.nan)
            return cls.from_row(
                features, row, ex["anchor_features"][index], ex["anchor"][index],
                examples_hold=ex.get("examples_hold", [None] * n)[index],
                examples_fail=ex.get("examples_fail", [None] * n)[index], **{**common, **options},
            )
        text = text or _per_input(ex.get("text"), index, flat_is_shared=False)
        return cls.from_text(
            features, ex["anchor_indices"][index], text=text,
            examples_hold=ex.get("examples_hold", [[]] * n)[index],
            examples_fail=ex.get("examples_fail", [[]] * n)[index], **{**common, **options},
        )

    def _fallback_html(self) -> str:
        rule = " AND ".join(escape(r) for r in self.rule) or "(empty anchor)"
        out = [f"<div><b>{escape(self.title)}</b></div>" if self.title else "",
               f"<div>IF <b>{rule}</b> THEN <b>{escape(self.prediction)}</b></div>",
               f"<div>precision {_percent(self.precision)} · coverage {_percent(self.coverage)}</div>"]
        if self.kind == "text" and self.text:
            fixed = set(self.anchor)
            cursor, parts = 0, []
            for i, span in enumerate(self.spans or []):
                a, b = span
                parts.append(escape(self.text[cursor:a]))
                word = escape(self.text[a:b])
                parts.append(f"<mark>{word}</mark>" if i in fixed else word)
                cursor = b
            parts.append(escape(self.text[cursor:]))
            out.append(f"<div>{''.join(parts)}</div>")
        return "".join(out)


def _rows(rows: Any, d: int) -> dict[str, Any] | None:
    """Sample rows ``(n, d)`` as a float32 array dict (None when there are none)."""
    if rows is None:
        return None
    arr = np.asarray(rows.detach().cpu() if hasattr(rows, "detach") else rows, dtype=np.float32)
    if arr.size == 0:
        return array_payload(np.zeros((0, d), np.float32))
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"example rows must be (n, {d}); got shape {arr.shape}")
    return array_payload(arr)


def _percent(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.1%}"
