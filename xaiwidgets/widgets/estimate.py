"""EstimateView: a sampling method's running estimate refining and its standard error shrinking.

KernelSHAP, Shapley value sampling, LIME and RISE report a running estimate (``frame_kind="estimate"``:
the map so far, its per-pixel standard error, the samples used; see ``methods/perturbation/streaming.py``).
The view draws the newest estimate over the image, the standard-error map on one fixed scale (so it fades
as the error shrinks), the estimates of the top features with +-2 SE bands and the mean standard error
against the number of samples. :meth:`EstimateView.compute` (also ``xw.widgets.stream``) runs the method
on a worker thread and pushes each estimate as it arrives; cancel keeps the best estimate so far. The wire
format is in ``docs/widget-protocol.md`` ("EstimateView").
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import traitlets

from ..core.adapters import unwrap_model
from ..core.errors import Cancelled, InputError, ParameterError
from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import array_payload, quantize, value_range
from .fallback import render_png
from .jobs import CancellableJob, ViewJob, Worker
from .scrubber import Display, display_function, downsample_images, downsample_maps, wire_bytes

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution

MAX_FRAMES = 40  # estimates kept in the scrubbable stack (evenly thinned, the newest always kept)
MAX_STORED = 240  # estimates kept in the kernel for the tracks (thinned the same way)
N_TRACKS = 3  # top features whose estimate +-2 SE is plotted
DEFAULT_BUDGET = 2_000_000  # bytes of a finished result's payload
LIVE_BUDGET = 1_000_000  # bytes per streamed update (sent up to ~3 times a second)
UPDATE_INTERVAL = 0.3  # seconds between streamed updates (plus the final one)
MIN_SIDE = 16


def plan_size(height: int, width: int, frames: int = MAX_FRAMES, budget: float = DEFAULT_BUDGET) -> tuple[int, int]:
    """The largest ``(h, w)`` (same aspect, never upsampled, at least ``MIN_SIDE``) at which ``frames``
    estimate and standard-error maps (1 byte per pixel each) and the image (3) fit ``budget`` bytes."""
    room = max(float(budget) - 8192 - 64 * frames, 1.0)
    scale = min(1.0, math.sqrt(room / (2 * frames + 3) / (height * width)))
    scale = max(scale, min(1.0, MIN_SIDE / min(height, width)))
    return max(1, round(height * scale)), max(1, round(width * scale))


def as_plane(values: torch.Tensor) -> torch.Tensor:
    """An estimate as a float ``(H, W)`` map: ``(C, H, W)`` maps (per-channel segments) averaged."""
    values = values.detach().float().cpu()
    if values.dim() == 3:
        values = values.mean(0)
    if values.dim() != 2:
        raise InputError(
            f"the estimate view shows image estimates (H, W); got shape {tuple(values.shape)}. For tabular or "
            "text inputs use Attribution.frames directly"
        )
    return values


def _thin(count: int, keep: int) -> list[int]:
    """``keep`` indices of ``range(count)`` spread evenly, the last always included."""
    if count <= keep:
        return list(range(count))
    return sorted({round(float(i)) for i in np.linspace(count - 1, 0, keep)})


@dataclass
class Snapshot:
    n_samples: int
    values: torch.Tensor  # (h, w) at the wire resolution
    stderr: torch.Tensor | None  # (h, w) or None (no standard error, e.g. LIME)
    mean_stderr: float  # mean over the full-resolution map (nan without one)
    mean_abs: float  # mean |estimate| over the full-resolution map


class EstimateHistory:
    """The estimates of one input as they arrive, kept at the wire resolution ``size``."""

    def __init__(self, size: tuple[int, int], expected: int | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.expected = expected
        self.stored: list[Snapshot] = []
        self.n_samples: list[float] = []
        self.mean_stderr: list[float] = []
        self.mean_abs: list[float] = []
        self.change: list[float] = []
        self._previous: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.n_samples)

    @property
    def last_n(self) -> int:
        return int(self.n_samples[-1]) if self.n_samples else 0

    def add(self, n_samples: int, values: torch.Tensor, stderr: torch.Tensor | None) -> None:
        full = as_plane(values)
        se_full = None if stderr is None else as_plane(stderr)
        if se_full is not None and not bool(torch.isfinite(se_full).any()):
            se_full = None
        small = downsample_maps(full[None], self.size)[0]
        se_small = None if se_full is None else downsample_maps(torch.nan_to_num(se_full)[None], self.size)[0]
        mean_se = float(se_full[torch.isfinite(se_full)].mean()) if se_full is not None else float("nan")
        mean_abs = float(full.abs().mean())
        if self._previous is None:
            change = float("nan")
        else:
            change = float((small - self._previous).norm() / max(float(small.norm()), 1e-30))
        self._previous = small
        self.n_samples.append(float(n_samples))
        self.mean_stderr.append(mean_se)
        self.mean_abs.append(mean_abs)
        self.change.append(change)
        self.stored.append(Snapshot(int(n_samples), small, se_small, mean_se, mean_abs))
        if len(self.stored) > MAX_STORED:
            keep = _thin(len(self.stored), MAX_STORED // 2)
            self.stored = [self.stored[i] for i in keep]

    # ----- wire format
    def payload(
        self,
        image: np.ndarray | None,
        *,
        method: str,
        done: bool,
        cancelled: bool = False,
        max_frames: int = MAX_FRAMES,
    ) -> dict[str, Any]:
        """The ``estimate`` trait (docs/widget-protocol.md, "EstimateView"); ``{}`` before any estimate."""
        if not self.stored:
            return {}
        h, w = self.size
        # estimates made before a standard error existed (too few samples) stay in the history only
        candidates = [s for s in self.stored if s.stderr is not None] or self.stored
        frames = [candidates[i] for i in _thin(len(candidates), max_frames)]
        newest = frames[-1].values
        signed = bool((newest < 0).any() and (newest > 0).any())
        vmin, vmax = value_range(newest.numpy(), signed)
        values = torch.stack([f.values for f in frames]).numpy()
        q_values = array_payload(quantize(values, vmin, vmax))
        q_values.update(vmin=vmin, vmax=vmax)
        has_stderr = all(f.stderr is not None for f in frames)
        payload: dict[str, Any] = {
            "method": method,
            "count": len(frames),
            "expected": self.expected,
            "done": bool(done),
            "cancelled": bool(cancelled),
            "shape": [h, w],
            "image": None if image is None else array_payload(downsample_images(image[None], (h, w))[0]),
            "values": q_values,
            "signed": signed,
            "n_samples": array_payload(np.array([f.n_samples for f in frames], np.float32)),
            "has_stderr": has_stderr,
            "stderr": None,
            "history": {
                "n_samples": array_payload(np.array(self.n_samples, np.float32)),
                "mean_stderr": array_payload(np.array(self.mean_stderr, np.float32)),
                "mean_abs": array_payload(np.array(self.mean_abs, np.float32)),
                "change": array_payload(np.array(self.change, np.float32)),
            },
            "tracks": self._tracks(has_stderr),
        }
        if has_stderr:
            stderr = torch.stack([f.stderr for f in frames]).numpy()  # type: ignore[misc]
            top = float(np.nanmax(stderr)) if np.isfinite(stderr).any() else 0.0
            q_stderr = array_payload(quantize(stderr, 0.0, top))
            q_stderr.update(vmin=0.0, vmax=top)
            payload["stderr"] = q_stderr
        payload["bytes"] = wire_bytes(payload)
        return payload

    def _tracks(self, has_stderr: bool) -> dict[str, Any]:
        """The ``N_TRACKS`` features with the largest |estimate| in the newest frame (distinct values, so
        distinct superpixels), followed through every stored frame."""
        newest = self.stored[-1].values
        flat = newest.reshape(-1)
        order = torch.argsort(flat.abs(), descending=True, stable=True)
        picked: list[int] = []
        seen: list[float] = []
        scale = float(flat.abs().max()) or 1.0
        for i in order.tolist():
            v = float(flat[i])
            if v == 0 or any(abs(v - s) <= 1e-6 * scale for s in seen):
                continue
            picked.append(i)
            seen.append(v)
            if len(picked) == N_TRACKS:
                break
        w = newest.shape[1]
        items = []
        for rank, i in enumerate(picked):
            vals = np.array([float(s.values.reshape(-1)[i]) for s in self.stored], np.float32)
            errs = np.array(
                [float(s.stderr.reshape(-1)[i]) if (has_stderr and s.stderr is not None) else float("nan")
                 for s in self.stored],
                np.float32,
            )
            items.append({"rank": rank + 1, "y": i // w, "x": i % w, "values": array_payload(vals),
                          "stderr": array_payload(errs)})
        return {"n_samples": array_payload(np.array([s.n_samples for s in self.stored], np.float32)),
                "items": items}


def estimate_frames(attribution: Attribution, index: int) -> list[tuple[int, torch.Tensor, torch.Tensor | None]]:
    """``(n_samples, map, stderr map)`` of every recorded estimate of input ``index``."""
    frames = attribution.frames
    if frames is None or attribution.frame_kind != "estimate":
        raise ParameterError(
            f"this {attribution.method!r} result has no running estimates (frame_kind={attribution.frame_kind!r}); "
            "compute it with stream_every=1 using kernel_shap, shapley_sampling, lime or rise, or use "
            "xw.widgets.stream(model, image, method=...) to watch it live"
        )
    if "per_input" in frames:
        per = frames["per_input"]
        if not 0 <= index < len(per):
            raise IndexError(f"index {index} is out of range for {len(per)} explained inputs")
        return [(e.n_samples, e.values, e.stderr) for e in per[index]]
    values, stderr, counts = frames["values"], frames.get("stderr"), frames["n_samples"]
    if not 0 <= index < values.shape[1]:
        raise IndexError(f"index {index} is out of range for {values.shape[1]} explained inputs")
    return [
        (int(counts[k]), values[k, index], None if stderr is None else stderr[k, index])
        for k in range(values.shape[0])
    ]


def _expected(method_cls: Any, params: dict[str, Any]) -> int | None:
    merged = {**method_cls.defaults, **params}
    for key in ("n_samples", "n_masks"):
        value = merged.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if method_cls.name == "shapley_sampling":
                return 2 * -(-value // 2)  # orderings come in antithetic pairs
            return value
    return None


def _label(attribution: Attribution, index: int) -> str:
    target = int(attribution.target[index])
    return attribution.classifier.label(target) if attribution.classifier else f"class {target}"


class _EstimateJob(ViewJob):
    """``EstimateView.compute``'s run: the method with a callback per estimate; each estimate of input
    ``index`` joins the history and is pushed to the browser at most every ``update_interval`` s."""

    def __init__(self, view: EstimateView, model: Any, classifier: Any, x: torch.Tensor, method_cls: Any, target: Any,
                 index: int, budget: float, update_interval: float, params: dict[str, Any]) -> None:
        super().__init__(view)
        self.model, self.classifier, self.x, self.method_cls, self.target = model, classifier, x, method_cls, target
        self.index, self.update_interval = index, update_interval
        self.user_callback = params.pop("callback", None)
        params.setdefault("stream_every", 1)
        self.params = params
        display: Display = display_function(classifier, x)
        self.image = display(x[index : index + 1].detach())[0]
        height, width = x.shape[-2:]
        self.history = EstimateHistory(plan_size(height, width, MAX_FRAMES, budget),
                                       expected=_expected(method_cls, params))
        self.lock = threading.Lock()

    def run(self) -> None:
        from ..api import attribute

        result = attribute(self.model, self.x, method=self.method_cls.name, target=self.target,
                           progress=self.tracker(), callback=self.on_estimate, **self.params)
        view = self.view
        view.attribution = result
        view.title = f"{result.method} · {_label(result, self.index)}"
        if not len(self.history):  # nothing sampled (e.g. KernelSHAP enumerated every coalition): the result
            self.add(self.history.expected or 0, result.values[self.index].mean(0), None)
        self.push(done=True)

    def on_estimate(self, est: Any, stderr: torch.Tensor) -> None:
        """The method's callback: every running estimate (the user's callback first)."""
        if self.user_callback is not None:
            self.user_callback(est, stderr)
        if est.index != self.index:
            return
        try:
            self.add(est.n_samples, est.values, stderr)
            if self.due(self.update_interval):
                self.push()
        except Exception:  # a display problem must not stop the computation
            pass

    def on_cancel(self, exc: Cancelled) -> None:
        """Keep the best estimate so far: the partial result completed, samples after the last estimate added."""
        partial = exc.partial
        if partial is not None:
            view, index = self.view, self.index
            view.attribution = _complete_partial(partial, self.method_cls, self.x, self.classifier, self.params)
            view.title = f"{self.method_cls.name} · {_label(view.attribution, index)} · cancelled"
            n_done = (partial.extras or {}).get("n_samples_done") or [0]
            if index < len(n_done) and n_done[index] > self.history.last_n:  # samples after the last estimate
                self.add(n_done[index], partial.values[index].mean(0), None)
        self.push(cancelled=True)

    def add(self, n_samples: int, values: torch.Tensor, stderr: torch.Tensor | None) -> None:
        with self.lock:
            self.history.add(n_samples, values, stderr)

    def push(self, done: bool = False, cancelled: bool = False) -> None:
        with self.lock:
            payload = self.history.payload(self.image, method=self.method_cls.name, done=done, cancelled=cancelled)
        if payload:
            self.view.estimate = payload


# ----- the widget -------------------------------------------------------------------------------------


class EstimateView(CancellableJob, PngFallbackWidget, ViewOptions):
    _held = ("attribution",)
    """A sampling method's running estimate, its standard error and their convergence. Build it with
    :meth:`from_attribution` (recorded estimates) or :meth:`compute` / ``xw.widgets.stream`` (live)."""

    _esm = esm("estimate")
    _bundle_name = "estimate"

    estimate = traitlets.Dict().tag(sync=True)
    frame = traitlets.Int(-1).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self.attribution: Attribution | None = None
        self._worker: Worker | None = None
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    @property
    def result(self) -> Attribution | None:
        """The finished Attribution, or after a cancel the best estimate so far (``extras["cancelled"]``)."""
        return self.attribution

    # ----- construction
    @classmethod
    def from_attribution(
        cls, attribution: Attribution, index: int = 0, *, budget: float = DEFAULT_BUDGET, **options: Any
    ) -> EstimateView:
        """Input ``index`` of a result computed with ``stream_every >= 1`` (``frame_kind="estimate"``)."""
        frames = estimate_frames(attribution, index)
        if not frames:
            raise ParameterError("this result recorded no estimate for that input")
        height, width = as_plane(frames[0][1]).shape
        history = EstimateHistory(plan_size(height, width, min(MAX_FRAMES, len(frames)), budget),
                                  expected=frames[-1][0])
        for n, values, stderr in frames:
            history.add(n, values, stderr)
        images = attribution.display_images()
        image = images[index] if images is not None and images.shape[1:3] == (height, width) else None
        view = cls(**options)
        view.attribution = attribution
        cancelled = bool((attribution.extras or {}).get("cancelled", False))
        view.estimate = history.payload(image, method=attribution.method, done=not cancelled, cancelled=cancelled)
        view.status = "cancelled" if cancelled else "done"
        view.title = f"{attribution.method} · {_label(attribution, index)}"
        return view

    @classmethod
    def compute(
        cls,
        model: Any,
        inputs: Any,
        method: str = "kernel_shap",
        target: Any = None,
        *,
        index: int = 0,
        budget: float = LIVE_BUDGET,
        update_interval: float = UPDATE_INTERVAL,
        wait: bool = False,
        view_options: dict[str, Any] | None = None,
        **params: Any,
    ) -> EstimateView:
        """Return the view at once and run ``method`` on a worker thread; each new estimate of input
        ``index`` is pushed to the browser (at most every ``update_interval`` s, plus the final one).
        ``status`` ends ``"done"``, ``"cancelled"`` (the best estimate so far stays, and :attr:`result`
        holds it) or ``"error"``. ``stream_every`` defaults to 1 (an estimate per model batch);
        ``wait=True`` blocks until done."""
        from ..core.inputs import as_batch
        from ..methods.registry import get_method

        cls_method = get_method(method)
        if "stream_every" not in cls_method.defaults:
            raise ParameterError(
                f"{cls_method.name!r} reports no running estimate; stream kernel_shap, shapley_sampling, lime or rise"
            )
        cls_method.check_params(params)
        module, classifier = unwrap_model(model)
        x = as_batch(inputs, module)
        if x.dim() != 4:
            raise InputError("the estimate view shows image inputs: pass a (N, C, H, W) or (C, H, W) tensor")
        if not 0 <= index < x.shape[0]:
            raise IndexError(f"index {index} is out of range for {x.shape[0]} inputs")
        view = cls(status="running", **(view_options or {}))
        view.title = f"{cls_method.name} · computing"
        view._start_worker("xaiwidgets-estimate")
        view._submit(_EstimateJob(view, model, classifier, x, cls_method, target, index, budget, update_interval,
                                  params))
        if wait:
            view._block()
        return view

    # ----- requests from the browser and control
    # ----- static fallback
    def _fallback_png(self) -> bytes | None:
        e = self.estimate
        if not e or not e.get("count"):
            return None
        h, w = e["shape"]
        k = e["count"] - 1

        def plane(stack: dict[str, Any]) -> np.ndarray:
            q = np.frombuffer(stack["data"], np.uint8).reshape(stack["shape"])[k]
            return stack["vmin"] + q.astype(np.float32) / 255.0 * (stack["vmax"] - stack["vmin"])

        image = None if e["image"] is None else np.frombuffer(e["image"]["data"], np.uint8).reshape(h, w, 3)
        n = int(np.frombuffer(e["n_samples"]["data"], np.float32)[k])
        panels = [(f"estimate after {n} samples", plane(e["values"]), bool(e["signed"]))]
        if e["has_stderr"]:
            panels.append(("standard error", plane(e["stderr"]), False))
        return render_png(image, panels, caption=self.title, **self.view_options())


def _complete_partial(partial: Attribution, method_cls: Any, x: torch.Tensor, classifier: Any,
                      params: dict[str, Any]) -> Attribution:
    """A cancelled method's partial result with the fields ``Method.attribute`` fills on success."""
    partial.method = method_cls.name
    partial.params = {**method_cls.defaults, **params}
    partial.inputs = x
    partial.classifier = classifier
    partial.default_reduce = method_cls.default_reduce
    partial.signed = method_cls.signed
    return partial


def stream(model: Any, inputs: Any, method: str = "kernel_shap", target: Any = None, **kwargs: Any) -> EstimateView:
    """Watch ``method``'s estimate refine while it samples: ``EstimateView.compute`` (see there)."""
    return EstimateView.compute(model, inputs, method, target, **kwargs)
