"""Complexity of an explanation: how concentrated its attribution mass is.

- ``sparseness``: the Gini index of the absolute attributions (Chalasani, Chen, Chowdhury, Wu & Jha 2020,
  "Concise Explanations of Neural Networks using Adversarial Training", ICML, arXiv:1810.06583): 0 when
  every feature carries the same mass, ``1 - 1/d`` when one feature of ``d`` carries it all. Higher is
  sparser.
- ``effective_complexity``: the number of features whose absolute attribution, divided by the largest one,
  exceeds ``eps`` (Nguyen & Martinez 2020, "On quantitative aspects of model interpretability",
  arXiv:2007.07584). Lower is simpler.

Both take an Attribution or a tensor; image channels are reduced first (``reduce``, default the
Attribution's own reduction, ``"sum"`` for tensors), other shapes are flattened per sample.
"""

from __future__ import annotations

import torch

from ..core.errors import ParameterError
from ._maps import ExplanationLike, as_maps, flat


def sparseness(explanation: ExplanationLike, *, reduce: str | None = None) -> torch.Tensor:
    """Gini index of ``|a|`` per sample, ``(N,)`` float64; 0 for an all-zero explanation.

    ``G = sum_i (2 i - d - 1) a_(i) / (d sum_i a_(i))`` with ``a_(1) <= ... <= a_(d)`` sorted ascending
    (Chalasani et al. 2020, eq. for the Gini index).
    """
    a = flat(as_maps(explanation, reduce)).abs().double()
    d = a.shape[1]
    a, _ = a.sort(dim=1)
    i = torch.arange(1, d + 1, dtype=a.dtype, device=a.device)
    total = a.sum(1)
    numerator = ((2 * i - d - 1) * a).sum(1)
    return torch.where(total > 0, numerator / (d * total.clamp_min(torch.finfo(a.dtype).tiny)), 0.0).cpu()


def effective_complexity(
    explanation: ExplanationLike, *, eps: float = 1e-5, reduce: str | None = None, fraction: bool = False
) -> torch.Tensor:
    """Number of features with ``|a_i| / max_j |a_j| > eps`` per sample, ``(N,)`` (a fraction of all features
    with ``fraction=True``); 0 for an all-zero explanation."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
        raise ParameterError(f"eps must be a threshold in [0, 1) relative to the largest attribution, got {eps!r}")
    a = flat(as_maps(explanation, reduce)).abs().double()
    peak = a.amax(1, keepdim=True)
    count = torch.where(peak > 0, a / peak.clamp_min(torch.finfo(a.dtype).tiny) > eps, False).sum(1)
    return (count.double() / a.shape[1] if fraction else count).cpu()
