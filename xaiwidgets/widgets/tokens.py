"""TokenView: a text with each token's (or word's) background coloured by its signed attribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .base import esm
from .buffers import array_payload
from .htmlfallback import HtmlFallbackWidget, escape, signed_rgba
from .textspans import Span, align, detokenize, strip_marker, valid_spans, word_groups

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution

LEVELS = ("word", "token")


def _floats(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one value per feature (1-D); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def _level(features: Sequence[str], values: np.ndarray, spans: list[Span] | None) -> dict[str, Any]:
    return {
        "features": [str(f) for f in features],
        "values": array_payload(values.astype(np.float32)),
        "spans": [list(s) for s in spans] if spans is not None else None,
    }


def _merge(
    tokens: Sequence[str], values: np.ndarray, groups: Sequence[int], text: str, spans: list[Span] | None,
    names: Sequence[str] | None,
) -> tuple[list[str], np.ndarray, list[Span] | None]:
    """Word features, values (sum over each word's pieces) and spans from token-level ones."""
    n_words = max(groups) + 1
    merged = np.zeros(n_words)
    np.add.at(merged, np.asarray(groups), values)
    pieces: list[list[int]] = [[] for _ in range(n_words)]
    for t, g in enumerate(groups):
        pieces[g].append(t)
    word_spans = [(spans[p[0]][0], spans[p[-1]][1]) for p in pieces] if spans is not None else None
    if names is not None and len(names) == n_words:
        words = [str(w) for w in names]
    elif word_spans is not None and text:
        words = [text[a:b] for a, b in word_spans]
    else:
        words = ["".join(strip_marker(tokens[t]) for t in p) for p in pieces]
    return words, merged, word_spans


class TokenView(HtmlFallbackWidget):
    """Tokens or words of one text, coloured by attribution, with a word / word-piece toggle and the top
    features as bars. Build it with :meth:`from_attribution` or :meth:`from_arrays`."""

    _esm = esm("tokens")
    _bundle_name = "tokens"

    text = traitlets.Unicode("").tag(sync=True)
    levels = traitlets.Dict().tag(sync=True)
    level = traitlets.Unicode("word").tag(sync=True)
    signed = traitlets.Bool(True).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    top_k = traitlets.Int(10, min=0).tag(sync=True)

    @traitlets.validate("level")
    def _check_level(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in LEVELS:
            raise traitlets.TraitError(f"level must be 'word' or 'token', got {value!r}")
        return value

    @classmethod
    def from_arrays(
        cls,
        features: Sequence[str],
        values: Any,
        *,
        text: str | None = None,
        spans: Sequence[Sequence[int]] | None = None,
        level: str = "word",
        groups: Sequence[int] | None = None,
        words: Sequence[str] | None = None,
        signed: bool | None = None,
        title: str = "",
        caption: str = "",
        top_k: int = 10,
        **options: Any,
    ) -> TokenView:
        """From one text's features (tokens or words) and their attributions.

        ``spans``: ``(start, end)`` of each feature in ``text`` (found by search when omitted). At
        ``level="token"`` the word level is built too (a word's value is the sum of its pieces'); ``groups``
        gives each token's word index (default: from ``##``/``▁``/``Ġ`` markers and adjacency) and ``words``
        the word strings. Without ``text`` the words are joined with spaces.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be 'word' or 'token', got {level!r}")
        features = [str(f) for f in features]
        vals = _floats(values, "values")
        if len(features) != len(vals):
            raise ValueError(f"{len(features)} features but {len(vals)} values; give one value per feature")
        if not features:
            raise ValueError("no features to show: the text has no tokens")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        if signed is None:
            signed = bool((vals < 0).any())

        token_spans: list[Span] | None = None
        if text:
            token_spans = valid_spans(spans, len(features), len(text)) if spans is not None else align(text, features)
        grouping = list(groups) if groups is not None else None
        if level == "token" and grouping is None:
            grouping = word_groups(features, token_spans)
        if grouping is not None and (len(grouping) != len(features) or min(grouping) < 0):
            raise ValueError("groups must give a word index >= 0 for every token")

        levels: dict[str, Any] = {}
        if level == "word" or grouping is None:
            if not text:
                text, token_spans = detokenize(features)
            levels["word"] = _level(features, vals, token_spans)
            level = "word"
        else:
            names = list(words) if words is not None else None
            if not text:
                word_list, _, _ = _merge(features, vals, grouping, "", None, names)
                text, word_spans = detokenize(word_list)
                token_spans = align(text, features)
            word_list, word_vals, word_spans = _merge(features, vals, grouping, text, token_spans, names)
            if word_spans is None:
                word_spans = align(text, word_list)
            if len(word_list) == len(features):  # every token is a word: one level
                levels["word"] = _level(word_list, word_vals, word_spans)
                level = "word"
            else:
                levels["token"] = {**_level(features, vals, token_spans), "groups": [int(g) for g in grouping]}
                levels["word"] = _level(word_list, word_vals, word_spans)
        return cls(
            text=text, levels=levels, level=level, signed=bool(signed), title=title, caption=caption,
            top_k=top_k, **options,
        )

    @classmethod
    def from_attribution(cls, attribution: Attribution, index: int = 0, *, level: str | None = None,
                         **options: Any) -> TokenView:
        """Text ``index`` of a text attribution (``extras`` with ``features``/``spans``/``text``, or the
        ``tokens``/``word_ids`` of the attention methods)."""
        a = attribution
        n = len(a)
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} explained inputs")
        ex = a.extras or {}
        row = a.values[index].detach().float().cpu().numpy()
        if row.ndim != 1:
            raise ValueError(
                f"TokenView shows one value per token or word; this {a.method} result has values of shape "
                f"{tuple(a.values.shape)} (use .show() for image results)"
            )
        kwargs: dict[str, Any] = {}
        if "tokens" in ex and "word_ids" in ex:  # attention rollout / transformer relevance: all positions
            keep = [i for i, w in enumerate(ex["word_ids"]) if w is not None]
            features = [ex["tokens"][i] for i in keep]
            values = row[keep]
            kwargs.update(level="token", groups=[ex["word_ids"][i] for i in keep], words=ex.get("words"))
        elif "features" in ex:
            features = _per_input(ex["features"], index)
            if features is None or not all(isinstance(f, str) for f in features):
                raise ValueError("extras['features'] must list each input's feature strings")
            values = row[: len(features)]
            kwargs["level"] = ex.get("level", "word")
            kwargs["text"] = _per_input(ex.get("text"), index, flat_is_shared=False)
            kwargs["spans"] = _per_input(ex.get("spans"), index)
        else:
            raise ValueError(
                f"TokenView needs a text attribution (extras 'features' or 'tokens'); {a.method} gave extras "
                f"{sorted(ex)}"
            )
        kwargs.setdefault("title", f"{a.method} · {target_label(a, index)}")
        kwargs.setdefault("caption", value_caption(a, index))
        kwargs["signed"] = bool(a.signed and (values < 0).any())
        view = cls.from_arrays(features, values, **{**kwargs, **options})
        if level is not None:
            if level not in view.levels:
                raise ValueError(f"level {level!r} is not available; this result has {sorted(view.levels)}")
            view.level = level
        return view

    def _fallback_html(self) -> str | None:
        level = self.levels.get(self.level) or next(iter(self.levels.values()), None)
        if level is None:
            return None
        values = np.frombuffer(level["values"]["data"], dtype=np.float32)
        clip = float(np.abs(values).max()) if values.size else 0.0
        out = [f"<div><b>{escape(self.title)}</b></div>" if self.title else ""]
        if self.caption:
            out.append(f"<div style='color:#666'>{escape(self.caption)}</div>")
        out.append("<div style='line-height:1.9'>")
        spans = level.get("spans")
        features = level["features"]
        cursor = 0
        for i, feature in enumerate(features):
            style = f"background:{signed_rgba(float(values[i]), clip, self.signed)};border-radius:3px;padding:1px 2px"
            tip = f"{feature}: {values[i]:+.4g}"
            if spans is not None and self.text:
                a, b = spans[i]
                out.append(escape(self.text[cursor:a]))
                shown = self.text[a:b]
                cursor = b
            else:
                out.append(" " if i else "")
                shown = strip_marker(feature)
            out.append(f"<span title='{escape(tip)}' style='{style}'>{escape(shown)}</span>")
        if spans is not None and self.text:
            out.append(escape(self.text[cursor:]))
        out.append("</div>")
        return "".join(out)


def _per_input(value: Any, index: int, flat_is_shared: bool = True) -> Any:
    """``value[index]`` for per-input lists; a plain string (or, with ``flat_is_shared``, a flat list of
    strings such as feature names) is shared by every input."""
    if value is None or isinstance(value, str):
        return value
    shared = flat_is_shared and isinstance(value, (list, tuple)) and value
    if shared and all(isinstance(v, str) for v in value):
        return list(value)
    try:
        item = value[index]
    except (IndexError, KeyError, TypeError):
        return None
    if hasattr(item, "tolist"):
        item = item.tolist()
    return item


def target_label(a: Attribution, index: int) -> str:
    """The class explained for input ``index``, by name when the adapter knows it."""
    target = int(a.target[index]) if a.target is not None and a.target.numel() > index else -1
    label = getattr(a.classifier, "label", None)
    if callable(label):
        return str(label(target))
    names = a.extras.get("prediction") if a.extras else None
    if isinstance(names, (list, tuple)) and len(names) > index:
        return str(names[index])
    return f"class {target}"


def value_caption(a: Attribution, index: int) -> str:
    """``f(x)``, base value and attribution sum (SHAP-type results) or LIME's intercept and R²."""
    ex = a.extras or {}
    total = float(a.values[index].detach().float().sum())
    parts = []
    base, out = _item(ex.get("base_value"), index), _item(ex.get("output_value"), index)
    if out is not None:
        parts.append(f"f(x) = {out:.4g}")
    if base is not None:
        parts.append(f"base = {base:.4g}")
    if base is not None or out is not None:
        parts.append(f"Σ attributions = {total:.4g}")
    intercept, r2 = _item(ex.get("intercept"), index), _item(ex.get("r2"), index)
    if intercept is not None:
        parts.append(f"surrogate intercept = {intercept:.4g}")
    if r2 is not None:
        parts.append(f"R² = {r2:.3f}")
    return " · ".join(parts)


def _item(value: Any, index: int) -> float | None:
    if value is None:
        return None
    try:
        v = value[index] if hasattr(value, "__getitem__") and not isinstance(value, (int, float)) else value
        v = v.item() if hasattr(v, "item") else v
        return float(v)
    except (IndexError, TypeError, ValueError):
        return None
