"""How similar two batches of explanation maps are, per sample: the measures of the sanity checks.

Adebayo et al. 2018 ("Sanity Checks for Saliency Maps", NeurIPS, arXiv:1810.03292, sec. 3) compare the
maps of a trained and a randomised model by Spearman rank correlation (of absolute and of signed maps),
the structural similarity index (SSIM) and the Pearson correlation of histograms of oriented gradients
(HOG). All are computed here in torch, in float64, batched over samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.errors import InputError, ParameterError


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.as_tensor(a).detach().double().cpu()
    b = torch.as_tensor(b).detach().double().cpu()
    if a.shape != b.shape:
        raise InputError(f"the two batches of maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() < 2:
        raise InputError(f"maps are batches (N, ...); got shape {tuple(a.shape)}")
    return a, b


def rank(x: torch.Tensor) -> torch.Tensor:
    """Ranks ``1..d`` of each row of ``(N, d)``, ties given their average rank (as ``scipy.stats.rankdata``)."""
    n, d = x.shape
    order = torch.argsort(x, dim=1, stable=True)
    sorted_x = x.gather(1, order)
    # start of each run of equal values, and the average rank of the run
    new_run = torch.ones(n, d, dtype=torch.bool)
    new_run[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    run_id = new_run.long().cumsum(1) - 1  # (N, d): run index of each sorted position
    positions = torch.arange(1, d + 1, dtype=torch.float64).expand(n, d)
    sums = torch.zeros(n, d, dtype=torch.float64).scatter_add_(1, run_id, positions)
    counts = torch.zeros(n, d, dtype=torch.float64).scatter_add_(1, run_id, torch.ones(n, d, dtype=torch.float64))
    average = (sums / counts.clamp_min(1)).gather(1, run_id)
    return torch.empty(n, d, dtype=torch.float64).scatter_(1, order, average)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per sample of flattened ``(N, ...)`` batches; NaN where a row is constant."""
    a, b = _pair(a, b)
    a, b = a.flatten(1), b.flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denominator = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denominator > 0, (a * b).sum(1) / denominator.clamp_min(1e-300), math.nan)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per sample of flattened ``(N, ...)`` batches (Pearson of average ranks);
    NaN where a map is constant."""
    a, b = _pair(a, b)
    return pearson(rank(a.flatten(1)), rank(b.flatten(1)))


def _gaussian(sigma: float, truncate: float = 3.5) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of ``(N, H, W)`` maps (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality
    assessment: from error visibility to structural similarity", IEEE TIP 13(4)).

    Gaussian window of ``sigma`` (1.5, truncated at 3.5 sigma: 11 x 11), ``K1 = 0.01``, ``K2 = 0.03``,
    population statistics, averaged over the positions where the window fits in the map (as
    ``skimage.metrics.structural_similarity(gaussian_weights=True, use_sample_covariance=False)``).
    """
    a, b = _pair(a, b)
    if a.dim() == 4 and a.shape[1] == 1:
        a, b = a[:, 0], b[:, 0]
    if a.dim() != 3:
        raise InputError(f"ssim takes (N, H, W) maps; got shape {tuple(a.shape)}")
    if data_range <= 0:
        raise ParameterError(f"data_range must be > 0, got {data_range!r}")
    k = _gaussian(sigma)
    if a.shape[-1] < k.numel() or a.shape[-2] < k.numel():
        raise InputError(f"ssim needs maps of at least {k.numel()} x {k.numel()} pixels; got {tuple(a.shape[1:])}")

    def blur(t: torch.Tensor) -> torch.Tensor:  # valid part of the separable Gaussian filter
        t = F.conv2d(t.unsqueeze(1), k.view(1, 1, -1, 1))
        return F.conv2d(t, k.view(1, 1, 1, -1))[:, 0]

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def hog(maps: torch.Tensor, *, orientations: int = 9, cell: int = 8, block: int = 3, eps: float = 1e-5) -> torch.Tensor:
    """Histograms of oriented gradients of ``(N, H, W)`` maps, ``(N, features)`` (Dalal & Triggs 2005).

    Central differences (zero on the border rows and columns), unsigned orientations in ``orientations``
    equal bins over [0, 180) degrees, the magnitudes summed per ``cell x cell`` cell, blocks of ``block x
    block`` cells normalised with L2-Hys (clip at 0.2): the definition of ``skimage.feature.hog``.
    """
    m = torch.as_tensor(maps).detach().double().cpu()
    if m.dim() == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.dim() != 3:
        raise InputError(f"hog takes (N, H, W) maps; got shape {tuple(m.shape)}")
    n, h, w = m.shape
    cells_y, cells_x = h // cell, w // cell
    if cells_y < block or cells_x < block:
        raise InputError(f"maps of {h} x {w} are too small for {block} x {block} blocks of {cell}-pixel cells")
    g_row = torch.zeros_like(m)
    g_col = torch.zeros_like(m)
    g_row[:, 1:-1, :] = m[:, 2:, :] - m[:, :-2, :]
    g_col[:, :, 1:-1] = m[:, :, 2:] - m[:, :, :-2]
    magnitude = torch.hypot(g_row, g_col)
    angle = torch.rad2deg(torch.atan2(g_row, g_col)) % 180.0
    bins = (angle / (180.0 / orientations)).floor().long().clamp(0, orientations - 1)
    # only the pixels of whole cells count
    magnitude = magnitude[:, : cells_y * cell, : cells_x * cell]
    bins = bins[:, : cells_y * cell, : cells_x * cell]
    cell_of = (torch.arange(cells_y * cell) // cell).view(-1, 1) * cells_x + torch.arange(cells_x * cell) // cell
    index = (cell_of.view(1, -1) * orientations + bins.flatten(1)).long()
    hist = torch.zeros(n, cells_y * cells_x * orientations, dtype=torch.float64)
    hist.scatter_add_(1, index, magnitude.flatten(1))
    hist = hist.view(n, cells_y, cells_x, orientations)
    blocks = hist.unfold(1, block, 1).unfold(2, block, 1)  # (N, by, bx, orientations, block, block)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3).reshape(n, cells_y - block + 1, cells_x - block + 1, -1)
    blocks = blocks / torch.sqrt((blocks**2).sum(-1, keepdim=True) + eps**2)
    blocks = blocks.clamp(max=0.2)
    blocks = blocks / torch.sqrt((blocks**2).sum(-1, keepdim=True) + eps**2)
    return blocks.reshape(n, -1)


def hog_similarity(a: torch.Tensor, b: torch.Tensor, **hog_params: int) -> torch.Tensor:
    """Pearson correlation of the HOG features of two batches of ``(N, H, W)`` maps (Adebayo et al. 2018).
    The cell size shrinks for maps smaller than 24 pixels so that at least 3 x 3 cells fit."""
    a, b = _pair(a, b)
    if a.dim() == 4 and a.shape[1] == 1:
        a, b = a[:, 0], b[:, 0]
    side = min(a.shape[-2:])
    params = {"cell": max(2, min(8, side // 3)), **hog_params}
    return pearson(hog(a, **params), hog(b, **params))


__all__ = ["hog", "hog_similarity", "pearson", "rank", "spearman", "ssim"]
