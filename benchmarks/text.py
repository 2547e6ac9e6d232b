"""Text methods vs peers on the demo MiniLM sentiment model, same process, same sample budget (run by hand).

(a) LIME: ours (``xw.attribute(clf, text, "lime", n_samples=S)``: word coalitions scored as token ids, no
    re-tokenisation) vs lime's ``LimeTextExplainer.explain_instance(num_samples=S)`` (strings with words
    removed, tokenised by the classifier function); both classify in batches of 64.
(b) Anchors: ours vs marcotcr's ``anchor`` (anchor-exp, ``AnchorText`` with ``use_unk_distribution``, mask
    ``[UNK]``) at threshold 0.95, delta 0.1, tau 0.15, batch 10, beam 1 (``AnchorText.explain_instance`` does
    not pass its ``beam_size`` on, so the peer searches with beam 1; ``--beam`` sets ours, default 1). Anchors
    sample adaptively, so besides the wall time the samples each side drew (model evaluations, counted in its
    classifier function for the peer) and the time per sample are printed.

Every comparison alternates ours and the peer ``--reps`` times per sentence (after one untimed warm-up) and
prints per sentence and overall the median ratio ours/peer (< 1: ours is faster / draws fewer samples).

    python benchmarks/text.py [--sentences K] [--reps R] [--anchor-reps A] [--beam B] [--samples S]
                              [--threads T]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import xaiwidgets as xw  # noqa: E402
from xaiwidgets.demo.texts import SAMPLE_TEXTS  # noqa: E402
from xaiwidgets.methods.perturbation.anchors import Anchors  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=3, help="sample sentences used (default 3)")
    p.add_argument("--reps", type=int, default=3, help="alternating timed runs per side and sentence (default 3)")
    p.add_argument("--anchor-reps", type=int, default=1, help="runs per side and sentence for anchors (default 1)")
    p.add_argument("--samples", type=int, default=500, help="LIME sample budget (default 500)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--beam", type=int, default=1, help="our anchors beam size (the peer's is 1)")
    p.add_argument("--skip-anchors", action="store_true")
    p.add_argument("--skip-lime", action="store_true")
    return p.parse_args()


class Counter:
    """A classifier function for the peers that counts the texts it scores."""

    def __init__(self, clf, proba: bool) -> None:
        self.clf, self.proba, self.n = clf, proba, 0

    def __call__(self, texts):
        texts = list(texts)
        self.n += len(texts)
        out = torch.zeros(len(texts), 2)
        keep = [i for i, t in enumerate(texts) if t.strip()]  # lime can remove every word
        if keep:
            out[keep] = self.clf.scores([texts[i] for i in keep], batch_size=64)
        if not self.proba:
            return out.argmax(1).numpy()
        return out.softmax(1).numpy().astype(np.float64)


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_lime(clf, sentences, reps: int, samples: int) -> list[float]:
    from lime.lime_text import LimeTextExplainer

    ratios = []
    print(f"\n(a) LIME text, {samples} samples, 10 features; seconds (median of {reps}) ours / lime / ratio")
    for text in sentences:
        target = int(clf.scores(text).argmax(1))

        def ours(text=text, target=target):
            return xw.attribute(clf, text, "lime", target=target, n_samples=samples, num_features=10,
                                batch_size=64, progress=False)

        def peer(text=text, target=target):
            explainer = LimeTextExplainer(random_state=0)
            return explainer.explain_instance(text, Counter(clf, True), labels=(target,), num_features=10,
                                              num_samples=samples)

        ours(), peer()
        t_ours, t_peer = [], []
        for _ in range(reps):
            t_ours.append(timed(ours)[0])
            t_peer.append(timed(peer)[0])
        mo, mp = statistics.median(t_ours), statistics.median(t_peer)
        ratios.append(mo / mp)
        print(f"  {mo:7.2f} {mp:7.2f}  {mo / mp:5.2f}   {text}")
    print(f"  median ratio ours/lime: {statistics.median(ratios):.2f}")
    return ratios


def bench_anchors(clf, sentences, reps: int, beam: int) -> list[float]:
    import spacy
    from anchor.anchor_text import AnchorText

    print(f"\n(b) Anchors text, threshold 0.95, our beam {beam} (median of {reps}): seconds, samples drawn, ms per "
          "sample, anchor; ours | anchor | ratios (time, samples, time/sample)")
    nlp = spacy.blank("en")
    time_ratios, sample_ratios, per_sample = [], [], []
    for text in sentences:
        runs = {"ours": [], "peer": []}
        for rep in range(reps):  # anchors runs are long: no warm-up run
            t, a = timed(lambda text=text, rep=rep: Anchors(clf).attribute(
                text, progress=False, threshold=0.95, delta=0.1, epsilon=0.15, batch_size=10, beam_size=beam,
                seed=rep))
            runs["ours"].append((t, a.extras["n_samples"][0], a.extras["anchor"][0]))
            counter = Counter(clf, False)
            peer = AnchorText(nlp, ["negative", "positive"], use_unk_distribution=True, mask_string="[UNK]")
            np.random.seed(rep)
            t, exp = timed(lambda text=text, peer=peer, counter=counter: peer.explain_instance(
                text, counter, threshold=0.95, delta=0.1, tau=0.15, batch_size=10))
            runs["peer"].append((t, counter.n, [str(n) for n in exp.names()]))
        mo = statistics.median(r[0] for r in runs["ours"])
        mp = statistics.median(r[0] for r in runs["peer"])
        so = statistics.median(r[1] for r in runs["ours"])
        sp = statistics.median(r[1] for r in runs["peer"])
        time_ratios.append(mo / mp)
        sample_ratios.append(so / sp)
        per_sample.append((mo / so) / (mp / sp))
        print(f"  {mo:6.1f}s {so:6.0f} {1e3 * mo / so:5.1f}ms {runs['ours'][0][2]} | {mp:6.1f}s {sp:6.0f} "
              f"{1e3 * mp / sp:5.1f}ms {runs['peer'][0][2]} | {mo / mp:4.2f} {so / sp:4.2f} {per_sample[-1]:4.2f}   "
              f"{text}")
    print(f"  median ratios ours/anchor: time {statistics.median(time_ratios):.2f}, samples "
          f"{statistics.median(sample_ratios):.2f}, time per sample {statistics.median(per_sample):.2f}")
    return time_ratios


def main() -> None:
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    from xaiwidgets.demo.text import sentiment_classifier

    clf = sentiment_classifier()
    sentences = list(SAMPLE_TEXTS[: args.sentences])
    print(f"demo MiniLM sentiment model, {len(sentences)} sentences, torch threads {torch.get_num_threads()}")
    if not args.skip_lime:
        bench_lime(clf, sentences, args.reps, args.samples)
    if not args.skip_anchors:
        bench_anchors(clf, sentences, args.anchor_reps, args.beam)


if __name__ == "__main__":
    main()
