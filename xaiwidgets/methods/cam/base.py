"""Shared machinery of the CAM family: layers, hooks, targets, smoothing, upsampling, multi-layer merge.

Each CAM only says how to turn a layer's activations ``A`` (and gradients ``dS/dA``) into a map, by
overriding :meth:`CAMBase.weights` (one weight per channel, map = sum_k w_k A_k) or
:meth:`CAMBase.cam_image`. Everything runs in torch on the model's device.

Design choices (and where we differ from pytorch-grad-cam 1.5.7, deliberately):

- Activations are captured with a forward hook that hands a *copy* of the output downstream, so an
  in-place op after the layer (``ReLU(inplace=True)``, ``out += identity``) cannot overwrite the captured
  activation or re-base its autograd node; gradients are ``torch.autograd.grad`` of the summed target
  scores with respect to that captured output (no module backward hooks, no ``.grad`` left on the
  user's parameters, no retained graph). The user's ``requires_grad`` flags are never touched (another
  cell may be training the model): the backward pass stops at the captured layer.
- ``values`` are unnormalised (pytorch-grad-cam min-max scales each image to [0, 1] and resizes with
  OpenCV); ``raw`` is the map at layer resolution. Upsampling is bilinear, ``align_corners=False``.
- ``relu=True`` (default) clips the map at 0 as the papers do; ``relu=False`` keeps the signed map.
- ``aug_smooth``: the same 6 test-time augmentations as pytorch-grad-cam (ttach ``HorizontalFlip`` x
  ``Multiply([0.9, 1, 1.1])``); each map is flipped back and the *unnormalised* maps are averaged (they
  min-max scale each before averaging). The target is resolved once, on the unaugmented input.
- Several layers: each layer's map is min-max normalised per image, upsampled, and the maps are averaged
  (as pytorch-grad-cam, without its final re-scaling). ``raw`` then holds that average at the resolution
  of the finest layer, and ``extras["layer_maps"]`` the unnormalised per-layer maps.
- ``eigen_smooth`` replaces the channel sum by the projection on the first principal component, oriented
  so that it correlates positively with the channel sum (pytorch-grad-cam leaves the SVD sign arbitrary).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...core.attribution import Attribution
from ...core.errors import LayerError, ModelError, ParameterError
from ...core.layers import choose_feature_map, get_layer, layer_name
from ...core.progress import Progress
from ...core.state import Hooks
from ...core.targets import TargetLike, gather_scores, resolve_target, scores_from_output
from ..base import Method
from .grid import check_reshape, to_grid

#: pytorch-grad-cam's default test-time augmentations: (horizontal flip, multiply factor)
AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple((f, m) for f in (False, True) for m in (0.9, 1.0, 1.1))

_DEFAULT_LAYER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LayerSpec:
    """A layer whose output (or, with ``use_input``, whose first input) is explained."""

    name: str
    module: nn.Module
    use_input: bool = False
    reason: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        return f"input of {self.name}" if self.use_input else self.name


@dataclass
class Capture:
    """One forward (and backward) pass: raw layer tensors, their grids, scores and targets."""

    raw: list[torch.Tensor]
    acts: list[torch.Tensor]
    grads: list[torch.Tensor] | None
    scores: torch.Tensor
    target: torch.Tensor


@dataclass
class CAMContext:
    """What a weighting may need beyond ``A`` and ``dS/dA`` (Score-CAM and Ablation-CAM rerun the model)."""

    model: Any
    inputs: torch.Tensor
    target: torch.Tensor
    scores: torch.Tensor
    layer: LayerSpec
    raw: torch.Tensor
    params: dict[str, Any]
    progress: Progress
    state: dict[str, Any] = field(default_factory=dict)


def _as_module(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ModelError(f"CAM methods hook a layer and need a torch.nn.Module; got {type(model).__name__}")
    return model


def _structure(model: nn.Module) -> tuple:
    """What the default layer depends on besides the input: the module tree (names, objects, classes) and
    the forward functions. A swapped submodule, a replaced ``forward`` or new children invalidate it."""
    return tuple((name, id(m), type(m), m.__dict__.get("forward")) for name, m in model.named_modules())


def default_layer(model: nn.Module, inputs: torch.Tensor) -> LayerSpec:
    """:func:`~xaiwidgets.core.layers.choose_feature_map` for ``inputs``' shape.

    Cached per model (weakly) and input signature, and only while the model's structure is the one the
    choice was made on (:func:`_structure`). The pass runs under the model's lock (no other computation's
    hooks can disturb it) on a copy of the first sample that requires a gradient, so the choice never
    depends on the user's ``requires_grad`` flags or on another thread.
    """
    key = (tuple(inputs.shape[1:]), inputs.dtype, inputs.device)
    structure = _structure(model)
    cache = _DEFAULT_LAYER.setdefault(model, {})
    found = cache.get(key)
    if found is None or found[0] != structure:
        sample = inputs[:1].detach().clone()
        if sample.is_floating_point():
            sample.requires_grad_(True)
        hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
        found = (structure, choose_feature_map(model, lambda: model(sample), hw))
        cache[key] = found
    fm = found[1]
    return LayerSpec(fm.name, get_layer(model, fm.name), use_input=fm.use_input, reason=fm.reason)


def resolve_layers(model: nn.Module, layer: Any, inputs: torch.Tensor) -> list[LayerSpec]:
    """``layer`` (None, dotted name, module, or a list of those) as LayerSpecs."""
    if layer is None:
        return [default_layer(model, inputs)]
    items = list(layer) if isinstance(layer, (list, tuple)) else [layer]
    if not items:
        raise ParameterError("layer is an empty list; pass a layer name, a module, or a list of them")
    specs = []
    for item in items:
        module = get_layer(model, item)
        specs.append(LayerSpec(item if isinstance(item, str) else layer_name(model, module), module))
    return specs


def capture(
    model: nn.Module, inputs: torch.Tensor, layers: Sequence[LayerSpec], target: TargetLike,
    *, gradients: bool, reshape: Any = None,
) -> Capture:
    """Run the model once with hooks on ``layers``; with ``gradients``, also d(target scores)/d(layer)."""
    records: list[list[torch.Tensor]] = [[] for _ in layers]
    hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))

    def keep(i: int, t: Any) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise LayerError(
                f"layer {layers[i].label!r} returns {type(t).__name__}, not a tensor; choose a layer that "
                "outputs a feature map (e.g. one of its submodules)"
            )
        if gradients and not t.requires_grad:
            t.requires_grad_(True)  # a leaf: nothing before the layer needs a gradient (frozen model)
        records[i].append(t)
        return t.clone()  # downstream gets a copy: in-place ops after the layer cannot touch ours

    def out_hook(i: int):
        return lambda _m, _a, out: keep(i, out)

    def in_hook(i: int):
        return lambda _m, args: (keep(i, args[0]), *args[1:]) if args else None

    with Hooks() as hooks, torch.set_grad_enabled(gradients):
        for i, spec in enumerate(layers):
            if spec.use_input:
                hooks.add(spec.module.register_forward_pre_hook(in_hook(i)))
            else:
                hooks.add(spec.module.register_forward_hook(out_hook(i)))
        output = model(inputs)
        hooks.remove()
        scores = scores_from_output(output, inputs.shape[0])
        for spec, rec in zip(layers, records):
            if len(rec) != 1:
                what = "was not called" if not rec else f"was called {len(rec)} times"
                raise LayerError(
                    f"layer {spec.label!r} {what} in the forward pass; CAMs need a layer used exactly once "
                    "(xaiwidgets.methods.cam.spatial_layers(model, inputs) lists suitable layers)"
                )
        raw = [rec[0] for rec in records]
        resolved = resolve_target(target, scores)
        grads = None
        if gradients:
            selected = gather_scores(scores, resolved)
            if not selected.requires_grad:
                raise ModelError(
                    "the model's scores do not depend differentiably on the layer (torch.no_grad(), "
                    ".detach() or a non-torch step in forward?); use 'scorecam', 'ablationcam' or "
                    "'eigencam' instead"
                )
            grads_or_none = torch.autograd.grad(selected.sum(), raw, allow_unused=True)
            for spec, g in zip(layers, grads_or_none):
                if g is None:
                    raise LayerError(f"the target score does not depend on layer {spec.label!r}; choose a "
                                     "layer before the classifier head")
            grads = [to_grid(g, hw, reshape, s.label) for g, s in zip(grads_or_none, layers)]
    raw = [r.detach() for r in raw]
    acts = [to_grid(r, hw, reshape, s.label) for r, s in zip(raw, layers)]
    return Capture(raw, acts, grads, scores.detach(), resolved)


def principal_projection(weighted: torch.Tensor) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, h, w)``: centred activations projected on their first principal component.

    The sign is chosen so the projection correlates positively with the channel sum.
    """
    n, c, h, w = weighted.shape
    x = torch.nan_to_num(weighted.float()).reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    x = x - x.mean(1, keepdim=True)
    _u, _s, vh = torch.linalg.svd(x, full_matrices=False)
    v = vh[:, 0, :]  # (N, C)
    proj = torch.einsum("npc,nc->np", x, v)
    sign = torch.sign((proj * x.sum(2)).sum(1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (proj * sign[:, None]).reshape(n, h, w).to(weighted.dtype)


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max normalisation of ``(N, 1, h, w)`` maps (as pytorch-grad-cam, eps 1e-7)."""
    lo = maps.amin(dim=(1, 2, 3), keepdim=True)
    shifted = maps - lo
    return shifted / (shifted.amax(dim=(1, 2, 3), keepdim=True) + 1e-7)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


class CAMBase(Method):
    """Class activation maps of a layer. Subclasses override :meth:`weights` or :meth:`cam_image`."""

    family = "cam"
    tabular_strategy = None  # images only
    default_reduce = "sum"
    signed = False
    uses_gradients: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "layer": None, "relu": True, "eigen_smooth": False, "aug_smooth": False, "reshape": None,
    }

    # -- the method ------------------------------------------------------------------------------------
    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        """``(N, C)`` channel weights (override this, or :meth:`cam_image`)."""
        raise NotImplementedError

    def cam_image(self, acts: torch.Tensor, grads: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        """``(N, h, w)`` map: sum_k w_k A_k (or its first principal component with ``eigen_smooth``)."""
        w = self.weights(acts, grads, ctx).to(acts.dtype)
        if ctx.params["eigen_smooth"]:
            return principal_projection(w[:, :, None, None] * acts)
        return torch.einsum("nc,nchw->nhw", w, acts)

    # -- shared machinery ------------------------------------------------------------------------------
    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        if inputs.dim() != 4:
            raise ParameterError(
                f"CAM methods explain images (N, C, H, W); got inputs of shape {tuple(inputs.shape)}"
            )
        check_reshape(params.get("reshape"))
        for key in ("relu", "eigen_smooth", "aug_smooth"):
            if not isinstance(params.get(key), bool):
                raise ParameterError(f"{key} must be True or False, got {params.get(key)!r}")
        if "batch_size" in params:
            b = params["batch_size"]
            if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
                raise ParameterError(f"batch_size must be a positive int or None (measured), got {b!r}")

    def resolve(
        self, model: nn.Module, inputs: torch.Tensor, params: dict[str, Any]
    ) -> tuple[list[LayerSpec], dict]:
        """The layers to explain and any per-call state (CAM finds its linear head here)."""
        return resolve_layers(model, params["layer"], inputs), {}

    def layer_maps(
        self, model: nn.Module, inputs: torch.Tensor, target: TargetLike, layers: list[LayerSpec],
        params: dict[str, Any], progress: Progress, state: dict,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """``([(N, h_l, w_l) map per layer], scores, target)`` for one (augmented) input batch."""
        cap = capture(model, inputs, layers, target, gradients=self.uses_gradients, reshape=params["reshape"])
        maps = []
        for i, spec in enumerate(layers):
            ctx = CAMContext(model, inputs, cap.target, cap.scores, spec, cap.raw[i], params, progress, state)
            grads = cap.grads[i] if cap.grads is not None else None
            maps.append(self.cam_image(cap.acts[i], grads, ctx))
        return maps, cap.scores, cap.target

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        model = _as_module(self.model)
        layers, state = self.resolve(model, inputs, params)
        augs = AUGMENTATIONS if params["aug_smooth"] else ((False, 1.0),)
        augs = sorted(augs, key=lambda a: (a != (False, 1.0)))  # identity first: it resolves the target
        sums: list[torch.Tensor] | None = None
        scores = resolved = None
        for k, (flip, factor) in enumerate(augs):
            x = inputs.flip(-1) if flip else inputs
            x = x * factor if factor != 1.0 else x
            maps, s, t = self.layer_maps(model, x, target if resolved is None else resolved, layers, params,
                                         progress, state)
            if resolved is None:
                scores, resolved = s, t
            maps = [m.clamp_min(0) if params["relu"] else m for m in maps]
            maps = [m.flip(-1) if flip else m for m in maps]
            sums = maps if sums is None else [a + b for a, b in zip(sums, maps)]
            if len(augs) > 1:
                progress.update(k + 1, len(augs), "aug_smooth")
        assert sums is not None and resolved is not None and scores is not None
        layer_maps = [(m / len(augs)).unsqueeze(1).detach() for m in sums]
        size = (int(inputs.shape[-2]), int(inputs.shape[-1]))
        if len(layer_maps) == 1:
            raw = layer_maps[0]
            values = upsample(raw, size)
        else:
            finest = max((m.shape[-2:] for m in layer_maps), key=lambda s: s[0] * s[1])
            raw = torch.stack([upsample(minmax(m), tuple(finest)) for m in layer_maps]).mean(0)
            values = torch.stack([upsample(minmax(m), size) for m in layer_maps]).mean(0)
        names = [spec.label for spec in layers]
        extras: dict[str, Any] = {"layer": names[0] if len(names) == 1 else names}
        reasons = [spec.reason or "given by the caller (layer=)" for spec in layers]
        extras["layer_reason"] = reasons[0] if len(reasons) == 1 else reasons
        if len(layer_maps) > 1:
            extras["layer_maps"] = layer_maps
        extras.update(state.get("extras", {}))
        return Attribution(
            values=values, method=self.name, target=resolved, scores=gather_scores(scores, resolved),
            raw=raw, extras=extras,
        )

