"""Network Dissection: how well each unit's top activations overlap each concept's pixel masks.

Bau, Zhou, Khosla, Oliva & Torralba 2017, "Network Dissection: Quantifying Interpretability of Deep
Visual Representations", arXiv:1704.05796. Per unit ``u``: the threshold ``T_u`` is the ``quantile`` of
its activations over every position of every image; its maps are upsampled (bilinear) to the mask
resolution and binarised at ``T_u``; ``IoU(u, c) = sum |M_u ∧ L_c| / sum |M_u ∨ L_c|`` over the data set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..core.batching import chunk_ranges
from ..core.device import model_device
from ..core.errors import InputError, LayerError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ._capture import capture, resolve_model


@dataclass(eq=False)
class Dissection:
    """``iou``: ``(units, concepts)``; ``thresholds``: ``(units,)``; ``concepts``: concept names."""

    iou: torch.Tensor
    thresholds: torch.Tensor
    concepts: list[str]
    layer: str
    quantile: float

    def best(self) -> list[tuple[int, str, float]]:
        """``(unit, best concept, IoU)`` for every unit."""
        v, i = self.iou.max(1)
        return [(u, self.concepts[int(c)], float(x)) for u, (x, c) in enumerate(zip(v, i))]

    def table(self, min_iou: float = 0.0) -> list[dict[str, Any]]:
        """Rows ``{unit, concept, iou}`` of each unit's best concept, highest IoU first."""
        rows = [{"unit": u, "concept": c, "iou": x} for u, c, x in self.best() if x >= min_iou]
        return sorted(rows, key=lambda r: -r["iou"])


def _masks(concept_masks: Any, n: int, names: Sequence[str] | None) -> tuple[torch.Tensor, list[str]]:
    if isinstance(concept_masks, Mapping):
        names = list(concept_masks)
        masks = torch.stack([torch.as_tensor(concept_masks[k]) for k in names], 1)
    else:
        masks = torch.as_tensor(concept_masks)
        if masks.dim() == 3:
            masks = masks.unsqueeze(1)
    if masks.dim() != 4 or masks.shape[0] != n:
        raise InputError(f"concept_masks must be (N, K, H, W) (or (N, H, W), or a dict of (N, H, W)) with N={n} "
                         f"images, got shape {tuple(masks.shape)}")
    names = list(names) if names is not None else [f"concept {k}" for k in range(masks.shape[1])]
    if len(names) != masks.shape[1]:
        raise ParameterError(f"{len(names)} concept names for {masks.shape[1]} concepts")
    return masks.bool(), names


def dissect(
    model: Any, layer: str | torch.nn.Module, images: torch.Tensor, concept_masks: Any, *,
    quantile: float = 0.995, concept_names: Sequence[str] | None = None, batch_size: int = 32,
    progress: Progress | bool | None = None,
) -> Dissection:
    """IoU of every unit of ``layer`` with every concept (model-ready ``images`` ``(N, C, H, W)``)."""
    module, _ = resolve_model(model)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise InputError("images must be a model-ready (N, C, H, W) tensor")
    if not (isinstance(quantile, float) and 0.0 < quantile < 1.0):
        raise ParameterError(f"quantile must be a float in (0, 1), e.g. 0.995, got {quantile!r}")
    masks, names = _masks(concept_masks, images.shape[0], concept_names)
    device = model_device(module)
    prog = as_progress(progress)
    n = images.shape[0]
    chunks = []
    with preserved(module), capture(module, [layer]) as cap, torch.no_grad():
        module.eval()
        for a, b in chunk_ranges(n, batch_size):
            cap.run(images[a:b].to(device))
            act = cap.acts[layer]
            if act.dim() != 4:
                raise LayerError(f"dissection needs a spatial (N, C, h, w) layer, got {tuple(act.shape)}")
            chunks.append(act.float())
            prog.update(b, 2 * n, "dissection: activations")
    acts = torch.cat(chunks)  # (N, U, h, w)
    units = acts.shape[1]
    flat = acts.transpose(0, 1).reshape(units, -1)
    kth = min(flat.shape[1], max(1, round(quantile * flat.shape[1])))
    thresholds = flat.kthvalue(kth, dim=1).values  # (U,)
    size = tuple(masks.shape[-2:])
    inter = torch.zeros(units, masks.shape[1], dtype=torch.float64, device=acts.device)
    act_area = torch.zeros(units, dtype=torch.float64, device=acts.device)
    mask_area = torch.zeros(masks.shape[1], dtype=torch.float64, device=acts.device)
    for a, b in chunk_ranges(n, batch_size):
        up = F.interpolate(acts[a:b], size=size, mode="bilinear", align_corners=False)
        on = (up > thresholds.view(1, -1, 1, 1)).flatten(2).float()  # (b, U, HW)
        lab = masks[a:b].to(acts.device).flatten(2).float()  # (b, K, HW)
        inter += torch.einsum("bup,bkp->uk", on, lab).double()
        act_area += on.sum((0, 2)).double()
        mask_area += lab.sum((0, 2)).double()
        prog.update(n + b, 2 * n, "dissection: IoU")
    prog.close()
    union = act_area.view(-1, 1) + mask_area.view(1, -1) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter)).float().cpu()
    name = layer if isinstance(layer, str) else type(layer).__name__
    return Dissection(iou=iou, thresholds=thresholds.cpu(), concepts=names, layer=name, quantile=quantile)
