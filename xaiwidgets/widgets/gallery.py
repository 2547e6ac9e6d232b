"""FeatureGallery: a layer's channels visualised by activation maximisation (one batched run), each with
its optimisation scrubber and its top activating data-set patches; the layer's activation grid for a
data-set image; a network-dissection table (units x concepts IoU).

The kernel computes (``xaiwidgets.featurevis``), the browser draws. Tiles stream in while the images are
optimised; a click on a tile is a ``select`` request answered from what the kernel already holds (the
channel's snapshots and top patches). Images travel as uint8 array dicts. The wire format is in
``docs/widget-protocol.md`` ("FeatureGallery").
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import traitlets

from .. import featurevis as fv
from ..core.adapters import unwrap_model
from ..core.errors import InputError, ParameterError
from ..core.inputs import as_batch
from ..core.layers import get_layer
from ..core.progress import Progress
from ..featurevis._capture import resolve_model
from .base import PngFallbackWidget, esm
from .buffers import array_payload, quantize
from .jobs import CancellableJob, ViewJob, Worker, handles
from .scrubber import MIN_SIDE, Display, display_function, downsample_images, wire_bytes

DEFAULT_CHANNELS = 16
FRAME_BUDGET = 3_000_000  # bytes for one channel's detail (snapshots + patches)
TILE_SIDE = 160  # tiles larger than this are area-averaged down for the wire
PATCH_SIDE = 96  # top patches larger than this are area-averaged down
THUMB_SIDE = 56  # data-set thumbnails (activation image picker)
IMAGE_SIDE = 192  # the image shown next to the activation grid
UPDATE_INTERVAL = 0.25  # seconds between streamed tile updates
# share of the progress bar per phase
_WEIGHTS = {"activations": 0.04, "top patches": 0.08, "dissection": 0.08, "optimising": 0.8}


# ----- payloads (pure functions of kernel results) -------------------------------------------------


def _fit(images: np.ndarray, side: int) -> np.ndarray:
    """Area-average uint8 ``(K, H, W, 3)`` so the longer side is at most ``side`` (never upsampled)."""
    h, w = images.shape[1:3]
    scale = min(1.0, side / max(h, w))
    if scale >= 1.0:
        return np.ascontiguousarray(images)
    return downsample_images(images, (max(1, round(h * scale)), max(1, round(w * scale))))


def plan_snapshots(height: int, width: int, count: int, room: float) -> tuple[tuple[int, int], np.ndarray]:
    """``((h, w), kept)``: the largest size (same aspect, never upsampled) at which ``count`` uint8 RGB
    snapshots fit ``room`` bytes; below ``MIN_SIDE`` px the size stays there and snapshots are dropped
    evenly instead (the first and the last are always kept)."""
    kept = np.arange(count)
    scale = min(1.0, math.sqrt(max(room, 1.0) / (3.0 * height * width * count)))
    floor = min(MIN_SIDE, height, width)
    if min(height, width) * scale < floor:
        scale = floor / min(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        n_keep = max(2, int(room // (3 * h * w)))
        if n_keep < count:
            kept = np.unique(np.round(np.linspace(0, count - 1, n_keep)).astype(int))
        return (h, w), kept
    return (max(1, int(height * scale)), max(1, int(width * scale))), kept


def tiles_payload(images: np.ndarray) -> dict[str, Any]:
    """The ``tiles`` trait: uint8 ``(B, h, w, 3)``, at most ``TILE_SIDE`` per side."""
    return array_payload(_fit(images, TILE_SIDE))


def detail_payload(
    channel: int,
    index: int,
    frames: Sequence[np.ndarray],
    frame_steps: Sequence[int],
    history: Sequence[torch.Tensor],
    *,
    n_steps: int,
    final_value: float | None = None,
    patches: fv.TopPatches | None = None,
    display: Display | None = None,
    budget: float = FRAME_BUDGET,
) -> dict[str, Any]:
    """The ``detail`` trait for tile ``index`` (its ``channel``): its optimisation snapshots, the objective
    at every step, and its top activating patches. Snapshots are area-averaged so the dict fits ``budget``."""
    stack = np.stack([f[index] for f in frames]) if frames else np.zeros((0, 8, 8, 3), np.uint8)
    out: dict[str, Any] = {"channel": int(channel), "index": int(index), "n_steps": int(n_steps),
                           "done": final_value is not None,
                           "value": None if final_value is None else float(final_value)}
    if patches is not None and display is not None:
        shown = _fit(display(patches.patches), PATCH_SIDE)
        out.update(
            patches=array_payload(shown),
            patch_values=array_payload(patches.values, "float32"),
            patch_images=array_payload(patches.indices, "int32"),
            patch_boxes=array_payload(patches.boxes, "int32"),
            receptive_field=[int(s) for s in patches.receptive_field.size],
        )
        budget -= shown.nbytes
    else:
        out.update(patches=None, patch_values=None, patch_images=None, patch_boxes=None, receptive_field=None)
    curve = torch.stack([v[index] for v in history]).float() if history else torch.zeros(0)
    steps = np.asarray(frame_steps[: len(stack)], np.int32)
    if len(stack):
        room = budget - 4096 - 4 * (curve.numel() + len(stack))
        size, kept = plan_snapshots(stack.shape[1], stack.shape[2], len(stack), room)
        stack, steps = stack[kept], steps[kept]
        if size != tuple(stack.shape[1:3]):
            stack = downsample_images(stack, size)
    out.update(
        frames=array_payload(np.ascontiguousarray(stack)),
        frame_steps=array_payload(steps),
        curve=array_payload(curve, "float32"),
    )
    out["bytes"] = wire_bytes(out)
    return out


def activations_payload(maps: torch.Tensor, image: np.ndarray, index: int) -> dict[str, Any]:
    """The ``activations`` trait: ``(C, h, w)`` feature maps quantised to uint8 per channel (each with its
    own range; symmetric when the layer's maps have both signs) and the image they belong to."""
    m = maps.detach().float().cpu().numpy()
    if m.ndim != 3:
        raise InputError(f"activation maps are (C, h, w); got shape {m.shape}")
    signed = bool((m < 0).any() and (m > 0).any())
    ranges = np.zeros((m.shape[0], 2), np.float32)
    q = np.zeros(m.shape, np.uint8)
    for c in range(m.shape[0]):
        lo, hi = float(m[c].min()), float(m[c].max())
        if signed:
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
        ranges[c] = (lo, hi)
        q[c] = quantize(m[c], lo, hi)
    return {
        "index": int(index),
        "image": array_payload(_fit(image[None], IMAGE_SIDE)[0]),
        "maps": array_payload(q),
        "ranges": array_payload(ranges),
        "mean": array_payload(m.reshape(m.shape[0], -1).mean(1), "float32"),
        "signed": signed,
    }


def dissection_payload(result: fv.Dissection) -> dict[str, Any]:
    """The ``dissection`` trait: the IoU of every unit with every concept."""
    return {
        "layer": result.layer,
        "concepts": list(result.concepts),
        "iou": array_payload(result.iou, "float32"),
        "thresholds": array_payload(result.thresholds, "float32"),
        "quantile": float(result.quantile),
    }


CONCEPT_PATCHES = 8  # example patches shown per concept (the nearest to the cluster centre)


def concepts_payload(result: fv.ACEResult, display: Display | None = None, labels: Sequence[str] | None = None
                     ) -> dict[str, Any]:
    """The ``concepts`` trait: each ACE concept's example patches (uint8, at most ``THUMB_SIDE`` px), source
    images, TCAV score and t-test, and the random controls' tests."""
    shown = [c.patches[:CONCEPT_PATCHES] for c in result.concepts]
    display = display or display_function(None, torch.cat(shown))

    def test(c: fv.Concept) -> dict[str, Any]:
        return {"index": int(c.index), "score": float(c.score), "p_value": float(c.p_value),
                "significant": bool(c.significant), "n_members": int(c.n_members), "n_images": int(c.n_images)}

    target = int(result.target)
    return {
        "layer": result.layer,
        "target": target,
        "target_label": labels[target] if labels and 0 <= target < len(labels) else f"class {target}",
        "alpha": float(result.params.get("alpha", 0.01)),
        "n_images": int(result.n_images),
        "concepts": [{**test(c), "patches": array_payload(_fit(display(p), THUMB_SIDE)),
                      "images": array_payload(c.images[:CONCEPT_PATCHES], "int32")}
                     for c, p in zip(result.concepts, shown)],
        "random": [test(c) for c in result.random_concepts],
    }


# ----- the widget ------------------------------------------------------------------------------------


class FeatureGallery(CancellableJob, PngFallbackWidget):
    """Channels of a layer visualised by activation maximisation; click one for its optimisation scrubber
    and top patches. Build it with :func:`feature_gallery` (computes, streaming) or :meth:`from_results`."""

    _esm = esm("gallery")
    _bundle_name = "gallery"
    _held = ("result", "patches", "dissection_result", "concept_result", "_images", "_maps", "_module", "_display",
             "_frames", "_history", "_shown")

    layer = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    channels = traitlets.List(traitlets.Int()).tag(sync=True)
    tiles = traitlets.Dict().tag(sync=True)
    objective = traitlets.Dict().tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    n_steps = traitlets.Int(0).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)
    frame = traitlets.Int(-1).tag(sync=True)
    thumbnails = traitlets.Dict().tag(sync=True)
    activations = traitlets.Dict().tag(sync=True)
    dissection = traitlets.Dict().tag(sync=True)
    concepts = traitlets.Dict().tag(sync=True)
    tab = traitlets.Unicode("features").tag(sync=True)
    phase = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self.frame_budget = float(kwargs.pop("frame_budget", FRAME_BUDGET))
        #: the finished :class:`~xaiwidgets.featurevis.FeatureVis` (None while optimising or when cancelled)
        self.result: fv.FeatureVis | None = None
        #: ``{channel: TopPatches}``
        self.patches: dict[int, fv.TopPatches] = {}
        self.dissection_result: fv.Dissection | None = None
        self.concept_result: fv.ACEResult | None = None
        self._frames: list[np.ndarray] = []
        self._frame_steps: list[int] = []
        self._history: list[torch.Tensor] = []
        self._display: Display | None = None
        self._images: torch.Tensor | None = None
        self._shown: np.ndarray | None = None  # uint8 display images of the activation picker
        self._maps: dict[int, torch.Tensor] = {}  # image index -> (C, h, w)
        self._module: Any = None
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    # ----- construction from results
    @classmethod
    def from_results(
        cls,
        vis: fv.FeatureVis,
        channels: Sequence[int],
        *,
        layer: str = "",
        patches: dict[int, fv.TopPatches] | None = None,
        images: torch.Tensor | None = None,
        activation_maps: torch.Tensor | None = None,
        dissection: fv.Dissection | None = None,
        display: Display | None = None,
        frame_budget: float = FRAME_BUDGET,
    ) -> FeatureGallery:
        """A gallery of results computed beforehand: ``vis`` from ``maximize`` with
        ``channel_objectives(layer, channels)`` (``snapshot_every`` for the scrubber), ``patches`` from
        ``top_patches_per_channel`` over the model-ready ``images``, ``activation_maps`` ``(N, C, h, w)``
        of (the first) ``images``, ``dissection`` from ``dissect``. ``display`` maps model-ready images
        to uint8 (default: min-max of ``images``)."""
        channels = [int(c) for c in channels]
        if vis.images.shape[0] != len(channels):
            raise ParameterError(f"{len(channels)} channels for {vis.images.shape[0]} visualised images")
        view = cls(layer=layer, channels=channels, frame_budget=frame_budget)
        if images is not None:
            view._set_images(images, display)
        view.patches = dict(patches or {})
        if activation_maps is not None:
            maps = activation_maps if activation_maps.dim() == 4 else activation_maps[None]
            view._maps = {i: maps[i] for i in range(maps.shape[0])}
        view._finish(vis)
        if view._maps:
            if images is not None:
                view._thumbs(len(view._maps))
            view._show_activations(min(view._maps))
        if dissection is not None:
            view.dissection_result = dissection
            view.dissection = dissection_payload(dissection)
        view.title = f"{layer or vis.objective} · {len(channels)} channels"
        return view

    @classmethod
    def from_concepts(cls, result: fv.ACEResult, *, display: Display | None = None,
                      labels: Sequence[str] | None = None) -> FeatureGallery:
        """A gallery opened on the "concepts" tab of an :func:`~xaiwidgets.featurevis.ace` result."""
        view = cls(layer=result.layer, channels=[])
        view.set_concepts(result, display=display, labels=labels)
        view.title = f"{result.layer} · {len(result.concepts)} concepts"
        return view

    def set_concepts(self, result: fv.ACEResult, *, display: Display | None = None,
                     labels: Sequence[str] | None = None) -> None:
        """Show an :func:`~xaiwidgets.featurevis.ace` result in the "concepts" tab (and switch to it)."""
        self.concept_result = result
        self.concepts = concepts_payload(result, display, labels)
        self.tab = "concepts"

    # ----- requests from the browser and control
    @handles("select", reply=True)
    def _on_select(self, _request_id: str, content: dict[str, Any]) -> None:
        self.select(content.get("channel"))

    @handles("activations")
    def _on_activations(self, request_id: str, content: dict[str, Any]) -> None:
        self._reply(request_id, "accepted")
        self._request_activations(content.get("image"), request_id)

    def select(self, channel: Any) -> None:
        """Open ``channel`` (one of ``channels``; ``-1`` closes): its snapshots and top patches fill ``detail``."""
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise ParameterError(f"channel must be an int, got {channel!r}")
        if channel == -1:
            self.selected = -1
            self.detail = {}
            return
        if channel not in self.channels:
            raise ParameterError(f"channel {channel} is not in this gallery (channels {list(self.channels)}); "
                                 "build a gallery with channels=[...] including it")
        self.selected = channel
        self.frame = -1
        self._update_detail()

    # ----- internals
    def _set_images(self, images: torch.Tensor, display: Display | None) -> None:
        self._images = images.detach()
        self._display = display or display_function(None, images)

    def _snapshot(self) -> tuple[list[np.ndarray], list[int], list[torch.Tensor]]:
        with self._lock:
            return list(self._frames), list(self._frame_steps), list(self._history)

    def _update_detail(self) -> None:
        channel = self.selected
        if channel < 0 or channel not in self.channels:
            return
        index = list(self.channels).index(channel)
        frames, steps, history = self._snapshot()
        final = None if self.result is None else float(self.result.final_values[index])
        self.detail = detail_payload(
            channel, index, frames, steps, history, n_steps=self.n_steps, final_value=final,
            patches=self.patches.get(channel), display=self._display, budget=self.frame_budget,
        )

    def _on_frames(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._frames = list(data["frames"])
            self._frame_steps = list(data["frame_steps"])
            self._history = list(data["objective_values"])
        self.tiles = tiles_payload(self._frames[-1])
        self.objective = array_payload(self._history[-1], "float32")
        self.step = int(self._frame_steps[-1])
        if self.selected >= 0:
            self._update_detail()

    def _finish(self, vis: fv.FeatureVis) -> None:
        with self._lock:
            if vis.frames is not None:
                self._frames = list(vis.frames)
                self._frame_steps = list(vis.frame_steps)
            else:
                self._frames = [vis.to_uint8()]
                self._frame_steps = [int(vis.params.get("n_steps", 0))]
            self._history = list(vis.objective_values)
        self.result = vis
        self.n_steps = int(vis.params.get("n_steps", len(vis.objective_values)))
        self.step = self.n_steps
        self.tiles = tiles_payload(vis.to_uint8())
        self.objective = array_payload(vis.final_values, "float32")
        if self.selected >= 0:
            self._update_detail()

    def _show_activations(self, index: int) -> None:
        image = self._shown[index] if self._shown is not None and index < len(self._shown) else None
        if image is None and self._images is not None and self._display is not None:
            image = self._display(self._images[index : index + 1])[0]
        if image is None:
            maps = self._maps[index]
            image = np.zeros((*maps.shape[-2:], 3), np.uint8)
        self.activations = activations_payload(self._maps[index], image, index)

    def _thumbs(self, count: int) -> None:
        assert self._images is not None and self._display is not None
        n = min(count, self._images.shape[0])
        self._shown = self._display(self._images[:n])
        self.thumbnails = {"count": int(self._images.shape[0]),
                           "images": array_payload(_fit(self._shown, THUMB_SIDE))}

    def _request_activations(self, image: Any, request_id: str) -> None:
        n = 0 if self._images is None else int(self._images.shape[0])
        if isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < max(n, len(self._maps)):
            self._reply(request_id, "error", f"no data-set image {image!r} (the gallery has {max(n, len(self._maps))})")
        elif image in self._maps:
            self._show_activations(image)
            self._reply(request_id, "done")
        elif self._worker is None or self._module is None:
            self._reply(request_id, "error", "no model to compute activations with (a gallery built from results)")
        else:  # queued: never overlaps the optimisation's hooks
            self._submit(_ActivationsJob(self, request_id, image), cancel_running=False)

    def _fallback_png(self) -> bytes | None:
        t = self.tiles
        if (not t or not t.get("shape")) and self.concepts.get("concepts"):
            return self._concepts_png()
        if not t or not t.get("shape"):
            return None
        # a bare Figure renders to PNG without pyplot; matplotlib.use() here would switch the notebook's own
        # backend (inline plots stop showing after the first gallery is displayed)
        from matplotlib.figure import Figure

        tiles = np.frombuffer(t["data"], np.uint8).reshape(t["shape"])
        values = np.frombuffer(self.objective["data"], np.float32) if self.objective else None
        n = tiles.shape[0]
        cols = min(n, 8)
        rows = -(-n // cols)
        fig = Figure(figsize=(1.4 * cols, 1.6 * rows + 0.3), dpi=80)
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(tiles[i])
                label = f"ch {self.channels[i]}" if i < len(self.channels) else ""
                if values is not None and i < len(values):
                    label += f" · {values[i]:.3g}"
                ax.set_title(label, fontsize=8)
        if self.title:
            fig.suptitle(self.title, fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


    def _concepts_png(self) -> bytes:
        """The static fallback of a concepts-only gallery: a row of example patches per concept."""
        from matplotlib.figure import Figure

        rows = self.concepts["concepts"][:6]
        fig = Figure(figsize=(1.0 * CONCEPT_PATCHES, 1.2 * len(rows) + 0.3), dpi=80)
        axes = fig.subplots(len(rows), CONCEPT_PATCHES, squeeze=False)
        for r, c in enumerate(rows):
            d = c["patches"]
            patches = np.frombuffer(d["data"], np.uint8).reshape(d["shape"])
            for k, ax in enumerate(axes[r]):
                ax.axis("off")
                if k < len(patches):
                    ax.imshow(patches[k])
            axes[r][0].set_title(f"concept {c['index']} · TCAV {c['score']:.2f} · p={c['p_value']:.2g}",
                                 fontsize=8, loc="left")
        fig.suptitle(self.title, fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


# ----- computing a gallery -------------------------------------------------------------------------


def _model_images(images: Any, module: torch.nn.Module, adapter: Any) -> torch.Tensor:
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        return as_batch(images, module).detach().cpu()
    if adapter is None:
        raise InputError("images must be a model-ready float tensor (N, C, H, W); raw images (PIL, arrays) "
                         "need an ImageClassifier adapter to preprocess them")
    raw = list(images) if isinstance(images, (list, tuple)) else [images]
    return adapter.preprocess(raw).detach().cpu()


def _channel_count(module: torch.nn.Module, layer: Any, probe: torch.Tensor) -> int:
    return int(fv.activations(module, layer, probe[:1]).shape[1])


class _ActivationsJob(ViewJob):
    """The feature maps of one data-set image, for the activations tab (a side job: the status stays)."""

    announce = False
    tracks_status = False

    def __init__(self, view: FeatureGallery, request_id: str, image: int) -> None:
        super().__init__(view, request_id)
        self.image = image

    def run(self) -> None:
        view = self.view
        view._maps[self.image] = fv.activations(view._module, view.layer, view._images[self.image])
        view._show_activations(self.image)

    def on_error(self, exc: Exception) -> None:
        self.error = str(exc)


class _GalleryJob(ViewJob):
    """``feature_gallery``'s run, phase by phase: the channels, the activation maps of the first images,
    the top patches of every channel, the dissection, then one batched ``maximize`` streaming snapshots.
    Each phase has its share of the progress bar (``_WEIGHTS``)."""

    def __init__(self, view: FeatureGallery, model: Any, module: torch.nn.Module, layer: str,
                 channels: list[int] | None, x: torch.Tensor | None, *, concept_masks: Any,
                 concept_names: Sequence[str] | None, quantile: float, k: int, n_steps: int, size: int,
                 snapshot_every: int, activation_images: int, batch_size: int, tqdm: bool,
                 params: dict[str, Any]) -> None:
        super().__init__(view)
        self.model, self.module, self.layer, self.channels, self.x = model, module, layer, channels, x
        self.concept_masks, self.concept_names, self.quantile = concept_masks, concept_names, quantile
        self.k, self.n_steps, self.size, self.snapshot_every = k, n_steps, size, snapshot_every
        self.activation_images, self.batch_size, self.tqdm, self.params = activation_images, batch_size, tqdm, params
        phases = ["activations", "top patches"] if x is not None else []
        phases += ["dissection"] if concept_masks is not None else []
        phases += ["optimising"]
        self.total = sum(_WEIGHTS[p] for p in phases)
        self.done = 0.0

    def run(self) -> None:
        channels = self.choose_channels()
        if self.x is not None:
            self.activation_maps(self.x)
            self.top_patches(self.x, channels)
        if self.concept_masks is not None:
            self.dissect()
        self.optimise(channels)

    def end(self) -> None:
        super().end()
        view = self.view
        view.phase = ""
        view.title = f"{self.layer} · {len(view.channels)} channels"
        if view.selected >= 0:
            view._update_detail()

    # ----- the phases
    def choose_channels(self) -> list[int]:
        """The channels asked for, else the first ``DEFAULT_CHANNELS`` of the layer."""
        if self.channels is not None:
            return self.channels
        probe = self.x if self.x is not None else torch.rand(1, 3, self.size, self.size)
        channels = list(range(min(DEFAULT_CHANNELS, _channel_count(self.module, self.layer, probe))))
        self.view.channels = channels
        return channels

    def activation_maps(self, x: torch.Tensor) -> None:
        """The layer's maps of the first ``activation_images`` images (the activations tab), 8 at a time."""
        view, progress = self.view, self.phase("activations")
        n = min(self.activation_images, x.shape[0])
        view._thumbs(n)
        for a in range(0, n, 8):
            maps = fv.activations(self.model, self.layer, x[a : min(n, a + 8)])
            for i in range(maps.shape[0]):
                view._maps[a + i] = maps[i]
            progress.update(min(n, a + 8), n, "activations")
        if view._maps:
            view._show_activations(0)

    def top_patches(self, x: torch.Tensor, channels: list[int]) -> None:
        """The ``k`` data-set patches that activate each channel most (one pass)."""
        self.view.patches = fv.top_patches_per_channel(self.model, self.layer, channels, x, k=self.k,
                                                       batch_size=self.batch_size, progress=self.phase("top patches"))

    def dissect(self) -> None:
        """Network dissection of the layer's units against the concept masks (Bau et al. 2017)."""
        if self.x is None:
            raise InputError("dissection needs the images the concept masks belong to: pass images=")
        result = fv.dissect(self.model, self.layer, self.x, self.concept_masks, quantile=self.quantile,
                            concept_names=self.concept_names, batch_size=self.batch_size,
                            progress=self.phase("dissection"))
        self.view.dissection_result = result
        self.view.dissection = dissection_payload(result)

    def optimise(self, channels: list[int]) -> None:
        """One batched activation maximisation, an image per channel; snapshots stream into the tiles."""
        vis = fv.maximize(self.model, fv.channel_objectives(self.layer, channels), size=self.size,
                          n_steps=self.n_steps, snapshot_every=self.snapshot_every,
                          progress=self.phase("optimising", self.stream), **self.params)
        self.view._finish(vis)

    # ----- bookkeeping
    def phase(self, name: str, on_event: Callable[[str, Any], None] | None = None) -> Progress:
        """The progress of phase ``name``, its share of the bar after the phases before it."""
        self.view.phase = name
        start, weight = self.done, _WEIGHTS[name] / self.total
        self.done += weight
        return self.tracker(start, weight, on_event=on_event, tqdm=self.tqdm)

    def stream(self, event: str, data: Any) -> None:
        if event == "frames" and self.due(UPDATE_INTERVAL):
            self.view._on_frames(data)


def feature_gallery(
    model: Any,
    layer: str,
    channels: Sequence[int] | None = None,
    images: Any = None,
    *,
    concept_masks: Any = None,
    concept_names: Sequence[str] | None = None,
    quantile: float = 0.995,
    k: int = 9,
    n_steps: int = 256,
    size: int = 128,
    snapshot_every: int | None = None,
    activation_images: int = 16,
    batch_size: int = 32,
    wait: bool = False,
    frame_budget: float = FRAME_BUDGET,
    **params: Any,
) -> FeatureGallery:
    """A :class:`FeatureGallery` of ``layer``'s ``channels`` (default: the first 16), computed in the kernel.

    Returns at once and computes on a worker thread, streaming into the widget: the activation maps of the
    first ``activation_images`` data-set ``images`` (model-ready ``(N, C, H, W)``, or raw images with an
    ImageClassifier), the ``k`` top patches of every channel over ``images`` (one pass), network
    dissection when ``concept_masks`` are given (see :func:`~xaiwidgets.featurevis.dissect`), then ONE
    batched :func:`~xaiwidgets.featurevis.maximize` run with an image per channel (``size`` px,
    ``n_steps``, a snapshot every ``snapshot_every`` steps, default ``n_steps // 16``; ``params`` go to
    ``maximize``: ``param``, ``decorrelate``, ``transforms``, ``lr``, ``seed``, ...). ``progress`` and
    ``status`` follow the work; ``cancel()`` stops it. ``wait=True`` blocks until done, with tqdm bars.
    """
    module, adapter = unwrap_model(model)
    if not isinstance(layer, str):
        raise ParameterError("layer must be the dotted name of a module, e.g. '_blocks.9' or 'layer3'")
    resolve_model(model)  # a clear error for models that cannot be hooked
    get_layer(module, layer)  # unknown names fail here, with suggestions
    for name in ("progress", "batch", "objective"):
        if name in params:
            raise ParameterError(f"{name!r} is set by the gallery; remove it")
    x = None if images is None else _model_images(images, module, adapter)
    chans = None if channels is None else [int(c) for c in channels]
    if chans is not None and not chans:
        raise ParameterError("channels must name at least one channel")
    view = FeatureGallery(layer=layer, channels=chans or [], frame_budget=frame_budget, status="running",
                          title=f"{layer} · computing")
    view._module = model
    view.n_steps = int(n_steps)
    if x is not None:
        view._set_images(x, display_function(adapter, x))
    view._start_worker("xaiwidgets-gallery")
    job = _GalleryJob(view, model, module, layer, chans, x, concept_masks=concept_masks, concept_names=concept_names,
                      quantile=quantile, k=k, n_steps=n_steps, size=size,
                      snapshot_every=snapshot_every or max(1, n_steps // 16), activation_images=activation_images,
                      batch_size=batch_size, tqdm=wait, params=params)
    view._submit(job)
    if wait:
        view._block(raise_error=True)
    return view
