"""Quadrature rules for path integrals over alpha in [0, 1] (Integrated Gradients and relatives).

Every rule returns ``(alphas, weights)`` as float64 tensors with ``sum_k w_k f(alpha_k) ~ int_0^1 f``:

- ``gauss_legendre``: Gauss-Legendre nodes mapped from [-1, 1] to [0, 1] (nodes ``(x + 1) / 2``, weights
  ``w / 2``); exact for polynomials of degree 2n - 1. Up to 100 nodes they are
  ``numpy.polynomial.legendre.leggauss(n)`` (as captum); above, numpy's eigenvalue method costs O(n^3)
  (80 s at 6,000 nodes, not cancellable), so the roots of P_n are found by Newton's iteration on the
  three-term recurrence, O(n^2) per step (0.35 s at 6,000 nodes; equal to leggauss within 1e-15 in the
  nodes and 1e-13 in the weights), checking ``check`` between steps.
- ``riemann_left`` / ``riemann_right`` / ``riemann_middle``: ``alpha_k = k/n``, ``(k+1)/n``,
  ``(k+1/2)/n``, weights ``1/n``.
- ``riemann_trapezoid``: the composite trapezoid rule on ``n`` equally spaced points including both ends:
  weights ``1/(n-1)``, halved at the ends, summing to 1. (captum 0.9 uses weights ``1/n`` with halved ends
  on the same points, which sum to ``(n-1)/n``; ours integrates constants exactly.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...core.errors import ParameterError

RULES = ("gauss_legendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def check_rule(rule: str) -> str:
    """``rule`` if it is a known quadrature rule, else a ParameterError listing the rules."""
    if rule not in RULES:
        raise ParameterError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    return rule


#: up to this many nodes Gauss-Legendre comes from numpy's leggauss (bitwise as captum)
LEGGAUSS_MAX = 100


def _legendre(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P_n(x), P_n'(x))`` by the three-term recurrence (Bonnet), for ``|x| < 1``."""
    p_prev, p = np.ones_like(x), x.copy()
    for k in range(2, n + 1):
        p_prev, p = p, ((2 * k - 1) * x * p - (k - 1) * p_prev) / k
    return p, n * (x * p - p_prev) / (x * x - 1.0)


def gauss_legendre(n: int, check: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point Gauss-Legendre rule on [-1, 1] (ascending nodes).

    Newton's iteration from Tricomi's initial guesses ``cos(pi (i - 1/4) / (n + 1/2))`` on the positive
    half (the rule is symmetric); weights ``2 / ((1 - x^2) P_n'(x)^2)``. ``check`` runs between Newton
    steps (a cancel check).
    """
    if n <= LEGGAUSS_MAX:
        return np.polynomial.legendre.leggauss(n)
    half = (n + 1) // 2
    x = np.cos(np.pi * (np.arange(1, half + 1) - 0.25) / (n + 0.5))  # descending, in (0, 1]
    for _ in range(100):
        if check is not None:
            check()
        p, dp = _legendre(x, n)
        step = p / dp
        x = x - step
        if np.max(np.abs(step)) < 1e-15:
            break
    _p, dp = _legendre(x, n)
    w = 2.0 / ((1.0 - x * x) * dp * dp)
    tail = slice(n % 2, None)  # an odd n has the node 0 once
    return np.concatenate([-x, x[::-1][tail]]), np.concatenate([w, w[::-1][tail]])


def quadrature(rule: str, n: int, check: Callable[[], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, weights)``, each ``(n,)`` float64, for ``rule`` with ``n`` evaluation points.

    ``check`` (e.g. a progress tracker's cancel check) runs during long setups.
    """
    check_rule(rule)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n_steps must be an integer >= 1 (or 'auto'); got {n!r}")
    n = int(n)
    if rule == "gauss_legendre":
        nodes, weights = gauss_legendre(n, check)
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
