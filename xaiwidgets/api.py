"""The functional entry point ``xw.attribute``."""

from __future__ import annotations

from typing import Any

from .core.attribution import Attribution
from .core.targets import TargetLike
from .methods.registry import get_method


def attribute(
    model: Any, inputs: Any, method: str = "integrated_gradients", target: TargetLike = None, **params: Any
) -> Attribution:
    """Explain ``model`` on ``inputs`` with ``method`` for ``target`` (None: the predicted class).

    ``model`` is a ``torch.nn.Module`` (or callable, or :class:`~xaiwidgets.core.ImageClassifier`) mapping a
    batch to ``(N, C)`` scores; ``inputs`` is ``(N, ...)`` or a single ``(C, H, W)`` image. With a
    :class:`~xaiwidgets.core.text.TextClassifier` the inputs are a text or a list of texts, with a
    :class:`~xaiwidgets.core.tabular.TabularModel` rows ``(N, d)``; the result then holds one value per token,
    word or column (docs/widget-protocol.md, "Text and tabular attributions"). ``params`` are the method's
    parameters (see ``xw.methods.available()``). Returns an :class:`~xaiwidgets.Attribution`.
    """
    progress = params.pop("progress", None)
    return get_method(method)(model).attribute(inputs, target, progress=progress, **params)
