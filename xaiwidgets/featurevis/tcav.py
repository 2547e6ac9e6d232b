"""Testing with Concept Activation Vectors (TCAV).

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas & Sayres 2018, "Interpretability Beyond Feature
Attribution: Quantitative Testing with Concept Activation Vectors (TCAV)", arXiv:1711.11279.
A CAV is the normal of a linear classifier (logistic regression) separating a layer's activations of
concept examples from those of random examples, pointing to the concept. The TCAV score of a class is
the fraction of its inputs whose class logit increases along the CAV (positive directional derivative
``grad_act(logit) · cav``). Repeated against ``n_repeats`` random sets and compared, with a two-sided
t-test, to the scores of random-vs-random CAVs (the null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
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


def _layer_acts(module, cap, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for a, b in chunk_ranges(x.shape[0], batch_size):
            cap.run(x[a:b].to(device))
            out.append(next(iter(cap.acts.values())).flatten(1).float())
    return torch.cat(out)


def fit_cav(pos: torch.Tensor, neg: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, float]:
    """Unit normal of a logistic-regression boundary from ``neg`` to ``pos`` and its training accuracy."""
    from sklearn.linear_model import LogisticRegression

    x = torch.cat([pos, neg]).double().cpu().numpy()
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, y)
    w = torch.as_tensor(clf.coef_[0], dtype=torch.float32)
    return w / w.norm().clamp_min(1e-12), float(clf.score(x, y))


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
    from scipy.stats import ttest_ind

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
        grads = []
        for a, b in chunk_ranges(inputs.shape[0], batch_size):
            x = inputs[a:b].to(device).requires_grad_(True)
            scores = scores_from_output(cap.run(x), b - a)
            if not 0 <= target < scores.shape[1]:
                raise ParameterError(f"target {target} is out of range: the model has {scores.shape[1]} outputs")
            (g,) = torch.autograd.grad(scores[:, target].sum(), cap.acts[layer])
            grads.append(g.flatten(1).float())
        grads = torch.cat(grads).cpu()
    gen = torch.Generator().manual_seed(seed)
    m = min(concept.shape[0], random.shape[0] // 2)
    scores_c, scores_r, cavs, accs = [], [], [], []
    for r in range(n_repeats):
        perm = torch.randperm(random.shape[0], generator=gen)
        set_a, set_b = a_random[perm[:m]], a_random[perm[m : 2 * m]]
        cav, acc = fit_cav(a_concept, set_a, seed + r)
        null_cav, _ = fit_cav(set_b, set_a, seed + r)
        scores_c.append(float((grads @ cav > 0).float().mean()))
        scores_r.append(float((grads @ null_cav > 0).float().mean()))
        cavs.append(cav)
        accs.append(acc)
        prog.update(r + 1, n_repeats, "tcav")
    prog.close()
    sc, sr = torch.tensor(scores_c), torch.tensor(scores_r)
    if torch.equal(sc, sr) or (sc.std() == 0 and sr.std() == 0 and sc[0] == sr[0]):
        p = 1.0
    else:
        p = float(ttest_ind(scores_c, scores_r).pvalue)
    name = layer if isinstance(layer, str) else type(layer).__name__
    return TCAVResult(
        score=float(sc.mean()), scores=sc, random_scores=sr, p_value=p, significant=p < alpha,
        cavs=torch.stack(cavs), accuracies=torch.tensor(accs), layer=name, target=target,
    )
