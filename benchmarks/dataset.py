"""explain_dataset vs a captum loop over a DataLoader; store overhead; memory growth; resume; SpRAy at scale.

Run by hand: ``python benchmarks/dataset.py [--n 2000] [--batch 32] [--spray-n 5000]``. Prints:

1. throughput on the demo EfficientNet-Lite0 at 224x224 for ``gradcam`` (``_conv_head``) and ``saliency``
   (after a one-batch warm-up; captum and ours alternate over ``--parts`` slices so load drift hits both):
   ours (``explain_dataset`` into a zarr store: predictions, losses, embeddings, 64x64 maps, store writes
   included) vs captum (``LayerGradCam`` + ``LayerAttribution.interpolate`` / ``Saliency``) over a
   ``DataLoader`` with the same batch size, predicted class as target; ratio ours / captum (< 1: faster);
2. store overhead: the same run with ``store=path`` vs ``store=None``;
3. RSS growth from 1,000 to 10,000 items (tiny model, ``map_size=64``, in memory);
4. resume start-up: a run cancelled after its first chunk (the store a kill leaves) is rerun; the time from
   the call to the start of the next chunk's compute (manifest check, one-item method check); and a rerun
   on a complete store;
5. SpRAy on 5,000 random 32x32 maps (kNN graph + eigsh + k-means + t-SNE).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import Cancelled
from xaiwidgets.dataset import run as run_module


def captum_loop(model: nn.Module, loader: torch.utils.data.DataLoader, method: str) -> None:
    from captum.attr import LayerAttribution, LayerGradCam, Saliency

    explainer = LayerGradCam(model, model._conv_head) if method == "gradcam" else Saliency(model)
    for (x,) in loader:
        with torch.no_grad():
            target = model(x).argmax(1)
        a = explainer.attribute(x, target=target)
        if method == "gradcam":
            LayerAttribution.interpolate(a, x.shape[-2:], "bilinear")


def loader_of(x: torch.Tensor, batch: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch)


def resume_startup(net: nn.Module, x: torch.Tensor, method: str, batch: int, store: Path, **params) -> float:
    """Seconds from a rerun's call to the start of its first chunk, on a store cancelled after chunk 0."""
    cancel = threading.Event()
    kwargs = dict(methods=(method,), store=store, batch_size=batch, progress=False, cancel_event=cancel, **params)
    try:
        xw.explain_dataset(net, x[:2 * batch], on_event=lambda *_: cancel.set(), **kwargs)
    except Cancelled:
        pass
    cancel.clear()
    original, started = run_module.compute_chunk, []

    def timed(model, source, indices, cfg):
        if source.kind != "check":  # not the one-item method check
            started.append(time.perf_counter())
        return original(model, source, indices, cfg)

    run_module.compute_chunk = timed
    try:
        start = time.perf_counter()
        xw.explain_dataset(net, x[:2 * batch], **kwargs)
    finally:
        run_module.compute_chunk = original
    return started[0] - start


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--spray-n", type=int, default=5000)
    ap.add_argument("--parts", type=int, default=4, help="slices over which captum and ours alternate")
    ap.add_argument("--methods", default="gradcam,saliency", help="comma-separated: gradcam, saliency")
    ap.add_argument("--only-throughput", action="store_true", help="skip the memory and SpRAy parts")
    args = ap.parse_args()
    torch.manual_seed(0)
    clf = xw.demo.imagenet_classifier()
    net = clf.model.eval()
    x = torch.randn(args.n, 3, 224, 224)
    tmp = Path(tempfile.mkdtemp())
    parts = [x[i * args.n // args.parts:(i + 1) * args.n // args.parts]
             for i in range(args.parts)]
    print(f"throughput, {args.n} images at 224, batch {args.batch}, torch threads {torch.get_num_threads()}; "
          f"captum and ours alternate over {args.parts} slices (each of ours a store of its own)")
    for method in args.methods.split(","):
        params = {"gradcam": {"layer": "_conv_head"}} if method == "gradcam" else {}
        kwargs = dict(methods=(method,), batch_size=args.batch, progress=False, **params)
        captum_loop(net, loader_of(x[:args.batch], args.batch), method)  # warm-up
        xw.explain_dataset(net, x[:args.batch], **kwargs)
        t_peer = t_ours = t_mem = t_resume = 0.0
        for i, part in enumerate(parts):
            start = time.perf_counter()
            captum_loop(net, loader_of(part, args.batch), method)
            t_peer += time.perf_counter() - start
            start = time.perf_counter()
            xw.explain_dataset(net, part, store=tmp / f"{method}-{i}", **kwargs)
            t_ours += time.perf_counter() - start
            start = time.perf_counter()
            xw.explain_dataset(net, part, **kwargs)
            t_mem += time.perf_counter() - start
            start = time.perf_counter()
            xw.explain_dataset(net, part, store=tmp / f"{method}-{i}", **kwargs)
            t_resume += (time.perf_counter() - start) / args.parts
        t_start = resume_startup(net, x, method, args.batch, tmp / f"cancelled-{method}", **params)
        print(f"  {method:>9}: ours {t_ours:7.1f} s, captum {t_peer:7.1f} s, ratio {t_ours / t_peer:.2f}; "
              f"store overhead {(t_ours - t_mem) / t_mem:+.1%} (in memory {t_mem:.1f} s); "
              f"resume after a cancel computes again after {t_start:.2f} s; "
              f"rerun on a complete store {t_resume:.2f} s (mean)", flush=True)
    if args.only_throughput:
        return

    tiny = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10)).eval()
    small = torch.rand(10_000, 3, 64, 64)
    xw.explain_dataset(tiny, small[:1000], methods=("saliency",), batch_size=500, progress=False)
    base = rss_mb()
    r1 = xw.explain_dataset(tiny, small[:1000], methods=("saliency",), batch_size=500, progress=False)
    at_1k = rss_mb()
    r10 = xw.explain_dataset(tiny, small, methods=("saliency",), batch_size=500, progress=False)
    at_10k = rss_mb()
    print(f"RSS (MB): before {base:.0f}, after 1,000 items {at_1k:.0f}, after 10,000 items {at_10k:.0f} "
          f"(growth 1k -> 10k: {at_10k - at_1k:.0f} MB; the 10k maps alone are "
          f"{np.asarray(r10.maps('saliency')).nbytes / 2**20:.0f} MB float16); {len(r1)}, {len(r10)} items")

    maps = np.random.default_rng(0).normal(size=(args.spray_n, 32, 32)).astype(np.float32)
    start = time.perf_counter()
    res = xw.analysis.spray(maps, embedding=None)
    t_spec = time.perf_counter() - start
    start = time.perf_counter()
    xw.analysis.spray(maps, embedding="tsne")
    t_all = time.perf_counter() - start
    print(f"SpRAy on {args.spray_n} maps of 32x32: {t_spec:.1f} s without embedding ({res.n_clusters} clusters), "
          f"{t_all:.1f} s with t-SNE")


if __name__ == "__main__":
    main()
