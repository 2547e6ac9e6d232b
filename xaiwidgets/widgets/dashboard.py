"""ExplainDashboard: top-k predictions, one heatmap panel per method, recompute on class click.

Computation runs on a background worker so results stream into the ``panels`` trait as each method
finishes while the notebook stays responsive; the browser asks for another class with a ``compute``
message and can ``cancel``, adds or removes methods (``set_methods``), lists the model's spatial layers
(``list_layers``), sets a method's parameters (``set_params``: a CAM's layer, a slider over a method's
``tunable`` parameters such as ``lrp_gamma``'s gamma) and opens the scrubber over an Integrated-Gradients
or SmoothGrad panel's frames (``frames``). Results are cached by (method, class, parameters), so going
back to a class or a parameter value already seen costs nothing. See ``docs/widget-protocol.md``.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import traitlets

from ..api import attribute
from ..core.adapters import ImageClassifier, unwrap_model
from ..core.errors import Cancelled
from ..core.inputs import as_batch
from ..methods.base import Method
from ..methods.cam.layers_list import spatial_layers
from ..methods.registry import available, get_method
from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import display_shape, fit_display, heatmap_payload, image_payload
from .cache import ResultCache, params_key
from .fallback import render_png
from .jobs import CancellableJob, ViewJob, describe, handles
from .methodinfo import (  # noqa: F401  (has_frames, tunable_spec: also importable from here)
    DASHBOARD_PARAMS,
    block_layers,
    capabilities,
    display_defaults,
    has_frames,
    method_info,
    result_notes,
    tunable_spec,
)
from .scrubber import (
    DEFAULT_BUDGET,
    UPDATE_INTERVAL,
    display_function,
    expected_frames,
    result_payload,
    snapshot_payload,
)

DEFAULT_METHODS = ("saliency", "input_x_gradient", "gradcam")
MAP_CACHE_SIZE = 128  # heatmaps kept (a 224x224 map is 0.2 MB; at most 1024 px a side, 4 MB)
#: inputs above this many pixels cost each method a multiple of a 224x224 pass: ``explain`` warns
LARGE_INPUT_PIXELS = 1024 * 1024
FRAMES_CACHE_SIZE = 4  # scrubber frame dicts kept (each up to frame_budget bytes)

_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> Any:
    """``value`` when it is plain JSON (nested lists/dicts of scalars); otherwise its ``repr``."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def _params_to_json(value: dict[str, dict[str, Any]], _widget: Any) -> dict[str, Any]:
    # Parameters may hold tensors or callables (baselines, masks): the browser only sees their repr.
    return {str(m): _json_safe(dict(p)) for m, p in (value or {}).items()}


def coerce_tunable(cls: type[Method], name: str, value: Any) -> Any:
    """A slider's number as the parameter's type (int for integer parameters); other values unchanged."""
    if name not in cls.tunable or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if tunable_spec(cls)[name]["integer"]:
        if float(value) != int(value):
            raise ValueError(f"{cls.name}'s {name} must be an integer; got {value!r}")
        return int(value)
    return float(value)


def check_browser_params(cls: type[Method], params: Any) -> dict[str, Any]:
    """The parameters a view may set, checked against the spec the kernel sent it: each tunable number
    within its slider range (or the method's default, or ``"auto"``), and ``layer`` (a module name)
    for methods that take one; ``None``/``""`` resets a key. Anything else raises,
    answered to the browser, so a crafted or stale message never reaches the method's allocator."""
    if not isinstance(params, dict):
        raise ValueError("params must be a dict")
    allowed = set(cls.tunable) | ({"layer"} & set(cls.defaults))
    for key, value in params.items():
        if key not in allowed:
            settable = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"{cls.name}'s {key!r} cannot be set from the view (settable: {settable}); "
                             "pass it in params= when creating the dashboard")
        if value is None or value == "" or (key in cls.defaults and _same(value, cls.defaults[key])):
            continue
        if key != "layer" and value == "auto":
            continue  # the automatic choice a slider offers (IG's n_steps); the method checks it takes it
        if key == "layer":
            if not isinstance(value, str):
                raise ValueError(f"layer must be a module name, got {type(value).__name__}")
            continue  # an unknown name is reported in the method's panel, with the closest layer names
        lo, hi, _step = cls.tunable[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not lo <= value <= hi:
            raise ValueError(f"{cls.name}'s {key} must be a number in [{lo}, {hi}]; got {value!r}")
    return params


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def _layer_name(layer: Any) -> str:
    if isinstance(layer, str):
        return layer
    if isinstance(layer, (list, tuple)):
        return ", ".join(str(x) for x in layer)
    return "" if layer is None else str(layer)


class _PanelsJob(ViewJob):
    """The panels for one class: every method (or ``only`` these, the other panels untouched), each from
    the cache or computed; a method's error goes to its panel, and a cancel marks the unfinished ones."""

    announce = False  # only a browser request is answered

    def __init__(self, view: ExplainDashboard, request_id: str, target: int | None,
                 only: set[str] | None = None) -> None:
        super().__init__(view, request_id)
        self.target, self.only = target, only
        self.methods: list[str] = []

    def run(self) -> None:
        view = self.view
        target = view.target if self.target is None else self.target  # None: the current one
        self.target = target
        self.methods = [m for m in view.methods if self.only is None or m in self.only]
        view.target = target
        if self.only is None:
            view.panels = [view._panel(m, "pending", target) for m in self.methods]
        for i, method in enumerate(self.methods):
            if self.cancel.is_set():
                raise Cancelled()
            if method in view.methods:  # not removed meanwhile
                self.panel(i, method)
            view.progress = (i + 1) / len(self.methods)

    def panel(self, i: int, method: str) -> None:
        """One method's panel: the cached map for (method, class, parameters), or computed now."""
        view = self.view
        params = dict(view.method_params.get(method, {}))  # the key and the run use the same values
        key = view._key(method, self.target, params)
        cached = view._cache.get(key)
        if cached is None:
            view._set_panel(method, view._panel(method, "running", self.target))
            try:
                cached = self.explain(i, method, params)
            except Cancelled:
                raise
            except Exception as exc:  # shown in the panel; the other methods go on
                view._set_panel(method, view._panel(method, "error", self.target, error=describe(exc)))
                return
            view._cache.put(key, cached)
        values, signed, seconds, layer, notes = cached
        view._last_layer[method] = layer
        view._set_panel(method, view._panel(method, "done", self.target, heatmap=heatmap_payload(values, signed),
                                            signed=signed, seconds=round(seconds, 3), layer=layer, notes=notes))

    def explain(self, i: int, method: str, params: dict[str, Any]) -> tuple[np.ndarray, bool, float, str, dict]:
        """Run ``method``: the map at the display size, its sign, seconds, resolved layer and notes."""
        view = self.view
        start = time.perf_counter()
        if capabilities(get_method(method))["cam"]:
            try:
                view._ensure_layers()  # the layer picker's list, filled before the CAM hooks a layer
            except Exception:  # the picker stays empty; the method may still work
                pass
        result = attribute(view.classifier, view.inputs, method=method, target=self.target,
                           progress=self.tracker(i / len(self.methods), 1 / len(self.methods)), **params)
        values = fit_display(result.heatmap()[0], view._display.shape[:2])
        signed = bool(result.signed and (values < 0).any())
        return (values, signed, time.perf_counter() - start, _layer_name(result.extras.get("layer")),
                result_notes(result))

    def on_cancel(self, exc: Cancelled) -> None:
        """No job will finish these panels: say so (the view offers to recompute)."""
        view = self.view
        unfinished = [m for m in self.methods if m in view.methods]
        with view._lock:
            view.panels = [{**p, "state": "cancelled"} if p["method"] in unfinished
                           and p.get("state") in ("pending", "running") else p for p in view.panels]


class _FramesJob(ViewJob):
    """The open scrubber's frames: ``method`` run with ``return_frames=True`` for the current class and
    parameters (or from the cache), snapshots streamed into the ``scrubber`` trait. The view's status
    changes only when frames are computed; the outcome shows in the scrubber."""

    announce = False

    def __init__(self, view: ExplainDashboard, request_id: str, method: str) -> None:
        super().__init__(view, request_id)
        self.method = method
        self.event = threading.Event()  # the worker's cancel event for this job (set by _submit_frames)
        self.started = False
        self.finished = False
        self.head: dict[str, Any] = {}
        self.latest: dict[str, Any] = {}  # the newest streamed frames dict
        self.computing = False

    def __call__(self, cancel: threading.Event) -> None:
        with self.view._lock:
            if self.finished:  # cancelled (and answered) before it started
                return
            self.started = True
        super().__call__(cancel)

    def begin(self) -> None:
        pass  # the status changes only when frames are computed (run)

    def skipped(self) -> None:
        if not self.finished:  # else _cancel_frames_job answered it
            self.finished = True
            super().skipped()

    def run(self) -> None:
        view, method = self.view, self.method
        if view._frames_method != method or method not in view.methods:
            self.status = "cancelled"
            return
        target = view.target
        params = dict(view.method_params.get(method, {}))
        key = view._key(method, target, params)
        self.head = {"method": method, "target": target, "params": _json_safe(params), "error": ""}
        cached = view._frames_cache.get(key)
        if cached is not None:
            self.show("done", cached)
            return
        self.show("running", {})
        self.computing = True
        super().begin()
        self.display = display_function(view.classifier, view.inputs)
        self.image = self.display(view.inputs[:1].detach())[0]
        self.expected = expected_frames(method, params)
        result = attribute(view.classifier, view.inputs, method=method, target=target,
                           progress=self.tracker(on_event=self.stream), **{**params, "return_frames": True})
        payload = result_payload(result, 0, display=self.display, budget=view.frame_budget)
        view._frames_cache.put(key, payload)
        self.show("done", payload)

    def stream(self, event: str, data: Any) -> None:
        if event != "frames" or not self.due(UPDATE_INTERVAL):
            return
        try:
            payload = snapshot_payload(data, 0, self.display, self.image, expected=self.expected,
                                       budget=self.view.frame_budget)
        except Exception:  # a malformed snapshot must not stop the computation
            return
        if payload is not None:
            self.latest = payload
            self.show("running", payload)

    def show(self, state: str, frames: dict[str, Any], error: str = "") -> None:
        if self.head and self.view._frames_method == self.method:  # closed or switched: leave the trait
            self.view.scrubber = {**self.head, "state": state, "frames": frames, "error": error}

    def on_cancel(self, exc: Cancelled) -> None:
        self.show("cancelled", self.latest)

    def on_error(self, exc: Exception) -> None:
        self.show("error", {}, self.error)

    def end(self) -> None:
        self.finished = True
        if self.computing:
            super().end()


class _LayersJob(ViewJob):
    """``list_layers``: the model's spatial layers, once (a side job: the status stays)."""

    announce = False
    tracks_status = False

    def run(self) -> None:
        self.view._ensure_layers()


class ExplainDashboard(CancellableJob, PngFallbackWidget, ViewOptions):
    """The ``xw.explain`` dashboard. Use :func:`xaiwidgets.explain` to build one; ``frame_budget`` (bytes,
    default 3 MB) bounds the scrubber's frames dict on the wire."""

    _esm = esm("dashboard")
    _bundle_name = "dashboard"

    image = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    predictions = traitlets.List().tag(sync=True)
    target = traitlets.Int(0).tag(sync=True)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    panels = traitlets.List().tag(sync=True)
    available_methods = traitlets.List().tag(sync=True)
    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cam_layers = traitlets.List(traitlets.Unicode()).tag(sync=True)  # block outputs, offered first
    method_params = traitlets.Dict().tag(sync=True, to_json=_params_to_json)
    scrubber = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        classifier: ImageClassifier,
        inputs: torch.Tensor,
        methods: Sequence[str],
        *,
        target: int | None = None,
        top_k: int = 5,
        params: dict[str, dict[str, Any]] | None = None,
        frame_budget: float = DEFAULT_BUDGET,
        **options: Any,
    ) -> None:
        for name in methods:
            get_method(name)  # unknown names fail here, before any widget exists
        self.classifier = classifier
        self.inputs = inputs
        self.frame_budget = float(frame_budget)
        # (method, target, params) -> (map, signed, seconds, resolved layer name or "", notes)
        self._cache: ResultCache[tuple[np.ndarray, bool, float, str, dict]] = ResultCache(MAP_CACHE_SIZE)
        self._frames_cache: ResultCache[dict[str, Any]] = ResultCache(FRAMES_CACHE_SIZE)
        self._frames_method = ""  # the panel whose frames the scrubber shows ("" = closed)
        self._frames_job: _FramesJob | None = None  # the newest frames job (to replace or cancel it)
        self._last_layer: dict[str, str] = {}  # method -> layer of its last result (the "auto" label)
        self._lock = threading.Lock()
        self._layers_done = False
        predictions = classifier.top_k(inputs, top_k)[0]
        display = classifier.to_display(inputs)[0]
        # what goes to the browser (and the map cache) is at most MAX_DISPLAY_SIDE a side
        display = fit_display(display, display_shape(display.shape))
        self._display = display
        first = predictions[0]["index"] if target is None else int(target)
        params = {**{m: dict(p) for m, p in DASHBOARD_PARAMS.items() if m in methods}, **(params or {})}
        super().__init__(
            image=image_payload(display),
            predictions=predictions,
            target=first,
            methods=list(methods),
            panels=[self._panel(m, "pending", first) for m in methods],
            available_methods=[method_info(get_method(r["name"]), classifier.model, params.get(r["name"]), inputs)
                               for r in available(modality="image")],
            method_params={k: dict(v) for k, v in params.items()},
            **options,
        )
        self._start_worker("xaiwidgets-dashboard")
        self.on_msg(self._on_message)

    _held = ("classifier", "inputs", "_cache", "_frames_cache", "_display", "_frames_job")

    # ----- requests from the browser (the handler table; docs/widget-protocol.md)
    @handles("compute")
    def _on_compute(self, request_id: str, content: dict[str, Any]) -> None:
        target = content.get("target", self.target)
        if isinstance(target, bool) or not isinstance(target, (int, float)) or float(target) != int(target):
            raise ValueError(f"target must be a class index, got {target!r}")
        self._reply(request_id, "accepted")
        self.compute(int(target), request_id=request_id)

    @handles("set_methods")
    def _on_set_methods(self, request_id: str, content: dict[str, Any]) -> None:
        self.set_methods(content.get("methods"), request_id=request_id)

    @handles("set_params")
    def _on_set_params(self, request_id: str, content: dict[str, Any]) -> None:
        method = content.get("method")
        if not isinstance(method, str) or method not in self.methods:
            raise ValueError(f"no panel for method {method!r}")
        self.set_params(method, check_browser_params(get_method(method), content.get("params")),
                        request_id=request_id)

    @handles("frames")
    def _on_frames(self, request_id: str, content: dict[str, Any]) -> None:
        self.show_frames(content.get("method"), request_id=request_id)

    @handles("list_layers")
    def _on_list_layers(self, request_id: str, _content: dict[str, Any]) -> None:
        self._reply(request_id, "accepted")
        if self._layers_done:
            self._reply(request_id, "done")
        else:  # on the worker: the forward pass must not overlap a running method's hooks
            self._submit(_LayersJob(self, request_id), cancel_running=False)

    # ----- public API
    def compute(self, target: int | None = None, *, request_id: str = "", wait: bool = False) -> None:
        """Recompute every panel for ``target`` (default: the current one) on the worker."""
        self._require_open()
        target = self.target if target is None else int(target)
        n_classes = len(self.classifier.labels) if self.classifier.labels else None
        if target < 0 or (n_classes is not None and target >= n_classes):
            self._reply(request_id, "error", f"no class {target}")
            return
        self._submit(_PanelsJob(self, request_id, target))
        if self._frames_method:  # the open scrubber follows the class
            self._submit_frames("", target)
        if wait:
            self._block()

    def set_methods(self, methods: Any, *, request_id: str = "", wait: bool = False) -> None:
        """Show ``methods`` (image methods, in order); only panels without a cached result are computed.

        Unknown or non-image names raise (nothing changes). Panels of kept methods stay as they are.
        """
        if not isinstance(methods, (list, tuple)) or not all(isinstance(m, str) for m in methods):
            raise ValueError("methods must be a list of method names")
        names: list[str] = []
        for name in methods:
            cls = get_method(name)
            if "image" not in cls.modalities:
                raise ValueError(f"{cls.name!r} does not explain images")
            canonical = name if name in self.methods else cls.name
            if canonical not in names:
                names.append(canonical)
        if request_id:
            self._reply(request_id, "accepted")
        with self._lock:
            old = {p["method"]: p for p in self.panels}
            added = [m for m in names if m not in old]
            self.methods = names
            self.panels = [old.get(m) or self._panel(m, "pending", self.target) for m in names]
            fresh = {m: dict(DASHBOARD_PARAMS[m]) for m in added
                     if m in DASHBOARD_PARAMS and m not in self.method_params}
            if fresh:
                self.method_params = {**self.method_params, **fresh}
        if self._frames_method and self._frames_method not in names:
            self.show_frames(None)
        self._submit_only(set(added), request_id)
        if wait:
            self._block()

    def set_params(self, method: Any, params: Any, *, request_id: str = "", wait: bool = False) -> None:
        """Update ``method``'s parameters (merged; a ``None``/``""`` value removes the key, e.g.
        ``layer=None`` = automatic) and show its panel for them: from the cache when these parameters
        were computed before, else recomputed. An open scrubber over this method follows."""
        if not isinstance(method, str) or method not in self.methods:
            raise ValueError(f"no panel for method {method!r}")
        if not isinstance(params, dict):
            raise ValueError("params must be a dict")
        cls = get_method(method)
        merged = dict(self.method_params.get(method, {}))
        for key, value in params.items():
            if value is None or (isinstance(value, str) and value == ""):
                merged.pop(key, None)
            else:
                merged[key] = coerce_tunable(cls, str(key), value)
        if request_id:
            self._reply(request_id, "accepted")
        updated = dict(self.method_params)
        if merged:
            updated[method] = merged
        else:
            updated.pop(method, None)
        self.method_params = updated
        self._submit_only({method}, request_id)
        if self._frames_method == method:
            self._submit_frames("")
        if wait:
            self._block()

    def show_frames(self, method: str | None, *, request_id: str = "", wait: bool = False) -> None:
        """Open the scrubber over ``method``'s frames (Integrated-Gradients path steps, SmoothGrad noise
        samples) for the current class and parameters: computed on the worker with
        ``return_frames=True`` and streamed into the ``scrubber`` trait (cached like the maps).
        ``None`` closes it. Methods without frames raise."""
        if not method:
            self._cancel_frames_job()
            self._frames_method = ""
            self.scrubber = {}
            if request_id:
                self._reply(request_id, "accepted")
                self._reply(request_id, "done")
            return
        if not isinstance(method, str) or method not in self.methods:
            raise ValueError(f"no panel for method {method!r}")
        if not capabilities(get_method(method))["frames"]:
            raise ValueError(f"{method!r} has no frames; the scrubber shows integrated_gradients and the "
                             "SmoothGrad variants (smoothgrad, smoothgrad_squared, vargrad)")
        if request_id:
            self._reply(request_id, "accepted")
        self._frames_method = method
        self._submit_frames(request_id)
        if wait:
            self._block()

    def list_layers(self) -> list[str]:
        """The model's spatial layers (computed once, also synced as ``layers``)."""
        self._ensure_layers()
        return list(self.layers)

    def _job_failed(self, exc: BaseException) -> None:
        """A job let ``exc`` escape (``KeyboardInterrupt``, ``SystemExit``...): no panel stays computing."""
        error = describe(exc)
        with self._lock:
            self.panels = [p if p.get("state") == "done" else {**p, "state": "error", "error": error}
                           for p in self.panels]
        super()._job_failed(exc)

    def result(self, method: str, target: int | None = None, params: dict[str, Any] | None = None) -> np.ndarray | None:
        """The cached ``(H, W)`` map of ``method`` for ``target`` and ``params`` (by default the current
        class and the method's current parameters); None when it was not computed. Inputs larger than
        ``MAX_DISPLAY_SIDE`` (1024 px) a side are explained at full size but shown, cached and returned
        here downscaled to the display image's size."""
        target = self.target if target is None else int(target)
        params = self.method_params.get(method, {}) if params is None else params
        entry = self._cache.get(self._key(method, target, params))
        return entry[0] if entry else None

    # ----- the job
    @staticmethod
    def _key(method: str, target: int, params: dict[str, Any]) -> tuple[Any, ...]:
        return (method, int(target), params_key(get_method(method).defaults, params))

    def _panel(self, method: str, state: str, target: int, **extra: Any) -> dict[str, Any]:
        panel = {"method": method, "state": state, "heatmap": None, "signed": False, "error": "",
                 "seconds": 0.0, "target": target, "layer": self._last_layer.get(method, "")}
        panel.update(extra)
        return panel

    def _set_panel(self, method: str, panel: dict[str, Any]) -> None:
        # By name: the method list may change while a job runs (a removed method's panel is dropped).
        with self._lock:
            panels = list(self.panels)
            for index, p in enumerate(panels):
                if p["method"] == method:
                    panels[index] = panel
                    self.panels = panels
                    return

    def _ensure_layers(self) -> None:
        """Fill ``layers`` once with the model's spatial layers (callers run it on the worker)."""
        if self._layers_done:
            return
        layers = spatial_layers(self.classifier, self.inputs)
        self.cam_layers = block_layers(self.classifier.model, layers)
        self.layers = layers
        self._layers_done = True

    def _submit_only(self, methods: set[str], request_id: str) -> None:
        # Queued after the running job (not cancelling it): a class change in progress still finishes.
        self._submit(_PanelsJob(self, request_id, None, only=methods), cancel_running=False)

    # ----- the scrubber's frames
    def _submit_frames(self, request_id: str, target: int | None = None) -> None:
        """Queue the frames job of the open scrubber after the panels, replacing an older frames job
        (``target``: the class it will run for, when a queued class change will set it)."""
        self._cancel_frames_job()
        method = self._frames_method
        target = self.target if target is None else int(target)
        params = dict(self.method_params.get(method, {}))
        if self._key(method, target, params) not in self._frames_cache:  # say so until the job starts
            self.scrubber = {"method": method, "target": target, "params": _json_safe(params), "error": "",
                             "state": "pending", "frames": {}}
        job = _FramesJob(self, request_id, method)
        self._frames_job = job
        job.event = self._submit(job, cancel_running=False)

    def _cancel_frames_job(self) -> None:
        job = self._frames_job
        if job is None:
            return
        with self._lock:
            job.event.set()  # a queued job is then skipped by the worker, a running one stops
            skipped = not job.started and not job.finished
            job.finished = True
        if skipped and job.request_id:  # it will never run: answer its request here
            self._reply(job.request_id, "cancelled")

    def _fallback_png(self) -> bytes | None:
        panels = []
        for method in self.methods:
            entry = self._cache.get(self._key(method, self.target, self.method_params.get(method, {})))
            own = self.panel_display(display_defaults(get_method(method)))
            panels.append((method, entry[0] if entry else None, entry[1] if entry else False, own))
        label = self.classifier.label(self.target)
        return render_png(self._display, panels, caption=f"explaining: {label}", **self.view_options())


def _warn_if_large(inputs: torch.Tensor, adapter: ImageClassifier) -> None:
    """Warn (once per call) when the model is fed a very large image: nothing resized it."""
    h, w = int(inputs.shape[-2]), int(inputs.shape[-1])
    if inputs.dim() != 4 or h * w <= LARGE_INPUT_PIXELS:
        return
    cost = h * w / (224 * 224)
    how = ("wrap the model in xw.ImageClassifier(model, input_size=..., mean=..., std=...) or pass preprocess="
           if adapter.input_size is None else "resize the image first")
    warnings.warn(
        f"the model gets the image at its full size, {w}x{h} ({h * w / 1e6:.1f} MP): each method costs about "
        f"{cost:.0f}x a 224x224 pass (and memory to match); the display is downscaled to at most 1024 px. "
        f"To explain it at the model's usual size, {how}",
        UserWarning, stacklevel=3,
    )


def explain(
    model: Any,
    image: Any,
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    labels: Sequence[str] | None = None,
    preprocess: Any = None,
    target: int | None = None,
    top_k: int = 5,
    params: dict[str, dict[str, Any]] | None = None,
    wait: bool = False,
    **options: Any,
) -> ExplainDashboard:
    """A dashboard explaining ``model`` on ``image`` with ``methods``, computed in the kernel.

    ``model`` is an :class:`~xaiwidgets.ImageClassifier` or a module; ``image`` a raw image (PIL, uint8
    array) turned into a batch by ``preprocess`` (or the adapter's), or an already preprocessed
    ``(1, C, H, W)`` / ``(C, H, W)`` tensor. ``params`` maps a method name to its parameters.
    Results stream in as each method finishes; ``wait=True`` blocks until all are done.
    """
    module, adapter = unwrap_model(model)
    if adapter is None:
        # a bare module: images are only scaled to [0, 1] unless ``preprocess`` is given
        adapter = ImageClassifier(module, labels=labels, preprocess=preprocess, mean=None, std=None,
                                  input_size=None)
    elif labels is not None or preprocess is not None:
        adapter = ImageClassifier(
            adapter.model, labels=labels or adapter.labels, mean=adapter.mean, std=adapter.std,
            input_size=adapter.input_size, preprocess=preprocess or adapter._preprocess, name=adapter.name,
        )
    if isinstance(image, torch.Tensor) and image.dim() in (3, 4) and image.is_floating_point():
        inputs = as_batch(image, module, device=adapter.device)
    else:
        inputs = adapter.preprocess(image)
    if inputs.shape[0] != 1:
        raise ValueError(f"explain() takes one image; got a batch of {inputs.shape[0]}")
    _warn_if_large(inputs, adapter)
    dashboard = ExplainDashboard(adapter, inputs, methods, target=target, top_k=top_k, params=params, **options)
    dashboard.compute(wait=wait)  # a KeyboardInterrupt while waiting cancels the computation
    return dashboard
