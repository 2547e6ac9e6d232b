"""Benchmark: the gradient and backprop suite against captum, same process, same model/input/params.

Run by hand: ``python benchmarks/gradients.py [--batches 1 8] [--repeats 3] [--ig-steps 50]``.
EfficientNet-Lite0 (demo weights) on 224x224 inputs (the 'chelsea' photo repeated to the batch size).
Prints the median wall time of ``--repeats`` runs (after one warm-up call each, alternating which of
ours and captum goes first) and the ratio ours/captum.
Integrated Gradients: ours with no tuning vs captum's default (all steps in one batch) and captum's best
``internal_batch_size`` from {1, 5, 10, 25, 50}.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable

import torch
from _device import add_device_argument, clock, describe, resolve_device

import xaiwidgets as xw
from xaiwidgets.demo import imagenet_classifier, load_image
from xaiwidgets.methods import cam, gradient  # noqa: F401  (register the methods)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def paired_times(ours: Callable[[], object], peer: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median times of ``ours`` and ``peer`` after one warm-up call each, alternating which goes first."""
    ours()
    peer()
    t_ours, t_peer = [], []
    for r in range(repeats):
        for fn, store in ((ours, t_ours), (peer, t_peer))[:: 1 if r % 2 == 0 else -1]:
            start = clock()
            fn()
            store.append(clock() - start)
    return statistics.median(t_ours), statistics.median(t_peer)


def bench_batch(n: int, clf, model, photo: torch.Tensor, args: argparse.Namespace, ca) -> None:
    x = photo.repeat(n, 1, 1, 1)
    target = [285] * n
    background = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(x.device)
    s, k = args.samples, args.ig_steps
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "gradient": (lambda: xw.attribute(clf, x, method="gradient", target=target),
                     lambda: ca.Saliency(model).attribute(x, target=target, abs=False)),
        "input_x_gradient": (lambda: xw.attribute(clf, x, method="input_x_gradient", target=target),
                             lambda: ca.InputXGradient(model).attribute(x, target=target)),
        "guided_backprop": (lambda: xw.attribute(clf, x, method="guided_backprop", target=target),
                            lambda: ca.GuidedBackprop(model).attribute(x, target=target)),
        "deconvnet": (lambda: xw.attribute(clf, x, method="deconvnet", target=target),
                      lambda: ca.Deconvolution(model).attribute(x, target=target)),
        "guided_gradcam": (
            lambda: xw.attribute(clf, x, method="guided_gradcam", target=target, layer="_conv_head",
                                 progress=False),
            lambda: ca.GuidedGradCam(model, model._conv_head).attribute(x, target=target)),
        "smoothgrad": (
            lambda: xw.attribute(clf, x, method="smoothgrad", target=target, n_samples=s, progress=False),
            lambda: ca.NoiseTunnel(ca.Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=s, stdevs=0.15 * 4.5, target=target, abs=False)),
        "expected_gradients": (
            lambda: xw.attribute(clf, x, method="expected_gradients", target=target, baseline=background,
                                 n_samples=s, progress=False),
            lambda: ca.GradientShap(model).attribute(x, baselines=background, target=target, n_samples=s)),
    }
    for name, (ours, peer) in cases.items():
        if args.only and name not in args.only:
            continue
        t_ours, t_peer = paired_times(ours, peer, args.repeats)
        print(f"batch {n}  {name:20s} ours {t_ours:7.2f}s  captum {t_peer:7.2f}s  ratio {t_ours / t_peer:5.2f}",
              flush=True)
    if args.only and "integrated_gradients" not in args.only:
        return
    ig = ca.IntegratedGradients(model)
    t_ours = median_time(lambda: xw.attribute(clf, x, method="integrated_gradients", target=target, n_steps=k,
                                              progress=False), args.repeats)
    captum_times = {}
    for size in (None, 1, 5, 10, 25, 50):
        if size is not None and size > k * n:
            continue
        if size is None and k * n > args.captum_max_rows:
            # captum's default puts all n * k path points in one batch: at batch 8 x 50 steps (400 rows at
            # 224x224 with their autograd graph) the kernel's OOM killer ended this process on 24 GiB
            print(f"batch {n}  captum IG internal_batch_size=None: skipped ({k * n} rows in one batch "
                  f"> --captum-max-rows {args.captum_max_rows}; out of memory on 24 GiB)", flush=True)
            continue
        captum_times[size] = median_time(
            lambda size=size: ig.attribute(x, target=target, n_steps=k, internal_batch_size=size),
            args.repeats)
        print(f"batch {n}  captum IG internal_batch_size={size}: {captum_times[size]:.2f}s", flush=True)
    best = min(v for key, v in captum_times.items() if key is not None)
    default = captum_times.get(None)
    versus_default = (f"captum default {default:.2f}s  ratio/default {t_ours / default:.2f}" if default
                      else "captum default: out of memory")
    print(f"batch {n}  integrated_gradients ({k} steps) ours {t_ours:.2f}s  best chunk {best:.2f}s  "
          f"ratio/best {t_ours / best:.2f}  {versus_default}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=10, help="SmoothGrad / GradientShap samples")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--captum-max-rows", type=int, default=100,
                        help="run captum's default IG (one batch of batch x steps rows) only up to this many rows")
    add_device_argument(parser)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from captum import attr as ca

    clf = imagenet_classifier()
    model = clf.model.to(resolve_device(args.device))
    photo = clf.preprocess(load_image("chelsea"))
    print(f"torch {torch.__version__}, {describe(photo.device)}, EfficientNet-Lite0 224x224")
    for n in args.batches:
        bench_batch(n, clf, model, photo, args, ca)


if __name__ == "__main__":
    main()
