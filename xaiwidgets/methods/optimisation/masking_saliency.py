"""Masking saliency with in/out losses: Phang, Park & Geras 2020, "Investigating and Simplifying
Masking-based Saliency Methods for Model Interpretability", arXiv:2010.09750.

A mask ``m`` in [0, 1] (1 = evidence) is good when the masked-in image ``x * m`` keeps the class
(``L_in``: cross-entropy of the target on ``x * m``) and the masked-out image ``x * (1 - m)`` leaves the
classifier maximally uncertain (``L_out``: minus the entropy of its prediction), as small as it can be:

    loss = L_in + lambda_in * [f(x * m) predicts t] * mean(m)
         + L_out + lambda_out * [f(x * (1 - m)) does not predict t] * mean(m) + TV(m)

The area penalties are gated as in the authors' code (zphang/saliency_investigation, casme/criterion.py,
``MaskerCriterion``): the masked-out one applies only while the removed region still confuses the
classifier, the masked-in one only while the kept region is still classified as the target. Masked
pixels are 0 in the model's input space (the normalisation mean for a normalised model), as theirs.
``TV`` is their ``tv_loss`` (squared differences of neighbours plus 0.3 x the squared border, halved),
counted once per criterion. Defaults are their final "FIX" configuration (``assets/fix.json``):
lambda_in = 1, lambda_out = 10, lambda_tv = 1e-3.

Two ways to get masks (docs/differences.md):

- **per image** (``masking_saliency`` without ``masker``): the mask is a grid of logits (one per
  ``cell_size`` pixels, default an 8 x 8 grid, upsampled bilinearly, sigmoid) optimised for each image with
  Adam;
- **trained masker** (the paper's method): :func:`fit_masker` trains a small generator reading the frozen
  classifier's features on a data set, which then explains new images in one forward pass
  (``masking_saliency(..., masker=generator)`` or ``generator.attribute(inputs)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...core.adapters import unwrap_model
from ...core.attribution import Attribution
from ...core.errors import Cancelled, LayerError, ModelError, ParameterError
from ...core.inputs import as_batch
from ...core.progress import Progress, as_progress
from ...core.state import Hooks, preserved, warn_if_training
from ...core.targets import TargetLike, gather_scores, resolve_target
from ..base import require
from ..perturbation._common import check_positive_int, check_seed, generator
from ..registry import register
from ._common import ImageOptimisation, Tap, as_module, block_maps, resolve_layer_names

#: the authors' final ("FIX") weights
LAMBDA_IN, LAMBDA_OUT, LAMBDA_TV = 1.0, 10.0, 1e-3
TV_BORDER = 0.3
#: default per-image mask grid (GRID x GRID cells, as coarse as the paper's ResNet-50 last stage, 7 x 7): finer
#: grids fit adversarial speckle (shapes IoU with the object: 0.15 at 16 x 16, 0.26 at 8 x 8 on 8 images)
GRID = 8


def tv_loss(mask: torch.Tensor) -> torch.Tensor:
    """Per-mask total variation of ``(N, 1, H, W)`` masks as the authors' ``tv_loss`` (power 2, border 0.3)."""
    w_var = (mask[..., :, :-1] - mask[..., :, 1:]).pow(2).flatten(1).sum(1)
    h_var = (mask[..., :-1, :] - mask[..., 1:, :]).pow(2).flatten(1).sum(1)
    border = (mask[..., -1, :].pow(2) + mask[..., 0, :].pow(2)).flatten(1).sum(1) + (
        mask[..., :, -1].pow(2) + mask[..., :, 0].pow(2)).flatten(1).sum(1)
    return (w_var + h_var + TV_BORDER * border) / 2.0


def entropy(scores: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(scores, dim=1)
    return -(log_p.exp() * log_p).sum(1)


def in_out_loss(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                weights: tuple[float, float, float], clean_ok: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-image masker loss (module docstring) from one forward of ``[x * m; x * (1 - m)]``; ``clean_ok``
    (the classifier is right on ``x``) gates ``L_out`` and its penalty as the authors' training does."""
    from ...core.targets import scores_from_output

    n = x.shape[0]
    lam_in, lam_out, lam_tv = weights
    both = scores_from_output(model(torch.cat([x * mask, x * (1 - mask)])), 2 * n)
    s_in, s_out = both[:n], both[n:]
    area = mask.flatten(1).mean(1)
    kept = s_in.argmax(1).eq(target).float()
    confused = s_out.argmax(1).ne(target).float()
    ok = torch.ones_like(area) if clean_ok is None else clean_ok.float()
    l_in = F.cross_entropy(s_in, target, reduction="none")
    ent = entropy(s_out)
    loss = (l_in + lam_in * kept * area - ok * ent + lam_out * ok * confused * area
            + 2 * lam_tv * tv_loss(mask))
    return loss, {"in_probability": F.softmax(s_in, 1).gather(1, target[:, None]).squeeze(1).detach(),
                  "out_entropy": ent.detach(), "area": area.detach(), "kept": kept.bool(),
                  "confused": confused.bool()}


def _check_weights(params: dict[str, Any]) -> None:
    for key in ("lambda_in", "lambda_out", "lambda_tv"):
        value = params[key]
        require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
                f"{key} must be a number >= 0, got {value!r}")


# --- the trained masker ---------------------------------------------------------------------------------------


def masker_layers(model: nn.Module, inputs: torch.Tensor, n_layers: int = 2) -> list[str]:
    """The last block output on each of the last ``n_layers`` distinct grids (the paper reads ResNet-50's
    last two stages, ``layer3`` and ``layer4``); found by behaviour, for any CNN."""
    blocks = block_maps(model, inputs)
    if not blocks:
        raise LayerError("the mask generator reads the classifier's spatial feature maps, but the model has "
                         "none on the input grid; pass layers=['<dotted name>', ...]")
    last_on: dict[tuple[int, int], str] = {}
    for name, grid in blocks:
        last_on.pop(grid, None)
        last_on[grid] = name  # insertion order: by the last block on each grid
    return list(last_on.values())[-n_layers:]


class MaskGenerator(nn.Module):
    """The masker: each feature map -> 1x1 conv (``width`` channels), batch norm, ReLU, bilinear upsampling to
    the finest map's grid; concatenated -> 3x3 conv -> sigmoid -> bilinear upsampling to the input size
    (the paper's ``Masker`` over ResNet stages, for any CNN). Built and trained by :func:`fit_masker`."""

    def __init__(self, layers: list[str], channels: list[int], grid: tuple[int, int], input_hw: tuple[int, int],
                 width: int = 64) -> None:
        super().__init__()
        self.layers, self.grid, self.input_hw, self.width = list(layers), tuple(grid), tuple(input_hw), width
        self.reducers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()) for c in channels)
        self.final = nn.Conv2d(width * len(channels), 1, 3, padding=1)
        self.__dict__["classifier"] = None  # set by fit_masker; not a submodule (never saved or trained)
        self.history: list[float] = []

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        parts = [F.interpolate(r(f), size=self.grid, mode="bilinear", align_corners=False)
                 for r, f in zip(self.reducers, feats)]
        logits = F.interpolate(self.final(torch.cat(parts, 1)), size=self.input_hw, mode="bilinear",
                               align_corners=False)
        return torch.sigmoid(logits)

    def attribute(self, inputs: Any, target: TargetLike = None, **params: Any) -> Attribution:
        """Masks for ``inputs`` in one forward pass: ``masking_saliency`` with ``masker=self``."""
        if self.__dict__["classifier"] is None:
            raise ModelError("this mask generator has no classifier; build it with fit_masker(model, data)")
        return MaskingSaliency(self.__dict__["classifier"]).attribute(inputs, target, masker=self, **params)


def _batches(data: Any, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """One epoch of ``(inputs, labels or None)`` from a tensor, an ``(inputs, labels)`` pair, or an iterable of
    batches (a DataLoader yielding tensors or ``(inputs, labels, ...)``)."""
    if isinstance(data, torch.Tensor) or (isinstance(data, (tuple, list)) and len(data) == 2
                                          and all(isinstance(d, torch.Tensor) for d in data)):
        x, y = (data, None) if isinstance(data, torch.Tensor) else data
        order = torch.randperm(x.shape[0], generator=gen)
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]
            yield x[idx], None if y is None else y[idx]
        return
    if not isinstance(data, Iterable):
        raise ParameterError("data must be model inputs (N, C, H, W), a pair (inputs, labels), or an iterable "
                             f"of batches (a DataLoader); got {type(data).__name__}")
    for item in data:
        if isinstance(item, torch.Tensor):
            yield item, None
        elif isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
            yield item[0], item[1] if len(item) > 1 and isinstance(item[1], torch.Tensor) else None
        else:
            raise ParameterError(f"a batch must be a tensor or (inputs, labels, ...); got {type(item).__name__}")


def fit_masker(
    model: Any,
    data: Any,
    *,
    layers: Any = None,
    width: int = 64,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    lambda_in: float = LAMBDA_IN,
    lambda_out: float = LAMBDA_OUT,
    lambda_tv: float = LAMBDA_TV,
    seed: int = 0,
    progress: Progress | bool | None = None,
) -> MaskGenerator:
    """Train a :class:`MaskGenerator` for ``model`` on ``data`` (Phang, Park & Geras 2020, arXiv:2010.09750).

    ``data``: model inputs ``(N, C, H, W)`` (e.g. ``classifier.preprocess(images)``), a pair ``(inputs,
    labels)``, or an iterable of such batches. With labels, the entropy term and its area penalty apply only
    to images the classifier gets right (as the authors); without, the classifier's predictions are the
    labels. The classifier is frozen and read-only: it stays in its mode, no parameter, flag or ``.grad`` of
    it changes (gradients are taken for the masker's parameters only). Adam with the authors' learning rate
    and weight decay, gradient norm clipped at 10. ``layers``: the feature maps read (default: the last
    block output on each of the last two grids). Reports progress per batch and honours cancel.
    """
    net, _ = unwrap_model(model)
    net = as_module(net, "fit_masker")
    for key, value in (("width", width), ("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{key} must be an integer >= 1, got {value!r}")
    _check_weights({"lambda_in": lambda_in, "lambda_out": lambda_out, "lambda_tv": lambda_tv})
    gen = torch.Generator().manual_seed(int(seed))
    first = next(_batches(data, batch_size, torch.Generator().manual_seed(0)), None)
    if first is None:
        raise ParameterError("data holds no images")
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    sample = as_batch(first[0], net, device=device)
    if sample.dim() != 4:
        raise ParameterError(f"fit_masker learns image masks; data must be (N, C, H, W), got {tuple(sample.shape)}")
    warn_if_training(net)
    names = masker_layers(net, sample) if layers is None else resolve_layer_names(net, layers)
    tracker = as_progress(progress)
    try:
        with preserved(net), Hooks() as hooks:
            tap = Tap(net, names, hooks)
            with torch.no_grad():
                _, feats = tap.run(net, sample[:1])
            finest = max((tuple(f.shape[-2:]) for f in feats), key=lambda g: g[0] * g[1])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                masker = MaskGenerator(names, [int(f.shape[1]) for f in feats], finest,
                                       (int(sample.shape[-2]), int(sample.shape[-1])), width).to(device)
            masker.__dict__["classifier"] = model
            optimiser = torch.optim.Adam(masker.parameters(), lr=learning_rate, weight_decay=weight_decay)
            weights = (float(lambda_in), float(lambda_out), float(lambda_tv))
            total = epochs * _n_batches(data, batch_size)
            done = 0
            masker.train()
            for _epoch in range(epochs):
                losses = []
                for xb, yb in _batches(data, batch_size, gen):
                    xb = as_batch(xb, net, device=device)
                    with torch.no_grad():
                        scores, feats = tap.run(net, xb)
                    predicted = scores.argmax(1)
                    labels = predicted if yb is None else yb.to(device).long()
                    with torch.enable_grad():
                        mask = masker([f.detach() for f in feats])
                        loss, _ = in_out_loss(net, xb, mask, labels, weights, predicted.eq(labels))
                        params = [p for p in masker.parameters() if p.requires_grad]
                        grads = torch.autograd.grad(loss.mean(), params)
                    for p, g in zip(params, grads):
                        p.grad = g
                    torch.nn.utils.clip_grad_norm_(params, 10.0)
                    optimiser.step()
                    losses.append(float(loss.detach().mean()))
                    done += 1
                    tracker.update(min(done, total), total, "fit_masker")
                masker.history.append(sum(losses) / max(len(losses), 1))
    finally:
        tracker.close()
    masker.eval()
    for p in masker.parameters():
        p.grad = None
    return masker


def _n_batches(data: Any, batch_size: int) -> int:
    if isinstance(data, torch.Tensor):
        return math.ceil(data.shape[0] / batch_size)
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return math.ceil(data[0].shape[0] / batch_size)
    try:
        return len(data)
    except TypeError:
        return 1


# --- the method -----------------------------------------------------------------------------------------------


@register
class MaskingSaliency(ImageOptimisation):
    """Masks that keep the class when shown and leave only uncertainty when removed; see the module docstring."""

    name = "masking_saliency"
    reference = "Phang, Park & Geras 2020, arXiv:2010.09750"
    defaults: ClassVar[dict[str, Any]] = {
        "masker": None,
        "n_steps": 300,
        "learning_rate": 0.1,
        "cell_size": None,
        "lambda_in": LAMBDA_IN,
        "lambda_out": LAMBDA_OUT,
        "lambda_tv": LAMBDA_TV,
        "seed": 0,
    }
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {"n_steps": (50, 1000, 50)}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        require(inputs.dim() == 4, f"masking_saliency masks images (N, C, H, W); got {tuple(inputs.shape)}")
        masker = params["masker"]
        require(masker is None or isinstance(masker, MaskGenerator),
                f"masker must be None (optimise per image) or a MaskGenerator from fit_masker; got {masker!r}")
        if masker is not None:
            own = unwrap_model(masker.__dict__["classifier"])[0] if masker.__dict__["classifier"] is not None else None
            require(own is self.model, "this masker was trained for another model; fit one with "
                    "fit_masker(model, data) for this model")
            require(tuple(inputs.shape[-2:]) == masker.input_hw,
                    f"the masker was trained on {masker.input_hw} images; got {tuple(inputs.shape[-2:])}")
        check_positive_int(params, "n_steps")
        check_seed(params)
        _check_weights(params)
        lr = params["learning_rate"]
        require(isinstance(lr, (int, float)) and lr > 0, f"learning_rate must be > 0, got {lr!r}")
        cell = params["cell_size"]
        require(cell is None or (isinstance(cell, int) and cell >= 1), f"cell_size must be None or >= 1, got {cell!r}")

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        model = as_module(self.model, self.name)
        if params["masker"] is not None:
            return self._generate(model, inputs, target, params["masker"])
        return self._optimise(model, inputs.detach(), target, params, progress)

    def _generate(self, model: nn.Module, x: torch.Tensor, target: TargetLike, masker: MaskGenerator) -> Attribution:
        with Hooks() as hooks, torch.no_grad():
            scores, feats = Tap(model, masker.layers, hooks).run(model, x)
            resolved = resolve_target(target, scores)
            was = masker.training
            masker.eval()
            try:
                mask = masker(feats)
            finally:
                masker.train(was)
        predicted = scores.argmax(1)
        if bool(resolved.ne(predicted).any()):
            warnings.warn("the trained masker's mask does not depend on the target (as the paper's): it explains "
                          "the predicted class, not the requested one", stacklevel=4)
        return Attribution(values=mask.expand_as(x).clone(), method=self.name, target=resolved,
                           scores=gather_scores(scores, resolved),
                           extras={"source": "masker", "layers": list(masker.layers), "area": mask.flatten(1).mean(1)})

    def _optimise(self, model: nn.Module, x: torch.Tensor, target: TargetLike, params: dict[str, Any],
                  progress: Progress) -> Attribution:
        from ...core.targets import scores_from_output

        n, _, h, w = x.shape
        with torch.no_grad():
            scores = scores_from_output(model(x), n)
        resolved = resolve_target(target, scores)
        cell = params["cell_size"] or max(1, min(h, w) // GRID)
        gh, gw = math.ceil(h / cell), math.ceil(w / cell)
        gen = generator(params["seed"], x.device)
        logits = (0.01 * torch.randn(n, 1, gh, gw, generator=gen, device=x.device, dtype=x.dtype)).requires_grad_(True)
        optimiser = torch.optim.Adam([logits], lr=float(params["learning_rate"]))
        weights = (float(params["lambda_in"]), float(params["lambda_out"]), float(params["lambda_tv"]))
        steps = int(params["n_steps"])

        def mask_of(p: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False))

        info: dict[str, torch.Tensor] = {}
        for step in range(steps):
            with torch.enable_grad():
                loss, info = in_out_loss(model, x, mask_of(logits), resolved, weights)
                if not loss.requires_grad:
                    raise ModelError("masking_saliency optimises the mask by gradient, but the model's output does "
                                     "not depend differentiably on its input; use 'rise' or 'occlusion' instead")
                (grad,) = torch.autograd.grad(loss.sum(), logits)  # per-image losses: independent updates
            logits.grad = grad
            optimiser.step()
            try:
                progress.update(step + 1, steps, self.name)
            except Cancelled as exc:
                raise Cancelled(str(exc), partial=Attribution(
                    mask_of(logits.detach()).expand_as(x).clone(), self.name, resolved,
                    gather_scores(scores, resolved), extras={"complete": False, "steps_done": step + 1})) from exc
        mask = mask_of(logits.detach())
        with torch.no_grad():
            _, info = in_out_loss(model, x, mask, resolved, weights)
        return Attribution(values=mask.expand_as(x).clone(), method=self.name, target=resolved,
                           scores=gather_scores(scores, resolved), raw=logits.detach().clone(),
                           extras={"source": "per_image", "cell_size": cell, **info})
