"""Activation maximisation: gradient ascent on a parametrised image (feature visualisation).

Erhan, Bengio, Courville & Vincent 2009, "Visualizing Higher-Layer Features of a Deep Network";
Simonyan et al. 2013, arXiv:1312.6034; Yosinski et al. 2015, arXiv:1506.06579; Olah, Mordvintsev &
Schubert 2017, "Feature Visualization", Distill (doi:10.23915/distill.00007) — the default recipe here
(Fourier 1/f parametrisation, decorrelated colour, sigmoid, Adam lr 0.05, lucid's transformation set).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.device import model_device
from ..core.errors import ParameterError
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ._capture import capture, normalizer, resolve_model
from .objectives import OUTPUT, Objective
from .param import ImageParam, image_param
from .regularizers import Regularizer
from .transforms import resolve_transforms


@dataclass(eq=False)
class FeatureVis:
    """The result of :func:`maximize`.

    ``images``: ``(B, 3, H, W)`` float32 in [0, 1] on the CPU; ``objective_values``: ``(n_steps, B)``, the
    objective of each image at each step (on the transformed image the step saw); ``final_values``:
    ``(B,)`` the objective of the final untransformed images; ``frames``: ``(T, B, H, W, 3)`` uint8
    snapshots (the initial image, then every ``snapshot_every`` steps, and the final image) taken at the
    steps in ``frame_steps``; ``params``: the resolved parameters.
    """

    images: torch.Tensor
    objective_values: torch.Tensor
    final_values: torch.Tensor
    frames: np.ndarray | None
    frame_steps: list[int]
    params: dict[str, Any]
    objective: str
    frame_kind: str = "optimisation_step"
    extras: dict[str, Any] = field(default_factory=dict)

    def to_uint8(self) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 images for display."""
        return _to_uint8(self.images)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_regularizers(regularizers: Sequence[Regularizer] | None, param: str) -> list[Regularizer]:
    regs = list(regularizers or [])
    for r in regs:
        if not isinstance(r, Regularizer):
            raise ParameterError(
                f"regularizers must be xaiwidgets.featurevis.regularizers objects, got {type(r).__name__}"
            )
        if r.pixel_only and param != "pixel":
            raise ParameterError(f"{type(r).__name__} edits pixels and needs param='pixel' (got param={param!r})")
    return regs


def maximize(
    model: Any,
    objective: Objective,
    *,
    param: str = "fft",
    decorrelate: bool = True,
    size: int | tuple[int, int] = 128,
    batch: int | None = None,
    n_steps: int = 256,
    lr: float = 0.05,
    seed: int = 0,
    sd: float = 0.01,
    transforms: str | Sequence[Callable] | None = "standard",
    regularizers: Sequence[Regularizer] | None = None,
    normalize: bool | tuple = True,
    snapshot_every: int | None = None,
    progress: Progress | Callable[[float, str], None] | bool | None = None,
) -> FeatureVis:
    """Optimise ``batch`` images to maximise ``objective`` on ``model`` (on the model's device).

    ``param``: ``"fft"`` (1/f-scaled Fourier basis) or ``"pixel"``; ``decorrelate``: optimise colours in
    the decorrelated ImageNet colour basis; images go through a sigmoid into [0, 1], then ``transforms``
    (``"standard"``: lucid's pad/jitter/scale/rotate set; ``None``: none), then the model's
    normalisation (``normalize``: the adapter's mean/std, ImageNet statistics for a bare module).
    ``batch`` defaults to the objective's (``channel_objectives(layer, channels)`` has one image per
    channel) or 1. Only the image parameters get gradients (``torch.autograd.grad``); the model's
    parameters, modes and hooks are left as they were. ``snapshot_every=k`` stores a frame every k steps
    and streams it: ``progress.emit("frames", {"frames", "frame_steps", "objective_values"})`` hands the
    lists so far (uint8 ``(B, H, W, 3)`` arrays, ints, ``(B,)`` tensors; shared, read them only).
    Cancellable through ``progress``.
    """
    module, adapter = resolve_model(model)
    if not isinstance(objective, Objective):
        raise ParameterError(
            "objective must be an xaiwidgets.featurevis Objective, e.g. featurevis.channel('layer3', 5)"
        )
    n_steps = _positive_int("n_steps", n_steps)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ParameterError(f"lr must be a positive number, got {lr!r}")
    if snapshot_every is not None:
        snapshot_every = _positive_int("snapshot_every", snapshot_every)
    if batch is None:
        batch = objective.batch or 1
    batch = _positive_int("batch", batch)
    if objective.batch is not None and batch != objective.batch:
        raise ParameterError(f"the objective is for a batch of {objective.batch} images, got batch={batch}")
    regs = _check_regularizers(regularizers, param)
    device = model_device(module)
    img_param = image_param(param, batch=batch, size=size, decorrelate=decorrelate, sd=sd, seed=seed,
                            device=device)
    tf = resolve_transforms(transforms, img_param.size[0])
    norm = normalizer(adapter, normalize, device)
    prog = as_progress(progress)
    gen = torch.Generator().manual_seed(int(seed))
    history: list[torch.Tensor] = []
    frames: list[np.ndarray] = []
    frame_steps: list[int] = []

    def evaluate(cap, image: torch.Tensor) -> torch.Tensor:
        out = cap.run(norm(image))
        acts = dict(cap.acts)
        if objective.needs_output:
            acts[OUTPUT] = out
        values = objective(acts, batch)
        if values.shape != (batch,):
            raise ParameterError(f"the objective returned shape {tuple(values.shape)}, expected ({batch},)")
        return values

    with preserved(module), capture(
        module, objective.layers, stop_early=not objective.needs_output
    ) as cap:
        module.eval()
        optimizer = torch.optim.Adam(img_param.params, lr=lr)
        if snapshot_every:
            frames.append(_to_uint8(img_param.image().detach()))
            frame_steps.append(0)
        try:
            for step in range(n_steps):
                values = _step(img_param, optimizer, regs, tf, gen, lambda im: evaluate(cap, im), step)
                history.append(values)
                if snapshot_every and (step + 1) % snapshot_every == 0:
                    frames.append(_to_uint8(img_param.image().detach()))
                    frame_steps.append(step + 1)
                    prog.emit("frames", {"frames": frames, "frame_steps": frame_steps, "objective_values": history})
                prog.update(step + 1, n_steps, "feature visualisation")
        finally:
            prog.close()
        with torch.no_grad():
            final_image = img_param.image()
            final_values = evaluate(cap, final_image)
        if snapshot_every and frame_steps[-1] != n_steps:
            frames.append(_to_uint8(final_image))
            frame_steps.append(n_steps)
    params = {
        "param": param, "decorrelate": decorrelate, "size": img_param.size, "batch": batch, "n_steps": n_steps,
        "lr": lr, "seed": seed, "sd": sd, "transforms": transforms if isinstance(transforms, str) else
        [repr(t) for t in tf.transforms], "regularizers": [repr(r) for r in regs], "snapshot_every": snapshot_every,
    }
    return FeatureVis(
        images=final_image.detach().float().cpu(),
        objective_values=torch.stack(history).float().cpu(),
        final_values=final_values.detach().float().cpu(),
        frames=np.stack(frames) if frames else None,
        frame_steps=frame_steps,
        params=params,
        objective=objective.name,
    )


def _step(
    img_param: ImageParam, optimizer: torch.optim.Optimizer, regs: list[Regularizer], tf, gen: torch.Generator,
    evaluate: Callable[[torch.Tensor], torch.Tensor], step: int,
) -> torch.Tensor:
    """One Adam ascent step; returns the objective values (detached) the step saw."""
    image = img_param.image()
    values = evaluate(tf(image, gen))
    loss = -values.sum()
    for r in regs:
        pen = r.penalty(image)
        if pen is not None:
            loss = loss + pen.sum()
    (grad,) = torch.autograd.grad(loss, img_param.params)
    for r in regs:
        grad = r.on_gradient(grad, img_param)
    img_param.tensor.grad = grad
    optimizer.step()
    img_param.tensor.grad = None
    with torch.no_grad():
        for r in regs:
            r.after_step(img_param, step)
    return values.detach()
