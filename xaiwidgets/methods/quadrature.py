"""Quadrature rules for path integrals over alpha in [0, 1] (Integrated Gradients and relatives).

Every rule returns ``(alphas, weights)`` as float64 tensors with ``sum_k w_k f(alpha_k) ~ int_0^1 f``:

- ``gauss_legendre``: Gauss-Legendre nodes of ``numpy.polynomial.legendre.leggauss(n)`` mapped from
  [-1, 1] to [0, 1] (nodes ``(x + 1) / 2``, weights ``w / 2``); exact for polynomials of degree 2n - 1.
- ``riemann_left`` / ``riemann_right`` / ``riemann_middle``: ``alpha_k = k/n``, ``(k+1)/n``,
  ``(k+1/2)/n``, weights ``1/n``.
- ``riemann_trapezoid``: the composite trapezoid rule on ``n`` equally spaced points including both ends:
  weights ``1/(n-1)``, halved at the ends, summing to 1. (captum 0.9 uses weights ``1/n`` with halved ends
  on the same points, which sum to ``(n-1)/n``; ours integrates constants exactly.)
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ParameterError

RULES = ("gauss_legendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def check_rule(rule: str) -> str:
    """``rule`` if it is a known quadrature rule, else a ParameterError listing the rules."""
    if rule not in RULES:
        raise ParameterError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    return rule


def quadrature(rule: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, weights)``, each ``(n,)`` float64, for ``rule`` with ``n`` evaluation points."""
    check_rule(rule)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n_steps must be an integer >= 1 (or 'auto'); got {n!r}")
    n = int(n)
    if rule == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy((nodes + 1.0) / 2.0), torch.from_numpy(weights / 2.0)
    k = torch.arange(n, dtype=torch.float64)
    if rule == "riemann_trapezoid":
        if n < 2:
            raise ParameterError("rule='riemann_trapezoid' needs n_steps >= 2 (both ends of the path)")
        weights = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        weights[0] /= 2
        weights[-1] /= 2
        return k / (n - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (k + offset) / n, torch.full((n,), 1.0 / n, dtype=torch.float64)


def trapezoid_weights(alphas: torch.Tensor) -> torch.Tensor:
    """Composite trapezoid weights for sorted nodes ``alphas`` covering [0, 1] (any spacing)."""
    gaps = alphas[1:] - alphas[:-1]
    weights = torch.zeros_like(alphas)
    weights[:-1] += gaps / 2
    weights[1:] += gaps / 2
    return weights
