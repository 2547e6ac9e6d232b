"""Methods on texts and table rows: ``xw.attribute(text_classifier, "a text", ...)`` and
``xw.attribute(tabular_model, rows, ...)`` route here from :meth:`Method.attribute`.

:mod:`.text` and :mod:`.tabular` turn each input into what the image path's estimators take (embeddings
for gradient methods, coalition games for the perturbation methods) and assemble the result contract
documented in docs/widget-protocol.md ("Text and tabular attributions").
"""

from __future__ import annotations

from typing import Any

from ...core.attribution import Attribution
from ...core.errors import ParameterError
from ...core.progress import Progress, as_progress
from ...core.state import preserved, warn_if_training
from ...core.tabular import TabularModel
from ...core.targets import TargetLike
from ...core.text import TextClassifier
from .tabular import COALITION_METHODS, LIME_PARAMS, explain_tabular
from .text import TEXT_METHODS, TEXT_PARAMS, explain_text

__all__ = ["TEXT_METHODS", "attribute_adapter", "is_adapter"]


def is_adapter(model: object) -> bool:
    """True for the adapters whose inputs are not tensors (texts, table rows)."""
    return isinstance(model, (TextClassifier, TabularModel))


def _check_names(method: Any, params: dict[str, Any], extra: dict[str, Any]) -> None:
    allowed = {**method.defaults, **extra, "device": None}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(allowed), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParameterError(
            f"{method.name} does not take {', '.join(hints)}; its parameters are: {', '.join(sorted(allowed))}"
        )


def attribute_adapter(
    method: Any, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Any
) -> Attribution:
    """``method.attribute(inputs, ...)`` for a TextClassifier or a TabularModel ``method.model``."""
    adapter = method.model
    if isinstance(adapter, TextClassifier):
        _check_names(method, {**method.instance_params, **params}, TEXT_PARAMS)
        run = explain_text
    else:
        extra = {"background": None} if method.name in COALITION_METHODS else {}
        if method.name == "lime":
            extra.update(LIME_PARAMS)
        _check_names(method, {**method.instance_params, **params}, extra)
        run = explain_tabular
    params = {**method.instance_params, **params}
    params.pop("device", None)
    model = getattr(adapter, "model", None)
    warn_if_training(model)
    tracker: Progress = as_progress(progress)
    try:
        with preserved(model):
            return run(method, adapter, inputs, target, params, tracker)
    finally:
        tracker.close()
