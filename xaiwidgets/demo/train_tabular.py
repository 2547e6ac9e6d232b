"""Train the demo breast-cancer MLP on CPU: ``python -m xaiwidgets.demo.train_tabular``.

Data: scikit-learn's breast-cancer data set (569 rows, 30 features), stratified 75/25 split (seed 0).
Standardisation statistics come from the training rows; AdamW, cross-entropy, full batch, a few seconds.
Saves the weights, the statistics, the feature names and a background sample of 100 training rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from .tabular import WEIGHTS_PATH, TabularMLP, breast_cancer_split

SEED = 0
N_BACKGROUND = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    args = parser.parse_args()
    x_tr, x_te, y_tr, y_te, names = breast_cancer_split(SEED)
    torch.manual_seed(SEED)
    model = TabularMLP()
    model.mean.copy_(x_tr.mean(0))
    model.std.copy_(x_tr.std(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(args.epochs):
        opt.zero_grad()
        F.cross_entropy(model(x_tr), y_tr).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc_tr = float((model(x_tr).argmax(1) == y_tr).float().mean())
        acc_te = float((model(x_te).argmax(1) == y_te).float().mean())
    print(f"train accuracy {acc_tr:.4f}, test accuracy {acc_te:.4f} ({len(y_te)} held-out rows)")
    gen = torch.Generator().manual_seed(SEED)
    background = x_tr[torch.randperm(len(x_tr), generator=gen)[:N_BACKGROUND]].clone()
    blob = {"state_dict": {k: v.clone() for k, v in model.state_dict().items()}, "feature_names": names,
            "background": background}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
