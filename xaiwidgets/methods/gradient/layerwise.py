"""Layer-wise input x gradient (CAT): input x gradient at every layer, upsampled and averaged.

For each chosen layer ``l`` with output ``A_l`` (N, C, h, w): ``M_l = sum_c A_l * dS/dA_l`` (layer-wise
gradient x activation, Shrikumar et al. 2016, arXiv:1605.01713; captum's ``LayerGradientXActivation``),
upsampled bilinearly (align_corners=False) to the input size; the result is the mean of ``M_l`` over the
layers, as the multi-layer fusion of LayerCAM (Jiang et al. 2021, IEEE TIP, doi:10.1109/TIP.2021.3089943).
One forward and one backward pass for all layers.

``layers``: None (every ``nn.Conv2d`` called exactly once per forward, in execution order), or a list of
dotted names / modules. ``skip_first``: drop the first k of those layers (early layers give edge-like
maps). ``return_layers=True`` keeps the per-layer maps in ``extras["layer_maps"]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...core.attribution import Attribution
from ...core.errors import LayerError, ModelError
from ...core.layers import get_layer, layer_name
from ...core.progress import Progress
from ...core.state import Hooks
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores
from ..base import Method, require
from ..registry import register


@register
class LayerwiseInputXGradient(Method):
    """Mean over layers of the upsampled channel-summed activation x gradient maps."""

    name = "layerwise_input_x_gradient"
    family = "gradient"
    tabular_strategy = None  # images only
    reference = "Shrikumar et al. 2016, arXiv:1605.01713; Jiang et al. 2021, doi:10.1109/TIP.2021.3089943"
    defaults: ClassVar[dict[str, Any]] = {"layers": None, "skip_first": 0, "return_layers": False}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        k = params["skip_first"]
        require(isinstance(k, int) and not isinstance(k, bool) and k >= 0, f"skip_first must be an int >= 0; got {k!r}")
        require(inputs.dim() == 4, f"{self.name} needs images (N, C, H, W); got {tuple(inputs.shape)}")
        if not isinstance(self.model, nn.Module):
            raise ModelError(f"{self.name} hooks layers and needs a torch.nn.Module")

    def _modules(self, params: dict[str, Any]) -> list[nn.Module]:
        if params["layers"] is None:
            return [m for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        layers = params["layers"]
        if isinstance(layers, (str, nn.Module)):
            layers = [layers]
        return [get_layer(self.model, layer) for layer in layers]

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        modules = self._modules(params)
        captured: list[tuple[nn.Module, torch.Tensor]] = []

        def hook(module: nn.Module, _inp: object, out: object) -> object:
            if isinstance(out, torch.Tensor) and out.dim() == 4 and out.requires_grad:
                captured.append((module, out))
                return out.clone()  # later in-place ops (ReLU(inplace=True)) must not change what we keep
            return None

        x = inputs.detach().requires_grad_(True)
        with Hooks() as hooks, torch.enable_grad():
            for module in modules:
                hooks.add(module.register_forward_hook(hook))
            scores = forward_scores(self.model, x)
            hooks.remove()
            resolved = resolve_target(target, scores)
            counts: dict[int, int] = {}
            for module, _ in captured:
                counts[id(module)] = counts.get(id(module), 0) + 1
            explicit = params["layers"] is not None
            if explicit and any(c > 1 for c in counts.values()):
                raise LayerError("a chosen layer is called more than once per forward; choose layers used once")
            kept = [(m, a) for m, a in captured if counts[id(m)] == 1][params["skip_first"]:]
            if not kept:
                raise LayerError(
                    f"no layer left to explain (found {len(captured)} spatial layer outputs, skip_first="
                    f"{params['skip_first']}); pass layers=[...] with dotted names of layers with (N, C, h, w) outputs"
                )
            selected = gather_scores(scores, resolved)
            if not selected.requires_grad:
                raise ModelError(
                    "the model's scores do not depend differentiably on its layers (is there a torch.no_grad(), "
                    ".detach(), argmax or a non-torch step in forward?); use a perturbation method such as "
                    "'occlusion' instead"
                )
            grads = torch.autograd.grad(selected.sum(), [a for _, a in kept], allow_unused=True)
        size = inputs.shape[-2:]
        maps = []
        for (_module, act), grad in zip(kept, grads):
            m = (act.detach() * grad).sum(1, keepdim=True) if grad is not None else torch.zeros_like(act[:, :1])
            maps.append(F.interpolate(m, size=size, mode="bilinear", align_corners=False))
        values = torch.stack(maps).mean(0)
        extras: dict[str, Any] = {"layers": [layer_name(self.model, m) for m, _ in kept]}
        if params["return_layers"]:
            extras["layer_maps"] = torch.cat(maps, 1)
        return Attribution(values=values, method=self.name, target=resolved,
                           scores=gather_scores(scores.detach(), resolved), extras=extras)
