"""Attention-based attributions for transformers (BERT-style text models and ViT).

- ``attention_rollout`` (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
  arXiv:2005.00928): per layer the heads are fused (``mean``/``max``/``min``), the lowest
  ``discard_ratio`` of the weights dropped, the identity added for the residual and rows renormalised;
  the rollout is the product of the layers' matrices.
- ``transformer_relevance`` (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability",
  arXiv:2103.15679): ``R <- R + mean_h((dy/dA * A)^+) R`` layer by layer from ``R = I``.

The explained row is the [CLS] token's (``pooling="cls"``, ViT) or the mean over the tokens (``"mean"``,
mean-pooled sentence models such as the MiniLM demo). Attention probabilities come from forward hooks:
Hugging Face attention modules (the innermost ``*Attention``: ``BertSelfAttention``,
``ViTAttention``, ...) are switched to the eager implementation for the call;
torchvision's ``nn.MultiheadAttention`` gets an explicit forward (same maths, weights kept in the graph)
for the call. Both are restored afterwards.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.attribution import Attribution
from ..core.errors import InputError, ModelError, ParameterError
from ..core.inputs import as_batch
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ..core.targets import TargetLike, resolve_target, scores_from_output
from ..core.text import TextClassifier
from .base import Method, require
from .registry import register

FUSIONS = ("mean", "max", "min")


def _explicit_mha(module: nn.MultiheadAttention, store: list[torch.Tensor]):
    """A forward for ``module`` computing softmax(QK^T/sqrt(d)) explicitly and recording it."""

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not module._qkv_same_embed_dim or module.bias_k is not None or not (query is key is value):
            raise ModelError("attention capture supports self-attention nn.MultiheadAttention only")
        x = query if module.batch_first else query.transpose(0, 1)
        n, t, e = x.shape
        h = module.num_heads
        q, k, v = F.linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, -1)
        q, k, v = (z.reshape(n, t, h, e // h).transpose(1, 2) for z in (q, k, v))
        logits = q @ k.transpose(-1, -2) / math.sqrt(e // h)
        if attn_mask is not None:
            logits = logits + (attn_mask.float().masked_fill(attn_mask, -math.inf) if attn_mask.dtype == torch.bool
                               else attn_mask)
        if key_padding_mask is not None:
            logits = logits.masked_fill(key_padding_mask.bool()[:, None, None, :], -math.inf)
        attn = logits.softmax(-1)
        store.append(attn)
        out = module.out_proj((attn @ v).transpose(1, 2).reshape(n, t, e))
        out = out if module.batch_first else out.transpose(0, 1)
        return out, (attn.mean(1) if average_attn_weights else attn) if need_weights else None

    return forward


def hf_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The innermost self-attention modules returning ``(output, probabilities)``: Hugging Face classes whose
    name ends with ``Attention`` (``BertSelfAttention``, ``ViTAttention``, ``DeiTAttention``; transformers 5
    names ViT's ``ViTAttention``) or any ``*SelfAttention``, not cross-attention; a wrapper (``BertAttention``)
    that contains one of them is left out so each layer is recorded once."""
    def wanted(m: nn.Module) -> bool:
        name = type(m).__name__
        hf = type(m).__module__.startswith("transformers.") and name.endswith("Attention")
        return (hf or name.endswith("SelfAttention")) and "Cross" not in name

    found = [m for m in model.modules() if wanted(m)]
    ids = {id(m) for m in found}
    return [m for m in found if not any(id(c) in ids for c in m.modules() if c is not m)]


@contextlib.contextmanager
def capture_attentions(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record each self-attention layer's probabilities ``(N, H, T, T)`` (in call order) during the block."""
    store: list[torch.Tensor] = []
    mhas = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    hf = hf_attention_modules(model)
    if not mhas and not hf:
        raise ModelError(
            "found no attention layers (nn.MultiheadAttention or Hugging Face *Attention modules) in the model"
        )
    configs = {id(m.config): m.config for m in model.modules() if hasattr(getattr(m, "config", None),
                                                                         "_attn_implementation")}
    saved = {k: c._attn_implementation for k, c in configs.items()}
    handles = []
    patched = []
    # nn.TransformerEncoderLayer's fused fast path (taken when no parameter needs a gradient) never calls
    # self_attn.forward: switch it off so the explicit forward records the probabilities
    mha_backend = getattr(torch.backends, "mha", None)
    fastpath = mha_backend.get_fastpath_enabled() if mha_backend is not None else None
    try:
        if mha_backend is not None:
            mha_backend.set_fastpath_enabled(False)
        for c in configs.values():
            c._attn_implementation = "eager"
        for m in hf:
            def hook(_m, _i, out):
                if isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], torch.Tensor):
                    store.append(out[1])
            handles.append(m.register_forward_hook(hook))
        for m in mhas:
            had = "forward" in m.__dict__
            patched.append((m, had, m.__dict__.get("forward")))
            m.forward = _explicit_mha(m, store)
        yield store
    finally:
        for h in handles:
            h.remove()
        for m, had, old in patched:
            if had:
                m.forward = old
            else:
                del m.forward
        for k, c in configs.items():
            c._attn_implementation = saved[k]
        if mha_backend is not None:
            mha_backend.set_fastpath_enabled(fastpath)


def fuse_heads(attn: torch.Tensor, fusion: str) -> torch.Tensor:
    if fusion == "mean":
        return attn.mean(1)
    if fusion == "max":
        return attn.amax(1)
    if fusion == "min":
        return attn.amin(1)
    raise ParameterError(f"head_fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")


def rollout(attentions: list[torch.Tensor], head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout ``(N, T, T)`` of per-layer attentions ``(N, H, T, T)``; rows sum to 1."""
    result = None
    for attn in attentions:
        a = fuse_heads(attn.detach().float(), head_fusion)
        n, t, _ = a.shape
        if discard_ratio > 0:
            flat = a.reshape(n, -1).clone()
            k = int(flat.shape[1] * discard_ratio)
            low = flat.topk(k, dim=-1, largest=False).indices
            keep0 = low != 0  # never drop the [CLS]-[CLS] weight (as jacobgil/vit-explain)
            flat.scatter_(1, low, torch.where(keep0, 0.0, flat.gather(1, low)))
            a = flat.view(n, t, t)
        eye = torch.eye(t, device=a.device, dtype=a.dtype)
        a = (a + eye) / 2
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def relevance(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """Chefer et al.'s relevance ``(N, T, T)``: ``R = I; R += mean_h((grad * A)^+) @ R`` per layer."""
    n, _, t, _ = attentions[0].shape
    r = torch.eye(t, device=attentions[0].device).expand(n, t, t).clone()
    for a, g in zip(attentions, grads):
        cam = (g * a).detach().float().clamp_min(0).mean(1)
        r = r + cam @ r
    return r


class _AttentionMethod(Method):
    family = "transformer"
    modalities = ("text", "image")
    default_reduce = "none"
    needs_grad = False

    def _maps(self, run, target: TargetLike, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        raise NotImplementedError

    def attribute(
        self, inputs: Any, target: TargetLike = None, *, progress: Progress | bool | None = None, **params: Any
    ) -> Attribution:
        """Token (text) or patch (ViT image) relevance of the explained row. See the module docstring."""
        p = self.resolve_params(params)
        self.validate(None, p)
        tracker = as_progress(progress)
        adapter = self.model
        try:
            if isinstance(adapter, TextClassifier):
                if not isinstance(adapter.model, nn.Module):
                    raise ModelError("attention methods need an nn.Module text model")
                with preserved(adapter.model):
                    return self._text(adapter, inputs, target, p)
            if not isinstance(adapter, nn.Module):
                raise ModelError("attention methods need an nn.Module (a ViT) or a TextClassifier")
            x = as_batch(inputs, adapter)
            with preserved(adapter):
                return self._image(adapter, x, target, p)
        finally:
            tracker.close()

    def _matrix(self, module: nn.Module, forward, target: TargetLike, p: dict[str, Any]):
        if self.needs_grad:  # the attentions need a graph even when the user froze the model (restored by
            for param in module.parameters():  # the caller's ``preserved``)
                if param.is_floating_point() and not param.requires_grad:
                    param.requires_grad_(True)
        with capture_attentions(module) as store, torch.enable_grad():
            scores = forward()
            resolved = resolve_target(target, scores.detach())
            if not store:
                raise ModelError("no attention probabilities were recorded during the forward pass")
            if self.needs_grad:
                selected = scores.gather(1, resolved.view(-1, 1)).sum()
                if not selected.requires_grad:
                    raise ModelError(
                        "the model's scores do not depend differentiably on its attention (is there a "
                        "torch.no_grad(), .detach() or a non-torch step in forward?); use 'attention_rollout' "
                        "instead, which needs no gradients"
                    )
                grads = torch.autograd.grad(selected, store, allow_unused=True)
                grads = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads, store)]
                mat = relevance(store, list(grads))
            else:
                mat = rollout(store, p["head_fusion"], p["discard_ratio"])
        return mat, scores.detach(), resolved

    def _text(self, clf: TextClassifier, inputs: Any, target: TargetLike, p: dict[str, Any]) -> Attribution:
        if not isinstance(inputs, str):
            raise InputError("attention methods on a TextClassifier take one text (a str)")
        enc = clf.encode(inputs)
        ids, mask = enc.input_ids.to(clf.device), enc.attention_mask.to(clf.device)
        mat, scores, resolved = self._matrix(clf.model, lambda: clf(ids, mask), target, p)
        row = mat[:, 0] if clf.pooling == "cls" else mat.mean(1)
        values = row.masked_fill(enc.special.to(row.device)[None], 0.0)
        return Attribution(
            values=values.cpu(), method=self.name, target=resolved.cpu(),
            scores=scores.gather(1, resolved.view(-1, 1)).squeeze(1).cpu(), params=p, raw=mat.cpu(),
            extras={"tokens": enc.tokens, "words": enc.words, "word_ids": enc.word_ids}, default_reduce="none",
            signed=False,
        )

    def _image(self, model: nn.Module, x: torch.Tensor, target: TargetLike, p: dict[str, Any]) -> Attribution:
        mat, scores, resolved = self._matrix(model, lambda: scores_from_output(model(x), x.shape[0]), target, p)
        row = mat[:, 0, 1:]
        side = round(math.sqrt(row.shape[1]))
        if side * side != row.shape[1]:
            raise ModelError(f"{row.shape[1]} patch tokens do not form a square grid; cannot map them to the image")
        raw = row.reshape(-1, side, side)
        values = F.interpolate(raw[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
        return Attribution(
            values=values.detach(), method=self.name, target=resolved,
            scores=scores.gather(1, resolved.view(-1, 1)).squeeze(1), params=p, raw=raw, inputs=x,
            default_reduce="none", signed=False,
        )


@register
class AttentionRollout(_AttentionMethod):
    """Attention rollout (Abnar & Zuidema 2020, arXiv:2005.00928)."""

    name = "attention_rollout"
    reference = "Abnar & Zuidema 2020, arXiv:2005.00928"
    defaults: ClassVar[dict[str, Any]] = {"head_fusion": "mean", "discard_ratio": 0.0}

    def validate(self, inputs: Any, params: dict[str, Any]) -> None:
        require(params["head_fusion"] in FUSIONS, f"head_fusion must be one of {', '.join(FUSIONS)}, got "
                f"{params['head_fusion']!r}")
        d = params["discard_ratio"]
        require(isinstance(d, (int, float)) and 0 <= d < 1, f"discard_ratio must be in [0, 1), got {d!r}")


@register
class TransformerRelevance(_AttentionMethod):
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021, arXiv:2103.15679)."""

    name = "transformer_relevance"
    reference = "Chefer, Gur & Wolf 2021, arXiv:2103.15679"
    defaults: ClassVar[dict[str, Any]] = {}
    needs_grad = True
