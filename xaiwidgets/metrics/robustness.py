"""Infidelity and max-sensitivity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of Explanations",
NeurIPS, arXiv:1901.09392), with the conventions of ``captum.metrics``.

- :func:`infidelity`: ``E_I[(I . a - (f(x) - f(x - I)))^2]`` over random perturbations ``I`` (Gaussian
  noise, or removal of a random square); lower is better. With ``normalize=True`` the explanation is first
  scaled by the least-squares optimal ``beta`` (Yeh et al.'s official code, captum's ``normalize``), so the
  value does not depend on the explanation's scale.
- :func:`max_sensitivity`: ``max_{|d|_inf <= r} |a(x + d) - a(x)| / |a(x)|`` over random ``d`` in the
  ``radius`` ball; lower is better. Needs the explainer, not only one explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution
from ..core.device import resolve_device
from ..core.errors import InputError, ParameterError
from ..core.inputs import as_batch
from ..core.progress import as_progress
from ..core.state import preserved, warn_if_training
from ..core.targets import TargetLike, resolve_target, scores_from_output
from ..methods.baselines import resolve_baseline
from .perturb import (
    OUTPUTS,
    ExplanationLike,
    MetricSetup,
    ProgressLike,
    bytes_of_row,
    check_choice,
    check_int,
    check_seed,
    cpu_generator,
    explanation_values,
    score_rows,
)
from .results import SampleScores

PERTURBATIONS = ("gaussian", "square")
#: ``explain(model, inputs, target) -> Attribution | Tensor`` with ``target`` a ``(N,)`` long tensor
ExplainFn = Callable[[Any, torch.Tensor, torch.Tensor], Any]


def infidelity(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    perturbation: str = "gaussian",
    n_samples: int = 10,
    noise_level: float = 0.1,
    patch_size: int = 8,
    baseline: Any = "black",
    multiply_by_inputs: bool = False,
    perturbations: torch.Tensor | None = None,
    normalize: bool = True,
    output: str = "logit",
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: ProgressLike = None,
    device: str | torch.device | None = None,
) -> SampleScores:
    """Infidelity of ``explanation`` (Yeh et al. 2019); lower is better.

    ``perturbation="gaussian"``: ``I ~ N(0, s^2)`` per element with ``s = noise_level * (max - min)`` of each
    input; ``"square"``: a random ``patch_size`` square set to ``baseline``, ``I = x - x_perturbed``. With
    ``multiply_by_inputs=True`` (for attributions that already multiply by ``x - baseline``: IG, input x
    gradient, LRP, SHAP) the dot product uses ``I / (x - baseline)`` instead, 1 on the removed square
    (captum's ``infidelity_perturb_func_decorator(True)``). ``perturbations`` ``(N, n_samples, ...)`` gives
    ``I`` directly (the model sees ``x - I``). ``output``: the target's ``"logit"`` (default, what gradient
    attributions explain) or ``"probability"``. Returns :class:`SampleScores`.
    """
    check_choice(perturbation, "perturbation", PERTURBATIONS)
    check_choice(output, "output", OUTPUTS)
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    seed = check_seed(seed)
    s = MetricSetup(model, inputs, explanation, target, None, device)
    x, n = s.x, s.n
    attr = s.values  # (N, 1|C, ...) or the inputs' shape
    if perturbations is not None:
        pert = torch.as_tensor(perturbations).to(device=x.device, dtype=x.dtype)
        if pert.dim() != x.dim() + 1 or pert.shape[0] != n or tuple(pert.shape[2:]) != tuple(x.shape[1:]):
            raise ParameterError(
                f"perturbations must have shape (N={n}, n_samples, {', '.join(map(str, x.shape[1:]))}); "
                f"got {tuple(pert.shape)}"
            )
        n_samples = pert.shape[1]
        removed = None
    else:
        n_samples = check_int(n_samples, "n_samples")
        pert, removed = _draw_infidelity(x, perturbation, n_samples, noise_level, patch_size, baseline, s, seed)
    if multiply_by_inputs:
        if removed is None:
            raise ParameterError("multiply_by_inputs needs perturbation='square' (binary removal)")
        weights = removed.to(x.dtype)  # (N, S, 1, H, W): 1 on the removed square
    else:
        weights = pert
    # I . a for every sample: broadcast a (N, 1|C, ...) over the sample axis
    dots = (weights * attr.unsqueeze(1)).reshape(n, n_samples, -1).sum(2).double().cpu()
    warn_if_training(s.net)
    tracker = as_progress(progress)
    try:
        with preserved(s.net):
            flat = pert.reshape(n * n_samples, *x.shape[1:])
            values, _ = score_rows(
                s.net, n * n_samples,
                lambda a, b: x[torch.arange(a, b, device=x.device) // n_samples] - flat[a:b],
                lambda a, b: s.target[torch.arange(a, b, device=s.target.device) // n_samples],
                output, bytes_per_row=bytes_of_row(x), device=s.device, batch_size=batch_size,
                progress=tracker, message="infidelity",
            )
    finally:
        tracker.close()
    diffs = s.outputs(output)[:, None] - values.view(n, n_samples).double()
    if normalize:
        den = (dots * dots).sum(1)
        beta = torch.where(den > 0, (dots * diffs).sum(1) / torch.where(den > 0, den, 1.0), 0.0)
        dots = beta[:, None] * dots
    scores = ((dots - diffs) ** 2).mean(1)
    return SampleScores(
        metric="infidelity", values=scores.numpy(), target=s.target.cpu().numpy(), higher_is_better=False,
        method=s.method,
        params={"perturbation": perturbation if perturbations is None else "given", "n_samples": int(n_samples),
                "noise_level": noise_level, "patch_size": patch_size, "multiply_by_inputs": multiply_by_inputs,
                "normalize": normalize, "output": output, "seed": seed},
        extras={"dot_products": dots.numpy(), "output_drops": diffs.numpy()},
    )


def _draw_infidelity(
    x: torch.Tensor, kind: str, n_samples: int, noise_level: float, patch_size: int, baseline: Any,
    s: MetricSetup, seed: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(I (N, S, ...), removed (N, S, 1, H, W) or None)``."""
    n = x.shape[0]
    gen = cpu_generator(seed, 4)
    if kind == "gaussian":
        if isinstance(noise_level, bool) or not isinstance(noise_level, (int, float)) or noise_level <= 0:
            raise ParameterError(f"noise_level must be a number > 0 (fraction of the input range), got {noise_level!r}")
        flat = x.reshape(n, -1)
        spread = (flat.amax(1) - flat.amin(1)).view(n, *([1] * x.dim()))
        z = torch.randn((n, n_samples, *x.shape[1:]), generator=gen, dtype=torch.float32).to(x.device, x.dtype)
        return noise_level * spread * z, None
    if x.dim() != 4:
        raise ParameterError(f"perturbation='square' needs images (N, C, H, W); got inputs {tuple(x.shape)}")
    h, w = x.shape[2:]
    size = check_int(patch_size, "patch_size")
    if size > min(h, w):
        raise ParameterError(f"patch_size {size} is larger than the image ({h}x{w})")
    top = torch.randint(0, h - size + 1, (n, n_samples), generator=gen).to(x.device)
    left = torch.randint(0, w - size + 1, (n, n_samples), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
    inside = ((rows >= top[..., None, None]) & (rows < top[..., None, None] + size)
              & (cols >= left[..., None, None]) & (cols < left[..., None, None] + size))  # (N, S, H, W)
    removed = inside.unsqueeze(2)  # (N, S, 1, H, W)
    base = resolve_baseline(baseline, x, s.classifier, seed=seed)
    pert = torch.where(removed, (x - base).unsqueeze(1), torch.zeros((), dtype=x.dtype, device=x.device))
    return pert, removed


# ----------------------------------------------------------------------------------------------------------


def explainer_from(explainer: Any, params: dict[str, Any] | None = None) -> tuple[ExplainFn, str]:
    """``(explain(model, inputs, target) -> values, label)`` for a method name, a callable or an Attribution."""
    params = dict(params or {})
    if isinstance(explainer, Attribution):
        params = {**{k: v for k, v in explainer.params.items() if k != "device"}, **params}
        explainer = explainer.method
    if isinstance(explainer, str):
        from ..methods.registry import get_method

        cls = get_method(explainer)
        cls.check_params(params)
        if "return_frames" in cls.defaults:
            params["return_frames"] = False

        def explain(model: Any, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return cls(model).attribute(inputs, target, progress=False, **params).values

        return explain, cls.name
    if callable(explainer):

        def call(model: Any, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return explanation_values(explainer(model, inputs, target, **params))

        return call, getattr(explainer, "__name__", type(explainer).__name__)
    raise ParameterError(
        "the explainer must be a registered method name (see xw.methods.available()), a callable "
        f"explain(model, inputs, target) -> Attribution | Tensor, or an Attribution; got {type(explainer).__name__}"
    )


def max_sensitivity(
    model: Any,
    inputs: Any,
    explainer: Any,
    target: TargetLike = None,
    *,
    params: dict[str, Any] | None = None,
    radius: float = 0.02,
    n_samples: int = 10,
    norm: float | str = 2,
    perturbations: torch.Tensor | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: ProgressLike = None,
    device: str | torch.device | None = None,
) -> SampleScores:
    """Max-sensitivity (Yeh et al. 2019) of an explainer; lower is better.

    ``explainer``: a method name (with ``params``), a callable ``explain(model, inputs, target)`` returning an
    Attribution or a tensor, or an Attribution (its method and parameters are re-run on the perturbed inputs
    and its values are ``a(x)``). For ``n_samples`` perturbations ``d`` uniform in ``[-radius, radius]`` per
    element (input units, captum's default 0.02) or the given ``perturbations`` ``(N, n_samples, ...)``, the
    largest ``|a(x + d) - a(x)| / |a(x)|`` (``norm``: 2 (Frobenius), 1 or ``"inf"``; ``|a(x)| = 0`` counts
    as 1, as captum). The target stays the one of ``x``. Explanations run ``batch_size`` perturbed inputs
    at a time (None: all samples of one input per call).
    """
    seed = check_seed(seed)
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    ord_ = _norm_order(norm)
    explain, label = explainer_from(explainer, params)
    net, _classifier = unwrap_model(model)
    if inputs is None and isinstance(explainer, Attribution):
        inputs = explainer.inputs
    if inputs is None:
        raise InputError("give the inputs to explain")
    dev = resolve_device(net, device)
    x = as_batch(inputs, net, device=dev)
    n = x.shape[0]
    if target is None and isinstance(explainer, Attribution):
        target = explainer.target
    with torch.no_grad():
        scores = scores_from_output(net(x), n)
    if isinstance(target, torch.Tensor):
        target = target.to(scores.device)
    tgt = resolve_target(target, scores)
    if perturbations is not None:
        delta = torch.as_tensor(perturbations).to(device=x.device, dtype=x.dtype)
        if delta.dim() != x.dim() + 1 or delta.shape[0] != n or tuple(delta.shape[2:]) != tuple(x.shape[1:]):
            raise ParameterError(
                f"perturbations must have shape (N={n}, n_samples, {', '.join(map(str, x.shape[1:]))}); "
                f"got {tuple(delta.shape)}"
            )
        n_samples = delta.shape[1]
    else:
        n_samples = check_int(n_samples, "n_samples")
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or radius <= 0:
            raise ParameterError(f"radius must be a number > 0 (input units), got {radius!r}")
        u = torch.rand((n, n_samples, *x.shape[1:]), generator=cpu_generator(seed, 5), dtype=torch.float32)
        delta = ((2 * u - 1) * radius).to(x.device, x.dtype)
    tracker = as_progress(progress)
    try:
        with preserved(net):
            if isinstance(explainer, Attribution):
                base = explanation_values(explainer).to(x.device)
            else:
                base = explanation_values(explain(model, x, tgt)).to(x.device)
            if base.shape[0] != n:
                raise InputError(f"the explainer returned {base.shape[0]} explanations for {n} inputs")
            base_flat = base.reshape(n, -1).double()
            base_norm = torch.linalg.vector_norm(base_flat, ord=ord_, dim=1)
            base_norm = torch.where(base_norm == 0, torch.ones_like(base_norm), base_norm)
            total = n * n_samples
            chunk = batch_size or n_samples
            sens = torch.empty(total, dtype=torch.float64)
            flat = delta.reshape(total, *x.shape[1:])
            for a in range(0, total, chunk):
                b = min(total, a + chunk)
                rows = torch.arange(a, b, device=x.device) // n_samples
                values = explanation_values(explain(model, x[rows] + flat[a:b], tgt[rows]))
                if values.shape[0] != b - a or values[0].numel() != base[0].numel():
                    raise InputError(
                        f"the explainer returned shape {tuple(values.shape)} for {b - a} perturbed inputs; "
                        f"expected {b - a} explanations like {tuple(base.shape[1:])}"
                    )
                diff = values.to(x.device).reshape(b - a, -1).double() - base_flat[rows]
                sens[a:b] = (torch.linalg.vector_norm(diff, ord=ord_, dim=1) / base_norm[rows]).cpu()
                tracker.update(b, total, "max-sensitivity")
    finally:
        tracker.close()
    per_sample = sens.view(n, n_samples)
    return SampleScores(
        metric="max_sensitivity", values=per_sample.amax(1).numpy(), target=tgt.cpu().numpy(),
        higher_is_better=False, method=label,
        params={"radius": radius if perturbations is None else "given", "n_samples": int(n_samples),
                "norm": norm, "seed": seed, **({"method_params": dict(params)} if params else {})},
        extras={"sensitivities": per_sample.numpy()},
    )


def _norm_order(norm: float | str) -> float:
    if norm in ("fro", 2, 2.0):
        return 2.0
    if norm in (1, 1.0):
        return 1.0
    if norm in ("inf", float("inf")):
        return float("inf")
    raise ParameterError(f"norm must be 2 (or 'fro'), 1 or 'inf'; got {norm!r}")

