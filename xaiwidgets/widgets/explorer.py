"""DatasetExplorer: browse the explanations of a whole dataset, find a Clever-Hans cluster, drill down.

The kernel holds a :class:`~xaiwidgets.DatasetExplanations` (computed by :func:`explore` with
:func:`~xaiwidgets.explain_dataset`, streaming chunk by chunk, or reopened from a store). The browser gets
compact per-item metadata once (``meta``: labels, predictions, confidence, correctness, loss and a map
statistic as binary arrays) and filters, sorts and virtualises the grid itself; it asks for the pixels of
the tiles it shows in ``page`` requests, answered with uint8 buffers (thumbnails and quantised maps).
``spray`` requests run SpRAy (:mod:`xaiwidgets.analysis.spray`) on one class; ``drill`` opens one item
in an :class:`~xaiwidgets.ExplainDashboard`. The wire format is in ``docs/widget-protocol.md``
("DatasetExplorer").
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from ..core.adapters import unwrap_model
from ..core.errors import InputError, ParameterError
from ..dataset import DatasetExplanations, explain_dataset
from ..dataset.sources import make_source
from ..dataset.store import Store
from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import array_payload, fit_display, quantize, value_range
from .jobs import CancellableJob, ViewJob, handles, wait_or_cancel
from .scrubber import display_function, downsample_images

THUMB_SIDE = 64  # thumbnails on the wire (area-averaged down from the input)
MAX_PAGE = 256  # items per page request
PAGE_CACHE = 4096  # thumbnails kept in the kernel (64x64x3 = 12 kB each)
META_INTERVAL = 0.5  # seconds between metadata refreshes while explain_dataset streams
SPRAY_TSNE_UP_TO = 3000  # t-SNE embedding up to this class size, the spectral one above
EXPORT_TILES = 200  # tiles in an HTML export (the selection, else the first items)
#: share of the map's side left out on each border for the "centre" of :func:`outside_centre`
CENTRE_MARGIN = 0.25


def outside_centre(maps: np.ndarray, margin: float = CENTRE_MARGIN) -> np.ndarray:
    """Share of each map's positive relevance outside the central box (``margin`` of the side cut from each
    border, i.e. the middle half by default): high when a model looks at borders and corners (a watermark,
    a frame). NaN for a map without positive relevance."""
    m = np.clip(np.asarray(maps, np.float64), 0, None)
    h, w = m.shape[1:3]
    t, b = round(h * margin), h - round(h * margin)
    lft, r = round(w * margin), w - round(w * margin)
    total = m.sum((1, 2))
    inside = m[:, t:b, lft:r].sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - inside / total, np.nan).astype(np.float32)


def quantize_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, h, w)`` maps to uint8 codes with one ``(vmin, vmax)`` per map (symmetric when it has both signs)."""
    q = np.zeros(maps.shape, np.uint8)
    ranges = np.zeros((len(maps), 2), np.float32)
    for i, m in enumerate(maps):
        signed = bool((m < 0).any() and (m > 0).any())
        lo, hi = value_range(m, signed)
        ranges[i] = (lo, hi)
        q[i] = quantize(m, lo, hi)
    return q, ranges


def _labels_of(model: Any, n_classes: int) -> list[str]:
    _, adapter = unwrap_model(model) if model is not None else (None, None)
    names = list(getattr(adapter, "labels", None) or [])
    return [str(names[c]) if c < len(names) else f"class {c}" for c in range(n_classes)]


class DatasetExplorer(CancellableJob, PngFallbackWidget, ViewOptions):
    """Grid, filters, SpRAy scatter and drill-down over a dataset's explanations. Build it with
    :func:`explore`. ``selection`` (dataset indices) follows the brush and the browser's selection and can
    be set from Python; ``explanations`` is the current :class:`~xaiwidgets.DatasetExplanations`."""

    _esm = esm("explorer")
    _bundle_name = "explorer"
    _held = ("explanations", "dashboard", "_model", "_pages", "_display", "_spray_result", "_stats")

    meta = traitlets.Dict().tag(sync=True)
    classes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    method = traitlets.Unicode("").tag(sync=True)
    has_images = traitlets.Bool(False).tag(sync=True)
    has_model = traitlets.Bool(False).tag(sync=True)
    spray = traitlets.Dict().tag(sync=True)
    selection = traitlets.List(traitlets.Int()).tag(sync=True)
    drill = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    preview = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, explanations: DatasetExplanations | None = None, *, model: Any = None,
                 method: str | None = None, spray_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.explanations = explanations
        self.dashboard: Any = None
        self._model = model
        self._pages: OrderedDict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self._display: Any = None
        self._spray_result: Any = None
        self._stats: dict[str, np.ndarray] = {}  # method -> outside_centre per dataset index (NaN: not yet)
        self._spray_options = dict(spray_options or {})
        self._lock = threading.RLock()
        self._error: Exception | None = None
        super().__init__(has_model=model is not None, **kwargs)
        self._start_worker("xaiwidgets-explorer")
        self.on_msg(self._on_message)
        if explanations is not None:
            self._adopt(explanations, method)

    # ----- state from the explanations
    def _adopt(self, expl: DatasetExplanations, method: str | None = None) -> None:
        """Show ``expl`` (a newer view of the same run while streaming): metadata, methods, classes."""
        with self._lock:
            self.explanations = expl
            methods = expl.methods
            if methods != list(self.methods):
                self.methods = methods
            if method is not None:
                if method not in methods:
                    self.message = f"this store has no maps for {method!r}; its methods: {', '.join(methods)}"
                self.method = method
            elif not self.method and methods:
                self.method = methods[0]
            self.has_images = expl.has_inputs
            self._send_meta()

    def _n_classes(self, expl: DatasetExplanations) -> int:
        top = int(expl.topk.max()) + 1 if len(expl) else 0
        lab = int(expl.labels.max()) + 1 if len(expl) else 0
        return max(top, lab, len(self.classes))

    def _send_meta(self) -> None:
        expl = self.explanations
        if expl is None:
            return
        if len(expl):
            classes = _labels_of(self._model, self._n_classes(expl))
            if classes != list(self.classes):
                self.classes = classes
        self.meta = self._meta_payload(expl)
        if not len(expl) and not self.message and self.status != "running":
            self.message = "no items: the dataset or the store is empty"

    def _meta_payload(self, expl: DatasetExplanations) -> dict[str, Any]:
        """Per-item metadata as binary arrays, in row order (the browser filters and sorts on these)."""
        n = len(expl)
        idx = expl.indices
        stat = self._stats.get(self.method)
        stats = stat[idx] if stat is not None and n else np.full(n, np.nan, np.float32)
        empty = np.empty(0)
        return {
            "n": n,
            "total": int(expl.manifest.get("n", n)),
            "method": self.method,
            "index": array_payload(idx, "int32"),
            "label": array_payload(expl.labels if n else empty, "int32"),
            "pred": array_payload(expl.predictions if n else empty, "int32"),
            "conf": array_payload(expl.probabilities[:, 0] if n else empty, "float32"),
            "correct": array_payload(expl.correct if n else empty, "uint8"),
            "loss": array_payload(expl.loss if n else empty, "float32"),
            "stat": array_payload(stats, "float32"),
        }

    def _rows_of(self, indices: Sequence[int]) -> np.ndarray:
        """Row positions of dataset ``indices`` in the current explanations; InputError naming the first
        index it cannot resolve (the store changed, or the item was never explained)."""
        expl = self.explanations
        if expl is None:
            raise InputError("no explanations yet")
        all_idx = expl.indices
        want = np.asarray(list(indices), np.int64)
        pos = np.searchsorted(all_idx, want)
        ok = (pos < len(all_idx)) & (all_idx[np.minimum(pos, len(all_idx) - 1)] == want) if len(all_idx) else \
            np.zeros(len(want), bool)
        if not ok.all():
            bad = int(want[~ok][0])
            raise InputError(f"item {bad} is not in these explanations (the store changed or it was never "
                             "explained); reload the selection")
        return pos

    def _maps(self, method: str) -> Any:
        expl = self.explanations
        if expl is None:
            raise InputError("no explanations yet")
        if method not in expl.methods:
            raise ParameterError(f"this store has no maps for {method!r}; its methods: {', '.join(expl.methods)}")
        return expl.maps(method)

    # ----- requests from the browser
    @handles("spray")
    def _on_spray(self, request_id: str, content: dict[str, Any]) -> None:
        self._reply(request_id, "accepted")
        self._submit(_SprayJob(self, request_id, content.get("cls"), content.get("method"),
                               content.get("space", "maps")), cancel_running=False)

    @handles("drill")
    def _on_drill(self, request_id: str, content: dict[str, Any]) -> None:
        self._reply(request_id, "accepted")
        self._submit(_DrillJob(self, request_id, content.get("index")), cancel_running=False)

    @handles("page")
    def _on_page(self, request_id: str, content: dict[str, Any]) -> None:
        """Answered at once (not on the worker: pages must not wait behind explain_dataset's chunks); an
        error is answered by the handler table."""
        indices = content.get("indices")
        method = content.get("method") or self.method
        if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise ParameterError("indices must be a list of dataset indices")
        if len(indices) > MAX_PAGE:
            raise ParameterError(f"at most {MAX_PAGE} items per page; got {len(indices)}")
        header, buffers = self.page(indices, str(method))
        self.send({"type": "page", "id": request_id, **header}, buffers)
        self._reply(request_id, "done")

    def page(self, indices: Sequence[int], method: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
        """The pixels of dataset ``indices``: ``(header, buffers)``; buffers are uint8 maps ``(n, h, w)``
        (quantised, ``ranges`` per map) and, when the data is at hand, uint8 thumbnails ``(n, s, s, 3)``."""
        method = method or self.method
        with self._lock:
            rows = self._rows_of(indices)
            maps = self._maps(method)
            values = maps[np.asarray(rows)] if len(rows) else np.zeros((0, *maps.shape[1:]), np.float32)
            codes, ranges = quantize_maps(np.asarray(values, np.float32))
            header: dict[str, Any] = {"indices": [int(i) for i in indices], "method": method,
                                      "maps": {"dtype": "uint8", "shape": list(codes.shape)},
                                      "ranges": ranges.reshape(-1).tolist()}
            buffers = [codes.tobytes()]
            if self.has_images and len(rows):
                thumbs = np.stack([self._thumb(int(i)) for i in indices])
                header["images"] = {"dtype": "uint8", "shape": list(thumbs.shape)}
                buffers.append(thumbs.tobytes())
        return header, buffers

    def _thumb(self, index: int) -> np.ndarray:
        key = (index, "image")
        hit = self._pages.get(key)
        if hit is not None:
            self._pages.move_to_end(key)
            return hit[0]
        expl = self.explanations
        assert expl is not None and expl.has_inputs
        x = expl.inputs([index])
        if self._display is None:  # one affine map for every thumbnail (the adapter's, else a sample's range)
            _, adapter = unwrap_model(self._model) if self._model is not None else (None, None)
            self._display = display_function(adapter, expl.inputs(expl.indices[:16]))
        img = self._display(x)[0]
        h, w = img.shape[:2]
        scale = min(1.0, THUMB_SIDE / max(h, w))
        img = downsample_images(img[None], (max(1, round(h * scale)), max(1, round(w * scale))))[0]
        self._pages[key] = (img, np.empty(0), np.empty(0))
        while len(self._pages) > PAGE_CACHE:
            self._pages.popitem(last=False)
        return img

    @traitlets.observe("method")
    def _method_changed(self, change: dict[str, Any]) -> None:
        expl = self.explanations
        if expl is None or change["new"] == change["old"]:
            return
        if change["new"] not in expl.methods:
            self.message = f"this store has no maps for {change['new']!r}; its methods: {', '.join(expl.methods)}"
            return
        self.message = ""
        self._send_meta()
        if self._worker is not None and self.status != "running":
            self._submit(lambda cancel: self._stats_job(cancel), cancel_running=False)

    # ----- statistics of the maps (outside-centre share), filled in blocks on the worker
    def _stats_for(self, method: str, rows: np.ndarray) -> None:
        expl = self.explanations
        if expl is None or method not in expl.methods or not len(rows):
            return
        total = int(expl.manifest.get("n", len(expl)))
        stat = self._stats.setdefault(method, np.full(total, np.nan, np.float32))
        stat[expl.indices[rows]] = outside_centre(np.asarray(expl.maps(method)[rows], np.float32))

    def _stats_job(self, cancel: threading.Event, block: int = 2048) -> None:
        method = self.method
        expl = self.explanations
        if expl is None or method not in expl.methods:
            return
        have = self._stats.get(method)
        todo = np.arange(len(expl)) if have is None else np.flatnonzero(np.isnan(have[expl.indices]))
        for start in range(0, len(todo), block):
            if cancel.is_set():
                return
            self._stats_for(method, todo[start:start + block])
        self._send_meta()

    # ----- SpRAy
    def _spray(self, cls: Any, method: Any, space: Any = "maps") -> None:
        """SpRAy on the items predicted as ``cls``: on ``method``'s maps (``space="maps"``) or, to compare,
        on their penultimate activations (``"activations"``, the store's embeddings, unnormalised); the
        result goes to ``spray`` (an error too, as ``state="error"``)."""
        from ..analysis import spray

        method = method if isinstance(method, str) and method else self.method
        try:
            if isinstance(cls, bool) or not isinstance(cls, int):
                raise ParameterError(f"cls must be a class index, got {cls!r}")
            if space not in ("maps", "activations"):
                raise ParameterError(f"space must be 'maps' or 'activations', got {space!r}")
            expl = self.explanations
            if expl is None:
                raise InputError("no explanations yet")
            self._maps(method)
            self.spray = {"cls": cls, "method": method, "space": space, "state": "running"}
            options = dict(self._spray_options)
            n_cls = int((expl.predictions == cls).sum())
            options.setdefault("embedding", "tsne" if n_cls <= SPRAY_TSNE_UP_TO else "spectral")
            if space == "maps":
                result = expl.spray(method, cls, **options)
            else:
                sub = expl.select(expl.predictions == cls)
                if len(sub) < 3:
                    raise InputError(f"SpRAy needs at least 3 items; {len(sub)} are predicted as class {cls}")
                result = spray(np.asarray(sub.embeddings, np.float32), **{"normalize": None, **options})
                result.indices = sub.indices
            self._spray_result = result
            self.spray = {**self._spray_payload(result, cls, method), "space": space}
        except Exception as exc:
            self.spray = {"cls": cls if isinstance(cls, int) else -1, "method": method, "space": space,
                          "state": "error", "error": f"{exc}"}
            raise

    def _spray_payload(self, result: Any, cls: int, method: str) -> dict[str, Any]:
        maps = self._maps(method)
        rows = self._rows_of(result.indices)
        means = np.stack([np.asarray(maps[np.sort(rows[result.labels == c])], np.float32).mean(0)
                          if (result.labels == c).any() else np.zeros(maps.shape[1:], np.float32)
                          for c in range(result.n_clusters)])
        codes, ranges = quantize_maps(means)
        emb = result.embedding if result.embedding is not None else result.eigenvectors[:, 1:3]
        gaps = np.diff(result.eigenvalues[:min(len(result.eigenvalues), 11)])
        return {
            "cls": cls, "method": method, "state": "done", "error": "",
            "n_clusters": int(result.n_clusters),
            "eigengap": int(np.argmax(gaps)) + 1 if len(gaps) else 1,
            "eigenvalues": array_payload(result.eigenvalues, "float32"),
            "indices": array_payload(result.indices, "int32"),
            "labels": array_payload(result.labels, "int16"),
            "embedding": array_payload(emb, "float32"),
            "means": array_payload(codes),
            "mean_ranges": array_payload(ranges, "float32"),
            "sizes": [int((result.labels == c).sum()) for c in range(result.n_clusters)],
        }

    def run_spray(self, cls: int, method: str | None = None, *, space: str = "maps", wait: bool = True) -> Any:
        """Run SpRAy on the items predicted as ``cls`` (as the view's button does; ``space="activations"``
        clusters the penultimate activations instead of the maps); returns the result."""
        self._submit(_SprayJob(self, "", int(cls), method, space), cancel_running=False)
        if wait:
            wait_or_cancel(self)
            if self.spray.get("state") == "error":
                raise InputError(self.spray.get("error", "SpRAy failed"))
        return self._spray_result

    # ----- drill down
    def open_item(self, index: Any) -> Any:
        """Open dataset item ``index`` in an :class:`~xaiwidgets.ExplainDashboard` (``self.dashboard``) shown
        inside the explorer; ``-1`` closes it. Needs the model and the data."""
        from .dashboard import explain

        if isinstance(index, bool) or not isinstance(index, int):
            raise ParameterError(f"index must be a dataset index, got {index!r}")
        old, self.dashboard = self.dashboard, None
        if old is not None:
            old.close()
        if index == -1:
            self.drill = {}
            return None
        self._rows_of([index])
        expl = self.explanations
        if self._model is None:
            raise InputError("no model: this explorer was opened from a store; pass model= (and data=) to "
                             "xw.explore to open an item in the dashboard")
        if expl is None or not expl.has_inputs:
            raise InputError("no data: the inputs are not at hand; pass data= to xw.explore to open an item")
        self.dashboard = explain(self._model, expl.inputs([index]), methods=list(expl.methods))
        self.drill = {"index": index, "model_id": self.dashboard.model_id, "error": ""}
        return self.dashboard

    # ----- selection, export
    @traitlets.validate("selection")
    def _valid_selection(self, proposal: dict[str, Any]) -> list[int]:
        return sorted({int(i) for i in proposal["value"]})

    def _export_state(self) -> dict[str, Any]:
        """The state for :func:`xaiwidgets.to_html`: the selection (else the first items), at most
        ``EXPORT_TILES`` of them, with their metadata and pixels inline, so the page needs no kernel."""
        state = self.get_state()
        state["drill"] = {}
        expl = self.explanations
        if expl is None or not len(expl):
            return state
        chosen = list(self.selection)[:EXPORT_TILES] or [int(i) for i in expl.indices[:EXPORT_TILES]]
        try:
            rows = np.sort(self._rows_of(chosen))
        except InputError:
            rows = np.arange(min(EXPORT_TILES, len(expl)))
        sub = expl.select(rows)
        header, buffers = self.page([int(i) for i in sub.indices], self.method)
        state["meta"] = self._meta_payload(sub)
        spray = self.spray
        preview = {"indices": header["indices"], "method": header["method"], "ranges": header["ranges"],
                   "maps": {**header["maps"], "data": memoryview(buffers[0])}}
        if "images" in header:
            preview["images"] = {**header["images"], "data": memoryview(buffers[1])}
        state["preview"] = preview
        state["spray"] = spray if spray.get("state") == "done" else {}
        return state

    def _fallback_png(self) -> bytes | None:
        expl = self.explanations
        if expl is None or not len(expl) or self.method not in expl.methods:
            return None
        from matplotlib.figure import Figure

        from .colormaps import overlay_rgba

        chosen = list(self.selection)[:24] or [int(i) for i in expl.indices[:24]]
        header, buffers = self.page(chosen, self.method)
        codes = np.frombuffer(buffers[0], np.uint8).reshape(header["maps"]["shape"])
        ranges = np.asarray(header["ranges"], np.float32).reshape(-1, 2)
        images = (np.frombuffer(buffers[1], np.uint8).reshape(header["images"]["shape"])
                  if "images" in header else None)
        rows = self._rows_of(chosen)
        cols = min(len(chosen), 8)
        fig = Figure(figsize=(1.3 * cols, 1.5 * (-(-len(chosen) // cols)) + 0.3), dpi=80)
        axes = fig.subplots(-(-len(chosen) // cols), cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.axis("off")
            if k >= len(chosen):
                continue
            lo, hi = ranges[k]
            values = lo + codes[k].astype(np.float32) / 255.0 * (hi - lo)
            if images is not None:  # the map over the thumbnail, upsampled bilinearly as the view draws it
                values = fit_display(values, images.shape[1:3])
            rgba = overlay_rgba(values, bool(lo < 0 < hi), opacity=self.opacity, colormap=self.colormap,
                                absolute=self.absolute)
            if images is not None and images.shape[1:3] == values.shape:
                alpha = rgba[..., 3:4]
                ax.imshow(images[k].astype(np.float32) / 255 * (1 - alpha) + rgba[..., :3] * alpha)
            else:
                ax.imshow(rgba[..., :3])
            r = int(rows[k])
            ax.set_title(f"#{chosen[k]} {self.classes[int(expl.predictions[r])] if self.classes else ''}",
                         fontsize=7)
        fig.suptitle(f"{self.title or 'DatasetExplorer'} · {self.method} map · {len(expl)} items", fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()

    def close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close()
        super().close()


# ----- the explorer's jobs ------------------------------------------------------------------------------


class _SprayJob(ViewJob):
    """SpRAy for one class, beside the main job (``spray`` carries its state, not ``status``)."""

    tracks_status = False
    announce = False

    def __init__(self, view: DatasetExplorer, request_id: str, cls: Any, method: Any, space: Any) -> None:
        super().__init__(view, request_id)
        self.cls, self.method, self.space = cls, method, space

    def run(self) -> None:
        self.view._spray(self.cls, self.method, self.space)


class _DrillJob(ViewJob):
    """Open one item in the dashboard inside the explorer (``drill`` carries its state)."""

    tracks_status = False
    announce = False

    def __init__(self, view: DatasetExplorer, request_id: str, index: Any) -> None:
        super().__init__(view, request_id)
        self.index = index

    def run(self) -> None:
        self.view.open_item(self.index)

    def on_error(self, exc: Exception) -> None:
        self.view.drill = {"index": self.index if isinstance(self.index, int) else -1, "model_id": "",
                           "error": str(exc)}


class _ExploreJob(ViewJob):
    """``explain_dataset`` into ``path``, each finished chunk shown as it lands (the store is reopened, so
    the view reads only complete chunks); on any ending the view adopts what the store holds."""

    def __init__(self, view: DatasetExplorer, model: Any, data: Any, methods: tuple[str, ...], path: str,
                 temporary: bool, options: dict[str, Any]) -> None:
        super().__init__(view)
        self.model, self.data, self.methods, self.path = model, data, methods, path
        self.temporary, self.options = temporary, options
        self.source: Any = None
        self.result: DatasetExplanations | None = None
        self._last_meta = 0.0

    def run(self) -> None:
        self.open_source()
        tracker = self.tracker(on_event=self.on_chunk)
        self.result = explain_dataset(self.model, self.data, self.methods, store=self.path, progress=tracker,
                                      **self.options)

    def open_source(self) -> None:
        try:
            self.source = make_source(self.data, unwrap_model(self.model)[1], self.options.get("labels"))
        except Exception:  # explain_dataset reports it
            self.source = None

    def reopen(self) -> DatasetExplanations:
        return DatasetExplanations(Store(self.path, mode="r"), source=self.source, model=self.model)

    def on_chunk(self, event: str, payload: Any) -> None:
        if event != "chunk":
            return
        view, expl = self.view, self.reopen()
        view.explanations = expl
        view._stats_for(view.method, np.flatnonzero((expl.indices >= payload["start"])
                                                    & (expl.indices < payload["stop"])))
        if time.perf_counter() - self._last_meta >= META_INTERVAL or payload["done"] >= payload["total"]:
            self._last_meta = time.perf_counter()
            view._adopt(expl)

    def on_error(self, exc: Exception) -> None:
        self.view._error = exc

    def end(self) -> None:
        """Adopt what the store holds (also after a cancel or an error), then the usual outcome."""
        view = self.view
        result = self.result
        if result is None:
            try:
                result = self.reopen()
            except Exception:
                result = None
        if result is not None:
            if self.temporary:  # the temporary store lives as long as its explanations
                weakref.finalize(result._store, shutil.rmtree, self.path, True)
            view._adopt(result)
            view._stats_job(threading.Event())
        elif self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.error:
            view.message = self.error
        super().end()


# ----- building an explorer ----------------------------------------------------------------------------


def _temp_store() -> str:
    return tempfile.mkdtemp(prefix="xw-explore-")


def explore(
    model_or_explanations: Any,
    data: Any = None,
    methods: Sequence[str] | str = ("gradcam",),
    *,
    store: str | os.PathLike | None = None,
    method: str | None = None,
    spray: dict[str, Any] | None = None,
    wait: bool = False,
    title: str = "",
    **kwargs: Any,
) -> DatasetExplorer:
    """A :class:`DatasetExplorer` of a dataset's explanations.

    ``explore(explanations)`` (a :class:`~xaiwidgets.DatasetExplanations`, e.g. from
    :func:`~xaiwidgets.open_explanations`) shows them at once; ``explore(model, data, methods, store=...)``
    runs :func:`~xaiwidgets.explain_dataset` on the explorer's worker and streams each chunk into the grid
    as it finishes, with a progress bar and Cancel (every finished chunk stays in the store; ``store=None``
    uses a temporary directory, deleted with the explanations). ``model=`` with an explanations object
    enables drill-down. ``method``: the map shown first; ``spray``: options for SpRAy (``embedding``,
    ``n_neighbors``, ...). Other keywords go to ``explain_dataset`` (``batch_size``, ``map_size``, ...).
    ``wait=True`` blocks until the run ended.
    """
    if isinstance(model_or_explanations, DatasetExplanations):
        expl = model_or_explanations
        model = kwargs.pop("model", None) or expl.model
        if kwargs:
            raise ParameterError(f"explore(explanations) takes no run options; got {sorted(kwargs)}")
        view = DatasetExplorer(expl, model=model, method=method, spray_options=spray,
                               title=title or str(expl.path or "explanations"))
        view._submit(lambda cancel: view._stats_job(cancel), cancel_running=False)
        if wait:
            wait_or_cancel(view)
        return view
    if data is None:
        raise InputError("explore(model, data, ...) needs the data; or pass a DatasetExplanations")
    model = model_or_explanations
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    path = str(store) if store is not None else _temp_store()
    view = DatasetExplorer(None, model=model, method=method, spray_options=spray,
                           title=title or f"{type(unwrap_model(model)[0]).__name__} on a dataset",
                           status="running")
    view.methods = list(methods)
    view.method = method or methods[0]

    view._submit(_ExploreJob(view, model, data, methods, path, store is None, kwargs))
    if wait:
        wait_or_cancel(view)
        if view._error is not None:
            raise view._error
    return view
