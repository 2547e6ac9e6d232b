"""``explain_dataset``: every method over every item of a dataset, into a resumable store."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..core.adapters import ImageClassifier, unwrap_model
from ..core.errors import InputError, ParameterError
from ..core.progress import Progress
from ..methods.registry import get_method
from .compute import RunConfig, compute_chunk, predict
from .results import DatasetExplanations
from .sources import Source, UnreadableItem, make_source
from .store import Store, model_fingerprint


def _preprocessing(adapter: ImageClassifier | None) -> dict[str, Any]:
    if adapter is None:
        return {"adapter": None}
    custom = adapter._preprocess
    return {"adapter": "ImageClassifier", "mean": adapter.mean, "std": adapter.std, "input_size": adapter.input_size,
            "preprocess": None if custom is None else getattr(custom, "__qualname__", repr(custom))}


def _split_params(methods: Sequence[str], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Keyword ``<method>={...}`` goes to that method only; every other keyword to every method."""
    shared = {k: v for k, v in params.items() if k not in methods}
    out = {}
    for m in methods:
        own = params.get(m, {})
        if not isinstance(own, dict):
            raise ParameterError(f"{m}= must be a dict of that method's parameters; got {type(own).__name__}")
        out[m] = {**shared, **own}
    return out


def _batch_size(batch_size: int | str, data: Any, model: Any) -> int:
    if batch_size == "auto":
        if isinstance(data, torch.utils.data.DataLoader) and data.batch_size:
            return int(data.batch_size)
        from ..core.device import model_device

        return 64 if model_device(unwrap_model(model)[0]).type == "cuda" else 32
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive int or 'auto'; got {batch_size!r}")
    return batch_size


def _first_item(source: Source, on_error: str) -> int:
    """The index of the first readable item (item 0 unless skipped as unreadable)."""
    for i in range(len(source)):
        try:
            source.load(i)
            return i
        except UnreadableItem:
            if on_error != "skip":
                raise
    raise InputError("no item of the dataset could be read")


def _chunks(n: int, size: int) -> Iterator[tuple[int, range]]:
    for c, start in enumerate(range(0, n, size)):
        yield c, range(start, min(start + size, n))


def explain_dataset(
    model: Any,
    data: Any,
    methods: Sequence[str] | str = ("gradcam",),
    *,
    store: str | os.PathLike | None = None,
    batch_size: int | str = "auto",
    map_size: int | tuple[int, int] = 64,
    keep_full: bool = False,
    backend: str = "local",
    progress: bool | Progress = True,
    labels: Sequence[int] | None = None,
    top_k: int = 5,
    on_error: str = "raise",
    overwrite: bool = False,
    cancel_event: threading.Event | None = None,
    on_event: Callable[[str, Any], None] | None = None,
    ray_options: dict[str, Any] | None = None,
    **params: Any,
) -> DatasetExplanations:
    """Explain every item of ``data`` with each of ``methods``; return (and, with ``store``, save) the records.

    ``data``: a map-style ``Dataset``, a ``DataLoader`` (its dataset is read by index, in order), an
    ``(N, C, H, W)`` tensor (``labels=`` optional), a list of PIL images, arrays or file paths, or an image
    folder path (``root/class/image`` as ``torchvision.datasets.ImageFolder``). Items may be
    ``(input, label)``. With an :class:`~xaiwidgets.ImageClassifier` raw images are preprocessed by it.

    Per item: top-``top_k`` classes and probabilities, label (-1 when none), correctness, cross-entropy loss,
    each method's map for the predicted class area-averaged to ``map_size`` (float16 per-map scaled; full resolution too
    with ``keep_full``), and the embedding (input of the last ``nn.Linear``: pooled penultimate activations).

    ``store``: a directory for a zarr v3 store (resumable: a rerun continues at the first incomplete chunk;
    one made by another model, methods or parameters raises unless ``overwrite=True``); None keeps
    everything in memory. ``backend="ray"`` spreads the chunks over a Ray actor pool (docs/datasets.md).
    ``params`` go to every method; ``<method>={...}`` to that method only. ``on_error="skip"`` records
    unreadable files in the manifest instead of raising. ``progress``: a tqdm bar (True), none (False) or a
    :class:`~xaiwidgets.core.Progress` (events ``"chunk"`` with the records' range; cancel keeps every
    completed chunk). Each method is checked before any work starts.
    """
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ParameterError("methods must name at least one method")
    for m in methods:
        get_method(m)  # unknown names fail now
    if backend not in ("local", "ray"):
        raise ParameterError(f"backend must be 'local' or 'ray'; got {backend!r}")
    if on_error not in ("raise", "skip"):
        raise ParameterError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
    if isinstance(map_size, int):
        map_size = (map_size, map_size)
    net, adapter = unwrap_model(model)
    source = make_source(data, adapter, labels)
    n = len(source)
    if n == 0:
        raise InputError("the dataset is empty")
    chunk = _batch_size(batch_size, data, model)
    method_params = _split_params(methods, params)

    st = Store(store)
    identity = {
        "model": model_fingerprint(net), "methods": list(methods), "params": method_params,
        "preprocessing": _preprocessing(adapter), "n": n, "chunk_size": chunk, "map_size": list(map_size),
        "keep_full": keep_full, "top_k": top_k,
    }
    manifest = st.prepare(identity, overwrite=overwrite)
    drawn = _drawn_seeds(methods, method_params, st)

    first = _first_item(source, on_error)
    x0, _ = source.load(first)
    with torch.no_grad():
        scores0, _ = predict(model, x0.unsqueeze(0).to(_device(model)))
    cfg = RunConfig(methods=methods, params=method_params, map_size=tuple(map_size), keep_full=keep_full,
                    top_k=top_k, on_error=on_error, input_shape=tuple(x0.shape), n_classes=int(scores0.shape[1]),
                    drawn_seeds=drawn)
    _check_methods(model, x0, cfg)

    todo = [(c, r) for c, r in _chunks(n, chunk) if c not in set(manifest["completed"])]
    tracker = progress if isinstance(progress, Progress) else Progress(
        tqdm=bool(progress), cancel_event=cancel_event, on_event=on_event)
    done = n - sum(len(r) for _, r in todo)
    created = bool(manifest["completed"])
    try:
        tracker.update(done, n, "explain_dataset")
        results: Iterator[tuple[int, range, dict, dict]]
        if backend == "ray":
            from .ray_backend import ray_chunks

            results = ray_chunks(model, source, todo, cfg, ray_options or {})
        else:
            results = ((c, r, *compute_chunk(model, source, r, cfg)) for c, r in todo)
        for c, r, rec, skipped in results:
            try:
                if not created:
                    st.ensure_arrays(_shapes(rec, cfg, st, model, source, first), n, chunk)
                    created = True
                st.write_chunk(r.start, _complete(rec, cfg, st))
                st.mark_complete(c, skipped)
            except OSError as exc:  # a full disk: the manifest still lists the chunks written before
                raise st.write_failed(c, r, exc) from exc
            done += len(r)
            tracker.emit("chunk", {"chunk": c, "start": r.start, "stop": r.stop, "done": done, "total": n})
            tracker.update(done, n, "explain_dataset")
    finally:
        if not isinstance(progress, Progress):
            tracker.close()
    return DatasetExplanations(st, source=source, model=model)


def _drawn_seeds(methods: Sequence[str], method_params: dict[str, dict[str, Any]], st: Store) -> dict[str, int]:
    """For each random method whose ``seed`` is None: a seed drawn once per store and kept in the manifest
    (``drawn_seeds``), so a resumed run continues with the same draws; in memory, a new one per call."""
    assert st.manifest is not None
    drawn = dict(st.manifest.get("drawn_seeds", {}))
    new = {m: secrets.randbits(63) for m in methods
           if "seed" in (defaults := get_method(m).defaults)
           and method_params[m].get("seed", defaults["seed"]) is None and m not in drawn}
    if new:
        st.write_manifest({**st.manifest, "drawn_seeds": {**drawn, **new}})
    return {**drawn, **new}


def _device(model: Any) -> torch.device:
    from ..core.device import model_device

    return model_device(unwrap_model(model)[0])


def _check_methods(model: Any, x0: torch.Tensor, cfg: RunConfig) -> None:
    """Run every method on item 0 alone so a bad parameter or a missing layer fails before any chunk."""
    one = RunConfig(**{**cfg.__dict__, "input_shape": None, "n_classes": None, "on_error": "raise"})
    compute_chunk(model, Source([x0], None, "check"), range(1), one)


def _shapes(rec: dict[str, np.ndarray], cfg: RunConfig, st: Store, model: Any, source: Source, first: int) -> dict:
    """Array shapes and dtypes from a computed chunk (a chunk of skipped items only: from item ``first``)."""
    if "predictions" not in rec:
        one = RunConfig(**{**cfg.__dict__, "on_error": "raise"})
        rec, _ = compute_chunk(model, source, range(first, first + 1), one)
    return {name: (v.shape[1:], v.dtype) for name, v in rec.items()}


def _complete(rec: dict[str, np.ndarray], cfg: RunConfig, st: Store) -> dict[str, np.ndarray]:
    """Rows for a chunk whose items were all skipped: the store's fill values (NaN / -1 / False)."""
    if "predictions" in rec:
        return rec
    n = len(rec["valid"])
    out = {"valid": rec["valid"]}
    for name in _array_names(st.group):
        if name != "valid":
            arr = st.group[name]
            out[name] = np.full((n, *arr.shape[1:]), arr.fill_value, dtype=arr.dtype)
    return out


def _array_names(group: Any) -> list[str]:
    names = []
    for name, node in group.members(max_depth=None):
        if hasattr(node, "shape"):
            names.append(name)
    return names
