"""The method base class: one ``attribute`` signature for every method.

Subclasses declare metadata and defaults and implement ``_attribute``; the base validates inputs and
parameters, picks the device, and restores the user's model whatever happens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution
from ..core.device import resolve_device
from ..core.errors import ParameterError
from ..core.inputs import as_batch
from ..core.progress import Progress, as_progress
from ..core.state import preserved, warn_if_training
from ..core.targets import TargetLike

#: parameters every method accepts
COMMON_PARAMS: dict[str, Any] = {"device": None}


class Method:
    """Base class. ``Method(model).attribute(inputs, target=None, **params) -> Attribution``."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    #: inputs the method explains; "text" only where xaiwidgets.methods.modalities handles it
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular")
    reference: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    default_reduce: ClassVar[str] = "sum"
    signed: ClassVar[bool] = True
    #: numeric parameters a widget may offer as a slider: ``{name: (min, max, step)}``; all three ints
    #: means an integer parameter. Each name is in ``defaults``.
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {}

    def __init__(self, model: Any, **params: Any) -> None:
        self.model, self.classifier = unwrap_model(model)
        self.instance_params = self.check_params(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        allowed = {**COMMON_PARAMS, **cls.defaults}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            import difflib

            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, list(allowed), n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ParameterError(
                f"{cls.name} does not take {', '.join(hints)}; its parameters are: {', '.join(sorted(allowed))}"
            )
        return dict(params)

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**COMMON_PARAMS, **self.defaults, **self.instance_params, **self.check_params(params)}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        """Check parameters against the inputs before any work; raise ParameterError."""

    def attribute(
        self,
        inputs: Any,
        target: TargetLike = None,
        *,
        progress: Progress | bool | None = None,
        **params: Any,
    ) -> Attribution:
        """Explain ``inputs`` for ``target`` (None: the predicted class). See the class docstring."""
        from .modalities import attribute_adapter, is_adapter

        if is_adapter(self.model):  # texts of a TextClassifier, rows of a TabularModel
            return attribute_adapter(self, inputs, target, params, progress)
        params = self.resolve_params(params)
        device = resolve_device(self.model, params.get("device"))
        x = as_batch(inputs, self.model, device=device)
        self.validate(x, params)
        warn_if_training(self.model)
        tracker = as_progress(progress)
        try:
            with preserved(self.model):
                result = self._attribute(x, target, params, tracker)
        finally:
            tracker.close()
        result.method = self.name
        result.params = params
        result.inputs = x
        result.classifier = self.classifier
        result.default_reduce = self.default_reduce
        result.signed = self.signed
        return result

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        raise NotImplementedError


def require(condition: bool, message: str) -> None:
    """Raise ParameterError(message) unless ``condition``."""
    if not condition:
        raise ParameterError(message)
