"""Tabular attributions for a :class:`~xaiwidgets.core.tabular.TabularModel` on rows ``(N, d)``.

- perturbation methods: ``kernel_shap``, ``exact_shapley`` (d <= 16) and ``shapley_sampling`` explain the
  interventional game ``v(S) = mean_b f(x_S, b_~S)`` over the background rows (``background=`` or the
  model's); ``lime`` follows the lime package's ``LimeTabularExplainer``: quartile-discretised sampling from
  the background (default) or, with ``discretize=False``, normal sampling around the instance
  (``sample_around_instance=True``) or the background mean; ``kernel_width`` in lime's units (default
  ``sqrt(d) * 0.75``); ``samples=`` injects the perturbed rows (see :mod:`.lime_sampling`).
- any other method for tabular inputs (gradients, integrated gradients, DeepLIFT, DeepSHAP, LRP, ...) runs
  on the torch model with the rows as inputs. Where a method takes a reference, the default is the
  background: its mean row for ``baseline`` (IG, DeepLIFT), the rows themselves for ``expected_gradients``
  and ``deepshap``.

Result contract: ``values`` ``(N, d)``; ``extras["features"]`` the feature names, ``extras["feature_values"]``
the rows ``(N, d)`` as float; ``output_value`` F(x) and, where defined, ``base_value`` (v(empty) /
F(baseline) / mean F(background)) so that ``sum(values) = output_value - base_value`` (exactly for the
Shapley methods, to the reported ``delta`` for IG and DeepLIFT).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...core.attribution import Attribution
from ...core.errors import Cancelled, ModelError, ParameterError
from ...core.progress import Progress
from ...core.tabular import TabularModel
from ...core.targets import TargetLike, resolve_target
from ..perturbation._common import generator
from ..perturbation.streaming import Stream
from .estimators import SHAPLEY_METHODS, GameResult, lime_surrogate, shapley_game
from .games import tabular_game
from .lime_sampling import tabular_samples
from .progress import InputProgress
from .text import result_extras

COALITION_METHODS = ("lime", *SHAPLEY_METHODS)
LIME_PARAMS = {"discretize": True, "sample_around_instance": True, "samples": None}
DEFAULT_TABULAR_BATCH = 4096
#: where each method reads its reference value from in ``extras`` (-> ``base_value``)
BASE_KEYS = ("f_baseline", "baseline_scores", "background_mean_score")


class RowsForward(nn.Module):
    """The adapter's torch model as a module on rows ``(N, d) -> (N, C)`` (a ``(N,)`` output becomes one
    column); registers the user's model so state restoration and hooks reach it."""

    def __init__(self, adapter: TabularModel) -> None:
        super().__init__()
        self.net = adapter.model
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(x)


def explain_tabular(
    method: Any, model: TabularModel, inputs: Any, target: TargetLike, user: dict[str, Any], progress: Progress
) -> Attribution:
    """Run ``method`` (a Method instance over ``model``) on rows; see the module docstring."""
    x = model.rows(inputs)
    with torch.no_grad():
        scores = model(x)
    resolved = resolve_target(target, scores)
    if method.name in COALITION_METHODS:
        return _coalitions(method, model, x, resolved, dict(user), progress)
    return _input_space(method, model, x, resolved, dict(user), progress)


def tabular_extras(model: TabularModel, x: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
    return {
        "prediction": [model.label(int(t)) for t in target],
        "features": [model.feature_name(i) for i in range(x.shape[1])],
        "feature_values": x.detach().double().cpu(),
    }


# --------------------------------------------------------------------------------------------------------
# perturbation methods over the columns


def _coalitions(
    method: Any, model: TabularModel, x: torch.Tensor, resolved: torch.Tensor, user: dict[str, Any],
    progress: Progress,
) -> Attribution:
    name = method.name
    for key in ("segments", "segmentation_params", "baseline", "coalitions"):
        if key in user:
            hint = "the perturbed rows come from samples=" if key == "coalitions" else (
                "absent features take the values of the background rows: pass background=(B, d)")
            raise ParameterError(f"{key}= does not apply to a TabularModel; {hint}")
    background = model._background(user.pop("background", None))
    lime_opts = {k: user.pop(k, v) for k, v in LIME_PARAMS.items()} if name == "lime" else {}
    if name == "lime" and "kernel_width" not in user:
        user["kernel_width"] = math.sqrt(x.shape[1]) * 0.75
    params = method.resolve_params(user)
    method.validate(x, params)
    batch = params.get("batch_size") or DEFAULT_TABULAR_BATCH
    games = [tabular_game(model, x[i : i + 1], int(resolved[i]), background, batch_size=batch)
             for i in range(x.shape[0])]
    stream = Stream(params.get("stream_every"), params.get("callback"))
    done: list[GameResult] = []
    try:
        for i, game in enumerate(games):
            sub = InputProgress(progress, i, len(games))
            if name == "lime":
                done.append(_lime_one(i, model, x[i : i + 1], int(resolved[i]), background, params, lime_opts, sub))
            else:
                done.append(shapley_game(method, i, game, params, sub, stream))
    except Cancelled as exc:
        rows = [r.phi for r in done] + [torch.zeros(x.shape[1], dtype=torch.float64)] * (len(games) - len(done))
        extras = {**tabular_extras(model, x, resolved), "complete": [i < len(done) for i in range(len(games))]}
        raise Cancelled(str(exc), partial=_result(method, rows, resolved, extras, params, method.signed)) from exc
    extras = tabular_extras(model, x, resolved)
    extras.update(result_extras(name, done, games))
    if name == "lime":
        extras["n_evaluations"] = [int(r.info["predictions"].numel()) for r in done]
        extras["kernel_width"] = params["kernel_width"]
        params = {**params, **{k: v for k, v in lime_opts.items() if k != "samples"}}
    extras["background_size"] = int(background.shape[0])
    out = _result(method, [r.phi for r in done], resolved, extras, params, method.signed)
    out.inputs = x
    frames = stream.frames()
    if frames:
        out.frames, out.frame_kind = frames, "estimate"
    return out


def _lime_one(
    index: int, model: TabularModel, x: torch.Tensor, target: int, background: torch.Tensor,
    params: dict[str, Any], opts: dict[str, Any], progress: Progress,
) -> GameResult:
    samples = opts["samples"]
    if samples is not None:
        samples = torch.as_tensor(samples)
        samples = samples[index] if samples.dim() == 3 else samples
    seed = params["seed"]
    gen = generator(index if seed is None else seed + index, torch.device("cpu"))
    rows, data, distances = tabular_samples(
        x, background, params["n_samples"], gen, discretize=bool(opts["discretize"]),
        sample_around_instance=bool(opts["sample_around_instance"]), samples=samples,
    )
    batch = params.get("batch_size") or DEFAULT_TABULAR_BATCH
    ys = []
    with torch.no_grad():
        for a in range(0, rows.shape[0], batch):
            ys.append(model(rows[a : a + batch])[:, target].double())
            progress.update(min(a + batch, rows.shape[0]), rows.shape[0], f"lime: input {index + 1}")
    y = torch.cat(ys)
    fit = lime_surrogate(data, y, distances, params["kernel_width"], params["num_features"],
                         params["feature_selection"])
    return GameResult(fit["weights"], float("nan"), float(y[0]),
                      info={**fit, "samples": rows, "data": data, "predictions": y})


# --------------------------------------------------------------------------------------------------------
# input-space methods on the torch model


def _input_space(
    method: Any, model: TabularModel, x: torch.Tensor, resolved: torch.Tensor, user: dict[str, Any],
    progress: Progress,
) -> Attribution:
    cls = type(method)
    if "tabular" not in cls.modalities:
        raise ParameterError(
            f"{cls.name} does not explain table rows; use one of {', '.join(COALITION_METHODS)}, 'anchors', or a "
            "gradient method (integrated_gradients, deeplift, ...)"
        )
    if model.numpy or not isinstance(model.model, nn.Module):
        raise ModelError(
            f"{cls.name} needs gradients of a torch nn.Module; this TabularModel wraps a "
            f"{'numpy ' if model.numpy else ''}function. Use a model-agnostic method: "
            f"{', '.join(COALITION_METHODS)} or anchors"
        )
    bg = model.background
    if bg is not None:
        if "baseline" in cls.defaults and "baseline" not in user:
            user["baseline"] = bg if cls.name == "expected_gradients" else bg.mean(0, keepdim=True)
        if "background" in cls.defaults and user.get("background") is None:
            user["background"] = bg
    res = cls(RowsForward(model)).attribute(x, resolved, progress=progress, **user)
    if tuple(res.values.shape) != tuple(x.shape):
        raise ModelError(f"{cls.name} gave values of shape {tuple(res.values.shape)} for rows {tuple(x.shape)}")
    extras = {**res.extras, **tabular_extras(model, x, resolved)}
    extras["output_value"] = res.scores.detach().double().cpu()
    for key in BASE_KEYS:
        if isinstance(res.extras.get(key), torch.Tensor):
            extras["base_value"] = res.extras[key].detach().double().cpu().reshape(-1)
            break
    out = Attribution(
        values=res.values.detach().float().cpu(), method=cls.name, target=resolved.cpu(),
        scores=res.scores.detach().cpu(), params=res.params, inputs=x, extras=extras, frames=res.frames,
        frame_kind=res.frame_kind, default_reduce="none", signed=res.signed,
    )
    return out


def _result(
    method: Any, rows: list[torch.Tensor], resolved: torch.Tensor, extras: dict[str, Any], params: dict[str, Any],
    signed: bool,
) -> Attribution:
    values = torch.stack([r.float().cpu() for r in rows])
    scores = extras.get("output_value")
    return Attribution(
        values=values, method=method.name, target=resolved.cpu(),
        scores=scores if scores is not None else torch.full((len(rows),), float("nan"), dtype=torch.float64),
        params=params, inputs=None, extras=extras, default_reduce="none", signed=signed,
    )
