"""Streaming estimates: sampling methods report their running estimate and its standard error.

Every ``stream_every`` model batches a sampling method records a frame (the current per-feature estimate
spread over the input's feature map, its per-feature standard error, and the number of samples so far)
and calls ``callback(estimate, stderr)`` if one is given. The frames end up in
``Attribution.frames`` with ``frame_kind="estimate"``; the widget draws the heatmap refining and the
error band shrinking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .features import Masker


@dataclass
class Estimate:
    """A running estimate for input ``index``: per-feature values and standard errors, and as maps."""

    index: int
    n_samples: int
    feature_values: torch.Tensor
    feature_stderr: torch.Tensor
    values: torch.Tensor
    stderr: torch.Tensor


class Stream:
    """Collects frames every ``every`` batches (0 or None: never) and forwards them to ``callback``."""

    def __init__(self, every: int | None, callback: Callable[[Estimate, torch.Tensor], None] | None) -> None:
        self.every = int(every or 0)
        self.callback = callback
        self._frames: dict[int, list[Estimate]] = {}

    @property
    def active(self) -> bool:
        return self.every > 0

    def due(self, batches_done: int) -> bool:
        return self.active and batches_done > 0 and batches_done % self.every == 0

    def record(
        self, index: int, masker: Masker, phi: torch.Tensor, stderr: torch.Tensor | None, n_samples: int
    ) -> None:
        stderr = torch.full_like(phi, float("nan")) if stderr is None else stderr
        est = Estimate(
            index=index,
            n_samples=int(n_samples),
            feature_values=phi.detach().clone(),
            feature_stderr=stderr.detach().clone(),
            values=masker.to_feature_map(phi.detach()),
            stderr=masker.to_feature_map(stderr.detach()),
        )
        self._frames.setdefault(index, []).append(est)
        if self.callback is not None:
            self.callback(est, est.stderr)

    def record_map(self, index: int, values: torch.Tensor, stderr: torch.Tensor, n_samples: int) -> None:
        """A frame of a method whose estimate is already a map (RISE)."""
        est = Estimate(index, int(n_samples), values.reshape(-1), stderr.reshape(-1), values, stderr)
        self._frames.setdefault(index, []).append(est)
        if self.callback is not None:
            self.callback(est, est.stderr)

    def frames(self) -> dict[str, object] | None:
        """``{"values": (F, N, ...), "stderr": (F, N, ...), "n_samples": (F,)}`` or None if nothing."""
        if not self._frames:
            return None
        per_input = [self._frames[i] for i in sorted(self._frames)]
        n_frames = min(len(f) for f in per_input)
        shapes = {tuple(f[0].values.shape) for f in per_input}
        if n_frames == 0 or len(shapes) != 1:
            return {"per_input": per_input}
        values = torch.stack([torch.stack([f[k].values for f in per_input]) for k in range(n_frames)])
        stderr = torch.stack([torch.stack([f[k].stderr for f in per_input]) for k in range(n_frames)])
        n = torch.tensor([per_input[0][k].n_samples for k in range(n_frames)])
        return {"values": values.cpu(), "stderr": stderr.cpu(), "n_samples": n}
