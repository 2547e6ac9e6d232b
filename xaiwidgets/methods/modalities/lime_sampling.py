"""LIME's perturbation distributions for texts and table rows, as the lime package draws them.

- text (``LimeTextExplainer``): row 0 keeps every feature; each other row removes ``k`` features, ``k``
  uniform in ``1..M``, chosen uniformly. Distance: cosine distance to row 0, times 100.
- tabular, ``discretize=True`` (``LimeTabularExplainer``'s default, quartile discretizer): each feature's
  quartile bin is drawn from the background's bin frequencies, and a value inside the bin from a normal
  with the bin's background mean and standard deviation truncated to the bin's bounds. The surrogate sees
  the binary "same bin as the instance" matrix; distance: euclidean between binary rows.
- tabular, ``discretize=False``: rows ``N(0, 1) * std + instance`` (``sample_around_instance=True``) or
  ``+ mean``, with the background's mean and (population) standard deviation; the surrogate sees the
  standardised rows ``(x - mean) / std``; distance: euclidean between standardised rows.

Deliberate difference: for a bin whose bounds coincide (a constant run of ties) lime returns the
standardised bound (0) instead of the value; we return the value.
"""

from __future__ import annotations

import torch

from ...core.errors import ParameterError
from ..perturbation.lime import cosine_distances

__all__ = ["QuartileBins", "cosine_distances", "standardiser", "tabular_samples", "text_coalitions"]


def text_coalitions(m: int, n_samples: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``(n_samples, M)`` bool: row 0 all True, each other row with ``k ~ U{1..M}`` features removed."""
    n = n_samples - 1
    k = torch.randint(1, m + 1, (n,), generator=gen, device=device)
    ranks = torch.rand(n, m, generator=gen, device=device).argsort(1).argsort(1)
    z = ranks >= k[:, None]
    return torch.cat([torch.ones(1, m, dtype=torch.bool, device=device), z])


class QuartileBins:
    """lime's ``QuartileDiscretizer`` fitted on a background ``(B, d)``: per feature the distinct quartiles,
    bin index = number of quartiles below the value, per-bin bounds, mean, std and frequency."""

    def __init__(self, background: torch.Tensor) -> None:
        bg = background.to(torch.float64)
        q = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64, device=bg.device)
        quart = torch.quantile(bg, q, dim=0).T  # (d, 3), linear interpolation as numpy.percentile
        self.edges = [torch.unique(quart[f]) for f in range(bg.shape[1])]
        self.bins = self.discretize(bg)
        self.low: list[torch.Tensor] = []
        self.high: list[torch.Tensor] = []
        self.mean: list[torch.Tensor] = []
        self.std: list[torch.Tensor] = []
        self.freq: list[torch.Tensor] = []
        for f, e in enumerate(self.edges):
            k = e.numel() + 1
            col, b = bg[:, f], self.bins[:, f]
            self.low.append(torch.cat([col.min().reshape(1), e]))
            self.high.append(torch.cat([e, col.max().reshape(1)]))
            counts = torch.bincount(b, minlength=k).to(torch.float64)
            sums = torch.zeros(k, dtype=torch.float64, device=bg.device).index_add_(0, b, col)
            mean = torch.where(counts > 0, sums / counts.clamp_min(1), torch.zeros_like(sums))
            sq = torch.zeros(k, dtype=torch.float64, device=bg.device).index_add_(0, b, (col - mean[b]) ** 2)
            std = torch.where(counts > 0, (sq / counts.clamp_min(1)).sqrt(), torch.zeros_like(sq)) + 1e-11
            self.mean.append(mean)
            self.std.append(std)
            self.freq.append(counts / counts.sum())

    def discretize(self, x: torch.Tensor) -> torch.Tensor:
        """Bin indices ``(n, d)`` (``numpy.searchsorted(quartiles, value)``, side left)."""
        x = x.to(torch.float64)
        cols = [torch.searchsorted(e, x[:, f].contiguous()) for f, e in enumerate(self.edges)]
        return torch.stack(cols, 1)

    def sample_bins(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``(n, d)`` bins drawn from the background's bin frequencies, feature by feature."""
        cols = [torch.multinomial(p.cpu(), n, replacement=True, generator=gen) for p in self.freq]
        return torch.stack(cols, 1).to(self.bins.device)

    def undiscretize(self, bins: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A value inside each bin: truncated normal with the bin's mean and std, within its bounds."""
        cols = []
        for f in range(len(self.edges)):
            b = bins[:, f]
            lo, hi = self.low[f][b], self.high[f][b]
            mean, std = self.mean[f][b], self.std[f][b]
            value = truncated_normal((lo - mean) / std, (hi - mean) / std, gen) * std + mean
            cols.append(torch.where(hi > lo, value.clamp(lo, hi), lo))
        return torch.stack(cols, 1)


def truncated_normal(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Standard normal draws truncated to ``[a, b]`` by inverting the CDF (mirrored in the upper tail so
    the CDF differences keep their precision)."""
    flip = (a + b) > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    u = torch.rand(a.shape, generator=gen, dtype=torch.float64).to(a.device)
    pa, pb = torch.special.ndtr(lo), torch.special.ndtr(hi)
    z = torch.special.ndtri((pa + u * (pb - pa)).clamp(1e-300, 1 - 1e-16))
    z = torch.minimum(torch.maximum(z, lo), hi)
    return torch.where(flip, -z, z)


def standardiser(background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of the background (population std; 1 where a feature is constant, as scikit-learn)."""
    bg = background.to(torch.float64)
    mean = bg.mean(0)
    std = bg.std(0, unbiased=False)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def tabular_samples(
    x: torch.Tensor,
    background: torch.Tensor,
    n_samples: int,
    gen: torch.Generator,
    *,
    discretize: bool,
    sample_around_instance: bool,
    samples: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, data, distances)`` for one row ``x`` ``(1, d)``: the perturbed model inputs ``(n, d)`` (row
    0 is ``x``), the surrogate's design matrix and each row's distance to row 0.

    ``samples`` injects the perturbed rows (row 0 is replaced by ``x``), e.g. the lime package's own.
    """
    d = x.shape[1]
    xf = x.to(torch.float64)
    if samples is not None:
        rows = torch.as_tensor(samples, dtype=torch.float64, device=x.device)
        if rows.dim() != 2 or rows.shape[1] != d or rows.shape[0] < 2:
            raise ParameterError(f"samples must be perturbed rows (n >= 2, {d}); got shape {tuple(rows.shape)}")
        rows = rows.clone()
        rows[0] = xf[0]
    if discretize:
        bins = QuartileBins(background)
        if samples is None:
            drawn = bins.sample_bins(n_samples, gen)
            rows = bins.undiscretize(drawn, gen)
            rows[0] = xf[0]
        data = (bins.discretize(rows) == bins.discretize(xf)).to(torch.float64)
        data[0] = 1.0
    else:
        mean, std = standardiser(background)
        if samples is None:
            noise = torch.randn(n_samples, d, generator=gen, dtype=torch.float64).to(x.device)
            rows = noise * std + (xf[0] if sample_around_instance else mean)
            rows[0] = xf[0]
        data = (rows - mean) / std
    distances = (data - data[0]).norm(dim=1)
    return rows.to(x.dtype), data, distances
