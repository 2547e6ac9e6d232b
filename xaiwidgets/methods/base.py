"""The method base class: one ``attribute`` signature for every method, whatever the input.

A method implements one hook per kind of input it explains, and the base does the rest (parameter
checks, device, progress, restoring the user's model whatever happens):

- ``_attribute(inputs, target, params, progress)``: tensors (images, and the rows of a
  :class:`~xaiwidgets.core.tabular.TabularModel` unless ``tabular_strategy`` is None);
- ``explain_game(game, params, progress, index=, stream=)``: one input's coalition game (the perturbation
  estimators); texts and table rows become games in :mod:`xaiwidgets.methods.modalities`;
- ``text_strategy = "embeddings"``: ``_attribute`` runs on a text's embedding-layer output;
- ``explain_text`` / ``explain_tabular``: a method with its own handling of texts or rows (Anchors, the
  attention methods) overrides these.

``modalities`` is derived from the hooks a class defines; ``Method.attribute`` dispatches on the model:
an adapter's inputs go to ``explain_text`` / ``explain_tabular``, tensors to ``_attribute``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution
from ..core.device import resolve_device
from ..core.errors import ModelError, ParameterError
from ..core.inputs import as_batch
from ..core.progress import Progress, as_progress
from ..core.state import preserved, warn_if_training
from ..core.tabular import TabularModel
from ..core.targets import TargetLike
from ..core.text import TextClassifier

if TYPE_CHECKING:  # pragma: no cover
    from .perturbation.streaming import Stream

#: parameters every method accepts
COMMON_PARAMS: dict[str, Any] = {"device": None}
#: the order ``modalities`` lists them in
MODALITIES = ("image", "tabular", "text")
TEXT_STRATEGIES = (None, "embeddings")
TABULAR_STRATEGIES = (None, "rows")


def modality_of(model: object) -> str:
    """``"text"`` for a TextClassifier, ``"tabular"`` for a TabularModel, else ``"image"`` (tensors)."""
    if isinstance(model, TextClassifier):
        return "text"
    if isinstance(model, TabularModel):
        return "tabular"
    return "image"


@dataclass
class GameResult:
    """What :meth:`Method.explain_game` finds for one input's game: per-feature values ``phi`` ``(M,)``
    float64, the score of the input itself ``output_value`` and the method's per-input ``extras`` for the
    result (over the inputs 0-dim tensors and floats are stacked, other values listed)."""

    phi: torch.Tensor
    output_value: float
    extras: dict[str, Any] = field(default_factory=dict)


class Method:
    """Base class. ``Method(model).attribute(inputs, target=None, **params) -> Attribution``."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    #: inputs the method explains, derived from its hooks (see the module docstring)
    modalities: ClassVar[tuple[str, ...]] = ()
    reference: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    default_reduce: ClassVar[str] = "sum"
    signed: ClassVar[bool] = True
    #: numeric parameters a widget may offer as a slider: ``{name: (min, max, step)}``; all three ints
    #: means an integer parameter. Each name is in ``defaults``.
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {}
    #: how ``_attribute`` explains a text: ``"embeddings"`` (on the embedding layer's output, a token's value
    #: the sum over the embedding dimension) or None (it does not)
    text_strategy: ClassVar[str | None] = None
    #: how ``_attribute`` explains table rows: ``"rows"`` (the ``(N, d)`` rows as the input tensor) or None
    tabular_strategy: ClassVar[str | None] = "rows"
    #: what replaces a text's absent words in the coalition games of ``explain_game`` (``"mask"``: ``[MASK]``,
    #: ``[UNK]`` when the tokenizer has no mask token; ``"unk"``, ``"pad"``, ``"remove"``)
    text_replace: ClassVar[str] = "mask"
    #: whether ``baseline`` is a set the method draws from (a TabularModel's background is then passed whole,
    #: else its mean row)
    baseline_set: ClassVar[bool] = False
    #: parameters a modality adds to ``defaults``: ``{"tabular": {name: default}}``
    modality_params: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.text_strategy not in TEXT_STRATEGIES or cls.tabular_strategy not in TABULAR_STRATEGIES:
            raise TypeError(f"{cls.__name__}: text_strategy must be one of {TEXT_STRATEGIES}, tabular_strategy "
                            f"one of {TABULAR_STRATEGIES}")
        derived = derived_modalities(cls)
        declared = cls.__dict__.get("modalities")
        if declared is not None and set(declared) != set(derived):
            raise TypeError(f"{cls.__name__} declares modalities {tuple(declared)} but its hooks explain "
                            f"{derived}: drop the declaration (it is derived from the hooks) or set "
                            "text_strategy / tabular_strategy (docs/adding-a-method.md)")
        cls.modalities = derived

    def __init__(self, model: Any, **params: Any) -> None:
        self.model, self.classifier = unwrap_model(model)
        self.instance_params = self.check_params(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"

    @classmethod
    def check_params(cls, params: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """``params`` if every name is a parameter of the method (or in ``extra``); else a ParameterError
        with the closest names."""
        allowed = {**COMMON_PARAMS, **cls.defaults, **(extra or {})}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
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
        modality = modality_of(self.model)
        if modality not in self.modalities:
            raise unsupported(type(self), modality)
        if modality != "image":  # texts of a TextClassifier, rows of a TabularModel
            return self._explain_adapter(modality, inputs, target, params, progress)
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

    def _explain_adapter(
        self, modality: str, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Any
    ) -> Attribution:
        from .modalities import adapter_params

        params = {**self.instance_params, **params}
        self.check_params(params, adapter_params(self, modality))
        params.pop("device", None)
        model = getattr(self.model, "model", None)
        warn_if_training(model)
        tracker = as_progress(progress)
        explain = self.explain_text if modality == "text" else self.explain_tabular
        try:
            with preserved(model):
                return explain(self.model, inputs, target, params, tracker)
        finally:
            tracker.close()

    # ----- the hooks (see the module docstring); ``modalities`` follows from which ones a class defines

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        raise NotImplementedError

    def explain_game(
        self, game: Any, params: dict[str, Any], progress: Progress, *, index: int = 0, stream: Stream | None = None
    ) -> GameResult:
        """Per-feature values of one input's coalition game ``game`` (``game(z)``: ``(S, M)`` bool coalitions ->
        ``(S,)`` float64 values; ``game.n_features``, ``game.chunk``); ``params`` are resolved; ``index`` is the
        input's position (for seeds and progress messages) and ``stream`` records running estimates."""
        raise NotImplementedError

    def explain_text(
        self, classifier: TextClassifier, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Texts of ``classifier`` (a text or a list): games or embeddings (:mod:`.modalities.text`)."""
        from .modalities.text import explain_text

        return explain_text(self, classifier, inputs, target, params, progress)

    def explain_tabular(
        self, model: TabularModel, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Rows of ``model``: games or ``_attribute`` on the rows (:mod:`.modalities.tabular`)."""
        from .modalities.tabular import explain_tabular

        return explain_tabular(self, model, inputs, target, params, progress)

    @classmethod
    def plays_games(cls) -> bool:
        """True when the class explains coalition games (it defines :meth:`explain_game`)."""
        return cls.explain_game is not Method.explain_game


def derived_modalities(cls: type[Method]) -> tuple[str, ...]:
    """The inputs ``cls`` explains, from the hooks it defines (see the module docstring)."""
    tensors = cls._attribute is not Method._attribute
    games = cls.plays_games()
    found = {
        "image": tensors,
        "tabular": games or cls.explain_tabular is not Method.explain_tabular
        or (tensors and cls.tabular_strategy is not None),
        "text": games or cls.explain_text is not Method.explain_text or (tensors and cls.text_strategy is not None),
    }
    return tuple(m for m in MODALITIES if found[m])


def unsupported(cls: type[Method], modality: str) -> Exception:
    """The error for a model whose inputs ``cls`` does not explain, naming the methods that do."""
    from .registry import available

    names = ", ".join(r["name"] for r in available(modality=modality))
    if modality == "text":
        return ParameterError(f"{cls.name} does not explain texts; for a TextClassifier use one of {names}")
    if modality == "tabular":
        return ParameterError(f"{cls.name} does not explain table rows; for a TabularModel use one of {names}")
    return ModelError(
        f"{cls.name} explains {' and '.join(cls.modalities)} inputs, not tensors: wrap the model, "
        "xw.core.text.TextClassifier(model, tokenizer) for texts or xw.core.tabular.TabularModel(model, "
        "background=...) for rows"
    )


def require(condition: bool, message: str) -> None:
    """Raise ParameterError(message) unless ``condition``."""
    if not condition:
        raise ParameterError(message)
