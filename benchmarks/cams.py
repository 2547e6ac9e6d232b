"""CAM family: ours vs pytorch-grad-cam 1.5.7, same process, EfficientNet-Lite0 at 224x224.

Run by hand: ``python benchmarks/cams.py [--repeats 5] [--slow-batch 1]``. Prints the median time per call
and the ratio ours / peer for batch 1 and 8 (Score-CAM and Ablation-CAM: ``--slow-batch`` sizes only,
batch 1 by default). Gradient CAMs on ``_conv_head`` at 224; Score-CAM on ``_blocks.7`` (80 channels) at 224;
Ablation-CAM on ``_bn1`` (1280 channels) at 112x112 (the peer reruns the whole network 1280 times per
image there; on a shared 2-core machine 224 took too long). Peer defaults: Score-CAM batch 16,
Ablation-CAM batch 32; ours: batch 64.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _device import add_device_argument, clock, describe, resolve_device

import xaiwidgets as xw
import xaiwidgets.methods.cam  # registers the CAM family

PEER = {
    "gradcam": "GradCAM", "gradcam_plus_plus": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "hirescam": "HiResCAM",
    "layercam": "LayerCAM", "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM", "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
}
LAYER = {"ablationcam": "_bn1", "scorecam": "_blocks.7"}
SIZE = {"ablationcam": 112}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def main() -> None:
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slow-batch", type=int, nargs="*", default=[1])
    parser.add_argument("--methods", nargs="*", default=list(PEER))
    add_device_argument(parser)
    args = parser.parse_args()

    classifier = xw.demo.imagenet_classifier()
    model = classifier.model.to(resolve_device(args.device))
    image = classifier.preprocess(xw.demo.load_image("chelsea"))
    print(f"torch {torch.__version__}, {describe(image.device)}")
    print(f"{'method':<20}{'batch':>6}{'ours s':>10}{'peer s':>10}{'ours/peer':>11}")
    for method in args.methods:
        slow = method in ("scorecam", "ablationcam")
        batches = args.slow_batch if slow else [1, 8]
        repeats = 1 if slow else args.repeats
        name = LAYER.get(method, "_conv_head")
        layer = dict(model.named_modules())[name]
        for n in batches:
            x = image.expand(n, -1, -1, -1).contiguous() + 0.01 * torch.randn(n, *image.shape[1:], device=image.device)
            if method in SIZE:
                x = torch.nn.functional.interpolate(x, size=SIZE[method], mode="bilinear", antialias=True)
            target = classifier.probabilities(x).argmax(1)

            def ours(x=x, method=method, target=target, name=name):
                xw.attribute(model, x, method=method, target=target, layer=name, progress=False)

            def peer(x=x, method=method, target=target, layer=layer):
                with getattr(pgc, PEER[method])(model, [layer]) as cam:
                    cam(x, [ClassifierOutputTarget(int(t)) for t in target])

            ours()  # warm-up both
            if not slow:
                peer()
            t_peer = median_time(peer, repeats)
            t_ours = median_time(ours, repeats)
            print(f"{method:<20}{n:>6}{t_ours:>10.3f}{t_peer:>10.3f}{t_ours / t_peer:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
