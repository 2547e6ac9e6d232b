"""Text attributions for a :class:`~xaiwidgets.core.text.TextClassifier`: one text or a list of texts.

- gradient methods (``gradient``, ``saliency``, ``input_x_gradient``, ``integrated_gradients``) run the
  image path's method on the text's embedding-layer output ``(1, T, D)``
  (:meth:`TextClassifier.embedding_model`); a token's attribution is the signed sum over ``D`` of the
  embedding attributions (for ``saliency``, the sum of ``|grad|``). Special tokens ([CLS], [SEP]) are not
  features; ``level="word"`` sums the word pieces of each word. IG's baseline replaces every non-special
  token's embedding by the ``"pad"`` (default), ``"mask"`` or ``"unk"`` token's, or by ``"zeros"``; special
  tokens keep theirs, so their IG is 0 and ``sum(values) - delta = F(x) - F(baseline)``.
- perturbation methods (``lime``, ``kernel_shap``, ``exact_shapley``, ``shapley_sampling``) treat the
  words (``level="word"``, default) or tokens as players; absent ones are removed (``replace="remove"``,
  LIME's default, as the lime package) or replaced by ``[MASK]`` (the Shapley methods' default, as shap's
  text masker; ``[UNK]`` when the tokenizer has no mask token), ``[UNK]`` or padding.

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
from ...core.errors import Cancelled, InputError, ParameterError
from ...core.progress import Progress
from ...core.targets import TargetLike, resolve_target
from ...core.text import REPLACEMENTS, Encoding, TextClassifier
from ..perturbation._common import generator
from ..perturbation.streaming import Stream
from .estimators import SHAPLEY_METHODS, GameResult, lime_surrogate, shapley_game
from .games import text_game
from .lime_sampling import cosine_distances, text_coalitions
from .progress import InputProgress

GRADIENT_METHODS = ("gradient", "saliency", "input_x_gradient", "integrated_gradients")
COALITION_METHODS = ("lime", *SHAPLEY_METHODS)
TEXT_METHODS = (*GRADIENT_METHODS, *COALITION_METHODS)
BASELINE_KINDS = ("pad", "mask", "unk", "zeros")
#: parameters the text path adds to a method's own
TEXT_PARAMS = {"level": None, "replace": None}
#: lime text explainer's default kernel width (on its cosine distance times 100)
LIME_TEXT_KERNEL_WIDTH = 25.0
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


def check_level(level: Any, method: str) -> str:
    if level is None:
        return "token" if method in GRADIENT_METHODS else "word"
    if level not in ("token", "word"):
        raise ParameterError(f"level must be 'token' or 'word', got {level!r}")
    return level


def check_replace(clf: TextClassifier, replace: Any, method: str) -> str:
    if replace is None:
        if method == "lime":
            return "remove"
        return "mask" if getattr(clf.tokenizer, "mask_token_id", None) is not None else "unk"
    if replace not in REPLACEMENTS:
        raise ParameterError(f"replace must be one of {', '.join(REPLACEMENTS)}, got {replace!r}")
    return replace


def explain_text(
    method: Any, clf: TextClassifier, inputs: Any, target: TargetLike, user: dict[str, Any], progress: Progress
) -> Attribution:
    """Run ``method`` (a Method instance over ``clf``) on texts; see the module docstring."""
    name = method.name
    if name not in TEXT_METHODS:
        raise ParameterError(
            f"{name} does not explain texts; for a TextClassifier use one of {', '.join(TEXT_METHODS)}, "
            "'anchors', 'attention_rollout' or 'transformer_relevance'"
        )
    texts = as_texts(inputs)
    user = dict(user)
    level = check_level(user.pop("level", None), name)
    replace = user.pop("replace", None)
    if name in GRADIENT_METHODS and replace is not None:
        raise ParameterError(f"replace= is for perturbation methods; {name} works on the embeddings")
    encs = [clf.encode(t) for t in texts]
    for i, e in enumerate(encs):
        if not clf.features(e, level):
            raise InputError(f"text {i} has no {level}s to explain (only special tokens)")
    scores = clf.scores(texts)
    resolved = resolve_target(target, scores).cpu()
    if name in GRADIENT_METHODS:
        return _gradients(method, clf, texts, encs, resolved, level, user, progress)
    return _coalitions(method, clf, texts, encs, resolved, level, check_replace(clf, replace, name), user, progress)


# --------------------------------------------------------------------------------------------------------
# gradient methods on the embeddings


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
    if cls.name == "gradient":
        warn_if_cancelling(rows, results)
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


def warn_if_cancelling(rows: list[torch.Tensor], results: list[Attribution]) -> None:
    """Warn when the signed gradient sums vanish (LayerNorm after the embeddings cancels the constant
    direction, so ``sum_d grad_d`` is ~0 whatever the gradient's size)."""
    size = max(float(r.values.abs().sum(-1).max()) for r in results)
    signed = max(float(v.abs().max()) for v in rows)
    if size > 0 and signed < 1e-4 * size:
        warnings.warn(
            "the signed sum over the embedding dimension of the gradient is ~0 for every token (the model "
            "layer-normalises its embeddings); use 'saliency', 'input_x_gradient' or 'integrated_gradients'",
            stacklevel=6,
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
    name = method.name
    for key in ("segments", "segmentation_params", "baseline"):
        if key in user:
            raise ParameterError(f"{key}= is for images; for a text choose level= ('word' or 'token') and replace=")
    if name == "lime" and "kernel_width" not in user:
        user["kernel_width"] = LIME_TEXT_KERNEL_WIDTH
    params = method.resolve_params(user)
    method.validate(torch.zeros(1), params)
    batch = params.get("batch_size") or DEFAULT_TEXT_BATCH
    games = [
        text_game(clf, enc, int(resolved[i]), level=level, replace=replace, batch_size=batch)
        for i, enc in enumerate(encs)
    ]
    stream = Stream(params.get("stream_every"), params.get("callback"))
    done: list[GameResult] = []
    try:
        for i, game in enumerate(games):
            sub = InputProgress(progress, i, len(games))
            if name == "lime":
                done.append(_lime_one(i, game, params, sub))
            else:
                hint = " (level='word' has fewer features)" if level == "token" else ""
                done.append(shapley_game(method, i, game, params, sub, stream, hint))
    except Cancelled as exc:
        rows = [r.phi.float().cpu() for r in done] + [torch.zeros(g.n_features) for g in games[len(done) :]]
        extras = text_extras(clf, texts, encs, level, resolved)
        extras["complete"] = [i < len(done) for i in range(len(games))]
        raise Cancelled(str(exc), partial=_result(method, rows, resolved, extras, params, level)) from exc
    extras = text_extras(clf, texts, encs, level, resolved)
    extras.update(result_extras(name, done, games))
    extras["replace"] = replace
    params = {**params, "replace": replace}
    frames = stream.frames()
    out = _result(method, [r.phi.float().cpu() for r in done], resolved, extras, params, level)
    if frames:
        out.frames, out.frame_kind = frames, "estimate"
    return out


def _lime_one(index: int, game: Any, params: dict[str, Any], progress: Progress) -> GameResult:
    m = game.n_features
    device = game.masker.x.device
    z = params["coalitions"]
    if z is not None:
        z = torch.as_tensor(z, device=device)
        z = z[index] if z.dim() == 3 else z
        if z.dim() != 2 or z.shape[1] != m or z.shape[0] < 2:
            raise ParameterError(f"coalitions must be (n_samples >= 2, {m}) for text {index}'s {m} features; "
                                 f"got {tuple(z.shape)}")
        z = z != 0
    else:
        seed = params["seed"]
        z = text_coalitions(m, params["n_samples"], generator(index if seed is None else seed + index, device),
                            device)
    ys, done = [], 0
    while done < z.shape[0]:
        ys.append(game(z[done : done + game.chunk]))
        done += ys[-1].shape[0]
        progress.update(done, z.shape[0], f"lime: input {index + 1}")
    y = torch.cat(ys)
    fit = lime_surrogate(z, y, cosine_distances(z) * 100, params["kernel_width"], params["num_features"],
                         params["feature_selection"])
    return GameResult(fit["weights"], float("nan"), float(y[0]), info={**fit, "coalitions": z, "predictions": y})


def result_extras(name: str, done: list[GameResult], games: list[Any]) -> dict[str, Any]:
    """The extras of the perturbation methods (shared by text and tabular)."""
    out: dict[str, Any] = {
        "output_value": torch.tensor([r.output_value for r in done], dtype=torch.float64),
        "n_evaluations": [g.evaluations for g in games],
    }
    if name == "lime":
        out.update(
            intercept=torch.stack([r.info["intercept"].reshape(()) for r in done]).cpu(),
            r2=torch.stack([r.info["r2"].reshape(()) for r in done]).cpu(),
            weights=[r.phi.cpu() for r in done],
            local_pred=torch.stack([r.info["local_pred"].reshape(()) for r in done]).cpu(),
            used_features=[r.info["used"].cpu() for r in done],
        )
    else:
        out.update(
            base_value=torch.tensor([r.base_value for r in done], dtype=torch.float64),
            stderr=[None if r.stderr is None else r.stderr.cpu() for r in done],
            exact=[r.exact for r in done],
        )
    return out


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
