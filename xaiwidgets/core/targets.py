"""Target resolution: which output score each sample is explained for."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import ModelError, TargetError

TargetLike = int | Sequence[int] | torch.Tensor | None


def scores_from_output(output: object, n: int | None = None) -> torch.Tensor:
    """Extract ``(N, C)`` class scores from a model output.

    Accepts a tensor, or an object with ``.logits`` (Hugging Face), or a 1-tuple/list of one tensor.
    Anything else, or a tensor that is not 2-D, raises :class:`ModelError` saying how to fix it.
    """
    scores = output
    if not isinstance(scores, torch.Tensor):
        if hasattr(scores, "logits"):
            scores = scores.logits
        elif isinstance(scores, (tuple, list)) and len(scores) >= 1 and isinstance(scores[0], torch.Tensor):
            scores = scores[0]
        else:
            raise ModelError(
                f"the model returned {type(output).__name__}, not a tensor of class scores; wrap it so "
                "that it returns an (N, C) tensor, e.g. lambda x: model(x)['logits']"
            )
    if scores.dim() == 1 and n is not None and scores.shape[0] == n:
        scores = scores[:, None]  # one score per sample (binary logit): class 0, as captum's target=None
    if scores.dim() != 2:
        raise ModelError(
            f"the model must return (N, C) class scores; it returned shape {tuple(scores.shape)}. "
            "Wrap it (e.g. with .flatten(1) or .unsqueeze(1)) so each sample gets a row of scores."
        )
    if n is not None and scores.shape[0] != n:
        raise ModelError(f"the model returned {scores.shape[0]} rows of scores for {n} inputs")
    if not scores.is_floating_point():
        raise ModelError(f"the model returned {scores.dtype} scores; gradients need floating point scores")
    return scores


def resolve_target(target: TargetLike, scores: torch.Tensor) -> torch.Tensor:
    """A ``(N,)`` long tensor of class indices on the scores' device.

    ``None`` takes the predicted class (argmax), an ``int`` applies to every sample, a sequence or tensor
    gives one class per sample.
    """
    n, c = scores.shape
    nan_rows = torch.isnan(scores.detach()).any(1)
    if bool(nan_rows.any()):
        rows = nan_rows.nonzero().flatten().tolist()
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise ModelError(
            f"the model returned NaN scores for {len(rows)} of {n} inputs (rows {shown}); explanations of NaN are "
            "NaN. Check the inputs (normalised as the model expects?) and the model's weights"
        )
    if target is None:
        return scores.detach().argmax(1)
    if isinstance(target, bool):
        raise TargetError("target must be a class index, not a bool")
    if isinstance(target, int):
        resolved = torch.full((n,), target, dtype=torch.long, device=scores.device)
    else:
        try:
            resolved = torch.as_tensor(target, device=scores.device)
        except (TypeError, ValueError) as exc:
            raise TargetError(f"target must be an int, a sequence of ints or a tensor; got {target!r}") from exc
        if resolved.is_floating_point() or resolved.dtype == torch.bool:
            raise TargetError(f"target must hold integer class indices, got dtype {resolved.dtype}")
        resolved = resolved.long().reshape(-1)
        if resolved.numel() == 1 and n > 1:
            resolved = resolved.expand(n).clone()
        if resolved.numel() != n:
            raise TargetError(f"got {resolved.numel()} targets for {n} inputs; give one per input or a single int")
    bad = (resolved < 0) | (resolved >= c)
    if bool(bad.any()):
        value = int(resolved[bad][0])
        raise TargetError(f"target {value} is out of range: the model has {c} classes (valid: 0..{c - 1})")
    return resolved


def gather_scores(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``scores[i, target[i]]`` for each row."""
    return scores.gather(1, target.view(-1, 1).to(scores.device)).squeeze(1)
