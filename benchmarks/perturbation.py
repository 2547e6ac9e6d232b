"""Perturbation methods vs peers, same process, same model and sample counts (run by hand).

(a) End to end on the demo EfficientNet-Lite0 (224x224, batch 1): occlusion vs captum ``Occlusion``,
    LIME vs lime's ``LimeImageExplainer`` (500 samples), KernelSHAP vs shap ``KernelExplainer`` with a
    straightforward numpy masking function (same superpixels, same sample count).
(b) Per-sample overhead with a trivial model (a few arithmetic ops): ours vs lime and shap.

Prints medians of several runs and the ratio ours/peer.   python benchmarks/perturbation.py [--quick] [--overhead-only]
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np
import torch

import xaiwidgets as xw
import xaiwidgets.methods.perturbation

warnings.filterwarnings("ignore")
QUICK = "--quick" in sys.argv
REPS = 1 if QUICK else 3


def median_time(fn, reps=REPS):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def row(name, ours, peer):
    print(f"{name:<44} ours {ours:8.3f} s   peer {peer:8.3f} s   ours/peer {ours / peer:6.2f}x", flush=True)


def end_to_end():
    from captum.attr import Occlusion
    from lime.lime_image import LimeImageExplainer
    from shap import KernelExplainer
    from skimage.segmentation import quickshift

    from xaiwidgets.demo import imagenet_classifier, load_image

    clf = imagenet_classifier()
    model = clf.model.eval()
    x = clf.preprocess(load_image("chelsea"))
    target = int(model(x).argmax())
    print(f"(a) end to end, EfficientNet-Lite0 224x224, batch 1, {torch.get_num_threads()} threads")

    for n in (1,) if QUICK else (1, 8):
        xb = x.expand(n, -1, -1, -1).contiguous()
        ours = median_time(
            lambda xb=xb: xw.attribute(
                model, xb, method="occlusion", window=56, stride=28, target=target, batch_size=64, progress=False
            )
        )
        peer = median_time(
            lambda xb=xb: Occlusion(model).attribute(
                xb, target=target, sliding_window_shapes=(3, 56, 56), strides=(3, 28, 28), perturbations_per_eval=64
            )
        )
        row(f"occlusion 56/28 (49 windows), batch {n}", ours, peer)

    img = clf.to_display(x)[0]  # uint8 HWC
    seg = quickshift(img.astype(np.float64) / 255, kernel_size=4, max_dist=200, ratio=0.2)
    m = int(seg.max()) + 1
    mean = torch.tensor(clf.mean).view(1, 3, 1, 1)
    std = torch.tensor(clf.std).view(1, 3, 1, 1)

    def classifier_fn(images):  # lime's interface: float HWC images in [0, 1] -> probabilities
        t = torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2)
        with torch.no_grad():
            return model((t - mean) / std).softmax(1).numpy()

    n_samples = 100 if QUICK else 500
    ours = median_time(
        lambda: xw.attribute(
            clf,
            x,
            method="lime",
            n_samples=n_samples,
            target=target,
            segments=torch.as_tensor(seg),
            batch_size=10,
            progress=False,
        )
    )
    explainer = LimeImageExplainer(random_state=0)
    peer = median_time(
        lambda: explainer.explain_instance(
            img.astype(np.float64) / 255,
            classifier_fn,
            labels=(target,),
            top_labels=None,
            hide_color=0,
            num_samples=n_samples,
            batch_size=10,
            segmentation_fn=lambda im: seg,
        )
    )
    row(f"lime {n_samples} samples ({m} superpixels)", ours, peer)

    xn = x[0].numpy()

    def masked_model(z):  # a straightforward numpy masking function, one image at a time
        out = []
        for zi in z:
            mask = zi[seg].astype(np.float32)
            with torch.no_grad():
                out.append(model(torch.as_tensor(xn * mask)[None])[0, target].item())
        return np.array(out)

    ours = median_time(
        lambda: xw.attribute(
            clf,
            x,
            method="kernel_shap",
            n_samples=n_samples,
            target=target,
            segments=torch.as_tensor(seg),
            batch_size=64,
            progress=False,
        ),
        1,
    )
    ks = KernelExplainer(masked_model, np.zeros((1, m)))
    peer = median_time(lambda: ks.shap_values(np.ones((1, m)), nsamples=n_samples, silent=True), 1)
    row(f"kernel_shap {n_samples} samples ({m} superpixels)", ours, peer)


def overhead():
    from lime.lime_image import LimeImageExplainer
    from shap import KernelExplainer

    print("(b) per-sample overhead, trivial model (mean of the image times 2), 224x224")
    h = w = 224
    img = np.random.RandomState(0).rand(h, w, 3)
    seg = (np.arange(h)[:, None] // 28) * 8 + np.arange(w)[None, :] // 28  # 64 patches
    m = 64
    x = torch.as_tensor(img, dtype=torch.float32).permute(2, 0, 1)[None]

    class Trivial(torch.nn.Module):
        def forward(self, t):
            s = t.mean(dim=(1, 2, 3))
            return torch.stack([s, 2 * s], 1)

    model = Trivial()
    n = 1000

    def lime_fn(images):
        a = np.asarray(images).mean(axis=(1, 2, 3))
        return np.stack([a, 2 * a], 1)

    ours = median_time(
        lambda: xw.attribute(
            model,
            x,
            method="lime",
            n_samples=n,
            segments=torch.as_tensor(seg),
            target=1,
            batch_size=100,
            progress=False,
        )
    )
    peer = median_time(
        lambda: LimeImageExplainer(random_state=0).explain_instance(
            img,
            lime_fn,
            labels=(1,),
            top_labels=None,
            hide_color=0,
            num_samples=n,
            batch_size=100,
            segmentation_fn=lambda im: seg,
        )
    )
    print(
        f"{'lime, per sample':<44} ours {ours / n * 1e3:8.3f} ms  peer {peer / n * 1e3:8.3f} ms  "
        f"ours/peer {ours / peer:6.3f}x"
    )

    def shap_fn(z):
        out = []
        for zi in z:
            out.append(2 * (img * zi[seg][:, :, None]).mean())
        return np.array(out)

    ours = median_time(
        lambda: xw.attribute(
            model,
            x,
            method="kernel_shap",
            n_samples=n,
            segments=torch.as_tensor(seg),
            target=1,
            batch_size=100,
            progress=False,
        )
    )
    ks = KernelExplainer(shap_fn, np.zeros((1, m)))
    peer = median_time(lambda: ks.shap_values(np.ones((1, m)), nsamples=n, silent=True))
    print(
        f"{'kernel_shap, per sample':<44} ours {ours / n * 1e3:8.3f} ms  peer {peer / n * 1e3:8.3f} ms  "
        f"ours/peer {ours / peer:6.3f}x"
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    if "--overhead-only" not in sys.argv:
        end_to_end()
    overhead()
