"""ExplainDashboard: top-k predictions, one heatmap panel per method, recompute on class click.

Computation runs on a background worker so results stream into the ``panels`` trait as each method
finishes while the notebook stays responsive; the browser asks for another class with a ``compute``
message and can ``cancel``. See ``docs/widget-protocol.md``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import traitlets

from ..api import attribute
from ..core.adapters import ImageClassifier, unwrap_model
from ..core.errors import Cancelled
from ..core.inputs import as_batch
from ..core.progress import Progress
from ..methods.registry import get_method
from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import heatmap_payload, image_payload
from .fallback import render_png
from .jobs import Worker

DEFAULT_METHODS = ("saliency", "input_x_gradient", "gradcam")


class ExplainDashboard(PngFallbackWidget, ViewOptions):
    """The ``xw.explain`` dashboard. Use :func:`xaiwidgets.explain` to build one."""

    _esm = esm("dashboard")
    _bundle_name = "dashboard"

    image = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    predictions = traitlets.List().tag(sync=True)
    target = traitlets.Int(0).tag(sync=True)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    panels = traitlets.List().tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)

    def __init__(
        self,
        classifier: ImageClassifier,
        inputs: torch.Tensor,
        methods: Sequence[str],
        *,
        target: int | None = None,
        top_k: int = 5,
        params: dict[str, dict[str, Any]] | None = None,
        **options: Any,
    ) -> None:
        for name in methods:
            get_method(name)  # unknown names fail here, before any widget exists
        self.classifier = classifier
        self.inputs = inputs
        self.method_params = {k: dict(v) for k, v in (params or {}).items()}
        self._cache: dict[tuple[str, int], tuple[np.ndarray, bool, float]] = {}
        self._lock = threading.Lock()
        predictions = classifier.top_k(inputs, top_k)[0]
        display = classifier.to_display(inputs)[0]
        self._display = display
        first = predictions[0]["index"] if target is None else int(target)
        super().__init__(
            image=image_payload(display),
            predictions=predictions,
            target=first,
            methods=list(methods),
            panels=[self._panel(m, "pending", first) for m in methods],
            **options,
        )
        self._worker = Worker()
        self.on_msg(self._on_message)

    # ----- requests from the browser
    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: list) -> None:
        kind = content.get("type")
        request_id = content.get("id", "")
        if kind == "compute":
            target = content.get("target", self.target)
            self.send({"type": "accepted", "id": request_id})
            self.compute(int(target), request_id=request_id)
        elif kind == "cancel":
            self.cancel()
            self.send({"type": "accepted", "id": request_id})

    # ----- public API
    def compute(self, target: int | None = None, *, request_id: str = "", wait: bool = False) -> None:
        """Recompute every panel for ``target`` (default: the current one) on the worker."""
        target = self.target if target is None else int(target)
        n_classes = len(self.classifier.labels) if self.classifier.labels else None
        if target < 0 or (n_classes is not None and target >= n_classes):
            self.send({"type": "done", "id": request_id, "status": "error", "error": f"no class {target}"})
            return
        self._worker.submit(lambda cancel: self._run(target, request_id, cancel))
        if wait:
            self.wait()

    def cancel(self) -> None:
        """Stop the job in progress; finished panels stay."""
        self._worker.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queued computations are finished."""
        return self._worker.wait(timeout)

    def result(self, method: str, target: int | None = None) -> np.ndarray | None:
        """The cached ``(H, W)`` map of ``method`` for ``target`` (current target by default)."""
        entry = self._cache.get((method, self.target if target is None else int(target)))
        return entry[0] if entry else None

    # ----- the job
    def _panel(self, method: str, state: str, target: int, **extra: Any) -> dict[str, Any]:
        panel = {"method": method, "state": state, "heatmap": None, "signed": False, "error": "",
                 "seconds": 0.0, "target": target}
        panel.update(extra)
        return panel

    def _set_panel(self, index: int, panel: dict[str, Any]) -> None:
        with self._lock:
            panels = list(self.panels)
            panels[index] = panel
            self.panels = panels

    def _run(self, target: int, request_id: str, cancel: threading.Event) -> None:
        methods = list(self.methods)
        self.target = target
        self.status = "computing"
        self.progress = 0.0
        self.panels = [self._panel(m, "pending", target) for m in methods]
        status = "done"
        for i, method in enumerate(methods):
            if cancel.is_set():
                status = "cancelled"
                break
            cached = self._cache.get((method, target))
            if cached is None:
                self._set_panel(i, self._panel(method, "running", target))
                tracker = Progress(
                    lambda f, _msg, i=i: setattr(self, "progress", (i + f) / len(methods)),
                    tqdm=False, cancel_event=cancel,
                )
                start = time.perf_counter()
                try:
                    result = attribute(self.classifier, self.inputs, method=method, target=target,
                                       progress=tracker, **self.method_params.get(method, {}))
                except Cancelled:
                    self._set_panel(i, self._panel(method, "pending", target))
                    status = "cancelled"
                    break
                except Exception as exc:  # show the error in the panel
                    self._set_panel(i, self._panel(method, "error", target, error=f"{type(exc).__name__}: {exc}"))
                    continue
                values = result.heatmap()[0]
                signed = bool(result.signed and (values < 0).any())
                cached = (values, signed, time.perf_counter() - start)
                self._cache[(method, target)] = cached
            values, signed, seconds = cached
            self._set_panel(i, self._panel(method, "done", target, heatmap=heatmap_payload(values, signed),
                                           signed=signed, seconds=round(seconds, 3)))
            self.progress = (i + 1) / len(methods)
        self.status = "idle" if status == "done" else status
        if request_id:
            self.send({"type": "done", "id": request_id, "status": status})

    def _fallback_png(self) -> bytes | None:
        panels = []
        for method in self.methods:
            entry = self._cache.get((method, self.target))
            panels.append((method, entry[0] if entry else None, entry[1] if entry else False))
        label = self.classifier.label(self.target)
        return render_png(self._display, panels, caption=f"explaining: {label}", **self.view_options())


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
    dashboard = ExplainDashboard(adapter, inputs, methods, target=target, top_k=top_k, params=params, **options)
    dashboard.compute(wait=wait)
    return dashboard
