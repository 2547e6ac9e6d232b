"""ScrubberView: a slider and play/pause over Integrated-Gradients path frames and SmoothGrad noise samples.

The frames come from ``return_frames=True`` (``Attribution.frames``, ``frame_kind`` ``"ig_path"`` or
``"noise"``). They travel as quantised uint8 stacks at a resolution chosen so that the whole payload fits
``frame_budget`` bytes (maps and images are area-averaged down together, so overlays stay pixel-aligned).
Gradients are quantised per frame (each shown with its own range); the accumulated maps (IG partial
integral, SmoothGrad running mean) share the range of the final map, so their growth is visible. The
wire format is in ``docs/widget-protocol.md`` ("ScrubberView").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
import traitlets

from ..core.adapters import unwrap_model
from ..core.errors import InputError, ParameterError
from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import array_payload, quantize, value_range
from .fallback import render_png
from .jobs import CancellableJob, ViewJob, Worker

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution

FRAME_KINDS = ("ig_path", "noise")
DEFAULT_BUDGET = 3_000_000
MIN_SIDE = 32  # below this, frames are dropped (evenly, keeping the last) instead of shrinking further
UPDATE_INTERVAL = 0.25  # seconds between streamed updates (at most ~4 per second, plus the final one)
# bytes per pixel: per frame (maps + per-frame images) and fixed (input / baseline images)
_PER_FRAME = {"ig_path": 2, "noise": 5}
_FIXED = {"ig_path": 6, "noise": 3}

Display = Callable[[torch.Tensor], np.ndarray]


# ----- resolution under a byte budget ---------------------------------------------------------------


def plan_frames(
    height: int, width: int, count: int, kind: str, budget: float = DEFAULT_BUDGET
) -> tuple[int, int, np.ndarray]:
    """``(h, w, kept)``: the largest resolution (same aspect, never upsampled) at which ``count`` frames
    fit ``budget`` bytes, and the indices of the frames kept (all, unless even ``MIN_SIDE`` does not fit)."""
    per, fixed = _PER_FRAME[kind], _FIXED[kind]
    overhead = 4096 + 16 * count  # JSON, float32 vectors, per-frame ranges
    room = max(float(budget) - overhead, 1.0)
    pixels = room / (per * count + fixed)
    scale = min(1.0, math.sqrt(pixels / (height * width)))
    h, w = max(1, int(height * scale)), max(1, int(width * scale))
    kept = np.arange(count)
    floor = min(MIN_SIDE, height, width)
    if min(h, w) < floor:
        scale = floor / min(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        n_keep = max(1, int((room / (h * w) - fixed) // per))
        if n_keep < count:
            kept = np.unique(np.round(np.linspace(count - 1, 0, n_keep)).astype(int))
    return h, w, kept


def downsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average ``(K, H, W)`` maps to ``size`` (linear, so the mean of the maps is kept)."""
    maps = maps.detach().float().cpu()
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="area")[:, 0]


def downsample_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average uint8 ``(K, H, W, 3)`` images to ``size``."""
    if tuple(images.shape[1:3]) == tuple(size):
        return np.ascontiguousarray(images)
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=size, mode="area")
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def display_function(classifier: Any, reference: torch.Tensor) -> Display:
    """Tensors ``(M, C, H, W)`` in input space to uint8 ``(M, H, W, 3)`` with ONE affine map for all of
    them (the adapter's de-normalisation, else the min-max of ``reference``), so the browser's blend of
    displayed input and baseline is the displayed path input."""
    if classifier is not None and (classifier.mean is not None or classifier.std is not None):
        return classifier.to_display
    ref = reference.detach().float().cpu()
    lo, hi = float(ref.min()), float(ref.max())
    span = max(hi - lo, 1e-12)

    def to_display(x: torch.Tensor) -> np.ndarray:
        x = x.detach().float().cpu()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            x = x[:, :3] if x.shape[1] > 3 else x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
        y = ((x - lo) / span).clamp(0, 1)
        return (y.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)

    return to_display


# ----- payload ----------------------------------------------------------------------------------------


def _stack_per_frame(maps: torch.Tensor, signed: bool) -> dict[str, Any]:
    arr = maps.numpy()
    q = np.empty(arr.shape, np.uint8)
    vmins, vmaxs = [], []
    for k in range(arr.shape[0]):
        lo, hi = value_range(arr[k], signed)
        q[k] = quantize(arr[k], lo, hi)
        vmins.append(lo)
        vmaxs.append(hi)
    out = array_payload(q)
    out.update(vmins=vmins, vmaxs=vmaxs)
    return out


def _stack_global(maps: torch.Tensor, vmin: float, vmax: float) -> dict[str, Any]:
    out = array_payload(quantize(maps.numpy(), vmin, vmax))
    out.update(vmin=vmin, vmax=vmax)
    return out


def _has_both_signs(t: torch.Tensor) -> bool:
    return bool((t < 0).any() and (t > 0).any())


def wire_bytes(payload: Any) -> int:
    """Bytes of a trait value on the wire: binary buffers plus the JSON of the rest."""
    buffers = 0

    def strip(x: Any) -> Any:
        nonlocal buffers
        if isinstance(x, (memoryview, bytes, bytearray)):
            buffers += memoryview(x).nbytes
            return None
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        return x

    text = json.dumps(strip(payload))
    return buffers + len(text)


def sample_frames(frames: dict[str, Any], kind: str, index: int, display: Display) -> dict[str, Any]:
    """One sample's frames as CPU float tensors (maps) and uint8 images, full resolution."""
    out: dict[str, Any] = {"gradients": frames["gradient_maps"][index].detach().float().cpu()}
    if kind == "ig_path":
        out["accumulated"] = frames["partial_maps"][index].detach().float().cpu()
        out["alphas"] = frames["alphas"].detach().float().cpu().reshape(-1)
        out["path_scores"] = frames["path_scores"][index].detach().float().cpu().reshape(-1)
        out["baseline"] = display(frames["baseline"][index : index + 1])[0]
    else:
        out["accumulated"] = frames["running_maps"][index].detach().float().cpu()
        out["noisy"] = display(frames["noisy_inputs"][index])
    if out["gradients"].dim() != 3 or out["accumulated"].shape != out["gradients"].shape:
        raise InputError(
            f"the scrubber shows image frames (K, H, W); got gradient maps of shape {tuple(out['gradients'].shape)}"
        )
    return out


def build_payload(
    kind: str,
    sample: dict[str, Any],
    image: np.ndarray,
    *,
    final: torch.Tensor | None = None,
    signed: bool | None = None,
    totals: dict[str, float | None] | None = None,
    expected: int | None = None,
    budget: float = DEFAULT_BUDGET,
    done: bool = False,
) -> dict[str, Any]:
    """The ``frames`` trait for one sample (see the protocol doc). ``final`` is the final attribution's
    channel sum ``(H, W)`` (default: the last accumulated frame); its range is the accumulated stack's."""
    grads, acc = sample["gradients"], sample["accumulated"]
    count = int(grads.shape[0])
    height, width = int(grads.shape[1]), int(grads.shape[2])
    total = max(count, expected or 0)  # plan the resolution for every frame to come, so it stays put
    h, w, kept = plan_frames(height, width, total, kind, budget)
    if len(kept) < total:  # frames were dropped to fit: re-plan on the frames we have
        h, w, kept = plan_frames(height, width, count, kind, budget)
    else:  # a partial snapshot: all of its frames
        kept = np.arange(count)
    kept_t = torch.as_tensor(kept, dtype=torch.long)
    size = (h, w)
    g_small = downsample_maps(grads[kept_t], size)
    a_small = downsample_maps(acc[kept_t], size)
    final_map = acc[-1] if final is None else final.detach().float().cpu()
    final_small = downsample_maps(final_map[None], size)[0]
    if signed is None:
        signed = _has_both_signs(final_map)
    acc_signed = bool(signed and _has_both_signs(final_map))
    vmin, vmax = value_range(final_small.numpy(), acc_signed)
    sums = acc.reshape(count, -1).sum(1)[kept_t]
    payload: dict[str, Any] = {
        "kind": kind,
        "count": len(kept),
        "expected": max(int(expected or 0), len(kept)),
        "done": bool(done),
        "frame_index": [int(i) for i in kept],
        "source_shape": [height, width],
        "shape": [h, w],
        "image": array_payload(downsample_images(image[None], size)[0]),
        "gradients": _stack_per_frame(g_small, _has_both_signs(grads)),
        "gradients_signed": _has_both_signs(grads),
        "accumulated": _stack_global(a_small, vmin, vmax),
        "accumulated_signed": acc_signed,
        "partial_sums": array_payload(sums, "float32"),
    }
    if kind == "ig_path":
        payload["baseline"] = array_payload(downsample_images(sample["baseline"][None], size)[0])
        payload["alphas"] = array_payload(sample["alphas"][kept_t], "float32")
        payload["path_scores"] = array_payload(sample["path_scores"][kept_t], "float32")
    else:
        payload["noisy"] = array_payload(downsample_images(sample["noisy"][kept], size))
        flat = acc.reshape(count, -1)[kept_t]
        ref = final_map.reshape(-1)
        norm = float(ref.norm()) or 1.0
        payload["convergence"] = array_payload((flat - ref).norm(dim=1) / norm, "float32")
    totals = totals or {}
    for key in ("f_input", "f_baseline", "delta", "gap", "attribution_sum"):
        value = totals.get(key)
        payload[key] = None if value is None else float(value)
    payload["bytes"] = wire_bytes(payload)
    return payload


def _scalar(value: Any, index: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu().reshape(-1)
        return float(value[index if value.numel() > 1 else 0])
    return float(value)


def _totals(attribution: Attribution, index: int, final: torch.Tensor) -> dict[str, float | None]:
    ex = attribution.extras or {}
    return {
        "f_input": _scalar(ex.get("f_input"), index),
        "f_baseline": _scalar(ex.get("f_baseline"), index),
        "delta": _scalar(ex.get("delta"), index),
        "gap": _scalar(ex.get("completeness_gap"), index),
        "attribution_sum": float(final.sum()),
    }


def result_payload(
    attribution: Attribution, index: int = 0, *, display: Display | None = None, budget: float = DEFAULT_BUDGET
) -> dict[str, Any]:
    """The finished ``frames`` dict of sample ``index`` of a ``return_frames=True`` result."""
    check_frames(attribution)
    inputs = attribution.inputs
    if inputs is None or inputs.dim() != 4:
        raise InputError("the scrubber shows image inputs (N, C, H, W)")
    display = display or display_function(attribution.classifier, inputs)
    kind = attribution.frame_kind
    sample = sample_frames(attribution.frames, kind, index, display)
    values = attribution.values.detach().float().cpu()
    final = values[index].sum(0) if values.dim() == 4 else values[index]
    image = display(inputs[index : index + 1])[0]
    return build_payload(
        kind, sample, image, final=final, signed=attribution.signed,
        totals=_totals(attribution, index, final), budget=budget, done=True,
    )


def snapshot_payload(
    snapshot: dict[str, Any], index: int, display: Display, image: np.ndarray, *,
    expected: int | None = None, budget: float = DEFAULT_BUDGET,
) -> dict[str, Any] | None:
    """The ``frames`` dict of a streamed ``progress.emit("frames", snapshot)`` (None while it is empty)."""
    kind = "ig_path" if "partial_maps" in snapshot else "noise"
    sample = sample_frames(snapshot, kind, index, display)
    if not sample["gradients"].shape[0]:
        return None
    return build_payload(kind, sample, image, expected=expected, budget=budget)


def expected_frames(method: str, params: dict[str, Any]) -> int | None:
    """How many frames ``method`` will record with ``params`` (None when not known ahead, e.g. auto steps)."""
    from ..methods.registry import get_method

    cls = get_method(method)
    resolved = {**cls.defaults, **params}
    count = resolved.get("n_steps") if cls.name == "integrated_gradients" else resolved.get("n_samples")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def check_frames(attribution: Attribution) -> None:
    if attribution.frames is None or attribution.frame_kind not in FRAME_KINDS:
        raise ParameterError(
            f"this {attribution.method!r} result has no scrubber frames (frame_kind="
            f"{attribution.frame_kind!r}); compute it with return_frames=True using integrated_gradients "
            "or a SmoothGrad variant (smoothgrad, smoothgrad_squared, vargrad)"
        )


class _ScrubberJob(ViewJob):
    """``ScrubberView.compute``'s run: the method with ``return_frames=True``, snapshots streamed."""

    def __init__(self, view: ScrubberView, model: Any, classifier: Any, x: torch.Tensor, method: str, target: Any,
                 index: int, params: dict[str, Any]) -> None:
        super().__init__(view)
        self.model, self.x, self.method, self.target, self.index, self.params = model, x, method, target, index, params
        self.display = display_function(classifier, x)
        self.image = self.display(x[index : index + 1].detach())[0]
        self.expected = expected_frames(method, params)

    def run(self) -> None:
        from ..api import attribute

        result = attribute(self.model, self.x, method=self.method, target=self.target,
                           progress=self.tracker(on_event=self.stream), return_frames=True, **self.params)
        self.view._show_result(result, self.index, self.display)

    def stream(self, event: str, data: Any) -> None:
        """A ``frames`` snapshot from the method: shown at most every ``UPDATE_INTERVAL`` seconds."""
        if event != "frames" or not self.due(UPDATE_INTERVAL):
            return
        try:
            payload = snapshot_payload(data, self.index, self.display, self.image, expected=self.expected,
                                       budget=self.view.frame_budget)
            if payload is not None:
                self.view.kind = payload["kind"]
                self.view.frames = payload
        except Exception:  # a malformed snapshot must not stop the computation
            pass


# ----- the widget -------------------------------------------------------------------------------------


class ScrubberView(CancellableJob, PngFallbackWidget, ViewOptions):
    _held = ("attribution",)
    """Scrub through IG path frames or SmoothGrad noise samples. Build it with :meth:`from_attribution`
    or :meth:`compute` (which streams frames in while the method runs)."""

    _esm = esm("scrubber")
    _bundle_name = "scrubber"

    kind = traitlets.Unicode("ig_path").tag(sync=True)
    frames = traitlets.Dict().tag(sync=True)
    frame = traitlets.Int(-1).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self.frame_budget = float(kwargs.pop("frame_budget", DEFAULT_BUDGET))
        self.attribution: Attribution | None = None
        self._worker: Worker | None = None
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    # ----- construction
    @classmethod
    def from_attribution(
        cls, attribution: Attribution, index: int = 0, *, frame_budget: float = DEFAULT_BUDGET, **options: Any
    ) -> ScrubberView:
        """Sample ``index`` of an Attribution computed with ``return_frames=True``."""
        check_frames(attribution)
        n = len(attribution)
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} explained inputs")
        view = cls(kind=attribution.frame_kind, frame_budget=frame_budget, **options)
        view._show_result(attribution, index)
        return view

    @classmethod
    def compute(
        cls,
        model: Any,
        inputs: Any,
        method: str = "integrated_gradients",
        target: Any = None,
        *,
        index: int = 0,
        frame_budget: float = DEFAULT_BUDGET,
        wait: bool = False,
        view_options: dict[str, Any] | None = None,
        **params: Any,
    ) -> ScrubberView:
        """Return the view at once and run ``method`` with ``return_frames=True`` on a worker thread;
        frames stream in (at most ~4 updates per second) and ``status`` ends ``"done"``,
        ``"cancelled"`` or ``"error"`` (the message in ``error``). ``wait=True`` blocks until done."""
        from ..core.inputs import as_batch
        from ..methods.registry import get_method

        cls_method = get_method(method)
        if "return_frames" not in cls_method.defaults:
            raise ParameterError(
                f"{method!r} has no scrubber frames; use integrated_gradients or a SmoothGrad variant"
            )
        cls_method.check_params(params)
        module, classifier = unwrap_model(model)
        x = as_batch(inputs, module)
        if x.dim() != 4:
            raise InputError("the scrubber shows image inputs: pass a (N, C, H, W) or (C, H, W) tensor")
        kind = "ig_path" if method.strip().lower() == "integrated_gradients" else "noise"
        view = cls(kind=kind, frame_budget=frame_budget, status="running", **(view_options or {}))
        view.title = f"{cls_method.name} · computing"
        view._start_worker("xaiwidgets-scrubber")
        view._submit(_ScrubberJob(view, model, classifier, x, method, target, index, params))
        if wait:
            view._block()
        return view

    # ----- requests from the browser and control
    # ----- internals
    def _show_result(self, attribution: Attribution, index: int, display: Display | None = None) -> None:
        payload = result_payload(attribution, index, display=display, budget=self.frame_budget)
        self.attribution = attribution
        self.kind = attribution.frame_kind
        self.frames = payload
        target = int(attribution.target[index])
        label = attribution.classifier.label(target) if attribution.classifier else f"class {target}"
        self.title = f"{attribution.method} · {label}"

    def _fallback_png(self) -> bytes | None:
        f = self.frames
        if not f or not f.get("count"):
            return None
        h, w = f["shape"]
        last = f["count"] - 1

        def maps(stack: dict[str, Any], k: int) -> np.ndarray:
            q = np.frombuffer(stack["data"], np.uint8).reshape(stack["shape"])[k]
            lo = stack["vmins"][k] if "vmins" in stack else stack["vmin"]
            hi = stack["vmaxs"][k] if "vmaxs" in stack else stack["vmax"]
            return lo + q.astype(np.float32) / 255.0 * (hi - lo)

        image = np.frombuffer(f["image"]["data"], np.uint8).reshape(h, w, 3)
        if self.kind == "ig_path":
            alpha = float(np.frombuffer(f["alphas"]["data"], np.float32)[last])
            base = np.frombuffer(f["baseline"]["data"], np.uint8).reshape(h, w, 3).astype(np.float32)
            shown = np.round(base + alpha * (image.astype(np.float32) - base)).astype(np.uint8)
            grad_title, acc_title = f"gradient at α={alpha:.2f}", "accumulated"
        else:
            shown = np.frombuffer(f["noisy"]["data"], np.uint8).reshape(-1, h, w, 3)[last]
            grad_title, acc_title = f"sample {last + 1} gradient", "running mean"
        panels = [
            (grad_title, maps(f["gradients"], last), bool(f["gradients_signed"])),
            (acc_title, maps(f["accumulated"], last), bool(f["accumulated_signed"])),
        ]
        return render_png(shown, panels, caption=self.title, **self.view_options())
