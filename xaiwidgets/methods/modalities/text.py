"""Text attributions for a :class:`~xaiwidgets.core.text.TextClassifier`: one text or a list of texts.

- methods with ``text_strategy = "embeddings"`` (``gradient``, ``saliency``, ``input_x_gradient``,
  ``integrated_gradients``) run their tensor path (``_attribute``) on the text's embedding-layer output ``(1, T, D)``
  (:meth:`TextClassifier.embedding_model`); a token's attribution is the signed sum over ``D`` of the
  embedding attributions (for ``saliency``, the sum of ``|grad|``). Special tokens ([CLS], [SEP]) are not
  features; ``level="word"`` sums the word pieces of each word. IG's baseline replaces every non-special
  token's embedding by the ``"pad"`` (default), ``"mask"`` or ``"unk"`` token's, or by ``"zeros"``; special
  tokens keep theirs, so their IG is 0 and ``sum(values) - delta = F(x) - F(baseline)``.
- methods with ``explain_game`` (``lime``, ``kernel_shap``, ``exact_shapley``, ``shapley_sampling``) play the
  game of each text (:class:`.coalition_games.TextGame`): the words (``level="word"``, default) or tokens
  are the players;
  absent ones are replaced by the method's ``text_replace`` (``"remove"`` for LIME, as the lime package;
  ``"mask"`` for the Shapley methods, as shap's text masker, ``[UNK]`` when the tokenizer has no mask token),
  or by the ``replace=`` the user gives: ``"unk"``, ``"mask"``, ``"pad"`` or ``"remove"``.

The result contract (docs/widget-protocol.md, "Text and tabular attributions"): ``values`` ``(N, M)`` over
the features, zero-padded to the longest text; ``extras``: ``features``, ``level``, ``spans``, ``text``,
``n_features``, ``output_value``; ``base_value`` for the Shapley methods and IG; ``intercept``, ``r2``,
``weights`` for LIME.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ...core.attribution import Attribution
from ...core.errors import InputError, ParameterError
from ...core.progress import Progress
from ...core.targets import TargetLike, resolve_target
from ...core.text import REPLACEMENTS, Encoding, TextClassifier
from .coalition_games import TextGame, game_extras, play, with_frames
from .progress import InputProgress

BASELINE_KINDS = ("pad", "mask", "unk", "zeros")
#: defaults of method parameters on texts: lime's text explainer's kernel width (on its cosine distance times
#: 100; the image default 0.25 is on the plain cosine distance)
TEXT_DEFAULTS: dict[str, Any] = {"kernel_width": 25.0}
DEFAULT_TEXT_BATCH = 64


def as_texts(inputs: Any) -> list[str]:
    texts = [inputs] if isinstance(inputs, str) else list(inputs) if isinstance(inputs, (list, tuple)) else None
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InputError(
            f"a TextClassifier explains a text (str) or a non-empty list of texts; got {type(inputs).__name__}"
        )
    for i, t in enumerate(texts):
        if not t.strip():
            raise InputError(f"text {i} is empty; give at least one word")
    return texts


def check_level(level: Any, embeddings: bool) -> str:
    if level is None:
        return "token" if embeddings else "word"
    if level not in ("token", "word"):
        raise ParameterError(f"level must be 'token' or 'word', got {level!r}")
    return level


def check_replace(clf: TextClassifier, replace: Any, default: str) -> str:
    """``replace``, or the method's ``default`` (``"mask"`` becomes ``"unk"`` when the tokenizer has none)."""
    if replace is None:
        if default == "mask" and getattr(clf.tokenizer, "mask_token_id", None) is None:
            return "unk"
        return default
    if replace not in REPLACEMENTS:
        raise ParameterError(f"replace must be one of {', '.join(REPLACEMENTS)}, got {replace!r}")
    return replace


def explain_text(
    method: Any, clf: TextClassifier, inputs: Any, target: TargetLike, user: dict[str, Any], progress: Progress
) -> Attribution:
    """Run ``method`` (a Method instance over ``clf``) on texts; see the module docstring."""
    name = method.name
    embeddings = not method.plays_games()
    texts = as_texts(inputs)
    user = dict(user)
    level = check_level(user.pop("level", None), embeddings)
    replace = user.pop("replace", None)
    if embeddings and replace is not None:
        raise ParameterError(f"replace= is for perturbation methods; {name} works on the embeddings")
    encs = [clf.encode(t) for t in texts]
    for i, e in enumerate(encs):
        if not clf.features(e, level):
            raise InputError(f"text {i} has no {level}s to explain (only special tokens)")
    scores = clf.scores(texts)
    resolved = resolve_target(target, scores).cpu()
    if embeddings:
        return _gradients(method, clf, texts, encs, resolved, level, user, progress)
    replace = check_replace(clf, replace, method.text_replace)
    return _coalitions(method, clf, texts, encs, resolved, level, replace, user, progress)


# --------------------------------------------------------------------------------------------------------
# tensor methods on the embeddings


def _gradients(
    method: Any, clf: TextClassifier, texts: list[str], encs: list[Encoding], resolved: torch.Tensor,
    level: str, user: dict[str, Any], progress: Progress,
) -> Attribution:
    cls = type(method)
    if user.get("return_frames"):
        raise ParameterError("return_frames draws image frames; it is not available for texts")
    baseline = user.pop("baseline", "pad") if "baseline" in cls.defaults else None
    if baseline is not None and isinstance(baseline, str) and baseline not in BASELINE_KINDS:
        raise ParameterError(
            f"baseline for a text is one of {', '.join(BASELINE_KINDS)} (embedding of every non-special token "
            f"replaced) or a tensor (1, T, D) of embeddings; got {baseline!r}"
        )
    params = method.resolve_params(user)
    rows, results = [], []
    for i, enc in enumerate(encs):
        emb = clf.embed(enc)
        extra: dict[str, Any] = {}
        if baseline is not None:
            extra["baseline"] = clf.baseline_embeddings(enc, baseline) if isinstance(baseline, str) else baseline
        sub = cls(clf.embedding_model(enc))
        res = sub.attribute(emb, int(resolved[i]), progress=InputProgress(progress, i, len(encs)), **user, **extra)
        tokens = res.values.detach().reshape(1, len(enc), -1).sum(-1)[0].float().cpu()  # (T,)
        rows.append(_to_level(clf, enc, tokens, level))
        results.append(res)
    extras = text_extras(clf, texts, encs, level, resolved)
    extras["output_value"] = torch.stack([r.scores.detach().reshape(()) for r in results]).double().cpu()
    if cls.signed:
        warn_if_cancelling(cls.name, rows, results)
    if has_completeness(results[0]):
        extras["base_value"] = torch.stack([r.extras["f_baseline"].reshape(()) for r in results]).double().cpu()
        extras["delta"] = torch.stack([r.extras["delta"].reshape(()) for r in results]).double().cpu()
        extras["completeness_gap"] = torch.stack(
            [r.extras["completeness_gap"].reshape(()) for r in results]
        ).double().cpu()
        extras["n_steps"] = results[0].extras.get("n_steps")
    if isinstance(baseline, str):
        params["baseline"] = baseline
    return _result(method, rows, resolved, extras, params, level, signed=cls.signed)


def warn_if_cancelling(name: str, rows: list[torch.Tensor], results: list[Attribution]) -> None:
    """Warn when the signed sums over the embedding dimension vanish (LayerNorm after the embeddings cancels
    the constant direction, so the raw gradient's ``sum_d grad_d`` is ~0 whatever its size)."""
    size = max(float(r.values.abs().sum(-1).max()) for r in results)
    signed = max(float(v.abs().max()) for v in rows)
    if size > 0 and signed < 1e-4 * size:
        warnings.warn(
            f"the signed sum over the embedding dimension of {name}'s attribution is ~0 for every token (the "
            "model layer-normalises its embeddings); use 'saliency', 'input_x_gradient' or 'integrated_gradients'",
            stacklevel=7,
        )


def has_completeness(result: Attribution) -> bool:
    return "f_baseline" in result.extras and "delta" in result.extras


def _to_level(clf: TextClassifier, enc: Encoding, tokens: torch.Tensor, level: str) -> torch.Tensor:
    if level == "word":
        return clf.merge_words(enc, tokens)[1]
    return tokens[enc.positions]


# --------------------------------------------------------------------------------------------------------
# perturbation methods over words or tokens


def _coalitions(
    method: Any, clf: TextClassifier, texts: list[str], encs: list[Encoding], resolved: torch.Tensor,
    level: str, replace: str, user: dict[str, Any], progress: Progress,
) -> Attribution:
    for key in ("segments", "segmentation_params", "baseline"):
        if key in user:
            raise ParameterError(f"{key}= is for images; for a text choose level= ('word' or 'token') and replace=")
    user = {**{k: v for k, v in TEXT_DEFAULTS.items() if k in method.defaults}, **user}
    params = method.resolve_params(user)
    method.validate(torch.zeros(1), params)
    batch = params.get("batch_size") or DEFAULT_TEXT_BATCH
    games = [
        TextGame(clf, enc, int(resolved[i]), level=level, replace=replace, batch_size=batch)
        for i, enc in enumerate(encs)
    ]

    def partial(done: list[Any]) -> Attribution:
        rows = [r.phi.float().cpu() for r in done] + [torch.zeros(g.n_features) for g in games[len(done) :]]
        extras = text_extras(clf, texts, encs, level, resolved)
        extras["complete"] = [i < len(done) for i in range(len(games))]
        return _result(method, rows, resolved, extras, params, level)

    done, stream = play(method, games, params, progress, partial)
    extras = text_extras(clf, texts, encs, level, resolved)
    extras.update(game_extras(done, games))
    extras["replace"] = replace
    params = {**params, "replace": replace}
    return with_frames(_result(method, [r.phi.float().cpu() for r in done], resolved, extras, params, level), stream)


# --------------------------------------------------------------------------------------------------------
# the result contract


def text_extras(
    clf: TextClassifier, texts: list[str], encs: list[Encoding], level: str, target: torch.Tensor
) -> dict[str, Any]:
    features = [clf.features(e, level) for e in encs]
    return {
        "prediction": [clf.label(int(t)) for t in target],
        "features": features,
        "level": level,
        "spans": [clf.feature_spans(e, level) for e in encs],
        "text": list(texts),
        "n_features": [len(f) for f in features],
        "tokens": [list(e.tokens) for e in encs],
    }


def _result(
    method: Any, rows: list[torch.Tensor], resolved: torch.Tensor, extras: dict[str, Any], params: dict[str, Any],
    level: str, signed: bool = True,
) -> Attribution:
    width = max(r.numel() for r in rows)
    values = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        values[i, : r.numel()] = r.float()
    scores = extras.get("output_value")
    return Attribution(
        values=values, method=method.name, target=resolved,
        scores=scores if scores is not None else torch.full((len(rows),), float("nan"), dtype=torch.float64),
        params={**params, "level": level}, extras=extras, default_reduce="none", signed=signed,
    )
