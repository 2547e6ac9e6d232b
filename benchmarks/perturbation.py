"""Perturbation methods vs peers, same process, same model and sample counts (run by hand).

(a) End to end on the demo EfficientNet-Lite0 (224x224, batch 1): occlusion vs captum ``Occlusion``, LIME
    vs lime's ``LimeImageExplainer``, KernelSHAP vs shap's ``KernelExplainer`` with a straightforward numpy
    masking function (one masked image per model call), Shapley sampling vs captum ``ShapleyValueSampling``.
    Same superpixels (lime's quickshift) and sample counts; ours with its default (measured) batch size.
(b) The methods' own overhead per sample with a trivial model (mean of the input times 2, 1 x 2 scores):
    wall time minus the time spent inside the trivial model's arithmetic, divided by the number of samples
    asked for (the same on both sides; Shapley sampling: orderings x features); for shap the numpy masking
    function is overhead (it is the work shap leaves to the user).
    Two inputs with 50 features: a tiny 3x5x10 image (one feature per pixel: the machinery alone) and a
    224x224 image cut into 5x10 patches (building 50k-pixel masked inputs dominates).

Every comparison alternates ours and the peer ``--reps`` times in one process (fair on a shared machine)
and prints the median and the minimum per side and their ratios, ours/peer (< 1: ours is faster).

    python benchmarks/perturbation.py [--quick | --full] [--overhead-only | --end-to-end-only]
                                      [--reps R] [--threads T]

``--quick``: 100 samples end to end, 1 rep; default: 200 samples, 3 reps; ``--full``: the 500-sample run
(and 2000 samples in (b)).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import warnings
from collections.abc import Callable

import numpy as np
import torch
from _device import clock

import xaiwidgets as xw
import xaiwidgets.methods.perturbation  # registers the methods

warnings.filterwarnings("ignore")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100 samples end to end, 1 rep")
    size.add_argument("--full", action="store_true", help="500 samples end to end, 2000 in (b)")
    part = p.add_mutually_exclusive_group()
    part.add_argument("--overhead-only", action="store_true")
    part.add_argument("--end-to-end-only", action="store_true")
    p.add_argument("--reps", type=int, default=None, help="alternating runs per side (default 3, quick 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
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


def row(name: str, ours: list[float], peer: list[float], unit: str = "s", scale: float = 1.0) -> None:
    mo, mp = statistics.median(ours) * scale, statistics.median(peer) * scale
    lo, lp = min(ours) * scale, min(peer) * scale
    print(
        f"  {name:<46} ours {mo:9.3f} {unit} (min {lo:8.3f})   peer {mp:9.3f} {unit} (min {lp:8.3f})   "
        f"ours/peer {mo / mp:6.3f}x (min/min {lo / lp:6.3f}x)",
        flush=True,
    )


def quiet(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with stderr swallowed (lime draws a tqdm bar)."""

    def run() -> object:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn()

    return run


# ------------------------------------------------------------------------------------------ (a) end to end


def end_to_end(n_samples: int, reps: int) -> None:
    from captum.attr import Occlusion, ShapleyValueSampling
    from lime.lime_image import LimeImageExplainer
    from shap import KernelExplainer
    from skimage.segmentation import quickshift

    from xaiwidgets.demo import imagenet_classifier, load_image

    clf = imagenet_classifier()
    model = clf.model.eval()
    x = clf.preprocess(load_image("chelsea"))
    with torch.no_grad():
        target = int(model(x).argmax())
    print(f"(a) end to end, EfficientNet-Lite0 224x224, batch 1, {n_samples} samples, {reps} alternating runs")

    ours, peer = interleaved(
        lambda: xw.attribute(model, x, method="occlusion", window=56, stride=28, target=target, progress=False),
        lambda: Occlusion(model).attribute(
            x, target=target, sliding_window_shapes=(3, 56, 56), strides=(3, 28, 28), perturbations_per_eval=64
        ),
        reps,
    )
    row("occlusion 56/28 (49 windows) vs captum (64/eval)", ours, peer)

    img = clf.to_display(x)[0]  # uint8 HWC
    seg = quickshift(img.astype(np.float64) / 255, kernel_size=4, max_dist=200, ratio=0.2)
    m = int(seg.max()) + 1
    seg_t = torch.as_tensor(seg)
    mean = torch.tensor(clf.mean).view(1, 3, 1, 1)
    std = torch.tensor(clf.std).view(1, 3, 1, 1)

    def classifier_fn(images: np.ndarray) -> np.ndarray:  # lime's interface: float HWC in [0, 1] -> probabilities
        t = torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2)
        with torch.no_grad():
            return model((t - mean) / std).softmax(1).numpy()

    explainer = LimeImageExplainer(random_state=0)
    ours, peer = interleaved(
        lambda: xw.attribute(clf, x, method="lime", n_samples=n_samples, target=target, segments=seg_t, progress=False),
        quiet(
            lambda: explainer.explain_instance(
                img.astype(np.float64) / 255, classifier_fn, labels=(target,), top_labels=None, hide_color=0,
                num_samples=n_samples, batch_size=10, segmentation_fn=lambda im: seg,
            )
        ),
        reps,
    )
    row(f"lime ({m} superpixels) vs lime (batch 10)", ours, peer)

    xn = x[0].numpy()

    def masked_model(z: np.ndarray) -> np.ndarray:  # a straightforward numpy masking function, one image a call
        out = []
        for zi in z:
            mask = zi[seg].astype(np.float32)
            with torch.no_grad():
                out.append(model(torch.as_tensor(xn * mask)[None])[0, target].item())
        return np.array(out)

    ks = KernelExplainer(masked_model, np.zeros((1, m)))
    ours, peer = interleaved(
        lambda: xw.attribute(
            model, x, method="kernel_shap", n_samples=n_samples, target=target, segments=seg_t, progress=False
        ),
        lambda: ks.shap_values(np.ones((1, m)), nsamples=n_samples, silent=True),
        reps,
    )
    row(f"kernel_shap ({m} superpixels) vs shap KernelExplainer", ours, peer)

    n_perm = max(1, n_samples // m)  # about n_samples evaluations on each side
    ours, peer = interleaved(
        lambda: xw.attribute(
            model, x, method="shapley_sampling", n_samples=n_perm, target=target, segments=seg_t, progress=False
        ),
        lambda: ShapleyValueSampling(model).attribute(
            x, target=target, feature_mask=seg_t[None, None], n_samples=n_perm, perturbations_per_eval=16
        ),
        reps,
    )
    row(f"shapley_sampling ({n_perm} orderings) vs captum (16/eval)", ours, peer)


# ------------------------------------------------------------------------------------ (b) per-sample overhead


def grid(h: int, w: int, rows: int, cols: int) -> np.ndarray:
    """Labels of a ``rows`` x ``cols`` grid of patches over an ``h`` x ``w`` image."""
    return (np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w


class Clock:
    """Seconds spent inside the trivial model (reset per run)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def overhead(n: int, reps: int) -> None:
    from captum.attr import ShapleyValueSampling
    from lime.lime_image import LimeImageExplainer
    from shap import KernelExplainer

    print(
        f"(b) the methods' own overhead per sample, trivial model, {n} samples, 50 features "
        f"(wall time minus time inside the model), {torch.get_num_threads()} torch thread(s), "
        f"median of {reps} alternating runs"
    )
    clock = Clock()

    class Trivial(torch.nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            start = clock()
            s = t.mean(dim=tuple(range(1, t.dim())))
            out = torch.stack([s, 2 * s], 1)
            clock.seconds += clock() - start
            clock.calls += t.shape[0]
            return out

    def trivial_np(images: np.ndarray) -> np.ndarray:
        start = clock()
        a = np.asarray(images).reshape(len(images), -1).mean(1)
        out = np.stack([a, 2 * a], 1)
        clock.seconds += clock() - start
        clock.calls += len(images)
        return out

    model = Trivial()

    def per_sample(fn: Callable[[], object], samples: int, repeat: int = 1) -> float:
        """Overhead per sample of ``repeat`` back-to-back runs of ``fn``, in seconds (the same ``samples`` on
        both sides: ours evaluates each repeated coalition once, so per model evaluation would flatter shap)."""
        clock.reset()
        start = clock()
        for _ in range(repeat):
            fn()
        return (clock() - start - clock.seconds) / (samples * repeat)

    def measure(name: str, ours: Callable[[], object], peer: Callable[[], object], samples: int = n) -> None:
        # warm up, then repeat the faster side so both timed stretches last about as long: a busy machine
        # preempts for whole time slices, which would hit a 3 ms run as a 2x and a 40 ms run as a 1.1x
        per_sample(ours, samples), per_sample(peer, samples)
        start = clock()
        ours()
        t_ours = clock() - start
        start = clock()
        peer()
        t_peer = clock() - start
        k_ours, k_peer = max(1, round(t_peer / t_ours)), max(1, round(t_ours / t_peer))
        t_o, t_p = [], []
        for _ in range(reps):
            t_o.append(per_sample(ours, samples, k_ours))
            t_p.append(per_sample(peer, samples, k_peer))
        row(name, t_o, t_p, unit="us", scale=1e6)

    for label, (h, w), seg in (
        ("3x5x10 image, a feature per pixel", (5, 10), np.arange(50).reshape(5, 10)),
        ("3x224x224 image, 5x10 patches", (224, 224), grid(224, 224, 5, 10)),
    ):
        print(f" {label}")
        img = np.random.RandomState(0).rand(h, w, 3)
        x = torch.as_tensor(img, dtype=torch.float32).permute(2, 0, 1)[None].contiguous()
        seg_t = torch.as_tensor(seg)
        m = int(seg.max()) + 1

        def shap_fn(z: np.ndarray, img=img, seg=seg) -> np.ndarray:  # numpy masking, then the trivial model
            return trivial_np(np.stack([img * zi[seg][:, :, None] for zi in z]))[:, 1]

        ks = KernelExplainer(shap_fn, np.zeros((1, m)))
        measure(
            "kernel_shap vs shap KernelExplainer",
            lambda x=x, seg_t=seg_t: xw.attribute(model, x, method="kernel_shap", n_samples=n, segments=seg_t,
                                                  target=1, progress=False),
            lambda ks=ks, m=m: ks.shap_values(np.ones((1, m)), nsamples=n, silent=True),
        )
        explainer = LimeImageExplainer(random_state=0)
        measure(
            "lime vs lime LimeImageExplainer",
            lambda x=x, seg_t=seg_t: xw.attribute(model, x, method="lime", n_samples=n, segments=seg_t, target=1,
                                                  progress=False),
            quiet(
                lambda img=img, seg=seg, explainer=explainer: explainer.explain_instance(
                    img, trivial_np, labels=(1,), top_labels=None, hide_color=0, num_samples=n, batch_size=100,
                    segmentation_fn=lambda im: seg,
                )
            ),
        )
        n_perm = max(1, n // m)
        measure(
            f"shapley_sampling ({n_perm} orderings) vs captum (64/eval)",
            lambda x=x, seg_t=seg_t, n_perm=n_perm: xw.attribute(model, x, method="shapley_sampling", n_samples=n_perm,
                                                                 segments=seg_t, target=1, progress=False),
            lambda x=x, seg_t=seg_t, n_perm=n_perm: ShapleyValueSampling(model).attribute(
                x, target=1, feature_mask=seg_t[None, None], n_samples=n_perm, perturbations_per_eval=64
            ),
            samples=n_perm * m,  # about one model evaluation per feature and ordering on both sides
        )


if __name__ == "__main__":
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (1 if args.quick else 3)
    torch.manual_seed(0)
    if not args.overhead_only:
        end_to_end(100 if args.quick else 500 if args.full else 200, reps)
    if not args.end_to_end_only:
        overhead(2000 if args.full else 1000, max(reps, 5))
