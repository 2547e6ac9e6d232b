"""Faithfulness: does perturbing what the explanation calls relevant change the model's output?

- :func:`deletion` / :func:`insertion`: the output as features are removed (replaced by a baseline) or
  put back into the baseline in MoRF, LeRF or random order, with AUC and AOPC (pixel flipping, Bach et
  al. 2015, PLoS ONE 10(7):e0130140; region perturbation and AOPC, Samek et al. 2017,
  arXiv:1509.06321; deletion / insertion AUC, Petsiuk et al. 2018, arXiv:1806.07421);
  :func:`pixel_flipping` and :func:`region_perturbation` are the two papers' settings.
- :func:`road`: removal with noisy linear imputation instead of a baseline, so the removed shape does not
  leak class information (Rong et al. 2022, arXiv:2202.00449).
- :func:`faithfulness_correlation`: Pearson correlation, over random feature subsets, between the
  explanation's sum on the subset and the output drop when the subset is removed (Bhatt et al. 2020,
  IJCAI, arXiv:2005.00631).

Every metric takes the model, the inputs and an :class:`~xaiwidgets.Attribution` (its inputs and target are
used when not given) or a raw tensor of attributions; perturbed inputs go through the model in chunks of
``batch_size`` (None: a measured size) on the model's device, with progress and cancellation, and random
choices come from ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError, ParameterError
from ..core.progress import as_progress
from ..core.state import preserved, warn_if_training
from ..core.targets import TargetLike
from ..methods.baselines import resolve_baseline
from .perturb import (
    ORDERS,
    OUTPUTS,
    ExplanationLike,
    MetricSetup,
    Perturber,
    ProgressLike,
    bytes_of_row,
    check_choice,
    check_int,
    check_seed,
    cpu_generator,
    element_ranks,
    feature_labels,
    feature_ranks,
    feature_relevance,
    noisy_linear_impute,
    score_rows,
    step_counts,
)
from .results import PerturbationCurve, SampleScores


def perturbation_curve(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    mode: str = "deletion",
    order: str = "morf",
    features: Any = "pixel",
    patch_size: int = 8,
    segmentation_params: dict[str, Any] | None = None,
    n_steps: int = 50,
    features_per_step: int | None = None,
    max_steps: int | None = None,
    baseline: Any = "black",
    output: str = "probability",
    reduce: str | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: ProgressLike = None,
    device: str | torch.device | None = None,
    metric: str | None = None,
) -> PerturbationCurve:
    """Deletion (``mode="deletion"``) or insertion curve of ``explanation`` for ``model`` on ``inputs``.

    Features (``"pixel"``, ``"element"``, ``"patch"`` of ``patch_size``, ``"slic"`` / ``"quickshift"`` /
    ``"felzenszwalb"`` superpixels with ``segmentation_params``, or a tensor of labels) are ranked by the
    sum of the explanation over them (channels reduced with ``reduce``, default the Attribution's) in
    ``order``; step ``k`` of ``n_steps`` perturbs ``round(k / n_steps * M)`` of the ``M`` features, or
    ``k * features_per_step`` when given (then at most ``max_steps`` steps). Removed features take the
    ``baseline`` (a name, number, tensor or callable, resolved as every method resolves it: see
    :func:`xaiwidgets.methods.baselines.resolve_baseline`; ``"black"`` is black pixels after the
    classifier's normalisation). ``output`` is the target's softmax ``"probability"`` or its ``"logit"``.
    Returns a :class:`PerturbationCurve`.
    """
    check_choice(mode, "mode", ("deletion", "insertion"))
    check_choice(order, "order", ORDERS)
    check_choice(output, "output", OUTPUTS)
    n_steps = check_int(n_steps, "n_steps")
    features_per_step = check_int(features_per_step, "features_per_step", allow_none=True)
    max_steps = check_int(max_steps, "max_steps", allow_none=True)
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    seed = check_seed(seed)
    s = MetricSetup(model, inputs, explanation, target, reduce, device)
    warn_if_training(s.net)
    tracker = as_progress(progress)
    try:
        with preserved(s.net):
            labels, counts = feature_labels(
                s.x, features, patch_size=patch_size, segmentation_params=segmentation_params,
                classifier=s.classifier,
            )
            relevance = feature_relevance(s.values, labels, counts, s.reduce)
            ranks = feature_ranks(relevance, counts, order, cpu_generator(seed, 0))
            base = resolve_baseline(baseline, s.x, s.classifier, seed=seed)
            perturber = Perturber(s.x, base, element_ranks(labels, ranks), mode)
            steps = step_counts(counts, n_steps, features_per_step, max_steps)  # (N, L+1) on CPU
            per = steps.shape[1]
            rows_i = torch.arange(s.n).repeat_interleave(per)
            rows_c = steps.reshape(-1)
            values, top = score_rows(
                s.net,
                s.n * per,
                lambda a, b: perturber.rows(rows_i[a:b], rows_c[a:b]),
                lambda a, b: s.target[rows_i[a:b].to(s.target.device)],
                output,
                bytes_per_row=bytes_of_row(s.x),
                device=s.device,
                batch_size=batch_size,
                progress=tracker,
                message=metric or mode,
            )
    finally:
        tracker.close()
    params = {
        "mode": mode, "order": order, "features": features if isinstance(features, str) else "labels",
        "patch_size": patch_size, "n_steps": int(per - 1), "features_per_step": features_per_step,
        "baseline": baseline if isinstance(baseline, (str, int, float)) else "tensor", "output": output,
        "reduce": s.reduce, "seed": seed,
    }

    def rebuild(index: int, step: int) -> torch.Tensor:
        return perturber.rows(torch.tensor([index]), steps[index, step : step + 1])

    return PerturbationCurve(
        metric=metric or mode, mode=mode, order=order,
        scores=values.view(s.n, per).numpy(), counts=steps.numpy(), n_features=counts.cpu().numpy(),
        still_top=top.view(s.n, per).numpy(), target=s.target.cpu().numpy(), output=output, params=params,
        method=s.method, rebuild=rebuild, classifier=s.classifier,
    )


def deletion(
    model: Any, inputs: Any, explanation: ExplanationLike, target: TargetLike = None, **options: Any
) -> PerturbationCurve:
    """Deletion curve: features replaced by the baseline, most relevant first by default (a faithful
    explanation makes the output fall fast: low AUC, high AOPC). Options as :func:`perturbation_curve`."""
    return perturbation_curve(model, inputs, explanation, target, **{"metric": "deletion", **options,
                                                                     "mode": "deletion"})


def insertion(
    model: Any, inputs: Any, explanation: ExplanationLike, target: TargetLike = None, **options: Any
) -> PerturbationCurve:
    """Insertion curve: features put back into the baseline, most relevant first by default (a faithful
    explanation makes the output rise fast: high AUC). Options as :func:`perturbation_curve`."""
    return perturbation_curve(model, inputs, explanation, target, **{"metric": "insertion", **options,
                                                                     "mode": "insertion"})


def pixel_flipping(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    features_per_step: int | None = None,
    n_steps: int = 50,
    **options: Any,
) -> PerturbationCurve:
    """Pixel flipping (Bach et al. 2015): pixels replaced by the baseline in MoRF order,
    ``features_per_step`` at a time (or ``n_steps`` equal steps). Options as :func:`perturbation_curve`."""
    options = {"features": "pixel", "metric": "pixel_flipping", **options, "mode": "deletion"}
    return perturbation_curve(
        model, inputs, explanation, target, features_per_step=features_per_step, n_steps=n_steps, **options
    )


def region_perturbation(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    patch_size: int = 8,
    n_regions: int = 100,
    baseline: Any = "uniform",
    **options: Any,
) -> PerturbationCurve:
    """Region perturbation (Samek et al. 2017): non-overlapping ``patch_size`` squares ranked by their summed
    relevance, one more replaced per step (uniform noise by default, as the paper), for ``n_regions`` steps;
    ``aopc`` is the paper's AOPC. Options as :func:`perturbation_curve`."""
    options = {"metric": "region_perturbation", **options, "mode": "deletion", "features": "patch"}
    return perturbation_curve(
        model, inputs, explanation, target, patch_size=patch_size, features_per_step=1,
        max_steps=check_int(n_regions, "n_regions"), baseline=baseline, **options,
    )


def road(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    order: str = "morf",
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    noise: float = 0.01,
    features: Any = "pixel",
    patch_size: int = 8,
    segmentation_params: dict[str, Any] | None = None,
    output: str = "probability",
    reduce: str | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: ProgressLike = None,
    device: str | torch.device | None = None,
) -> PerturbationCurve:
    """ROAD, RemOve And Debias (Rong et al. 2022): remove ``round(r * M)`` features for each fraction ``r`` in
    ``order`` and fill the removed pixels by noisy linear imputation (``noise``: standard deviation in input
    units, seeded per input and step). The curve starts at fraction 0 (the unperturbed input). MoRF: a
    faithful explanation makes the output fall fast; LeRF: slowly. Needs image inputs and features shared
    by the channels.
    """
    check_choice(order, "order", ORDERS)
    check_choice(output, "output", OUTPUTS)
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    seed = check_seed(seed)
    fr = _check_fractions(fractions)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise ParameterError(f"noise must be a standard deviation >= 0, got {noise!r}")
    s = MetricSetup(model, inputs, explanation, target, reduce, device)
    if s.x.dim() != 4:
        raise InputError(f"ROAD imputes pixels of images (N, C, H, W); got inputs {tuple(s.x.shape)}")
    warn_if_training(s.net)
    tracker = as_progress(progress)
    try:
        with preserved(s.net):
            labels, counts = feature_labels(
                s.x, features, patch_size=patch_size, segmentation_params=segmentation_params,
                classifier=s.classifier,
            )
            if labels.shape[1] != 1:
                raise ParameterError("ROAD removes whole pixels; use features shared by the channels (not 'element')")
            relevance = feature_relevance(s.values, labels, counts, s.reduce)
            ranks = element_ranks(labels, feature_ranks(relevance, counts, order, cpu_generator(seed, 0)))
            steps = torch.round(torch.from_numpy(fr)[None, :] * counts.cpu().double()[:, None]).long()
            per = steps.shape[1]

            def impute(index: int, step: int) -> torch.Tensor:
                removed = ranks[index, 0] < int(steps[index, step])
                gen = cpu_generator(seed, 2, index, step)
                return noisy_linear_impute(s.x[index], removed, float(noise), gen).unsqueeze(0)

            def build(a: int, b: int) -> torch.Tensor:
                return torch.cat([impute(r // per, r % per) for r in range(a, b)])

            values, top = score_rows(
                s.net, s.n * per, build,
                lambda a, b: s.target[torch.arange(a, b, device=s.target.device) // per],
                output, bytes_per_row=bytes_of_row(s.x), device=s.device, batch_size=batch_size,
                progress=tracker, message="road",
            )
    finally:
        tracker.close()
    params = {
        "order": order, "fractions": fr.tolist(), "noise": float(noise),
        "features": features if isinstance(features, str) else "labels", "output": output, "reduce": s.reduce,
        "seed": seed,
    }
    return PerturbationCurve(
        metric="road", mode="deletion", order=order, scores=values.view(s.n, per).numpy(), counts=steps.numpy(),
        n_features=counts.cpu().numpy(), still_top=top.view(s.n, per).numpy(), target=s.target.cpu().numpy(),
        output=output, params=params, method=s.method, rebuild=impute, classifier=s.classifier,
    )


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    try:
        fr = np.asarray(fractions, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ParameterError(f"fractions must be a sequence of numbers in (0, 1), got {fractions!r}") from None
    if fr.size == 0 or not np.all((fr > 0) & (fr < 1)) or np.any(np.diff(fr) <= 0):
        raise ParameterError(f"fractions must be increasing numbers in (0, 1), got {fractions!r}")
    return np.concatenate([[0.0], fr])


def faithfulness_correlation(
    model: Any,
    inputs: Any,
    explanation: ExplanationLike,
    target: TargetLike = None,
    *,
    n_runs: int = 100,
    subset_size: int | float = 0.1,
    subsets: torch.Tensor | np.ndarray | None = None,
    features: Any = "pixel",
    patch_size: int = 8,
    segmentation_params: dict[str, Any] | None = None,
    baseline: Any = "black",
    output: str = "logit",
    reduce: str | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: ProgressLike = None,
    device: str | torch.device | None = None,
) -> SampleScores:
    """Faithfulness correlation (Bhatt et al. 2020): for ``n_runs`` random subsets ``S`` of ``subset_size``
    features (an int, or a fraction of the features), the Pearson correlation between ``sum_{i in S} a_i``
    and ``f(x) - f(x_S)`` with ``x_S`` the input with ``S`` set to the ``baseline``. Higher is better (1:
    the explanation predicts every drop linearly). ``subsets`` ``(N, n_runs, k)`` feature indices replace
    the random draws. ``output`` defaults to the logit, which gradient-type attributions explain. Returns
    :class:`SampleScores` with the sums and drops in ``extras`` (NaN when either is constant).
    """
    check_choice(output, "output", OUTPUTS)
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    seed = check_seed(seed)
    s = MetricSetup(model, inputs, explanation, target, reduce, device)
    warn_if_training(s.net)
    tracker = as_progress(progress)
    try:
        with preserved(s.net):
            labels, counts = feature_labels(
                s.x, features, patch_size=patch_size, segmentation_params=segmentation_params,
                classifier=s.classifier,
            )
            relevance = feature_relevance(s.values, labels, counts, s.reduce)
            chosen = _subsets(subsets, counts, n_runs, subset_size, seed).to(s.device)  # (N, R, k)
            runs = chosen.shape[1]
            m = relevance.shape[1]
            sums = relevance.gather(1, chosen.reshape(s.n, -1)).view(s.n, runs, -1).sum(2)
            base = resolve_baseline(baseline, s.x, s.classifier, seed=seed)
            flat_labels = labels.reshape(s.n, -1)
            orig = s.outputs(output)

            def build(a: int, b: int) -> torch.Tensor:
                r = torch.arange(a, b, device=s.device)
                i, j = r // runs, r % runs
                feat = torch.zeros(b - a, m, dtype=torch.bool, device=s.device)
                feat.scatter_(1, chosen[i, j], True)
                removed = feat.gather(1, flat_labels[i]).view(b - a, *labels.shape[1:])
                return torch.where(removed, base[i], s.x[i])

            values, _ = score_rows(
                s.net, s.n * runs, build,
                lambda a, b: s.target[torch.arange(a, b, device=s.target.device) // runs],
                output, bytes_per_row=bytes_of_row(s.x), device=s.device, batch_size=batch_size,
                progress=tracker, message="faithfulness correlation",
            )
    finally:
        tracker.close()
    drops = orig[:, None] - values.view(s.n, runs).double()
    sums_np = sums.double().cpu().numpy()
    drops_np = drops.numpy()
    return SampleScores(
        metric="faithfulness_correlation", values=_pearson(sums_np, drops_np), target=s.target.cpu().numpy(),
        higher_is_better=True, method=s.method,
        params={"n_runs": runs, "subset_size": int(chosen.shape[2]), "output": output, "reduce": s.reduce,
                "baseline": baseline if isinstance(baseline, (str, int, float)) else "tensor", "seed": seed},
        extras={"attribution_sums": sums_np, "output_drops": drops_np},
    )


def _subsets(
    subsets: Any, counts: torch.Tensor, n_runs: int, subset_size: int | float, seed: int
) -> torch.Tensor:
    n = counts.shape[0]
    if subsets is not None:
        chosen = torch.as_tensor(np.asarray(subsets) if isinstance(subsets, np.ndarray) else subsets)
        if chosen.is_floating_point() or chosen.dim() != 3 or chosen.shape[0] != n:
            raise ParameterError(
                f"subsets must be integer feature indices (N={n}, n_runs, k); got {tuple(chosen.shape)} "
                f"{chosen.dtype}"
            )
        chosen = chosen.long().cpu()
        if bool((chosen < 0).any()) or bool((chosen >= counts.cpu()[:, None, None]).any()):
            raise ParameterError("subsets hold feature indices outside 0..M-1 of their input")
        return chosen
    n_runs = check_int(n_runs, "n_runs", minimum=2)
    m_min = int(counts.min())
    if isinstance(subset_size, float) and not isinstance(subset_size, bool):
        if not 0 < subset_size < 1:
            raise ParameterError(f"subset_size as a fraction must be in (0, 1), got {subset_size}")
        k = max(1, round(subset_size * m_min))
    else:
        k = check_int(subset_size, "subset_size")
        if k > m_min:
            raise ParameterError(f"subset_size {k} is larger than the number of features ({m_min})")
    gen = cpu_generator(seed, 3)
    out = torch.empty(n, n_runs, k, dtype=torch.long)
    for i in range(n):
        keys = torch.rand(n_runs, int(counts[i]), generator=gen)
        out[i] = keys.topk(k, dim=1).indices
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; NaN where a row is constant."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), np.nan)
