"""The optimisation methods (run by hand): perceptual_ball and masking_saliency.

(a) Shapes with ground-truth object masks (xaiwidgets.demo.make_shapes, the shapes demo CNN): a mask
    generator trained by ``fit_masker`` on ``--train`` images, then IoU with the object masks on ``--test``
    other images for the generator's masks, per-image ``masking_saliency``, ``extremal_perturbation`` and
    ``gradcam`` (all with their defaults). Each map is divided by its maximum and binarised at 0.5; the
    best single threshold per method (0.1 ... 0.9, chosen on the test images: an upper bound) is printed too.
(b) The demo EfficientNet-Lite0 (224x224) on the five sample photos: ``perceptual_ball`` per image (time,
    reached margin against v, distortion) and the deletion AUC (probability of the target, pixels set to
    the black baseline most relevant first, 50 steps; lower is better) of its maps next to ``saliency``,
    ``integrated_gradients`` and ``gradcam``; ``masking_saliency`` per image (time).
(c) A seeded torchvision ResNet-18 (random weights, batch-norm statistics from random images): reached
    margin of ``perceptual_ball``.

    python benchmarks/optimisation.py [--threads 2] [--train 512] [--test 64] [--skip-shapes]
                                      [--skip-demo] [--skip-resnet]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _device import clock

import xaiwidgets as xw
from xaiwidgets.methods.optimisation import fit_masker

warnings.filterwarnings("ignore")
THRESHOLDS = np.round(np.arange(0.1, 0.91, 0.1), 2)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", type=int, default=512)
    p.add_argument("--test", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--photos", nargs="*", default=None, help="sample photo names (default: all five)")
    p.add_argument("--mask-photos", type=int, default=5, help="photos timed for per-image masking_saliency")
    p.add_argument("--skip-shapes", action="store_true")
    p.add_argument("--no-masker", action="store_true", help="shapes without training the mask generator")
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--skip-resnet", action="store_true")
    return p.parse_args()


def iou(maps: torch.Tensor, gt: torch.Tensor, threshold: float) -> float:
    unit = maps / maps.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    b = unit >= threshold
    return float(((b & gt).flatten(1).sum(1) / (b | gt).flatten(1).sum(1).clamp_min(1)).mean())


def shapes(args: argparse.Namespace) -> None:
    clf = xw.demo.shapes_classifier()
    train, test = xw.demo.make_shapes(args.train, seed=11), xw.demo.make_shapes(args.test, seed=12)
    x_train, x_test = clf.preprocess(train.images), clf.preprocess(test.images)
    runs = {}
    if not args.no_masker:
        t0 = clock()
        masker = fit_masker(clf, (x_train, train.labels), epochs=args.epochs, progress=False)
        print(f"(a) shapes 64x64: masker on {masker.layers} trained on {args.train} images, {args.epochs} epochs "
              f"in {clock() - t0:.1f} s")
        runs["masking_saliency (trained masker)"] = lambda: masker.attribute(x_test)
    print(f"(a) IoU with the object masks on {args.test} test shapes images")
    runs.update({
        "masking_saliency (per image)": lambda: xw.attribute(clf, x_test, method="masking_saliency", progress=False),
        "extremal_perturbation": lambda: xw.attribute(clf, x_test, method="extremal_perturbation", progress=False),
        "gradcam": lambda: xw.attribute(clf, x_test, method="gradcam"),
    })
    for label, run in runs.items():
        t0 = clock()
        a = run()
        seconds = (clock() - t0) / args.test
        maps = torch.from_numpy(a.heatmap()).clamp_min(0)
        best = max(THRESHOLDS, key=lambda t: iou(maps, test.masks, t))
        print(f"  {label:<36} IoU@0.5 {iou(maps, test.masks, 0.5):.3f}   best {iou(maps, test.masks, best):.3f} "
              f"(threshold {best:.1f})   {seconds * 1e3:8.1f} ms/image", flush=True)


def demo(args: argparse.Namespace) -> None:
    clf = xw.demo.imagenet_classifier()
    photos = {k: v for k, v in xw.demo.sample_images().items() if not args.photos or k in args.photos}
    print(f"(b) demo EfficientNet-Lite0 224x224, {torch.get_num_threads()} threads, per image")
    aucs: dict[str, list[float]] = {m: [] for m in ("perceptual_ball", "saliency", "integrated_gradients", "gradcam")}
    for k, (name, image) in enumerate(photos.items()):
        x = clf.preprocess(image)
        t0, c0 = clock(), time.process_time()
        pb = xw.attribute(clf, x, method="perceptual_ball", progress=False)
        seconds, cpu = clock() - t0, time.process_time() - c0
        m = float(pb.extras["margin"][0])
        start = float(pb.extras["margin_start"][0])
        print(f"  {name:<13} perceptual_ball {seconds:7.1f} s (CPU {cpu:6.1f} s)  margin {start:6.2f} -> "
              f"{m:6.3f} (v = -2: {abs(m + 2) / 2:5.1%} off)  ||r|| {float(pb.extras['distortion'][0]):.2f}",
              flush=True)
        maps = {"perceptual_ball": pb}
        for method in ("saliency", "integrated_gradients", "gradcam"):
            maps[method] = xw.attribute(clf, x, method=method, progress=False)
        for method, a in maps.items():
            curve = xw.metrics.deletion(clf, x, a, n_steps=50, progress=False)
            aucs[method].append(float(np.asarray(curve.auc).reshape(-1)[0]))
        print(f"  {name:<13} deletion AUC " + ", ".join(f"{m} {v[-1]:.3f}" for m, v in aucs.items()), flush=True)
        if k < args.mask_photos:
            t0, c0 = clock(), time.process_time()
            xw.attribute(clf, x, method="masking_saliency", progress=False)
            print(f"  {name:<13} masking_saliency (per image, 300 steps) {clock() - t0:7.1f} s "
                  f"(CPU {time.process_time() - c0:6.1f} s)", flush=True)
    print(f"  deletion AUC (mean over {len(photos)} photos; lower is better): "
          + ", ".join(f"{m} {np.mean(v):.3f}" for m, v in aucs.items()))


def resnet(_args: argparse.Namespace) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 112, 112, generator=torch.Generator().manual_seed(5)))
    model.eval()
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    t0 = clock()
    a = xw.attribute(model, x, method="perceptual_ball", progress=False)
    print(f"(c) seeded ResNet-18 112x112, 2 images: margin {a.extras['margin_start'].tolist()} -> "
          f"{[round(v, 3) for v in a.extras['margin'].tolist()]} (v = -2) in {(clock() - t0) / 2:.1f} s/image")


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    if not args.skip_shapes:
        shapes(args)
    if not args.skip_demo:
        demo(args)
    if not args.skip_resnet:
        resnet(args)


if __name__ == "__main__":
    main()
