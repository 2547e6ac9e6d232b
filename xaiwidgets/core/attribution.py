"""The result type every method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from .adapters import ImageClassifier

REDUCTIONS = ("sum", "mean", "abs_sum", "max_abs", "max", "l2", "none")


def reduce_channels(values: torch.Tensor, reduce: str) -> torch.Tensor:
    """Reduce ``(N, C, H, W)`` attributions over channels to ``(N, H, W)``.

    ``sum`` and ``mean`` keep the sign; ``abs_sum``, ``max_abs`` (Simonyan et al.'s max over channels of
    |grad|), and ``l2`` are non-negative; ``max`` is the signed maximum; ``none`` requires ``C == 1``.
    """
    if values.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) values, got shape {tuple(values.shape)}")
    if reduce == "sum":
        return values.sum(1)
    if reduce == "mean":
        return values.mean(1)
    if reduce == "abs_sum":
        return values.abs().sum(1)
    if reduce == "max_abs":
        return values.abs().amax(1)
    if reduce == "max":
        return values.amax(1)
    if reduce == "l2":
        return values.pow(2).sum(1).sqrt()
    if reduce == "none":
        if values.shape[1] != 1:
            raise ValueError("reduce='none' needs a single-channel map; choose 'sum', 'abs_sum', ...")
        return values[:, 0]
    raise ValueError(f"unknown reduce {reduce!r}; choose one of {', '.join(REDUCTIONS)}")


@dataclass
class Attribution:
    """An explanation of ``N`` inputs for ``N`` targets.

    ``values`` has the shape of the inputs for input-space methods; layer methods (the CAM family) give
    ``(N, 1, H, W)`` upsampled to the input size and keep the layer-resolution map in ``raw``.
    """

    values: torch.Tensor
    method: str
    target: torch.Tensor
    scores: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    raw: torch.Tensor | None = None
    frames: dict[str, Any] | None = None
    frame_kind: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    default_reduce: str = "sum"
    signed: bool = True
    classifier: ImageClassifier | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def heatmap(self, reduce: str | None = None) -> np.ndarray:
        """A ``(N, H, W)`` float32 numpy map for display; channels reduced by ``reduce``."""
        values = self.values.detach().float()
        if values.dim() == 4:
            values = reduce_channels(values, reduce or self.default_reduce)
        elif values.dim() == 3 and reduce not in (None, "none", "sum", "mean"):
            values = values.abs() if reduce in ("abs_sum", "max_abs", "l2") else values
        elif values.dim() != 3:
            raise ValueError(
                f"heatmap() needs image-shaped values (N, C, H, W) or (N, H, W); got {tuple(values.shape)}"
            )
        return values.cpu().numpy().astype(np.float32)

    def display_images(self) -> np.ndarray | None:
        """The inputs as uint8 ``(N, H, W, 3)`` images, if they are images."""
        if self.inputs is None or self.inputs.dim() != 4:
            return None
        if self.classifier is not None:
            return self.classifier.to_display(self.inputs)
        from .adapters import tensor_to_display

        return tensor_to_display(self.inputs)

    def show(self, index: int = 0, **view_options: Any):
        """The widget that shows input ``index`` of this result; ``xaiwidgets.widgets.views.view_for`` picks
        it (heatmap, scrubber, estimate, token, anchor or force-plot view)."""
        from ..widgets.views import view_for

        return view_for(self, index, **view_options)

    def to(self, device: str | torch.device) -> Attribution:
        """Move the tensors of this result to ``device``."""
        def move(t: Any) -> Any:
            return t.to(device) if isinstance(t, torch.Tensor) else t

        return Attribution(
            values=move(self.values), method=self.method, target=move(self.target),
            scores=move(self.scores), params=self.params, inputs=move(self.inputs), raw=move(self.raw),
            frames=self.frames, frame_kind=self.frame_kind, extras=self.extras,
            default_reduce=self.default_reduce, signed=self.signed, classifier=self.classifier,
        )
