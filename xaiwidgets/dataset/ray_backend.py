"""``backend="ray"``: the chunks of a run computed by a Ray Data actor pool, written by the driver.

Each actor holds one replica of the model (and ``num_gpus`` GPUs where the cluster has them) and runs
:func:`~xaiwidgets.dataset.compute.compute_chunk`, the same code as the local loop, on one chunk of item
indices at a time; the records come back to the driver, which writes them to the store and marks the
chunk complete, so the store format, the manifest and resume are the same as ``backend="local"``.
Point it at a cluster with ``ray.init(address=...)`` before the call (docs/datasets.md).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .compute import RunConfig, compute_chunk
from .sources import Source


class ChunkWorker:
    """A Ray Data callable class: one model replica per actor, one chunk per call."""

    def __init__(self, model: Any, source: Source, cfg: RunConfig, threads: int, use_gpu: bool) -> None:
        torch.set_num_threads(threads)  # the driver's thread count: the same float reductions as a local run
        if use_gpu and torch.cuda.is_available():
            from ..core.adapters import unwrap_model

            net = unwrap_model(model)[0]
            if isinstance(net, torch.nn.Module):
                net.to("cuda")
        self.model, self.source, self.cfg = model, source, cfg

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        payloads = []
        for start, stop in zip(batch["start"], batch["stop"]):
            payloads.append(pickle.dumps(compute_chunk(self.model, self.source, range(int(start), int(stop)),
                                                       self.cfg)))
        return {"chunk": batch["chunk"], "start": batch["start"], "stop": batch["stop"],
                "payload": np.array(payloads, dtype=object)}


def ray_chunks(
    model: Any, source: Source, todo: list[tuple[int, range]], cfg: RunConfig, options: dict[str, Any]
) -> Iterator[tuple[int, range, dict, dict]]:
    """Yield ``(chunk, range, records, skipped)`` as the actor pool finishes chunks (in any order).

    ``options``: ``num_actors`` (default: the cluster's CPUs, at most the number of chunks), ``num_gpus``
    per actor (default 1 when the cluster has GPUs, else 0), ``num_cpus`` per actor (default 1),
    ``init`` (keyword arguments for ``ray.init`` when Ray is not initialised yet).
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError("backend='ray' needs Ray Data: pip install 'xaiwidgets[scale]'") from exc
    if not todo:
        return
    if not ray.is_initialized():
        ray.init(**options.get("init", {}))
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    num_gpus = options.get("num_gpus", 1 if gpus >= 1 else 0)
    num_cpus = options.get("num_cpus", 1)
    n_actors = options.get("num_actors") or max(1, min(len(todo), int(resources.get("CPU", 1) // num_cpus)))
    import ray.data

    rows = [{"chunk": c, "start": r.start, "stop": r.stop} for c, r in todo]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        ChunkWorker,
        fn_constructor_args=(model, source, cfg, torch.get_num_threads(), num_gpus > 0),
        batch_size=1,
        concurrency=n_actors,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    for row in ds.iter_rows():
        rec, skipped = pickle.loads(row["payload"])
        yield int(row["chunk"]), range(int(row["start"]), int(row["stop"])), rec, skipped
