"""CAM: Zhou et al. 2016, "Learning Deep Features for Discriminative Localization", CVPR, arXiv:1512.04150.

For a head ``scores = W · GAP(A) + b`` (global average pooling, then one linear layer):
M_c[i, j] = sum_k W[c, k] A_k[i, j]   (eq. 2; the bias is constant over space and left out)

The head is found functionally: one forward records every ``nn.Linear``'s input and every 4-D tensor that a
module outputs (or that a pooling module receives); the pair where the linear input equals the spatial mean
of the map is the head. Without ``layer=`` the map is that pooled tensor (e.g. "input of _avg_pooling" when
an activation is applied functionally before pooling). ``fc=`` names the linear layer explicitly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...core.errors import ModelError, ParameterError
from ...core.progress import Progress
from ...core.state import Hooks
from ...core.targets import TargetLike, resolve_target, scores_from_output
from ..registry import register
from .base import CAMBase, CAMContext, LayerSpec, resolve_layers
from .grid import to_grid


def _pooled_equal(a: torch.Tensor, z: torch.Tensor) -> bool:
    if a.dim() != 4 or z.dim() != 2 or a.shape[:2] != z.shape or a.shape[2] * a.shape[3] < 2:
        return False
    pooled = a.float().mean(dim=(2, 3))
    return bool(torch.allclose(pooled, z.float(), rtol=1e-4, atol=1e-5 * (1 + float(z.abs().max()))))


def _record(model: nn.Module, x: torch.Tensor, layer: LayerSpec | None) -> tuple[list, list, set]:
    """(candidate maps [(LayerSpec, tensor)] latest first, linear inputs [(module, tensor)], names of maps
    modified in place later in the forward, e.g. DenseNet's ``F.relu(features, inplace=True)``)."""
    maps: list[tuple[LayerSpec, torch.Tensor]] = []
    versions: list[int] = []
    linears: list[tuple[nn.Module, torch.Tensor]] = []
    calls: dict[str, int] = {}

    def out_hook(name: str, module: nn.Module):
        def hook(_m: nn.Module, args: tuple, out: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(module, nn.Linear) and args and isinstance(args[0], torch.Tensor):
                linears.append((module, args[0]))
            if isinstance(out, torch.Tensor) and out.dim() == 4 and (layer is None or module is layer.module):
                maps.append((LayerSpec(name, module), out))
                versions.append(out._version)
            if layer is None and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
                maps.append((LayerSpec(name, module, use_input=True), args[0]))
                versions.append(args[0]._version)

        return hook

    with Hooks() as hooks, torch.no_grad():
        for name, module in model.named_modules():
            if name:
                hooks.add(module.register_forward_hook(out_hook(name, module)))
        model(x)
    inplace = {s.label for (s, t), v in zip(maps, versions) if t._version != v}
    once = [(s, t) for s, t in maps if calls.get(s.name) == 1]
    # latest first; module outputs before module inputs (the same tensor is often both)
    outputs = [st for st in once if not st[0].use_input][::-1]
    inputs = [st for st in once if st[0].use_input][::-1]
    return outputs + inputs, linears, inplace


@register
class CAM(CAMBase):
    """Class activation mapping with the weights of a global-average-pooling + linear head."""

    name = "cam"
    reference = "Zhou et al. 2016, arXiv:1512.04150"
    uses_gradients = False
    defaults: ClassVar[dict[str, Any]] = {**CAMBase.defaults, "fc": None}

    def resolve(
        self, model: nn.Module, inputs: torch.Tensor, params: dict[str, Any]
    ) -> tuple[list[LayerSpec], dict]:
        fc = params["fc"]
        if fc is not None and not (isinstance(fc, nn.Linear) and any(m is fc for m in model.modules())):
            raise ParameterError("fc must be the model's nn.Linear classifier module (e.g. fc=model.fc)")
        layer = None
        if params["layer"] is not None:
            layers = resolve_layers(model, params["layer"], inputs)
            if len(layers) != 1:
                raise ParameterError("cam explains one layer (the one its head pools); pass a single layer")
            layer = layers[0]
        maps, linears, inplace = _record(model, inputs[:1], layer)
        if fc is not None and layer is not None:
            channels = maps[0][1].shape[1] if maps else None
            if channels is not None and fc.in_features != channels:
                raise ParameterError(
                    f"fc takes {fc.in_features} features but layer {layer.label!r} has {channels} channels"
                )
            return [layer], {"fc": fc, "after_inplace": layer.label in inplace}
        heads = [(m, z) for m, z in linears if fc is None or m is fc]
        for spec, a in maps:
            for module, z in heads:
                if _pooled_equal(a, z):
                    # a map changed in place downstream (the recorded tensor holds its final value): explain
                    # that final value, which is what the head pools, not the layer's original output
                    return [spec], {"fc": module, "after_inplace": spec.label in inplace}
        where = f"layer {layer.label!r}" if layer is not None else "any layer"
        raise ModelError(
            "cam needs a head of the form global average pooling -> linear layer, and no nn.Linear in this "
            f"model{' (fc)' if fc is not None else ''} takes the spatial mean of {where}'s output as its "
            "input. Pass layer=<the layer that is pooled> and fc=<the linear classifier> if your head is of "
            "that form, or use method='gradcam', which equals CAM up to a constant on such heads and works "
            "on any head."
        )

    def layer_maps(
        self, model: nn.Module, inputs: torch.Tensor, target: TargetLike, layers: list[LayerSpec],
        params: dict[str, Any], progress: Progress, state: dict,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        if not state.get("after_inplace"):
            return super().layer_maps(model, inputs, target, layers, params, progress, state)
        spec = layers[0]
        rec: list[torch.Tensor] = []

        def keep(t: Any) -> None:
            if isinstance(t, torch.Tensor):
                rec.append(t)  # no copy: the in-place ops after the layer must land in it

        with Hooks() as hooks, torch.no_grad():
            if spec.use_input:
                hooks.add(spec.module.register_forward_pre_hook(lambda _m, args: keep(args[0]) if args else None))
            else:
                hooks.add(spec.module.register_forward_hook(lambda _m, _a, out: keep(out)))
            output = model(inputs)
        if len(rec) != 1:
            raise ModelError(f"layer {spec.label!r} was called {len(rec)} times in the forward pass")
        scores = scores_from_output(output, inputs.shape[0])
        resolved = resolve_target(target, scores)
        hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
        acts = to_grid(rec[0], hw, params["reshape"], spec.label)
        ctx = CAMContext(model, inputs, resolved, scores, spec, rec[0], params, progress, state)
        state.setdefault("extras", {})["cam_map"] = "after in-place operations following the layer"
        return [self.cam_image(acts, None, ctx)], scores, resolved

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        fc = ctx.state["fc"]
        return fc.weight.detach()[ctx.target].to(acts.dtype)
