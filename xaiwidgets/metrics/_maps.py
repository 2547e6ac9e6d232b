"""Shared plumbing of the axiom, sanity, localisation, complexity and selection metrics.

- explanations as tensors: an :class:`~xaiwidgets.Attribution`, a tensor or a numpy array become a float
  tensor ``(N, ...)``; ``as_maps`` reduces image channels to ``(N, H, W)`` like ``Attribution.heatmap``;
- explainers: a registered method name (with parameters) or a callable
  ``explain(model, inputs, target) -> Attribution | Tensor`` becomes one callable returning values;
- ``prepare``: the model unwrapped, the inputs validated, the targets resolved once on the original model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution, reduce_channels
from ..core.batching import chunk_ranges
from ..core.device import resolve_device
from ..core.errors import InputError, ParameterError
from ..core.inputs import as_batch
from ..core.progress import Progress
from ..core.targets import TargetLike, gather_scores, resolve_target, scores_from_output

ExplanationLike = Attribution | torch.Tensor | np.ndarray
#: ``explain(model, inputs, target) -> Attribution | Tensor`` with ``target`` a ``(N,)`` long tensor
ExplainFn = Callable[[Any, torch.Tensor, torch.Tensor], Any]
MethodLike = str | ExplainFn


def values_of(explanation: ExplanationLike) -> torch.Tensor:
    """The explanation's values as a detached float tensor ``(N, ...)``."""
    if isinstance(explanation, Attribution):
        values = explanation.values
    elif isinstance(explanation, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(explanation))
    elif isinstance(explanation, torch.Tensor):
        values = explanation
    else:
        raise InputError(
            f"an explanation must be an Attribution, a torch.Tensor or a numpy array, got {type(explanation).__name__}"
        )
    values = values.detach()
    if not values.is_floating_point():
        values = values.float()
    if values.dim() < 2:
        raise InputError(f"an explanation is a batch (N, ...); got shape {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise InputError("the explanation contains NaN or infinite values")
    return values


def as_maps(explanation: ExplanationLike, reduce: str | None = None) -> torch.Tensor:
    """``(N, H, W)`` maps of image explanations (channels reduced), other explanations unchanged.

    ``reduce`` defaults to the Attribution's ``default_reduce`` (``"sum"`` for raw tensors); a single
    channel is squeezed whatever ``reduce`` says.
    """
    values = values_of(explanation)
    if values.dim() == 4:
        if values.shape[1] == 1 and reduce in (None, "sum", "mean", "max", "none"):
            return values[:, 0]
        default = explanation.default_reduce if isinstance(explanation, Attribution) else "sum"
        try:
            return reduce_channels(values, reduce or default)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
    if reduce in ("abs_sum", "max_abs", "l2"):
        return values.abs()
    return values


def flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def check_batch(values: torch.Tensor, n: int, what: str = "explanation") -> None:
    if values.shape[0] != n:
        raise InputError(f"the {what} has {values.shape[0]} samples but there are {n} inputs; give one per input")


def expand_to_inputs(values: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Explanation values broadcast to the inputs' shape (a ``(N, 1, H, W)`` or ``(N, H, W)`` map covers all
    channels of its pixel)."""
    check_batch(values, inputs.shape[0])
    if values.shape == inputs.shape:
        return values
    if values.dim() == inputs.dim() - 1 and inputs.dim() == 4:
        values = values.unsqueeze(1)
    try:
        return values.to(inputs.device).expand_as(inputs)
    except RuntimeError:
        raise InputError(
            f"the explanation has shape {tuple(values.shape)}, which does not match the inputs "
            f"{tuple(inputs.shape)}; give input-shaped values or an (N, 1, H, W) map at the input size"
        ) from None


def make_explainer(method: MethodLike, params: Mapping[str, Any] | None = None) -> ExplainFn:
    """A callable ``(model, inputs, target) -> values`` for a method name (with ``params``) or a callable."""
    params = dict(params or {})
    if isinstance(method, str):
        from ..methods.registry import get_method

        cls = get_method(method)
        cls.check_params(params)

        def explain(model: Any, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return cls(model).attribute(inputs, target, progress=False, **params).values

        explain.__name__ = cls.name
        return explain
    if callable(method):
        if params:

            def explain_with(model: Any, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                return values_of(method(model, inputs, target, **params))

            return explain_with

        def explain_plain(model: Any, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return values_of(method(model, inputs, target))

        return explain_plain
    raise ParameterError(
        f"method must be a registered method name (see xw.methods.available()) or a callable "
        f"explain(model, inputs, target) -> Attribution | Tensor; got {type(method).__name__}"
    )


def method_label(method: MethodLike) -> str:
    if isinstance(method, str):
        return method
    return getattr(method, "__name__", type(method).__name__)


def prepare(
    model: Any, inputs: Any, target: TargetLike, device: str | torch.device | None = None
) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(net, inputs, target, scores)``: the unwrapped model, validated inputs on its device, the resolved
    ``(N,)`` targets and the ``(N,)`` target scores."""
    net, _classifier = unwrap_model(model)
    x = as_batch(inputs, net, device=resolve_device(net, device))
    with torch.no_grad():
        scores = scores_from_output(net(x), x.shape[0])
    resolved = resolve_target(target, scores)
    return net, x, resolved, gather_scores(scores, resolved).float()


@torch.no_grad()
def target_scores(net: Any, inputs: torch.Tensor, target: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``f(inputs)[i, target[i]]`` in chunks of ``batch_size`` rows."""
    parts = []
    for a, b in chunk_ranges(inputs.shape[0], batch_size):
        scores = scores_from_output(net(inputs[a:b]), b - a)
        parts.append(gather_scores(scores, target[a:b]).float())
    return torch.cat(parts) if parts else torch.zeros(0, device=inputs.device)


def explain_batched(
    explain: ExplainFn,
    net: Any,
    inputs: torch.Tensor,
    target: torch.Tensor,
    batch_size: int | None,
    progress: Progress | None = None,
    done: int = 0,
    total: int | None = None,
) -> torch.Tensor:
    """``explain`` over ``inputs`` in chunks of ``batch_size`` (None: one call), reporting progress."""
    size = inputs.shape[0] if not batch_size else int(batch_size)
    parts = []
    for a, b in chunk_ranges(inputs.shape[0], size):
        values = values_of(explain(net, inputs[a:b], target[a:b]))
        check_batch(values, b - a)
        parts.append(values.to(inputs.device))
        if progress is not None:
            progress.update(done + b, total if total is not None else inputs.shape[0])
    return torch.cat(parts)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
