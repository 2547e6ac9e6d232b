"""One chunk of a dataset explanation: load items, predict, explain, reduce to per-item records.

Shared by the local loop and the Ray actors so both write the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..api import attribute
from ..core.adapters import unwrap_model
from ..core.device import model_device
from ..core.errors import InputError, LayerError, TargetError
from ..core.state import preserved
from ..core.targets import scores_from_output
from .sources import Source, UnreadableItem


@dataclass
class RunConfig:
    """What a chunk computation needs besides the model and the data (picklable for Ray)."""

    methods: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    map_size: tuple[int, int]
    keep_full: bool
    top_k: int
    on_error: str = "raise"
    input_shape: tuple[int, ...] | None = None  # (C, H, W) of item 0: every item must match it
    n_classes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_items(source: Source, indices: range, cfg: RunConfig) -> tuple[list[int], torch.Tensor, torch.Tensor, dict]:
    """``(valid positions in the chunk, inputs, labels, skipped {index: reason})``; checks sizes and labels."""
    xs, labels, keep, skipped = [], [], [], {}
    for pos, i in enumerate(indices):
        try:
            x, label = source.load(i)
        except UnreadableItem as exc:
            if cfg.on_error != "skip":
                raise
            skipped[str(i)] = f"{exc.what}: {exc.reason}"
            continue
        if cfg.input_shape is not None and tuple(x.shape) != tuple(cfg.input_shape):
            raise InputError(
                f"item {i} has shape {tuple(x.shape)} but item 0 has {tuple(cfg.input_shape)}; images of "
                "mixed sizes need a preprocessing rule: pass an ImageClassifier (it resizes to input_size) or "
                "a Dataset with a transform"
            )
        if cfg.n_classes is not None and not (label == -1 or 0 <= label < cfg.n_classes):
            raise TargetError(f"item {i} has label {label}, outside the model's {cfg.n_classes} classes")
        xs.append(x)
        labels.append(label)
        keep.append(pos)
    x = torch.stack(xs) if xs else torch.empty(0)
    return keep, x, torch.tensor(labels, dtype=torch.long), skipped


def _last_linear(model: nn.Module) -> nn.Module | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


@torch.no_grad()
def predict(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores (N, C) float32, embedding (N, D) float32)``: the embedding is the input of the last
    ``nn.Linear`` called (the pooled penultimate activations), averaged over positions if it has any
    (``(N, C, H, W)``: spatial mean; ``(N, T, D)``: token mean); the scores themselves for a model without
    one, or when that input does not have one row per item."""
    net, _ = unwrap_model(model)
    last: list[torch.Tensor] = []

    def keep_last(_module: nn.Module, args: tuple) -> None:
        last[:] = [args[0]]

    with preserved(net):
        handles = []
        if isinstance(net, nn.Module):
            handles = [m.register_forward_pre_hook(keep_last) for m in net.modules() if isinstance(m, nn.Linear)]
        try:
            out = net(x)
        finally:
            for h in handles:
                h.remove()
    scores = scores_from_output(out, x.shape[0]).float()
    emb = last[0] if last and isinstance(last[0], torch.Tensor) and last[0].shape[0] == x.shape[0] else scores
    if emb.dim() == 3:
        emb = emb.mean(1)
    elif emb.dim() > 3:
        emb = emb.flatten(2).mean(2)
    return scores, emb.reshape(x.shape[0], -1).float()


def area_average(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` maps averaged over areas to ``(N, *size)`` (exact block means when size divides H, W)."""
    return F.adaptive_avg_pool2d(maps.unsqueeze(1), size)[:, 0]


def to_scaled_float16(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(maps / scale as float16, scale (N,) float32)`` with ``scale`` each map's max |value| (1 for an
    all-zero map): every map keeps float16's relative precision (2^-11 of its max) whatever its magnitude,
    so tiny gradients are neither flushed to zero nor large ones turned into inf."""
    scale = maps.abs().flatten(1).amax(1).float()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (maps / scale.view(-1, 1, 1)).to(torch.float16), scale


def compute_chunk(model: Any, source: Source, indices: range, cfg: RunConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Records of the items ``indices``: rows of skipped items are NaN / -1 with ``valid`` False."""
    keep, x, labels, skipped = load_items(source, indices, cfg)
    n = len(indices)
    rec: dict[str, np.ndarray] = {}
    valid = np.zeros(n, bool)
    valid[keep] = True
    rec["valid"] = valid
    if not keep:
        return rec, skipped
    device = model_device(unwrap_model(model)[0])
    x = x.to(device)
    scores, emb = predict(model, x)
    probs = scores.softmax(1)
    k = min(cfg.top_k, probs.shape[1])
    top_i = scores.topk(k, dim=1).indices  # rank by the scores: softmax can tie classes in float32
    top_p = probs.gather(1, top_i)
    pred = top_i[:, 0]
    lab = labels.to(device)
    has = lab >= 0
    loss = torch.full((len(keep),), float("nan"), device=device)
    if has.any():
        loss[has] = F.cross_entropy(scores[has], lab[has], reduction="none")
    correct = (pred == lab) & has

    def put(name: str, values: torch.Tensor | np.ndarray, fill: Any, dtype: Any) -> None:
        values = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values
        out = np.full((n, *values.shape[1:]), fill, dtype=dtype)
        out[keep] = values
        rec[name] = out

    put("predictions", top_i, -1, np.int32)
    put("probabilities", top_p, np.nan, np.float32)
    put("labels", labels, -1, np.int64)
    put("correct", correct, False, np.bool_)
    put("loss", loss, np.nan, np.float32)
    put("embeddings", emb, np.nan, np.float32)
    for method in cfg.methods:
        try:
            a = attribute(model, x, method, target=pred, progress=False, **cfg.params.get(method, {}))
        except LayerError as exc:
            raise LayerError(f"method {method!r} needs a layer: {exc}. Pass {method}={{'layer': 'name'}} "
                             "naming a spatial layer of the model") from exc
        maps = torch.from_numpy(a.heatmap())
        small, scale = to_scaled_float16(area_average(maps, cfg.map_size))
        put(f"maps/{method}", small, np.nan, np.float16)
        put(f"scale/{method}", scale, np.nan, np.float32)
        if cfg.keep_full:
            put(f"full/{method}", maps, np.nan, np.float32)
    return rec, skipped
