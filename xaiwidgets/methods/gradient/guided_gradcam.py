"""Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map (Selvaraju et al. 2017,
"Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", arXiv:1610.02391).

``values = guided_backprop(x) * up(gradcam(x, layer))`` with the Grad-CAM map at layer resolution (after
its ReLU) upsampled by ``interpolate_mode``: ``"bilinear"`` (default, align_corners=False, as our CAM
heatmaps) or ``"nearest"`` (captum's ``GuidedGradCam`` default), or any ``F.interpolate`` mode. ``raw`` is
the layer-resolution Grad-CAM map.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ...core.attribution import Attribution
from ...core.errors import ModelError
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores
from ..base import Method, require
from ..registry import get_method, register
from .guided import modified_gradient

MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def _gradcam_class() -> type[Method]:
    try:
        from .. import cam  # noqa: F401  (registers the CAM family)
    except ImportError as exc:  # pragma: no cover - the CAM package ships with xaiwidgets
        raise ModelError("guided_gradcam needs the CAM family (xaiwidgets.methods.cam)") from exc
    return get_method("gradcam")


@register
class GuidedGradCAM(Method):
    """Guided backpropagation masked by the Grad-CAM map of ``layer`` (default: last spatial layer)."""

    name = "guided_gradcam"
    family = "gradient"
    tabular_strategy = None  # images only
    reference = "Selvaraju et al. 2017, arXiv:1610.02391"
    defaults: ClassVar[dict[str, Any]] = {"layer": None, "interpolate_mode": "bilinear"}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        require(
            params["interpolate_mode"] in MODES,
            f"interpolate_mode must be one of {', '.join(MODES)}; got {params['interpolate_mode']!r}",
        )
        require(inputs.dim() == 4, f"guided_gradcam needs images (N, C, H, W); got {tuple(inputs.shape)}")

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        grad, scores, resolved = modified_gradient(self.model, inputs, target, "guided", self.name)
        progress.update(1, 2, self.name)
        cam = _gradcam_class()(self.model).attribute(
            inputs, resolved, layer=params["layer"], relu=True, progress=False
        )
        raw = cam.raw if cam.raw is not None else cam.values
        mode = params["interpolate_mode"]
        corners = False if mode in ("bilinear", "bicubic") else None
        up = F.interpolate(raw, size=inputs.shape[-2:], mode=mode, align_corners=corners)
        progress.update(2, 2, self.name)
        return Attribution(
            values=(grad * up).detach(), method=self.name, target=resolved,
            scores=gather_scores(scores, resolved), raw=raw.detach(),
            extras={"layer": cam.extras.get("layer", params["layer"])},
        )
