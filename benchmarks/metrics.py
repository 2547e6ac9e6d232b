"""Deletion curve (pixel flipping) vs Quantus ``PixelFlipping``, same process, same settings (run by hand).

Demo EfficientNet-Lite0 on the 'chelsea' photo at 224x224, a saliency map (input-shaped, 3 channels) as the
explanation, constant baseline 0, softmax probability of the predicted class. Quantus requires
``features_in_step`` to divide H*W = 50176 = 2^10 7^2, so "100 steps" becomes 96 steps of 1568 input
elements on both sides (ours: ``features="element", features_per_step=1568``); the curves are compared
(max abs difference) before timing, so both compute the same thing. Quantus perturbs in numpy and runs one
forward of the N images per step; ours builds the perturbed inputs on the model's device and sends
(N x steps) rows through the model in measured chunks. A third line times ours at the API's own setting,
100 equal steps of pixels (``deletion(..., n_steps=100)``).

Each comparison alternates ours and the peer ``--reps`` times in one process (fair on a shared machine)
and prints medians, minima and the ratio peer/ours (> 1: ours is faster).

    python benchmarks/metrics.py [--images N] [--reps R] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable

import numpy as np
import torch
from _device import add_device_argument, clock, describe, resolve_device

import xaiwidgets as xw
from xaiwidgets.metrics import deletion, pixel_flipping

warnings.filterwarnings("ignore")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1, help="images per call (copies of 'chelsea'; default 1)")
    p.add_argument("--reps", type=int, default=3, help="alternating timed runs per side (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    add_device_argument(p)
    return p.parse_args()


def interleaved(ours: Callable[[], object], peer: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """Wall times of ``reps`` alternating runs (ours first), after one untimed warm-up run each."""
    ours(), peer()
    t_ours, t_peer = [], []
    for _ in range(reps):
        for fn, out in ((ours, t_ours), (peer, t_peer)):
            start = clock()
            fn()
            out.append(clock() - start)
    return t_ours, t_peer


def row(name: str, ours: list[float], peer: list[float]) -> None:
    mo, mp, lo, lp = statistics.median(ours), statistics.median(peer), min(ours), min(peer)
    print(f"  {name:<44} ours {mo:8.2f} s (min {lo:7.2f})   quantus {mp:8.2f} s (min {lp:7.2f})   "
          f"quantus/ours {mp / mo:5.2f}x (min/min {lp / lo:5.2f}x)", flush=True)


def main() -> None:
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    import quantus

    clf = xw.demo.imagenet_classifier()
    device = resolve_device(args.device)
    model = clf.model.eval().to(device)
    x = clf.preprocess(xw.demo.load_image("chelsea")).repeat(args.images, 1, 1, 1)
    saliency = xw.attribute(clf, x, "saliency")
    target = saliency.target
    a = saliency.values + 1e-9 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(device)  # no ties
    step = 1568  # divides 224 * 224; 150528 / 1568 = 96 steps

    def ours() -> np.ndarray:
        return pixel_flipping(clf, x, a, target, features="element", features_per_step=step, baseline=0.0,
                              progress=False).scores

    def peer() -> np.ndarray:
        metric = quantus.PixelFlipping(features_in_step=step, normalise=False, perturb_baseline=0.0,
                                       disable_warnings=True)
        return np.asarray(metric(model=model, x_batch=x.cpu().numpy(), y_batch=target.cpu().numpy(),
                                 a_batch=a.cpu().numpy(), softmax=True, device=str(device), channel_first=True,
                                 batch_size=64))

    diff = np.abs(ours()[:, 1:] - peer()).max()
    print(f"EfficientNet-Lite0 224x224, {args.images} image(s), {describe(device)}, "
          f"{args.reps} alternating runs; max |ours - quantus| over the curve: {diff:.2e}")
    t_ours, t_peer = interleaved(ours, peer, args.reps)
    row("pixel flipping, 96 steps of 1568 elements", t_ours, t_peer)
    t_api, _ = interleaved(
        lambda: deletion(clf, x, saliency, n_steps=100, baseline=0.0, progress=False), lambda: None, args.reps
    )
    ratio = statistics.median(t_peer) / statistics.median(t_api)
    print(f"  {'ours: deletion, 100 steps of pixels':<44} ours {statistics.median(t_api):8.2f} s "
          f"(min {min(t_api):7.2f}); quantus (96 steps)/ours {ratio:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
