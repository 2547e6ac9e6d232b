"""``DatasetExplanations``: the records of a dataset explanation, read from its store."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from .store import Store


class LazyMaps:
    """An array-like ``(n, h, w)`` view of one method's maps: rows are read from the store when indexed."""

    def __init__(self, array: Any, rows: np.ndarray, scale: Any = None) -> None:
        self._array, self._rows, self._scale = array, rows, scale

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._rows), *self._array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self._scale is not None else np.dtype(self._array.dtype)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows, rest = key[0], key[1:]
        else:
            rows, rest = key, ()
        idx = self._rows[rows]
        if np.ndim(idx) == 0:
            out = self._read(self._array, np.asarray([idx]))[0]
        else:
            out = self._read(self._array, np.asarray(idx))
        return out[rest] if rest else out

    def _read(self, array: Any, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            return np.empty((0, *self.shape[1:]), self.dtype)
        if np.all(np.diff(idx) == 1):  # a contiguous run: one slice read
            out = array[int(idx[0]):int(idx[-1]) + 1]
        else:
            out = array.get_orthogonal_selection((idx,))
        if self._scale is not None and array is self._array:
            scale = self._read(self._scale, idx).astype(np.float32)
            out = out.astype(np.float32) * scale.reshape(-1, *([1] * (out.ndim - 1)))
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out.astype(dtype) if dtype is not None else out


def _column_property(name: str, doc: str) -> property:
    """A read-only property returning the rows of store array ``name`` (read once, then cached)."""
    return property(lambda self: self._column(name), doc=doc)


class DatasetExplanations:
    """Per-item predictions, labels, losses, maps and embeddings of a dataset explanation.

    Rows are the dataset's items in order (``indices`` maps each row to its dataset index); only chunks the
    manifest marks complete are included. ``select`` gives a subset, ``item(i)`` one item with its input
    (when the data is at hand), ``maps(method)`` a lazily read array, ``spray`` a SpRAy analysis.
    """

    def __init__(self, store: Store, *, source: Any = None, model: Any = None, rows: np.ndarray | None = None) -> None:
        self._store, self._source, self._model = store, source, model
        m = store.manifest or {}
        if rows is None:
            size, n = m.get("chunk_size", 1), m.get("n", 0)
            done = np.zeros(n, bool)
            for c in m.get("completed", []):
                done[c * size:(c + 1) * size] = True
            rows = np.flatnonzero(done)
            if "valid" in store.group and len(rows):  # read complete chunks only: others may be half-written
                rows = rows[LazyMaps(store.group["valid"], rows)[:]]
        self._rows = rows
        self._cache: dict[str, np.ndarray] = {}

    # -- metadata ---------------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._store.manifest or {})

    @property
    def methods(self) -> list[str]:
        return list(self.manifest.get("methods", []))

    @property
    def path(self) -> os.PathLike | None:
        return self._store.path

    @property
    def indices(self) -> np.ndarray:
        """Dataset index of each row."""
        return self._rows.copy()

    @property
    def complete(self) -> bool:
        m = self.manifest
        return len(m.get("completed", [])) * m.get("chunk_size", 1) >= m.get("n", 0)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        m = self.manifest
        return (f"DatasetExplanations({len(self)} of {m.get('n')} items, methods {self.methods}, "
                f"store {self.path or 'in memory'})")

    @property
    def model(self) -> Any:
        """The model the records were computed with (None when reopened without it)."""
        return self._model

    @property
    def has_inputs(self) -> bool:
        """Whether the data is at hand (``inputs`` and ``item(i)["input"]`` work)."""
        return self._source is not None

    def inputs(self, indices: Any) -> Any:
        """The model-ready inputs ``(n, C, H, W)`` of dataset ``indices`` (needs the data: ``has_inputs``)."""
        import torch

        if self._source is None:
            raise InputError("the data is not at hand: reopen with open_explanations(path, data=...)")
        return torch.stack([self._source.load(int(i))[0] for i in np.asarray(indices).reshape(-1)])

    # -- columns ----------------------------------------------------------------------------------------
    def _column(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name not in self._store.group:
                return np.empty((0,))
            full = self._store.group[name]
            self._cache[name] = LazyMaps(full, self._rows)[:] if len(self._rows) else np.empty((0, *full.shape[1:]),
                                                                                                  full.dtype)
        return self._cache[name]

    topk = _column_property("predictions", "``(n, k)`` top-k class indices, best first.")
    probabilities = _column_property("probabilities", "``(n, k)`` probabilities of the top-k classes.")
    labels = _column_property("labels", "``(n,)`` labels, -1 where the data gave none.")
    correct = _column_property("correct", "``(n,)`` top-1 prediction equals the label (False without one).")
    loss = _column_property("loss", "``(n,)`` cross-entropy of the label (NaN without a label).")
    embeddings = _column_property("embeddings", "``(n, d)`` pooled penultimate activations.")

    @property
    def predictions(self) -> np.ndarray:
        """``(n,)`` predicted class (top-1)."""
        return self.topk[:, 0] if len(self) else np.empty(0, np.int32)

    def maps(self, method: str | None = None, *, full: bool = False) -> LazyMaps:
        """``(n, h, w)`` maps of ``method`` at ``map_size`` (float32: stored as float16 relative to each map's
        max |value|, kept in ``scale/<method>``); ``full=True``: at input resolution."""
        method = method or self.methods[0]
        name = f"{'full' if full else 'maps'}/{method}"
        if name not in self._store.group:
            extra = " (run with keep_full=True)" if full else ""
            raise ParameterError(f"no {name!r} in this store{extra}; methods: {self.methods}")
        g = self._store.group
        return LazyMaps(g[name], self._rows, None if full else g[f"scale/{method}"])

    # -- subsets ----------------------------------------------------------------------------------------
    def select(self, which: Any) -> DatasetExplanations:
        """The rows picked by a boolean mask of length ``len(self)`` or by row positions."""
        which = np.asarray(which)
        if which.dtype == bool:
            if which.shape != (len(self),):
                raise InputError(f"a mask must have shape ({len(self)},); got {which.shape}")
            rows = self._rows[which]
        else:
            rows = self._rows[which.astype(np.int64).reshape(-1)]
        return DatasetExplanations(self._store, source=self._source, model=self._model, rows=rows)

    def item(self, i: int) -> dict[str, Any]:
        """Row ``i``: its dataset index, input (when the data is at hand), and every record."""
        idx = int(self._rows[i])
        out: dict[str, Any] = {"index": idx}
        if self._source is not None:
            out["input"] = self._source.load(idx)[0]
        g = self._store.group
        for name in ("predictions", "probabilities", "labels", "correct", "loss", "embeddings"):
            out[name] = g[name][idx]
        out["prediction"] = int(out["predictions"][0])
        out["label"] = int(out.pop("labels"))
        out["correct"] = bool(out["correct"])
        out["loss"] = float(out["loss"])
        out["maps"] = {m: LazyMaps(g[f"maps/{m}"], np.array([idx]), g[f"scale/{m}"])[0] for m in self.methods}
        if self.manifest.get("keep_full"):
            out["full"] = {m: g[f"full/{m}"][idx] for m in self.methods}
        return out

    def spray(self, method: str | None = None, cls: int | None = None, **options: Any):
        """SpRAy (:func:`xaiwidgets.analysis.spray`) on the maps of the items predicted as ``cls``."""
        from ..analysis import spray

        sub = self if cls is None else self.select(self.predictions == cls)
        if len(sub) < 3:
            raise InputError(f"SpRAy needs at least 3 items; {len(sub)} are predicted as class {cls}")
        result = spray(np.asarray(sub.maps(method), dtype=np.float32), **options)
        result.indices = sub.indices
        return result


def open_explanations(path: str | os.PathLike, data: Any = None, model: Any = None) -> DatasetExplanations:
    """Reopen a dataset store without the model (pass ``data`` to get inputs back from ``item``)."""
    from ..core.adapters import unwrap_model
    from .sources import make_source

    st = Store(path, mode="r")
    source = make_source(data, unwrap_model(model)[1] if model is not None else None) if data is not None else None
    return DatasetExplanations(st, source=source, model=model)


__all__ = ["DatasetExplanations", "LazyMaps", "open_explanations"]
