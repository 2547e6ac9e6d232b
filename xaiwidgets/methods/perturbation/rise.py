"""RISE (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", arXiv:1806.07421).

``n_masks`` random binary grids (each cell kept with probability ``p``) of cells of ``cell_size`` pixels
are upsampled bilinearly to one cell larger than the image and cropped at a random shift, giving smooth
masks ``M_i``. The saliency is ``sum_i f(x * M_i) M_i / (n_masks * p)``. Masks are generated on the
model's device from a seeded generator; the accumulation runs over fixed blocks of masks, so the result
does not depend on ``batch_size``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...core.attribution import Attribution
from ...core.errors import Cancelled
from ...core.progress import Progress
from ...core.targets import TargetLike
from ..base import Method, require
from ..baselines import resolve_baseline
from ..registry import register
from ._common import check_positive_int, check_seed, generator, scores_and_target
from .features import target_values
from .streaming import Stream

_BLOCK = 32  # masks per accumulation step (fixed: results independent of batch_size)


class MaskBank:
    """Seeded low-resolution grids and shifts; :meth:`masks` upsamples any index range on demand."""

    def __init__(self, n: int, size: tuple[int, int], cell: int, p: float, gen: torch.Generator, device) -> None:
        self.size = size
        self.cell = cell
        gh, gw = math.ceil(size[0] / cell), math.ceil(size[1] / cell)
        self.grids = (torch.rand(n, 1, gh, gw, generator=gen, device=device) < p).float()
        self.shifts = torch.randint(0, cell, (n, 2), generator=gen, device=device)

    def masks(self, a: int, b: int) -> torch.Tensor:
        """Masks ``a..b-1`` as ``(b - a, 1, H, W)``."""
        grids = self.grids[a:b]
        gh, gw = grids.shape[-2:]
        up = F.interpolate(
            grids, size=((gh + 1) * self.cell, (gw + 1) * self.cell), mode="bilinear", align_corners=False
        )
        h, w = self.size
        rows = self.shifts[a:b, 0, None] + torch.arange(h, device=grids.device)[None]  # (B, H)
        cols = self.shifts[a:b, 1, None] + torch.arange(w, device=grids.device)[None]  # (B, W)
        idx = rows[:, :, None] * up.shape[-1] + cols[:, None, :]
        return up.flatten(1).gather(1, idx.flatten(1)).view(b - a, 1, h, w)


@register
class Rise(Method):
    """RISE saliency from random smooth masks; see the module docstring."""

    name = "rise"
    family = "perturbation"
    tabular_strategy = None  # images only
    reference = "Petsiuk, Das & Saenko 2018, arXiv:1806.07421"
    default_reduce = "mean"
    defaults: ClassVar[dict[str, Any]] = {
        "n_masks": 2000,
        "p": 0.5,
        "cell_size": None,
        "baseline": 0.0,
        "batch_size": 64,
        "seed": 0,
        "stream_every": 0,
        "callback": None,
    }

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        require(inputs.dim() == 4, f"rise masks images (N, C, H, W); got inputs of shape {tuple(inputs.shape)}")
        check_positive_int(params, "n_masks")
        check_positive_int(params, "batch_size")
        check_positive_int(params, "stream_every", 0)
        check_seed(params)
        p = params["p"]
        require(isinstance(p, (int, float)) and 0 < p <= 1, f"p (keep probability) must be in (0, 1], got {p!r}")
        cell = params["cell_size"]
        require(
            cell is None or (isinstance(cell, int) and 1 <= cell <= max(inputs.shape[-2:])),
            f"cell_size must be None or an integer number of pixels in 1..{max(inputs.shape[-2:])}, got {cell!r}",
        )

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        scores, resolved = scores_and_target(self.model, inputs, target)
        baseline = resolve_baseline(params["baseline"], inputs, self.classifier, seed=params["seed"] or 0)
        h, w = inputs.shape[-2:]
        cell = params["cell_size"] or max(1, math.ceil(min(h, w) / 7))
        n, p, batch = params["n_masks"], float(params["p"]), params["batch_size"]
        stream = Stream(params["stream_every"], params["callback"])
        bank = MaskBank(n, (h, w), cell, p, generator(params["seed"], inputs.device), inputs.device)
        maps = torch.zeros(inputs.shape[0], 1, h, w, dtype=torch.float64, device=inputs.device)
        for i in range(inputs.shape[0]):
            x, b = inputs[i : i + 1], baseline[i : i + 1]
            f = torch.empty(n, dtype=torch.float64, device=inputs.device)
            acc = torch.zeros(1, h, w, dtype=torch.float64, device=inputs.device)
            acc2 = torch.zeros_like(acc)
            accumulated = 0
            batches = 0
            for a in range(0, n, batch):
                e = min(n, a + batch)
                m = bank.masks(a, e).to(inputs.dtype)
                f[a:e] = target_values(self.model, b + m * (x - b), int(resolved[i]), batch).to(torch.float64)
                batches += 1
                while accumulated + _BLOCK <= e or (e == n and accumulated < n):
                    stop = min(n, accumulated + _BLOCK)
                    contrib = f[accumulated:stop, None, None, None] * bank.masks(accumulated, stop).double() / p
                    acc += contrib.sum(0)
                    acc2 += contrib.pow(2).sum(0)
                    accumulated = stop
                if stream.due(batches) and accumulated > 1:
                    stream.record_map(i, *self._estimate(acc, acc2, accumulated), accumulated)
                try:
                    progress.update(i * n + e, inputs.shape[0] * n, self.name)
                except Cancelled as exc:
                    maps[i] = acc / max(1, accumulated)
                    partial = Attribution(
                        maps.to(inputs.dtype).expand_as(inputs).clone(),
                        self.name,
                        resolved,
                        scores,
                        extras={
                            "n_masks_done": i * n + accumulated,
                            "cancelled": True,
                            "complete": [k < i for k in range(inputs.shape[0])],
                            "n_samples_done": [n if k < i else accumulated if k == i else 0
                                               for k in range(inputs.shape[0])],
                        },
                    )
                    raise Cancelled(str(exc), partial=partial) from exc
            maps[i] = acc / n
        frames = stream.frames()
        return Attribution(
            values=maps.to(inputs.dtype).expand_as(inputs).clone(),
            method=self.name,
            target=resolved,
            scores=scores,
            raw=maps.to(inputs.dtype),
            extras={"cell_size": cell, "n_masks": n},
            frames=frames,
            frame_kind="estimate" if frames else None,
        )

    @staticmethod
    def _estimate(acc: torch.Tensor, acc2: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        mean = acc / k
        var = (acc2 / k - mean**2).clamp_min(0) * k / (k - 1)
        return mean[0], (var / k).sqrt()[0]
