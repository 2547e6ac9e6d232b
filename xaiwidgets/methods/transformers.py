"""Attention-based attributions for transformers (BERT-style text models and ViT).

- ``attention_rollout`` (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
  arXiv:2005.00928): per layer the heads are fused (``mean``/``max``/``min``), the lowest
  ``discard_ratio`` of the weights dropped, the identity added for the residual and rows renormalised;
  the rollout is the product of the layers' matrices.
- ``transformer_relevance`` (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability",
  arXiv:2103.15679): ``R <- R + mean_h((dy/dA * A)^+) R`` layer by layer from ``R = I``.

The explained row is the [CLS] token's (``pooling="cls"``, ViT) or the mean over the tokens (``"mean"``,
mean-pooled sentence models such as the MiniLM demo; on images the first token when the sequence has
class/register tokens before the patch grid, else the mean). Attention is found by what the forward
computes, not by class names (:mod:`xaiwidgets.core.attention`): fused ``scaled_dot_product_attention`` (timm,
Hugging Face ``sdpa``), multi-head attention (torchvision, ``nn.TransformerEncoder``) and eager attention
softmaxes, each computed explicitly so the probabilities are tensors in the graph. No module, config or
``requires_grad`` flag is changed: for a frozen model the probabilities themselves are made to require a
gradient. Windowed attention (Swin) and models whose token set changes between layers are refused with the
reason: the token-to-token matrices these methods multiply do not exist there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.attention import AttentionRecorder, module_stack, no_fused_paths
from ..core.attribution import Attribution
from ..core.errors import InputError, ModelError, ParameterError
from ..core.grid import token_grid
from ..core.progress import Progress
from ..core.targets import TargetLike, resolve_target, scores_from_output
from ..core.text import TextClassifier
from .base import Method, require
from .registry import register

FUSIONS = ("mean", "max", "min")


@contextlib.contextmanager
def capture_attentions(model: nn.Module, *, graph: bool = False) -> Iterator[list[torch.Tensor]]:
    """Record the probabilities of every attention computed during the block, in call order.

    Attention is found by what the forward computes, whatever module does it (:mod:`~..core.attention`):
    ``F.scaled_dot_product_attention`` (timm's fused attention, Hugging Face ``sdpa``), multi-head attention
    (``nn.MultiheadAttention``, torchvision's ViT, ``nn.TransformerEncoder``) and attention softmaxes (eager
    implementations). torch's fused transformer fast paths are switched off for the block. The yielded list
    fills as the forward runs; :func:`self_attentions` checks and shapes it. With ``graph`` (under
    ``torch.enable_grad``) the probabilities are in the autograd graph even for a frozen model.
    """
    stack: list[str] = []
    recorder = AttentionRecorder(stack, graph=graph)
    with no_fused_paths(), module_stack(model, stack), recorder:
        yield recorder.probs


def self_attentions(probs: list[torch.Tensor], modules: list[str], n: int) -> list[torch.Tensor]:
    """The recorded probabilities as ``(N, H, T, T)`` per layer; ModelError where they are not one
    token-to-token self-attention over the whole sequence (then rollout and relevance are undefined)."""
    if not probs:
        raise ModelError(
            "found no attention in the forward pass: no F.scaled_dot_product_attention, multi-head attention "
            "or softmax over (N, heads, T, T) scores was computed. Attention methods need a transformer whose "
            "attention is computed with torch (a custom kernel is invisible); use a gradient or CAM method"
        )
    out = []
    for a, where in zip(probs, modules):
        a = a.unsqueeze(1) if a.dim() == 3 else a
        where = f"attention in {where}" if where else "attention in the model's own forward"
        if a.dim() != 4 or a.shape[0] != n:
            raise ModelError(
                f"{where} has probabilities of shape {tuple(a.shape)} for a batch of {n}: it attends within "
                "windows or groups (e.g. Swin's shifted windows), not across all tokens of an image, so a "
                "token-to-token rollout is not defined; use gradcam (its default layer handles such models)"
            )
        if a.shape[-1] != a.shape[-2] or a.shape[-1] != probs[0].shape[-1]:
            raise ModelError(
                f"{where} maps {a.shape[-1]} tokens to {a.shape[-2]} (the first layer has {probs[0].shape[-1]}): "
                "the token set changes between layers (pooling or merging), so rollout and relevance, which "
                "multiply token-to-token matrices of one size, are not defined for this model"
            )
        out.append(a)
    return out


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
    tabular_strategy = None  # token-to-token attention: texts and images
    default_reduce = "none"
    signed = False
    needs_grad = False

    def _maps(self, run, target: TargetLike, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        raise NotImplementedError

    def explain_text(
        self, classifier: TextClassifier, inputs: Any, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Token relevance of the explained row for one text. See the module docstring."""
        p = self.resolve_params(params)
        self.validate(None, p)
        if not isinstance(classifier.model, nn.Module):
            raise ModelError("attention methods need an nn.Module text model")
        return self._text(classifier, inputs, target, p)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        """Patch relevance of the explained row for ViT images. See the module docstring."""
        if not isinstance(self.model, nn.Module):
            raise ModelError("attention methods need an nn.Module (a ViT) or a TextClassifier")
        return self._image(self.model, inputs, target, params)

    def _matrix(self, module: nn.Module, forward, target: TargetLike, p: dict[str, Any]):
        """(relevance or rollout matrix (N, T, T), scores, targets, names of the attention modules)."""
        grad = self.needs_grad  # the graph is made by the capture itself: no requires_grad flag is touched
        stack: list[str] = []
        recorder = AttentionRecorder(stack, graph=grad)
        with no_fused_paths(), module_stack(module, stack), torch.set_grad_enabled(grad):
            with recorder:
                scores = forward()
            resolved = resolve_target(target, scores.detach())
            names = [r.module for r in recorder.records]
            store = self_attentions(recorder.probs, names, scores.shape[0])
            if grad:
                selected = scores.gather(1, resolved.view(-1, 1)).sum()
                if not selected.requires_grad:
                    raise ModelError(
                        "the model's scores do not depend differentiably on its attention (is there a "
                        "torch.no_grad(), .detach() or a non-torch step in forward?); use 'attention_rollout' "
                        "instead, which needs no gradients"
                    )
                grads = torch.autograd.grad(selected, recorder.probs, allow_unused=True)
                grads = [torch.zeros_like(a) if g is None else g.reshape(a.shape) for g, a in zip(grads, store)]
                mat = relevance(store, list(grads))
            else:
                mat = rollout(store, p["head_fusion"], p["discard_ratio"])
        return mat, scores.detach(), resolved, sorted(set(names), key=names.index)

    def _text(self, clf: TextClassifier, inputs: Any, target: TargetLike, p: dict[str, Any]) -> Attribution:
        if not isinstance(inputs, str):
            raise InputError("attention methods on a TextClassifier take one text (a str)")
        enc = clf.encode(inputs)
        ids, mask = enc.input_ids.to(clf.device), enc.attention_mask.to(clf.device)
        mat, scores, resolved, _names = self._matrix(clf.model, lambda: clf(ids, mask), target, p)
        row = mat[:, 0] if clf.pooling == "cls" else mat.mean(1)
        values = row.masked_fill(enc.special.to(row.device)[None], 0.0)
        return Attribution(
            values=values.cpu(), method=self.name, target=resolved.cpu(),
            scores=scores.gather(1, resolved.view(-1, 1)).squeeze(1).cpu(), params=p, raw=mat.cpu(),
            extras={"tokens": enc.tokens, "words": enc.words, "word_ids": enc.word_ids}, default_reduce="none",
            signed=False,
        )

    def _image(self, model: nn.Module, x: torch.Tensor, target: TargetLike, p: dict[str, Any]) -> Attribution:
        mat, scores, resolved, names = self._matrix(
            model, lambda: scores_from_output(model(x), x.shape[0]), target, p)
        tokens = int(mat.shape[-1])
        grid = token_grid(tokens, (int(x.shape[-2]), int(x.shape[-1])))
        if grid is None:
            raise ModelError(f"{tokens} tokens do not form a grid on the {tuple(x.shape[-2:])} image (after at most "
                             "8 leading class/register tokens); cannot map them to the image")
        h, w = grid
        extra = tokens - h * w
        # the explained row: the first (class) token when there are extra tokens, else the mean over tokens
        # (a mean-pooled model); the columns of the patch tokens, the last h * w of the sequence
        row = mat[:, 0, extra:] if extra else mat.mean(1)
        raw = row.reshape(-1, h, w)
        values = F.interpolate(raw[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
        return Attribution(
            values=values.detach(), method=self.name, target=resolved,
            scores=scores.gather(1, resolved.view(-1, 1)).squeeze(1), params=p, raw=raw, inputs=x,
            default_reduce="none", signed=False,
            extras={"attention_modules": names, "readout": "class token" if extra else "mean over tokens",
                    "extra_tokens": extra},
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
