"""Methods on texts and table rows: ``xw.attribute(text_classifier, "a text", ...)`` and
``xw.attribute(tabular_model, rows, ...)`` reach here through the default ``Method.explain_text`` and
``Method.explain_tabular`` hooks.

:mod:`.text` and :mod:`.tabular` turn each input into what a method's hooks take (coalition games for the
methods with ``explain_game``; embeddings or rows for ``_attribute``, as the method's ``text_strategy`` /
``tabular_strategy`` declares) and assemble the result contract documented in docs/widget-protocol.md
("Text and tabular attributions").
"""

from __future__ import annotations

from typing import Any

from ..base import Method, modality_of

__all__ = ["TEXT_PARAMS", "adapter_params", "is_adapter"]

#: parameters the text path adds to a method's own
TEXT_PARAMS: dict[str, Any] = {"level": None, "replace": None}
#: parameters the tabular path adds to a coalition method's own
GAME_TABULAR_PARAMS: dict[str, Any] = {"background": None}


def is_adapter(model: object) -> bool:
    """True for the adapters whose inputs are not tensors (texts, table rows)."""
    return modality_of(model) != "image"


def adapter_params(method: Method, modality: str) -> dict[str, Any]:
    """Parameter names (with defaults) that ``method`` takes on ``modality`` beyond its ``defaults``: those of
    the default text/tabular paths and the method's own ``modality_params``."""
    cls = type(method)
    extra = dict(cls.modality_params.get(modality, {}))
    own = getattr(cls, f"explain_{modality}") is not getattr(Method, f"explain_{modality}")
    if own:
        return extra
    if modality == "text":
        return {**TEXT_PARAMS, **extra}
    return {**(GAME_TABULAR_PARAMS if cls.plays_games() else {}), **extra}


def __getattr__(name: str) -> Any:
    """Names this module had before the hooks (removed; each warning names its successor)."""
    import warnings

    if name == "TEXT_METHODS":
        warnings.warn("xaiwidgets.methods.modalities.TEXT_METHODS is deprecated: the methods that explain texts "
                      "are xw.methods.available(modality='text')", DeprecationWarning, stacklevel=2)
        from ..registry import available

        return tuple(r["name"] for r in available(modality="text"))
    if name == "attribute_adapter":
        warnings.warn("xaiwidgets.methods.modalities.attribute_adapter is deprecated: call method.attribute(inputs, "
                      "target, **params), which dispatches on the adapter", DeprecationWarning, stacklevel=2)
        return lambda method, inputs, target, params, progress: method.attribute(
            inputs, target, progress=progress, **params)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
