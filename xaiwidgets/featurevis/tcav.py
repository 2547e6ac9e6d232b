"""Testing with Concept Activation Vectors (TCAV).

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas & Sayres 2018, "Interpretability Beyond Feature
Attribution: Quantitative Testing with Concept Activation Vectors (TCAV)", arXiv:1711.11279.
A CAV is the normal of a linear classifier (logistic regression) separating a layer's activations of
concept examples from those of random examples, pointing to the concept. The TCAV score of a class is
the fraction of its inputs whose class logit increases along the CAV (positive directional derivative
``grad_act(logit) · cav``). Repeated against ``n_repeats`` random sets and compared, with a two-sided
t-test, to the scores of random-vs-random CAVs (the null). ACE tests instead against fixed random concepts
(:func:`random_concept_null`, :func:`prediction_p`; docs/decisions.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from ..core.batching import chunk_ranges
from ..core.device import model_device
from ..core.errors import InputError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ..core.targets import scores_from_output
from ._capture import capture, resolve_model


@dataclass(eq=False)
class TCAVResult:
    """``score``: mean TCAV score over the repeats; ``scores``/``random_scores``: ``(n_repeats,)`` for the
    concept and for random-vs-random CAVs; ``p_value`` of the two-sided t-test between them;
    ``significant``: ``p_value < alpha``; ``cavs``: ``(n_repeats, D)`` unit CAVs; ``accuracies``: the
    classifiers' training accuracies."""

    score: float
    scores: torch.Tensor
    random_scores: torch.Tensor
    p_value: float
    significant: bool
    cavs: torch.Tensor
    accuracies: torch.Tensor
    layer: str
    target: int


def _check_images(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] < 2:
        raise InputError(f"{name} must be a model-ready tensor (N, ...) with at least 2 examples")
    return x


def _flat(t: torch.Tensor, pool: bool) -> torch.Tensor:
    """``(N, D)`` from a layer output; ``pool`` averages a ``(N, C, h, w)`` map over space first."""
    return (t.mean((2, 3)) if pool and t.dim() == 4 else t.flatten(1)).float()


def _layer_acts(module, cap, x: torch.Tensor, batch_size: int, device, pool: bool = False) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for a, b in chunk_ranges(x.shape[0], batch_size):
            cap.run(x[a:b].to(device))
            out.append(_flat(next(iter(cap.acts.values())), pool))
    return torch.cat(out)


def _class_grads(cap, layer: object, inputs: torch.Tensor, target: int, batch_size: int, device,
                 pool: bool = False) -> torch.Tensor:
    """Gradients ``(N, D)`` of the ``target`` logit at ``layer``; ``pool`` sums a ``(N, C, h, w)`` gradient
    over space (the directional derivative along a spatially constant direction in channel space)."""
    grads = []
    for a, b in chunk_ranges(inputs.shape[0], batch_size):
        x = inputs[a:b].to(device).requires_grad_(True)
        scores = scores_from_output(cap.run(x), b - a)
        if not 0 <= target < scores.shape[1]:
            raise ParameterError(f"target {target} is out of range: the model has {scores.shape[1]} outputs")
        (g,) = torch.autograd.grad(scores[:, target].sum(), cap.acts[layer])
        grads.append((g.sum((2, 3)) if pool and g.dim() == 4 else g.flatten(1)).float())
    return torch.cat(grads).cpu()


def logistic_regression(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, tol: float = 1e-10,
                        max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w, b)`` minimising ``||w||^2 / 2 + c * sum log(1 + exp(-s_i (w . x_i + b)))`` with ``s_i = 2 y_i - 1``
    (scikit-learn's ``LogisticRegression(C=c)``: the intercept is not penalised), by Newton's method in
    float64 (the objective is strictly convex; a few iterations)."""
    x = x.double()
    n, d = x.shape
    a = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)
    s = 2.0 * y.double() - 1.0
    theta = torch.zeros(d + 1, dtype=torch.float64)
    penalty = torch.ones(d + 1, dtype=torch.float64)
    penalty[-1] = 0.0
    for _ in range(max_iter):
        margin = s * (a @ theta)
        p = torch.sigmoid(-margin)  # d loss / d margin = -p
        grad = penalty * theta - c * a.T @ (s * p)
        if float(grad.abs().max()) < tol:
            break
        weight = c * p * (1 - p)
        hess = a.T @ (a * weight[:, None]) + torch.diag(penalty) + 1e-12 * torch.eye(d + 1, dtype=torch.float64)
        step = torch.linalg.solve(hess, grad)
        t = 1.0  # backtracking keeps each step a descent step
        obj = 0.5 * (penalty * theta) @ theta + c * torch.nn.functional.softplus(-margin).sum()
        while t > 1e-8:
            new = theta - t * step
            m2 = s * (a @ new)
            if 0.5 * (penalty * new) @ new + c * torch.nn.functional.softplus(-m2).sum() <= obj:
                break
            t *= 0.5
        theta = new
    return theta[:-1], theta[-1]


def fit_cav(pos: torch.Tensor, neg: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, float]:
    """Unit normal of a logistic-regression boundary (L2, ``C=1``) from ``neg`` to ``pos`` and its training
    accuracy. ``seed`` is unused (the fit is deterministic); kept for callers.

    With more dimensions than examples the regression runs in the examples' span (``X = U S V'``, fit on
    ``U S``, ``w = V w' = X' U S^-1 w'``, from the eigendecomposition of the Gram matrix ``X X'``): the
    L2-penalised optimum lies in that span and the change of basis preserves the penalty, so the solution is
    the same, at the cost of an ``n x n`` problem instead of ``n x D``.
    """
    x = torch.cat([pos, neg]).double().cpu()
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()
    if x.shape[1] > x.shape[0]:
        evals, u = torch.linalg.eigh(x @ x.T)
        keep = evals > evals.max() * 1e-12
        sv = evals[keep].sqrt()
        z = u[:, keep] * sv  # U S
        wz, b = logistic_regression(z, y)
        w = x.T @ (u[:, keep] @ (wz / sv))
        pred = z @ wz + b
    else:
        w, b = logistic_regression(x, y)
        pred = x @ w + b
    acc = float(((pred > 0).double() == y).double().mean())
    w = w.float()
    return w / w.norm().clamp_min(1e-12), acc


def random_sets(n_random: int, size: int, n_repeats: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each repeat two disjoint random index sets of ``size`` out of ``n_random`` (the negatives, and the
    positives of the random-vs-random CAV)."""
    gen = torch.Generator().manual_seed(seed)
    perms = [torch.randperm(n_random, generator=gen) for _ in range(n_repeats)]
    return [(p[:size], p[size : 2 * size]) for p in perms]


def cav_scores(
    a_pos: torch.Tensor | None, a_random: torch.Tensor, sets: list[tuple[torch.Tensor, torch.Tensor]],
    grads: torch.Tensor, seed: int = 0, progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scores, cavs, accuracies)`` over the repeats: the CAV of ``a_pos`` (None: each repeat's second
    random set, the null) against each repeat's first random set, scored as the fraction of ``grads``
    (``(n, D)`` gradients of the class logit) with a positive directional derivative."""
    scores, cavs, accs = [], [], []
    for r, (neg, pos) in enumerate(sets):
        cav, acc = fit_cav(a_random[pos] if a_pos is None else a_pos, a_random[neg], seed + r)
        scores.append(float((grads @ cav > 0).float().mean()))
        cavs.append(cav)
        accs.append(acc)
        if progress is not None:
            progress.update(r + 1, len(sets), "tcav")
    return torch.tensor(scores), torch.stack(cavs), torch.tensor(accs)


def t_test(scores: torch.Tensor, random_scores: torch.Tensor) -> float:
    """Two-sided p-value of the t-test between a concept's and the random CAVs' scores (1 when identical)."""
    from scipy.stats import ttest_ind

    sc, sr = scores, random_scores
    if torch.equal(sc, sr) or (sc.std() == 0 and sr.std() == 0 and sc[0] == sr[0]):
        return 1.0
    with warnings.catch_warnings():  # nearly constant scores: scipy warns of precision loss, p stays valid
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(sc.tolist(), sr.tolist()).pvalue)


def tcav_test(
    a_concept: torch.Tensor, a_random: torch.Tensor, grads: torch.Tensor, *, n_repeats: int, seed: int = 0,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """The repeated test on activations: ``(scores, random_scores, cavs, accuracies, p_value)``; each repeat
    uses two disjoint random sets of ``min(len(a_concept), len(a_random) // 2)`` (:func:`random_sets`)."""
    sets = random_sets(a_random.shape[0], min(a_concept.shape[0], a_random.shape[0] // 2), n_repeats, seed)
    sc, cavs, accs = cav_scores(a_concept, a_random, sets, grads, seed, progress)
    sr, _, _ = cav_scores(None, a_random, sets, grads, seed)
    return sc, sr, cavs, accs, t_test(sc, sr)


def random_concept_null(
    a_sets: list[torch.Tensor], a_random: torch.Tensor, sets: list[tuple[torch.Tensor, torch.Tensor]],
    grads: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The null of a fixed concept: each of ``a_sets`` (activations of one fixed random set of examples, drawn
    from the concept's source and not from the pool ``a_random``) scored as a concept, its CAV against the
    random sets ``sets`` of the pool. Returns each random concept's mean TCAV score and mean sensitivity
    (:func:`sensitivity`), ``(len(a_sets),)`` each: what a fixed random set reaches, between-set variation
    included."""
    scores, sens = [], []
    for a_fixed in a_sets:
        sc, cavs, _ = cav_scores(a_fixed, a_random, sets, grads)
        scores.append(float(sc.mean()))
        sens.append(sensitivity(grads, cavs))
    return torch.tensor(scores), torch.tensor(sens)


def sensitivity(grads: torch.Tensor, cavs: torch.Tensor) -> float:
    """Mean cosine between the class gradients ``(n, D)`` and the CAVs ``(R, D)``: the conceptual
    sensitivity ``S_C`` of Kim et al. (eq. 1), scale-free, averaged over inputs and repeats."""
    unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return float((unit @ cavs.T).mean())


def prediction_p(value: float, null: torch.Tensor) -> float:
    """Two-sided p-value of ``value`` as one more draw from the normal sample ``null`` (the t prediction
    interval: ``t = (value - mean) / (sd * sqrt(1 + 1/m))`` with ``m - 1`` degrees of freedom)."""
    from scipy.stats import t as student

    m = null.numel()
    sd = float(null.double().std())
    if sd == 0.0:
        return 1.0 if value == float(null[0]) else 0.0
    t = (value - float(null.double().mean())) / (sd * math.sqrt(1.0 + 1.0 / m))
    return float(2.0 * student.sf(abs(t), m - 1))


def tcav(
    model: Any, layer: str | torch.nn.Module, concept: torch.Tensor, random: torch.Tensor, inputs: torch.Tensor,
    target: int, *, n_repeats: int = 10, alpha: float = 0.05, batch_size: int = 32, seed: int = 0,
    progress: Progress | bool | None = None,
) -> TCAVResult:
    """TCAV score of class ``target`` for the concept at ``layer``, with the t-test against random CAVs.

    ``concept``: model-ready concept examples; ``random``: a pool of random examples from which each repeat
    draws two disjoint sets of ``min(len(concept), len(random) // 2)`` (one for the concept CAV, one for
    the random-vs-random null CAV); ``inputs``: examples of the class.
    """
    module, _ = resolve_model(model)
    concept, random, inputs = (_check_images(n, v) for n, v in
                               (("concept", concept), ("random", random), ("inputs", inputs)))
    if random.shape[0] < 4:
        raise InputError("random needs at least 4 examples (two disjoint random sets per repeat)")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 2:
        raise ParameterError(f"n_repeats must be an int >= 2 (the t-test needs repeats), got {n_repeats!r}")
    if isinstance(target, bool) or not isinstance(target, int):
        raise ParameterError(f"target must be a class index (int), got {target!r}")
    device = model_device(module)
    prog = as_progress(progress)
    with preserved(module), capture(module, [layer], stop_early=False) as cap:
        module.eval()
        a_concept = _layer_acts(module, cap, concept, batch_size, device)
        a_random = _layer_acts(module, cap, random, batch_size, device)
        grads = _class_grads(cap, layer, inputs, target, batch_size, device)
    sc, sr, cavs, accs, p = tcav_test(a_concept, a_random, grads, n_repeats=n_repeats, seed=seed, progress=prog)
    prog.close()
    name = layer if isinstance(layer, str) else type(layer).__name__
    return TCAVResult(
        score=float(sc.mean()), scores=sc, random_scores=sr, p_value=p, significant=p < alpha,
        cavs=cavs, accuracies=accs, layer=name, target=target,
    )
