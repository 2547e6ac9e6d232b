"""Automatic Concept-based Explanations (ACE).

Ghorbani, Wexler, Zou & Kim 2019, "Towards Automatic Concept-based Explanations", NeurIPS, arXiv:1902.03129
(code: github.com/amiratag/ACE). For images of one class:

1. segment every image at several resolutions (SLIC with ``n_segments=(15, 50, 80)``, ``compactness=20``,
   ``sigma=1`` as the authors' code); drop tiny segments (at most 0.1% of the image) and near-duplicates
   (IoU > 0.5 with a segment of the same image kept at a coarser resolution);
2. turn each segment into a patch: pixels outside it take the pad value (the images' mean, the paper's
   "average pixel value"), crop to its bounding box, resize (bilinear) to the input size;
3. embed the patches at ``layer`` (the spatial mean of a ``(C, h, w)`` map, as the authors' code);
4. k-means with ``n_clusters``; keep a cluster when it is populated and common across images (the authors'
   three rules on its size ``L`` and its number of distinct images ``U`` out of ``N``: ``L >= min_patches``
   and ``U > L / 2``, or ``U > L / 4`` and ``U > N / 4``, or ``U > L / 10`` and ``U > N / 2``), with its
   ``max_patches`` members nearest the centre (the outliers are dropped);
5. score each concept with TCAV (:mod:`.tcav`) for the class: its CAVs against ``n_repeats`` random sets
   give its TCAV score and its sensitivity (mean cosine between the class gradients and the CAVs). The
   test compares the sensitivity with that of ``n_null`` random concepts of the same size (fixed sets of
   random patches outside the random pool, through the same random sets): two-sided, the t prediction
   interval of one more draw. A fixed set's scores vary over the runs only through the random sets, so the
   paper's t-test of the runs against random-vs-random runs (Kim et al. 2018 sec. 3.5, as Ghorbani et
   al. 2019) misses the variation between random sets and passes random concepts; the null here has it
   (docs/decisions.md). Random concepts (random patches) are scored the same way as controls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.device import model_device
from ..core.errors import InputError, ParameterError
from ..core.layers import get_layer
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ._capture import capture, resolve_model
from .tcav import (
    _class_grads,
    _flat,
    _layer_acts,
    cav_scores,
    prediction_p,
    random_concept_null,
    random_sets,
    sensitivity,
)

#: the authors' resolutions and SLIC settings
N_SEGMENTS = (15, 50, 80)
MIN_AREA = 0.001
THUMB_SIDE = 64


@dataclass(eq=False)
class Concept:
    """One discovered concept. ``patches``: model-space thumbnails ``(K, C, h, w)`` of its members (at most
    ``THUMB_SIDE`` px); ``images``: ``(K,)`` index of each member's source image; ``masks``: ``(K, H, W)``
    bool, the member's segment in that image; ``n_members``/``n_images``: the cluster's size and distinct
    images before the outliers were dropped; TCAV: ``score`` (mean over repeats), ``scores``;
    ``sensitivity``: the mean cosine between the class gradients and the concept's CAVs (the tested
    statistic; breaks ties of the score, which saturates at 0 or 1 when the class gradients agree);
    ``random_scores``/``random_sensitivities``: the same for the null's random concepts of this size,
    ``(n_null,)``; ``p_value`` (two-sided, the sensitivity against the null's), ``significant``."""

    index: int
    patches: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    n_members: int
    n_images: int
    score: float
    scores: torch.Tensor
    random_scores: torch.Tensor
    p_value: float
    significant: bool
    sensitivity: float = 0.0
    random_sensitivities: torch.Tensor = field(default_factory=lambda: torch.zeros(0))


@dataclass(eq=False)
class ACEResult:
    """``concepts`` sorted by TCAV score (significant ones first, ties by sensitivity); ``random_concepts``:
    the controls (random patches scored the same way; index -1, -2, ...); ``n_patches``: segments embedded;
    ``params``: what was used."""

    concepts: list[Concept]
    random_concepts: list[Concept]
    layer: str
    target: int
    n_images: int
    n_patches: int
    params: dict[str, Any] = field(default_factory=dict)

    def top(self) -> Concept:
        """The highest-scoring significant concept (the highest-scoring one when none is significant)."""
        return self.concepts[0]

    def show(self) -> Any:
        """The concepts in a FeatureGallery's "concepts" tab."""
        from ..widgets.gallery import FeatureGallery

        return FeatureGallery.from_concepts(self)


# ----- segments and patches ----------------------------------------------------------------------------


def _requirements() -> tuple[Any, Any]:
    try:
        from skimage.segmentation import slic
        from sklearn.cluster import KMeans
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "ACE segments with scikit-image and clusters with scikit-learn (and TCAV's test uses scipy): "
            "pip install 'xaiwidgets[concepts]'"
        ) from exc
    return slic, KMeans


def _for_segmentation(x: torch.Tensor) -> np.ndarray:
    """One model-ready image ``(C, H, W)`` as ``(H, W, C)`` in [0, 1] (min-max over the image)."""
    a = x.detach().float().cpu()
    a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-12)
    return a.permute(1, 2, 0).numpy().astype(np.float64)


def segment(image: torch.Tensor, n_segments: Sequence[int], compactness: float, slic: Any) -> list[torch.Tensor]:
    """The unique segments of one image over the resolutions: a list of ``(H, W)`` bool masks."""
    img = _for_segmentation(image)
    channel_axis = -1 if img.shape[2] > 1 else None
    img = img if channel_axis is not None else img[..., 0]
    kept = torch.zeros(0, image.shape[-2] * image.shape[-1])
    area = image.shape[-1] * image.shape[-2]
    for n in n_segments:
        labels = torch.from_numpy(slic(img, n_segments=int(n), compactness=float(compactness), sigma=1.0,
                                       start_label=0, channel_axis=channel_axis).astype(np.int64)).flatten()
        onehot = F.one_hot(labels).T.float()  # (S, H*W): SLIC's segments of this resolution are disjoint
        onehot = onehot[onehot.sum(1) > MIN_AREA * area]
        inter = onehot @ kept.T  # IoU with the segments kept at coarser resolutions
        union = onehot.sum(1)[:, None] + kept.sum(1)[None, :] - inter
        unique = ~(inter > 0.5 * union).any(1)
        kept = torch.cat([kept, onehot[unique]])
    masks = [m.view(image.shape[-2], image.shape[-1]).bool() for m in kept]
    return masks


def make_patch(image: torch.Tensor, mask: torch.Tensor, pad: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The segment of ``image`` ``(C, H, W)`` on the pad value, cropped to its box, resized to ``size``."""
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    patch = torch.where(mask.to(image.device), image, pad)[:, y0:y1, x0:x1]
    return F.interpolate(patch[None], size=size, mode="bilinear", align_corners=False)[0]


def keep_cluster(n_members: int, n_images: int, n_total: int, min_patches: int) -> bool:
    """The authors' rules: populated, and common across images (see the module docstring)."""
    if n_members < min_patches:
        return False
    return (n_images > 0.5 * n_members or (n_images > 0.25 * n_members and n_images > 0.25 * n_total)
            or (n_images > 0.1 * n_members and n_images > 0.5 * n_total))


# ----- ACE ----------------------------------------------------------------------------------------------


def _patch_acts(cap: Any, layer: str, x: torch.Tensor, segments: list[tuple[int, torch.Tensor]], idx: Sequence[int],
                pad: torch.Tensor, batch_size: int, device: torch.device, pool: bool, prog: Progress,
                label: str) -> torch.Tensor:
    """Activations ``(len(idx), D)`` at ``layer`` of the patches of ``segments[idx]`` (spatial means with
    ``pool``)."""
    idx, size, out = list(idx), (int(x.shape[2]), int(x.shape[3])), []
    with torch.no_grad():
        for a in range(0, len(idx), batch_size):
            part = idx[a : a + batch_size]
            batch = torch.stack([make_patch(x[segments[k][0]], segments[k][1], pad, size) for k in part])
            cap.run(batch.to(device))
            out.append(_flat(cap.acts[layer], pool).cpu())
            prog.update(min(a + batch_size, len(idx)), len(idx), label)
    return torch.cat(out)


def _check(images: Any, adapter: Any, n_clusters: int, n_repeats: int, n_controls: int, n_null: int,
           n_segments: Sequence[int]) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) and adapter is not None:
        images = adapter.preprocess(list(images) if isinstance(images, (list, tuple)) else images)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise InputError("images must be model-ready float images (N, C, H, W) of one class (or raw images with "
                         "an ImageClassifier adapter)")
    if images.shape[0] < 2:
        raise InputError(f"ACE finds concepts shared by images: pass at least 2 images (got {images.shape[0]})")
    if not bool(torch.isfinite(images).all()):
        raise InputError("the images contain NaN or inf values")
    for name, value, low in (("n_clusters", n_clusters, 2), ("n_repeats", n_repeats, 2), ("n_controls", n_controls, 0),
                             ("n_null", n_null, 3)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(f"{name} must be an int >= {low}, got {value!r}")
    if not n_segments or not all(isinstance(n, int) and n >= 2 for n in n_segments):
        raise ParameterError(f"n_segments must be a sequence of ints >= 2 (SLIC resolutions), got {n_segments!r}")
    return images.detach()


def ace(
    model: Any,
    images: Any,
    layer: str,
    *,
    target: int | None = None,
    n_segments: Sequence[int] = N_SEGMENTS,
    compactness: float = 20.0,
    n_clusters: int = 25,
    min_patches: int | None = None,
    max_patches: int = 40,
    random: torch.Tensor | None = None,
    n_random: int = 200,
    n_repeats: int = 20,
    n_controls: int = 5,
    n_null: int = 20,
    alpha: float = 0.01,
    pad_value: float | Sequence[float] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress: Progress | bool | None = None,
) -> ACEResult:
    """Discover the concepts of ``images`` (model-ready ``(N, C, H, W)``, all of one class) at ``layer`` and
    score them for ``target`` (default: the class predicted most often); see the module docstring.

    ``min_patches`` (default ``max(3, ceil(N / 5))``) and ``max_patches`` bound a concept's size; ``random``
    (model-ready images) is the pool of random examples for TCAV, by default ``n_random`` patches drawn
    from all the segments; ``pad_value`` fills the outside of a segment (default: the images' per-channel
    mean). ``n_repeats`` random runs per concept; the null is ``n_null`` random concepts of its size
    (random patches outside the pool), significance at ``alpha`` (0.01 as the authors' code);
    ``n_controls`` random concepts (random patches, as many as the largest concept) are tested the same way.
    """
    slic, kmeans_cls = _requirements()
    module, adapter = resolve_model(model)
    get_layer(module, layer)  # unknown names fail here, with the closest names
    x = _check(images, adapter, n_clusters, n_repeats, n_controls, n_null, n_segments)
    n, size = x.shape[0], (int(x.shape[2]), int(x.shape[3]))
    min_patches = max(3, math.ceil(n / 5)) if min_patches is None else int(min_patches)
    device = model_device(module)
    pad = (x.mean((0, 2, 3)) if pad_value is None else torch.as_tensor(pad_value, dtype=x.dtype).expand(x.shape[1]))
    pad = pad.to(x.dtype).view(-1, 1, 1)
    prog = as_progress(progress)
    try:
        segments: list[tuple[int, torch.Tensor]] = []
        for i in range(n):
            segments += [(i, m) for m in segment(x[i], n_segments, compactness, slic)]
            prog.update(i + 1, n, "ace: segmenting")
        if len(segments) < max(n_clusters, 2 * min_patches):
            raise InputError(
                f"too few images for {n_clusters} clusters: {n} images gave {len(segments)} segments; pass more "
                "images of the class, or fewer clusters (n_clusters=) and a smaller min_patches="
            )
        with preserved(module), capture(module, [layer], stop_early=False) as cap:
            module.eval()
            emb = _patch_acts(cap, layer, x, segments, range(len(segments)), pad, batch_size, device, True, prog,
                              "ace: embedding patches")
            if target is None:
                with torch.no_grad():
                    predicted = torch.cat([cap.run(x[a : a + batch_size].to(device)).argmax(1).cpu()
                                           for a in range(0, n, batch_size)])
                target = int(torch.mode(predicted).values)
        km = kmeans_cls(n_clusters=n_clusters, n_init=10, random_state=seed).fit(emb.double().numpy())
        labels = torch.from_numpy(km.labels_.astype(np.int64))
        cost = torch.from_numpy(km.transform(emb.double().numpy()).min(1))
        owner = torch.tensor([i for i, _ in segments])
        kept = []
        for c in range(n_clusters):
            idx = (labels == c).nonzero().flatten()
            if keep_cluster(idx.numel(), int(owner[idx].unique().numel()), n, min_patches):
                kept.append((c, idx[cost[idx].argsort()[:max_patches]], idx.numel()))
        if not kept:
            raise InputError(
                f"no concept passed the filters: every cluster of the {len(segments)} segments is too small "
                f"(< min_patches={min_patches}) or confined to few of the {n} images; pass more images of the "
                "class, fewer clusters, or a smaller min_patches"
            )
        gen = torch.Generator().manual_seed(seed)
        largest = max(len(m) for _, m, _ in kept)
        controls = [torch.randperm(len(segments), generator=gen)[:largest] for _ in range(n_controls)]
        pool = None if random is not None else torch.randperm(len(segments), generator=gen)[:n_random]
        # the null's random concepts: n_null independent sets of random patches outside the pool (a concept
        # of size k is compared with the first k of each)
        outside = torch.ones(len(segments), dtype=torch.bool)
        if pool is not None:
            outside[pool] = False
        outside = outside.nonzero().flatten()
        if outside.numel() < largest:
            raise InputError(f"{len(segments)} segments leave {outside.numel()} outside the random pool, fewer than "
                             f"a concept ({largest}): pass more images, or a smaller n_random=")
        null_sets = [outside[torch.randperm(outside.numel(), generator=gen)[:largest]] for _ in range(n_null)]
        # the CAVs live in the layer's full activation space (as the authors' code): a second pass over the
        # patches the tests need
        needed = torch.cat([m for _, m, _ in kept] + controls + null_sets + ([] if pool is None else [pool])).unique()
        where = torch.full((len(segments),), -1, dtype=torch.long)
        where[needed] = torch.arange(needed.numel())
        with preserved(module), capture(module, [layer], stop_early=False) as cap:
            module.eval()
            acts = _patch_acts(cap, layer, x, segments, needed.tolist(), pad, batch_size, device, False, prog,
                               "ace: activations for the CAVs")
            a_random = acts[where[pool]] if pool is not None else _layer_acts(module, cap, random, batch_size, device)
            grads = _class_grads(cap, layer, x, int(target), batch_size, device)
        if a_random.shape[0] < 4:
            raise InputError("the random pool needs at least 4 examples (two disjoint random sets per repeat)")
        concepts, nulls = [], {}
        todo = [*kept, *[(-1 - r, m, m.numel()) for r, m in enumerate(controls)]]
        for j, (c, members, count) in enumerate(todo):
            k = members.numel()
            sets = random_sets(a_random.shape[0], min(k, a_random.shape[0] // 2), n_repeats, seed)
            if k not in nulls:  # random concepts of this size through the same random sets, for every concept of it
                nulls[k] = random_concept_null([acts[where[m[:k]]] for m in null_sets], a_random, sets, grads)
            sc, cavs, _ = cav_scores(acts[where[members]], a_random, sets, grads)
            sens = sensitivity(grads, cavs)
            p = prediction_p(sens, nulls[k][1])
            thumbs = torch.stack([make_patch(x[segments[i][0]], segments[i][1], pad, size) for i in members.tolist()])
            if max(size) > THUMB_SIDE:
                side = (max(1, size[0] * THUMB_SIDE // max(size)), max(1, size[1] * THUMB_SIDE // max(size)))
                thumbs = F.interpolate(thumbs, size=side, mode="area")
            concepts.append(Concept(
                index=c, patches=thumbs.cpu(), images=owner[members],
                masks=torch.stack([segments[k][1] for k in members.tolist()]), n_members=int(count),
                n_images=int(owner[labels == c].unique().numel()) if c >= 0 else int(owner[members].unique().numel()),
                score=float(sc.mean()), scores=sc, random_scores=nulls[k][0], p_value=p, sensitivity=sens,
                random_sensitivities=nulls[k][1], significant=p < alpha,
            ))
            prog.update(j + 1, len(todo), "ace: tcav")
    finally:
        prog.close()
    random_concepts = concepts[len(kept) :]
    concepts = concepts[: len(kept)]
    concepts.sort(key=lambda k: (not k.significant, -k.score, -k.sensitivity))
    return ACEResult(
        concepts=concepts, random_concepts=random_concepts,
        layer=layer if isinstance(layer, str) else type(layer).__name__,
        target=int(target), n_images=n, n_patches=len(segments),
        params={"n_segments": tuple(n_segments), "compactness": compactness, "n_clusters": n_clusters,
                "min_patches": min_patches, "max_patches": max_patches, "n_repeats": n_repeats, "alpha": alpha,
                "n_controls": n_controls,
                "n_null": n_null, "seed": seed},
    )
