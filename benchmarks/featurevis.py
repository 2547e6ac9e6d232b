"""Feature visualisation speed: one 16-channel batch vs 16 sequential runs, ours vs Lucent (torch-lucent).

Run by hand: ``python benchmarks/featurevis.py [--size 96] [--steps 8] [--repeats 3] [--images]``.
Model: the demo EfficientNet-Lite0, channel objectives on ``_blocks.9``, Fourier + decorrelated
parametrisation, Adam lr 0.05, no transforms (Lucent's ``random_rotate`` does not run with kornia 0.9).
Prints channel-steps per second (channels x steps / wall time, median of ``--repeats``) and ratios.
``--images`` also renders lucid-style galleries with the default recipe and saves them (and an
optimisation filmstrip) to ``tests/browser/artifacts/featurevis_*.png``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import xaiwidgets.featurevis as fv
from xaiwidgets.demo import imagenet_classifier

LAYER = "_blocks.9"
ARTIFACTS = Path(__file__).resolve().parents[1] / "tests" / "browser" / "artifacts"


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _lucent(model, channels, size, steps, batched: bool) -> torch.Tensor | None:
    from lucent.optvis import objectives, param, render

    name = LAYER.replace(".", "_")
    if batched:
        obj = sum(objectives.channel(name, c, batch=i) for i, c in enumerate(channels))
        out = render.render_vis(model, obj, lambda: param.image(size, batch=len(channels)), transforms=[],
                                thresholds=(steps,), progress=False, show_image=False, fixed_image_size=size)
        return torch.from_numpy(out[-1]).permute(0, 3, 1, 2).float()
    else:
        for c in channels:
            render.render_vis(model, objectives.channel(name, c), lambda: param.image(size), transforms=[],
                              thresholds=(steps,), progress=False, show_image=False, fixed_image_size=size)
    return None


def _channel_values(clf, images: torch.Tensor, chans: list[int]) -> torch.Tensor:
    mean, std = torch.tensor(clf.mean).view(1, 3, 1, 1), torch.tensor(clf.std).view(1, 3, 1, 1)
    acts = fv.activations(clf, LAYER, (images - mean) / std)
    return acts[torch.arange(len(chans)), chans].mean((1, 2))


def _grid(images: np.ndarray, ncols: int, pad: int = 4) -> np.ndarray:
    n, h, w, _ = images.shape
    rows = -(-n // ncols)
    out = np.full((rows * (h + pad) - pad, ncols * (w + pad) - pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = im
    return out


def render_gallery(clf, steps: int, size: int) -> None:
    from PIL import Image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for layer, chans in (("_blocks.4", [0, 5, 9, 17, 22, 31, 36, 39]), ("_blocks.10", [1, 12, 27, 40, 55, 63, 81, 99])):
        t = time.perf_counter()
        res = fv.maximize(clf, fv.channel_objectives(layer, chans), size=size, n_steps=steps,
                          snapshot_every=max(1, steps // 8), progress=False)
        print(f"gallery {layer}: {time.perf_counter() - t:.1f}s, objective {res.final_values.numpy().round(1)}")
        tag = layer.replace("_blocks.", "blocks")
        Image.fromarray(_grid(res.to_uint8(), 4)).save(ARTIFACTS / f"featurevis_{tag}.png")
        Image.fromarray(_grid(res.frames[:, 0], len(res.frames))).save(ARTIFACTS / f"featurevis_{tag}_frames.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--images", action="store_true")
    ap.add_argument("--image-steps", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    clf = imagenet_classifier()
    chans = list(range(0, 7 * args.channels, 7))[: args.channels]
    work = len(chans) * args.steps
    kw = dict(size=args.size, n_steps=args.steps, transforms=None, progress=False)

    rows = {}
    rows["ours batch"] = _timed(lambda: fv.maximize(clf, fv.channel_objectives(LAYER, chans), **kw), args.repeats)
    rows["ours sequential"] = _timed(
        lambda: [fv.maximize(clf, fv.channel(LAYER, c), **kw) for c in chans], max(1, args.repeats // 2))
    try:
        import lucent.optvis.render  # noqa: F401

        model = copy.deepcopy(clf.model).eval()  # Lucent leaves hooks on the model
        rows["lucent batch"] = _timed(lambda: _lucent(model, chans, args.size, args.steps, True), args.repeats)
        rows["lucent sequential"] = _timed(
            lambda: _lucent(model, chans, args.size, args.steps, False), max(1, args.repeats // 2))
    except ImportError as exc:
        print(f"lucent unavailable: {exc}")
    print(f"EfficientNet-Lite0 {LAYER}, {len(chans)} channels, {args.size}px, {args.steps} steps, "
          f"torch threads {torch.get_num_threads()}")
    for name, sec in rows.items():
        print(f"  {name:18s} {sec:8.2f}s  {work / sec:8.2f} channel-steps/s")
    print(f"  batch speed-up over sequential (ours): {rows['ours sequential'] / rows['ours batch']:.2f}x")
    if "lucent batch" in rows:
        print(f"  ratio ours/lucent time, batch:      {rows['ours batch'] / rows['lucent batch']:.2f}")
        print(f"  ratio ours/lucent time, sequential: {rows['ours sequential'] / rows['lucent sequential']:.2f}")
        ours = fv.maximize(clf, fv.channel_objectives(LAYER, chans), **kw).final_values
        torch.manual_seed(0)
        theirs = _channel_values(clf, _lucent(model, chans, args.size, args.steps, True), chans)
        print(f"  objective reached, ours:   {ours.numpy().round(1)}")
        ratio = float((ours / theirs).mean())
        print(f"  objective reached, lucent: {theirs.numpy().round(1)}  (ratio ours/lucent, mean {ratio:.2f})")
    if args.images:
        render_gallery(clf, args.image_steps, args.image_size)


if __name__ == "__main__":
    main()
