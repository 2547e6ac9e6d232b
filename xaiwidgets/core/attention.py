"""Attention found by what it computes, not by class name.

:class:`AttentionRecorder` is a ``TorchFunctionMode``: while it is active, every attention computation in a
forward pass, whatever module performs it, is seen and its probabilities recorded:

- ``F.scaled_dot_product_attention`` (timm's fused attention, Hugging Face's ``sdpa`` implementation,
  ``nn.MultiheadAttention`` without weights) is computed explicitly, ``softmax(q k^T * scale + mask) v``
  (the formula of torch's documentation, same arguments: mask, causal, scale, grouped-query), so the
  probabilities are a tensor in the graph;
- ``F.multi_head_attention_forward`` (``nn.MultiheadAttention``, torchvision's ViT) is computed the same way
  from its projection weights (its own weights output is a view taken after use, outside the graph);
- a softmax over the last axis of an ``(N, heads, Tq, Tk)`` tensor, or of an ``(N, T, T)`` one (eager
  attention: timm with ``fused_attn=False``, LeViT, Hugging Face ``eager``, hand-built models) is recorded as
  it is.

Each record names the innermost module running when it happened (the attention module), when the caller
tracks the module stack (:func:`module_stack`).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import ModelError
from .state import Hooks, preserved

_SOFTMAX = {torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax}


@dataclass
class AttentionRecord:
    """One attention computation: ``probs`` ``(..., Tq, Tk)`` and the innermost module running ('' = root)."""

    probs: torch.Tensor
    module: str
    kind: str  # 'sdpa', 'multi_head_attention' or 'softmax'


def explicit_sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: Any = None,
                  dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                  enable_gqa: bool = False, keep: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output, probabilities)`` of ``F.scaled_dot_product_attention`` with the same arguments, computed
    as in its documentation (Vaswani et al. 2017, eq. 1). ``keep(probs)`` may replace the probabilities
    before they are used (to record them)."""
    tq, tk = query.size(-2), key.size(-2)
    if enable_gqa and key.dim() >= 3 and key.size(-3) != query.size(-3):
        rep = query.size(-3) // key.size(-3)
        key, value = key.repeat_interleave(rep, -3), value.repeat_interleave(rep, -3)
    factor = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    logits = query @ key.transpose(-2, -1) * factor
    if is_causal:
        causal = torch.ones(tq, tk, dtype=torch.bool, device=query.device).tril()
        logits = logits.masked_fill(~causal, -math.inf)
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else logits + attn_mask
    probs = logits.softmax(-1)
    if keep is not None:
        probs = keep(probs)
    used = F.dropout(probs, dropout_p) if dropout_p > 0 else probs
    return used @ value, probs


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An ``nn.MultiheadAttention`` mask (boolean: True = not allowed; float: added) as a float mask."""
    if mask is None or mask.dtype != torch.bool:
        return None if mask is None else mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -math.inf)


def _mha_arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _explicit_mha(args: tuple, kwargs: dict, keep: Any) -> tuple[tuple[torch.Tensor, Any], torch.Tensor]:
    """``F.multi_head_attention_forward`` (sequence-first inputs) computed explicitly: (its result, probs)."""
    names = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
             "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias")
    a = {n: _mha_arg(args, kwargs, i, n) for i, n in enumerate(names)}
    get = kwargs.get
    if a["bias_k"] is not None or a["add_zero_attn"] or get("static_k") is not None:
        raise ModelError("attention capture does not support nn.MultiheadAttention with add_bias_kv, "
                         "add_zero_attn or static keys")
    query, key, value = a["query"], a["key"], a["value"]
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    tq, n, e = query.shape
    heads = int(a["num_heads"])
    if get("use_separate_proj_weight", False):
        w = (get("q_proj_weight"), get("k_proj_weight"), get("v_proj_weight"))
    else:
        w = a["in_proj_weight"].chunk(3)
    b = a["in_proj_bias"].chunk(3) if a["in_proj_bias"] is not None else (None, None, None)
    q, k, v = (F.linear(t, wi, bi) for t, wi, bi in zip((query, key, value), w, b))
    q, k, v = (t.reshape(t.shape[0], n * heads, -1).transpose(0, 1).reshape(n, heads, t.shape[0], -1)
               for t in (q, k, v))
    mask = _additive(get("attn_mask"), q.dtype)
    if mask is not None and mask.dim() == 3:
        mask = mask.view(n, heads, tq, -1) if mask.size(0) == n * heads else mask.unsqueeze(0)
    pad = _additive(get("key_padding_mask"), q.dtype)
    if pad is not None:
        pad = pad.view(n, 1, 1, -1)
        mask = pad if mask is None else mask + pad
    dropout = float(a["dropout_p"] or 0.0) if get("training", True) else 0.0
    out, probs = explicit_sdpa(q, k, v, mask, dropout, bool(get("is_causal", False)) and mask is None, keep=keep)
    out = out.permute(2, 0, 1, 3).reshape(tq, n, e)
    out = F.linear(out, a["out_proj_weight"], a["out_proj_bias"])
    weights = None
    if get("need_weights", True):
        weights = probs.mean(1) if get("average_attn_weights", True) else probs
        weights = weights if batched else weights.squeeze(0)
    return (out if batched else out.squeeze(1), weights), probs


class AttentionRecorder(TorchFunctionMode):
    """Record every attention's probabilities during the block (see the module docstring).

    ``graph=True`` (under ``torch.enable_grad``): probabilities that do not require a gradient (a frozen
    model) are made to, as fresh tensors of ours, so d(score)/d(probabilities) exists without touching
    any parameter's ``requires_grad``.
    """

    def __init__(self, stack: list[str] | None = None, graph: bool = False) -> None:
        super().__init__()
        self.records: list[AttentionRecord] = []
        self.probs: list[torch.Tensor] = []  # the records' probabilities (filled as the forward runs)
        self.stack = stack
        self.graph = graph

    def _keep(self, probs: torch.Tensor, kind: str) -> torch.Tensor:
        if self.graph and torch.is_grad_enabled() and probs.is_floating_point() and not probs.requires_grad:
            probs.requires_grad_(True)
        self.records.append(AttentionRecord(probs, self.stack[-1] if self.stack else "", kind))
        self.probs.append(probs)
        return probs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
            call = {n: _mha_arg(args, kwargs, i, n) for i, n in enumerate(names)}
            call = {n: v for n, v in call.items() if v is not None}
            out, _probs = explicit_sdpa(**call, keep=lambda p: self._keep(p, "sdpa"))
            return out
        if func is F.multi_head_attention_forward:
            result, _probs = _explicit_mha(args, kwargs, keep=lambda p: self._keep(p, "multi_head_attention"))
            return result
        if func in _SOFTMAX:
            out = func(*args, **kwargs)
            x = args[0] if args else kwargs.get("input")
            dim = _mha_arg(args, kwargs, 1, "dim")
            if (isinstance(x, torch.Tensor) and dim is not None and x.dim() >= 3 and dim % x.dim() == x.dim() - 1
                    and (x.dim() >= 4 or x.shape[-1] == x.shape[-2])):
                self._keep(out, "softmax")
            return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def module_stack(model: nn.Module, stack: list[str]) -> Iterator[None]:
    """Keep ``stack`` equal to the names of the modules running (outermost first) during the block."""

    def enter(name: str):
        def pre(_m: nn.Module, _args: object) -> None:
            stack.append(name)

        return pre

    def leave(_m: nn.Module, _args: object, _out: object) -> None:
        if stack:
            stack.pop()

    with Hooks() as hooks:
        for name, module in model.named_modules():
            hooks.add(module.register_forward_pre_hook(enter(name)))
            hooks.add(module.register_forward_hook(leave, always_call=True))
        yield


_FASTPATH_GUARD = threading.Lock()
_FASTPATH_USERS = [0, None]  # [blocks inside no_fused_paths (any thread), the setting before the first]


@contextlib.contextmanager
def no_fused_paths() -> Iterator[None]:
    """Switch off torch's fused transformer fast paths (``nn.TransformerEncoderLayer`` and
    ``nn.MultiheadAttention`` in inference), which compute attention in one C++ call no mode can see.

    The setting is process-wide: it is counted across threads (two models explained at once) and put back
    when the last block exits."""
    backend = getattr(torch.backends, "mha", None)
    if backend is None:
        yield
        return
    with _FASTPATH_GUARD:
        if _FASTPATH_USERS[0] == 0:
            _FASTPATH_USERS[1] = backend.get_fastpath_enabled()
            backend.set_fastpath_enabled(False)
        _FASTPATH_USERS[0] += 1
    try:
        yield
    finally:
        with _FASTPATH_GUARD:
            _FASTPATH_USERS[0] -= 1
            if _FASTPATH_USERS[0] == 0:
                backend.set_fastpath_enabled(bool(_FASTPATH_USERS[1]))


def attention_modules(records: list[AttentionRecord]) -> set[str]:
    """Names of the modules that computed attention (the root's '' left out)."""
    return {r.module for r in records if r.module}


def computes_attention(model: nn.Module, inputs: torch.Tensor) -> bool:
    """Whether one forward of ``model`` on ``inputs[:1]`` computes an attention (by behaviour: the same
    recognition as the attention methods use). Runs under the model's lock; nothing is kept."""
    recorder = AttentionRecorder()
    with preserved(model), torch.no_grad(), no_fused_paths(), recorder:
        model(inputs[:1])
    return bool(recorder.records)
