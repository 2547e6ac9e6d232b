"""ACE on 50 images: wall time per phase, and the CAV fit against scikit-learn's LogisticRegression.

Run by hand: ``python benchmarks/ace.py [--images 50] [--repeats 20]``. Two workloads of 50 images of one
class with the defaults (SLIC at 15/50/80 segments, 25 clusters, 20 random runs per concept, 20 random
concepts per concept size for the null, 5 controls):

- ``watermark``: the watermarked squares at 32 px and the shortcut CNN (``xaiwidgets.demo.watermark``),
  layers ``features.1`` (8 x 32 x 32) and ``features.4`` (16 x 16 x 16);
- ``shapes``: the demo shapes CNN on 50 squares at 64 px, layer ``last_conv.bn`` (32 x 8 x 8).

No peer package runs ACE (the authors' code is TensorFlow 1); the peer is scikit-learn's
``LogisticRegression(C=1)`` for the CAV fits that TCAV repeats (``n_repeats`` per concept and per random
concept of the null): ours solves the same problem by Newton's method in the examples' span. Prints the
phase times, the total, the share of the top concept's patches on the watermark, the controls rejected, the
significant concepts and how many are the watermark, and the CAV-fit ratio (ours / sklearn, median of 20).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import torch

from xaiwidgets.core.progress import Progress
from xaiwidgets.featurevis import ace
from xaiwidgets.featurevis.tcav import fit_cav


def timed_ace(model, images, layer, repeats):
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def on(_fraction: float, message: str) -> None:
        marks.setdefault(message, time.perf_counter() - start)

    result = ace(model, images, layer, n_repeats=repeats, progress=Progress(on, tqdm=False))
    total = time.perf_counter() - start
    names = sorted(marks, key=marks.get)
    phases = {a: marks[b] - marks[a] for a, b in itertools.pairwise(names)}
    phases[names[-1]] = total - marks[names[-1]]
    return result, total, phases


def cav_fit_ratio(acts: torch.Tensor, n: int = 20) -> tuple[float, float, float]:
    from sklearn.linear_model import LogisticRegression

    gen = torch.Generator().manual_seed(0)
    ours, peer, cos = [], [], []
    for _ in range(n):
        idx = torch.randperm(acts.shape[0], generator=gen)[:80]
        half = idx.numel() // 2
        pos, neg = acts[idx[:half]], acts[idx[half : 2 * half]]
        t = time.perf_counter()
        w, _ = fit_cav(pos, neg)
        ours.append(time.perf_counter() - t)
        x = torch.cat([pos, neg]).double().numpy()
        t = time.perf_counter()
        ref = LogisticRegression(C=1.0, max_iter=2000).fit(x, np.r_[np.ones(half), np.zeros(half)]).coef_[0]
        peer.append(time.perf_counter() - t)
        cos.append(float(w.double() @ torch.from_numpy(ref / np.linalg.norm(ref))))
    return statistics.median(ours), statistics.median(peer), min(cos)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)  # tiny linear algebra: a second thread only adds contention

    from xaiwidgets.demo import make_shapes, shapes_classifier
    from xaiwidgets.demo.train_shapes import normalise
    from xaiwidgets.demo.watermark import shortcut_cnn, watermarked_shapes

    net = shortcut_cnn(watermarked_shapes(2000, seed=10), epochs=4)
    data = watermarked_shapes(6 * args.images, seed=11)
    squares = (data.images[data.labels == 1][: args.images] - 0.5) / 0.5
    shapes = make_shapes(6 * args.images, size=64, seed=3)
    workloads = [
        ("watermark", net, squares, "features.1"),
        ("watermark", net, squares, "features.4"),
        ("shapes", shapes_classifier(), normalise(shapes.images[shapes.labels == 1][: args.images]), "last_conv.bn"),
    ]
    for name, model, images, layer in workloads:
        result, total, phases = timed_ace(model, images, layer, args.repeats)
        print(f"{name} at {layer}: {images.shape[0]} images {tuple(images.shape[1:])}, {result.n_patches} patches, "
              f"{len(result.concepts)} concepts, total {total:.1f} s")
        for phase, seconds in phases.items():
            print(f"  {phase:32s} {seconds:6.1f} s")
        if name == "watermark":
            top = result.top()
            share = float(np.mean([int((m & data.region).sum()) >= 0.5 * int(data.region.sum()) for m in top.masks]))
            rejected = sum(not c.significant for c in result.random_concepts)
            marked = [float(np.mean([int((m & data.region).sum()) >= 0.5 * int(data.region.sum()) for m in c.masks]))
                      >= 0.8 for c in result.concepts if c.significant]
            print(f"  top concept: TCAV {top.score:.2f}, p = {top.p_value:.2g}, {share:.0%} of its patches show "
                  f"the watermark; random controls rejected: {rejected} of {len(result.random_concepts)}; "
                  f"significant concepts: {len(marked)}, {sum(marked)} of them watermark (>= 80% of patches)")
        from xaiwidgets.featurevis._capture import capture

        with torch.no_grad(), capture(model if isinstance(model, torch.nn.Module) else model.model, [layer]) as cap:
            cap.run(images[:80])
            acts = cap.acts[layer].flatten(1).float()
        ours, peer, cos = cav_fit_ratio(acts)
        rows = min(80, acts.shape[0]) // 2 * 2
        print(f"  CAV fit on {rows} x {acts.shape[1]}: ours {ours * 1e3:.1f} ms, sklearn {peer * 1e3:.1f} ms, "
              f"ratio {ours / peer:.2f}x (min cosine to sklearn's CAV {cos:.6f})")


if __name__ == "__main__":
    main()
