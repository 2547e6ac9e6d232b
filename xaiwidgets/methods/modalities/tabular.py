"""Tabular attributions for a :class:`~xaiwidgets.core.tabular.TabularModel` on rows ``(N, d)``.

- methods with ``explain_game``: ``kernel_shap``, ``exact_shapley`` (d <= 16) and ``shapley_sampling``
  explain the interventional game ``v(S) = mean_b f(x_S, b_~S)`` over the background rows (``background=``
  or the model's) (:class:`.coalition_games.TabularGame`); ``lime`` follows the lime package's
  ``LimeTabularExplainer``: quartile-discretised sampling from the background (default) or, with
  ``discretize=False``, normal sampling around the instance (``sample_around_instance=True``) or the
  background mean; ``kernel_width`` in lime's units (default ``sqrt(d) * 0.75``); ``samples=`` injects the
  perturbed rows (see :mod:`.lime_sampling`).
- methods with ``tabular_strategy = "rows"`` (gradients, integrated gradients, DeepLIFT, DeepSHAP, LRP,
  occlusion, ...) run their tensor path on the torch model with the rows as inputs. Where a method takes a
  reference, the default is the background: its mean row for ``baseline`` (IG, DeepLIFT), the rows
  themselves when the method draws its baselines from a set (``baseline_set``: ``expected_gradients``) and
  for ``background`` (``deepshap``).

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
from ...core.errors import ModelError, ParameterError
from ...core.progress import Progress
from ...core.tabular import TabularModel
from ...core.targets import TargetLike, resolve_target
from ..base import Method
from ..registry import available, get_method
from .coalition_games import TabularGame, game_extras, play, with_frames

DEFAULT_TABULAR_BATCH = 4096
#: modality parameters that inject data (not recorded in the result's ``params``)
INJECTED = ("samples",)
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
    if method.plays_games():
        return _coalitions(method, model, x, resolved, dict(user), progress)
    return _input_space(method, model, x, resolved, dict(user), progress)


def model_agnostic() -> list[str]:
    """The methods that explain rows without the model's gradients (coalition games or their own search)."""
    classes = [get_method(r["name"]) for r in available(modality="tabular")]
    return [c.name for c in classes if c.plays_games() or c.explain_tabular is not Method.explain_tabular]


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
    for key in ("segments", "segmentation_params", "baseline", "coalitions"):
        if key in user:
            hint = "the perturbed rows come from samples=" if key == "coalitions" else (
                "absent features take the values of the background rows: pass background=(B, d)")
            raise ParameterError(f"{key}= does not apply to a TabularModel; {hint}")
    background = model._background(user.pop("background", None))
    opts = {k: user.pop(k, v) for k, v in method.modality_params.get("tabular", {}).items()}
    if "kernel_width" in method.defaults and "kernel_width" not in user:  # lime's tabular default
        user["kernel_width"] = math.sqrt(x.shape[1]) * 0.75
    params = method.resolve_params(user)
    method.validate(x, params)
    batch = params.get("batch_size") or DEFAULT_TABULAR_BATCH
    games = [TabularGame(model, x[i : i + 1], int(resolved[i]), background, batch_size=batch)
             for i in range(x.shape[0])]

    def partial(done: list[Any]) -> Attribution:
        rows = [r.phi for r in done] + [torch.zeros(x.shape[1], dtype=torch.float64)] * (len(games) - len(done))
        extras = {**tabular_extras(model, x, resolved), "complete": [i < len(done) for i in range(len(games))]}
        return _result(method, rows, resolved, extras, params, method.signed)

    done, stream = play(method, games, {**params, **opts}, progress, partial)
    extras = tabular_extras(model, x, resolved)
    extras.update(game_extras(done, games))
    if "kernel_width" in params:
        extras["kernel_width"] = params["kernel_width"]
    params = {**params, **{k: v for k, v in opts.items() if k not in INJECTED}}
    extras["background_size"] = int(background.shape[0])
    out = _result(method, [r.phi for r in done], resolved, extras, params, method.signed)
    out.inputs = x
    return with_frames(out, stream)


# --------------------------------------------------------------------------------------------------------
# input-space methods on the torch model


def _input_space(
    method: Any, model: TabularModel, x: torch.Tensor, resolved: torch.Tensor, user: dict[str, Any],
    progress: Progress,
) -> Attribution:
    cls = type(method)
    if model.numpy or not isinstance(model.model, nn.Module):
        raise ModelError(
            f"{cls.name} needs gradients of a torch nn.Module; this TabularModel wraps a "
            f"{'numpy ' if model.numpy else ''}function. Use a model-agnostic method: "
            f"{', '.join(model_agnostic())}"
        )
    bg = model.background
    if bg is not None:
        if "baseline" in cls.defaults and "baseline" not in user:
            user["baseline"] = bg if cls.baseline_set else bg.mean(0, keepdim=True)
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
