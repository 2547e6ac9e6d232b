"""Shapley values of cooperative games, independent of any model: exact enumeration and the KernelSHAP regression.

A game on ``M`` players is a value function over coalitions. Coalitions are rows of a ``(S, M)`` boolean
matrix; row ``k`` of :func:`all_coalitions` holds the bits of the integer ``k`` (player ``i`` is bit ``i``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ...core.errors import ParameterError

MAX_EXACT_PLAYERS = 16


def all_coalitions(m: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every coalition of ``m`` players, ``(2**m, m)`` bool; row ``k`` is the binary expansion of ``k``."""
    k = torch.arange(2**m, device=device)
    bits = torch.arange(m, device=device)
    return (k[:, None] >> bits[None, :]) & 1 == 1


def shapley_weights(m: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``w[s] = s! (m - s - 1)! / m!`` for ``s = 0..m-1``: the weight of a coalition of size ``s``."""
    return torch.tensor(
        [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)], dtype=dtype
    )


def shapley_from_table(v: torch.Tensor) -> torch.Tensor:
    """Exact Shapley values from the values of all ``2**M`` coalitions (indexed as :func:`all_coalitions`).

    phi_i = sum over S not containing i of |S|! (M-|S|-1)! / M! * (v(S + i) - v(S)).
    """
    v = v.to(torch.float64)
    m = round(math.log2(v.shape[0]))
    if 2**m != v.shape[0]:
        raise ParameterError(f"a table of all coalitions has 2**M entries, got {v.shape[0]}")
    k = torch.arange(2**m, device=v.device)
    size = torch.zeros_like(k)
    for i in range(m):
        size += (k >> i) & 1
    w = shapley_weights(max(m, 1)).to(v.device)
    phi = torch.empty(m, dtype=torch.float64, device=v.device)
    for i in range(m):
        without = k[((k >> i) & 1) == 0]
        phi[i] = (w[size[without]] * (v[without | (1 << i)] - v[without])).sum()
    return phi


def exact_shapley_values(
    value_fn: Callable[..., object], m: int, *, batched: bool = True, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Exact Shapley values of a game on ``m <= 16`` players, as float64 ``(m,)``.

    ``value_fn`` takes a ``(S, m)`` bool tensor of coalitions and returns ``(S,)`` values (``batched``), or,
    with ``batched=False``, a ``frozenset`` of player indices and returns a number, e.g. the 2-player game
    ``{(): 0, (0,): 1, (1,): 2, (0, 1): 4}`` gives ``(1.5, 2.5)``.
    """
    if not isinstance(m, int) or m < 1:
        raise ParameterError(f"a game needs at least one player, got m={m!r}")
    if m > MAX_EXACT_PLAYERS:
        raise ParameterError(
            f"exact Shapley values enumerate 2**M coalitions; M={m} > {MAX_EXACT_PLAYERS} is too many. Use "
            "fewer features (coarser segments) or a sampling method: 'kernel_shap' or 'shapley_sampling'"
        )
    z = all_coalitions(m, device)
    if batched:
        v = torch.as_tensor(value_fn(z), dtype=torch.float64, device=device).reshape(-1)
    else:
        v = torch.tensor(
            [float(value_fn(frozenset(torch.nonzero(row).flatten().tolist()))) for row in z.cpu()],
            dtype=torch.float64,
            device=device,
        )
    if v.shape[0] != z.shape[0]:
        raise ParameterError(f"value_fn returned {v.shape[0]} values for {z.shape[0]} coalitions")
    return shapley_from_table(v)


def game_from_dict(values: dict[Iterable[int], float], m: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batched value function from ``{coalition: value}`` (missing coalitions are worth 0)."""
    table = torch.zeros(2**m, dtype=torch.float64)
    for players, value in values.items():
        table[sum(1 << int(p) for p in players)] = float(value)

    def value_fn(z: torch.Tensor) -> torch.Tensor:
        idx = (z.long().cpu() << torch.arange(m)).sum(1)
        return table[idx]

    return value_fn


def shapley_kernel(m: int, sizes: torch.Tensor) -> torch.Tensor:
    """The Shapley kernel ``(M-1) / (C(M, s) s (M-s))`` for coalition sizes ``0 < s < M`` (float64)."""
    s = sizes.to(torch.float64)
    log_binom = torch.lgamma(torch.tensor(m + 1.0, dtype=torch.float64)) - torch.lgamma(s + 1) - torch.lgamma(m - s + 1)
    return (m - 1) / (torch.exp(log_binom) * s * (m - s))


def spd_inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive semi-definite ``a``: Cholesky when ``a`` is well conditioned, else the
    pseudo-inverse (rank-deficient designs: features that were never varied independently).

    Cholesky costs a few LAPACK calls; ``pinv`` (an eigendecomposition) opens many small parallel regions,
    which on a busy CPU took 50-100 ms for 50 features against 0.05 ms (identical results when ``a`` is
    well conditioned: both are the exact inverse up to rounding).
    """
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        diag = chol.diagonal()
        # cond(a) ~ (max / min of diag(L))**2: keep Cholesky up to cond ~1e12, where pinv truncates nothing
        if bool(diag.min() > diag.max() * 1e-6):
            return torch.cholesky_inverse(chol)
    return torch.linalg.pinv(a, hermitian=True)


def constrained_solve(a: torch.Tensor, b: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin phi' A phi - 2 b' phi`` subject to ``sum(phi) = total``: ``(phi, C)`` with ``phi = C b + d``.

    ``C = A^-1 - A^-1 1 1' A^-1 / (1' A^-1 1)`` is the linear map from ``b`` (used for standard errors).
    Equivalent to eliminating one variable with the efficiency constraint, as shap does.
    """
    ainv = spd_inverse(a)
    ainv_1 = ainv.sum(1)  # A^-1 1 (A^-1 is symmetric)
    denom = ainv_1.sum()
    c = ainv - torch.outer(ainv_1, ainv_1) / denom
    phi = c @ b + ainv_1 * (total / denom)
    return phi, c


def kernel_shap_regression(
    z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, v_empty: torch.Tensor, v_full: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least squares of ``y - v_empty`` on coalitions ``z`` with ``sum(phi) = v_full - v_empty``.

    Returns ``(phi, C)`` (see :func:`constrained_solve`); ``weights`` are normalised to sum 1.
    """
    zf = z.to(torch.float64)
    w = (weights / weights.sum()).to(torch.float64)
    a = zf.T @ (zf * w[:, None])
    b = zf.T @ (w * (y.to(torch.float64) - v_empty))
    return constrained_solve(a, b, (v_full - v_empty).to(torch.float64))
