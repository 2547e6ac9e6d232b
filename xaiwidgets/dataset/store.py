"""The zarr v3 store of a dataset explanation and its manifest.

Layout (a directory): the zarr v3 group (``predictions``, ``probabilities``, ``labels``, ``correct``,
``loss``, ``valid``, ``embeddings``, ``maps/<method>``, ``full/<method>``; every array chunked by the run's
batch along axis 0, compressed with zarr's default zstd codec) and ``manifest.json``. A chunk counts as
complete only once the manifest lists it, and the manifest is replaced atomically (write a temporary file,
fsync, ``os.replace``) after the chunk's data is written: a process killed mid-chunk leaves a chunk that
the next run recomputes and overwrites, never one that is read as complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import XAIError

MANIFEST = "manifest.json"
FORMAT = "xaiwidgets.dataset/1"
#: Manifest keys that must match for a run to continue a store.
IDENTITY_KEYS = ("model", "methods", "params", "preprocessing", "n", "chunk_size", "map_size", "keep_full", "top_k")


class StoreError(XAIError, ValueError):
    """A store cannot be used for this run (made by another model/methods/params, or not a store)."""


class StoreWriteError(XAIError, OSError):
    """Writing a chunk failed (a full disk, a lost mount): the chunk is not complete, the others are."""


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def model_fingerprint(model: Any) -> dict[str, str]:
    """The model's class and a SHA-256 over its state dict (names, dtypes, shapes and values)."""
    cls = type(model)
    digest = hashlib.sha256()
    if isinstance(model, torch.nn.Module):
        for name, value in model.state_dict().items():
            digest.update(name.encode())
            if isinstance(value, torch.Tensor):
                t = value.detach().cpu().contiguous()
                digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
                digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    else:
        digest.update(repr(model).encode())
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "state_dict_sha256": digest.hexdigest()}


def _jsonable(value: Any) -> Any:
    """Parameters as JSON (tensors and modules by a stable description) for the manifest and comparison."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return {"tensor": list(t.shape), "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest()}
    if isinstance(value, torch.nn.Module):
        return {"module": type(value).__qualname__}
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


class Store:
    """Arrays in a zarr v3 group (a directory, or memory when ``path`` is None) plus the manifest."""

    def __init__(self, path: str | os.PathLike | None, *, mode: str = "a") -> None:
        import zarr

        self.path = Path(path) if path is not None else None
        if self.path is None:
            self._group = zarr.open_group(store=zarr.storage.MemoryStore(), mode="w", zarr_format=3)
            self.manifest: dict[str, Any] | None = None
            return
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"store path {self.path} is a file; a store is a directory (choose another path)")
        if mode == "r" and not (self.path / MANIFEST).is_file():
            raise StoreError(f"{self.path} is not an xaiwidgets dataset store (no {MANIFEST})")
        self.manifest = self._read_manifest()
        self._mode = mode
        self._group: Any = None

    @property
    def group(self) -> Any:
        """The zarr group, opened on first use (so a foreign directory is rejected before zarr writes)."""
        if self._group is None:
            import zarr

            self._group = zarr.open_group(store=str(self.path), mode="r" if self._mode == "r" else "a",
                                          zarr_format=3)
        return self._group

    # -- manifest -------------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any] | None:
        assert self.path is not None
        f = self.path / MANIFEST
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError as exc:  # os.replace makes this impossible unless edited by hand
            raise StoreError(f"{f} is not valid JSON ({exc}); delete the store or pass overwrite=True") from exc

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically (readers see the old or the new one, never a mix)."""
        self.manifest = manifest
        if self.path is None:
            return
        tmp = self.path / f".{MANIFEST}.tmp"
        try:
            with open(tmp, "w") as fh:
                json.dump(manifest, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / MANIFEST)
        except OSError:
            tmp.unlink(missing_ok=True)  # the old manifest stays in place
            raise

    def prepare(self, identity: dict[str, Any], *, overwrite: bool) -> dict[str, Any]:
        """Check the store against this run's identity; start a new manifest when empty or overwritten."""
        identity = _jsonable(identity)
        old = self.manifest
        if old is not None and not overwrite:
            diffs = [k for k in IDENTITY_KEYS if old.get(k) != identity.get(k)]
            if diffs:
                detail = "; ".join(f"{k}: store has {old.get(k)!r}, this run {identity.get(k)!r}" for k in diffs)
                raise StoreError(f"store {self.path} was made by a different run ({', '.join(diffs)} differ: "
                                 f"{detail}); use another store path or pass overwrite=True")
            return old
        if self.path is not None and (old is not None or (self.path.exists() and any(self.path.iterdir()))):
            if old is None:  # never delete a directory we did not make, even with overwrite=True
                raise StoreError(f"{self.path} is a non-empty directory but not a dataset store; "
                                 "choose an empty or new path")
            shutil.rmtree(self.path)
            self._group = None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        from .. import __version__

        manifest = {"format": FORMAT, "library_version": __version__, **identity, "completed": [], "skipped": {}}
        self.write_manifest(manifest)
        return manifest

    # -- arrays ---------------------------------------------------------------------------------------
    def ensure_arrays(self, shapes: dict[str, tuple[tuple[int, ...], np.dtype]], n: int, chunk: int) -> None:
        """Create the arrays (first chunk of a fresh store); a resumed store already has them."""
        for name, (shape, dtype) in shapes.items():
            if name in self.group and self.manifest and self.manifest.get("completed"):
                continue
            fill = -1 if np.issubdtype(dtype, np.integer) else (False if dtype == np.bool_ else np.nan)
            self.group.create_array(name, shape=(n, *shape), chunks=(chunk, *shape), dtype=dtype,
                                    fill_value=fill, overwrite=True)

    def write_chunk(self, start: int, records: dict[str, np.ndarray]) -> None:
        for name, values in records.items():
            self.group[name][start:start + len(values)] = values

    def mark_complete(self, chunk: int, skipped: dict[str, str]) -> None:
        assert self.manifest is not None
        manifest = dict(self.manifest)
        manifest["completed"] = sorted({*manifest["completed"], chunk})
        manifest["skipped"] = {**manifest.get("skipped", {}), **skipped}
        self.write_manifest(manifest)

    def write_failed(self, chunk: int, items: range, exc: OSError) -> StoreWriteError:
        """The error for a chunk that could not be written: names the store, the disk and what is kept."""
        done = len((self.manifest or {}).get("completed", []))
        kept = (f"The store stays readable with its {done} complete chunk{'s' * (done != 1)} "
                f"(xw.open_explanations); chunk {chunk} is not marked complete and will be recomputed")
        what = f"chunk {chunk} (items {items.start}-{items.stop - 1}) of store {self.path}"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and self.path is not None:
            disk = _mount_point(self.path)
            try:
                free = f"{shutil.disk_usage(disk).free / 2**20:.0f} MB free"
            except OSError:
                free = "free space unknown"
            message = (f"the disk is full: writing {what} failed on {disk} ({free}; {exc.strerror}). {kept}. Free "
                       "space (or choose a store on another disk) and rerun the same call: it continues from there")
        else:
            message = f"writing {what} failed: {exc}. {kept}; rerun the same call to continue"
        return StoreWriteError(exc.errno, message)
