"""Benchmark: relevance methods, ours vs zennit (LRP) and captum (LRP where it runs, DeepLift, DeepLiftShap).

Seeded random ResNet-18 at 224x224 (BatchNorm statistics randomised), batch 1 and 8, one process, median of
``--repeats`` runs after a warm-up. Prints ours/peer ratios (target <= 1.0). The ``guard`` case prints the
conservation guard's cost on ResNet-50 at 224 px: the same LRP call checked vs ``conservation='off'``
(target <= 1.05). Run by hand:
``python benchmarks/relevance.py [--repeats 3]``.
"""

# ruff: noqa: B023  (the timed lambdas run inside the loop iteration that defines them)
from __future__ import annotations

import argparse
import copy
import statistics
import types
import warnings

import torch
import torchvision
from _device import add_device_argument, clock, describe, resolve_device
from torch import nn
from torchvision.models.resnet import BasicBlock

import xaiwidgets as xw
import xaiwidgets.methods.relevance

warnings.filterwarnings("ignore")


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def resnet(build=torchvision.models.resnet18) -> nn.Module:
    torch.manual_seed(0)
    model = build(weights=None).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.2, 0.2)
    return model


def _block_forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu2(self.bn2(self.conv2(out)) + identity)


def captum_resnet(model: nn.Module) -> nn.Module:
    """The same weights with one non-in-place ReLU per use (captum's DeepLift requirement)."""
    model = copy.deepcopy(model)
    model.relu = nn.ReLU()
    for block in model.modules():
        if isinstance(block, BasicBlock):
            block.relu, block.relu2 = nn.ReLU(), nn.ReLU()
            block.forward = types.MethodType(_block_forward, block)
    return model


def captum_lrp(model: nn.Module, x: torch.Tensor, target: torch.Tensor, batch: int, repeats: int) -> None:
    from captum.attr import LRP

    try:
        peer = median_time(lambda: LRP(captum_resnet(model)).attribute(x, target=target), repeats)
    except Exception as exc:
        print(f"{'lrp_epsilon':<34}{batch:>6}  captum LRP failed: {type(exc).__name__}: {str(exc)[:90]}")
        return
    ours = median_time(lambda: xw.attribute(model, x, method="lrp_epsilon", target=target, progress=False), repeats)
    print(f"{'lrp_epsilon':<34}{batch:>6}{ours:>9.3f}{peer:>9.3f}{ours / peer:>11.2f}  captum 0.9.0 LRP")


def guard_cost(repeats: int) -> None:
    """The conservation guard's share of an LRP call: ResNet-50 at 224 px, batch 1, checked vs unchecked."""
    model = resnet(torchvision.models.resnet50)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for name, params in (("lrp_epsilon", {}), ("lrp_composite", {"composite": "EpsilonPlusFlat"})):
        runs = {mode: [] for mode in ("off", "warn")}
        for _ in range(repeats):  # interleaved, so that a busy machine slows both alike
            for mode in runs:
                runs[mode].append(median_time(lambda: xw.attribute(model, x, method=name, target=1, progress=False,
                                                                   conservation=mode, **params), 1))
        off, on = statistics.median(runs["off"]), statistics.median(runs["warn"])
        print(f"{'guard: ' + name:<34}{1:>6}{on:>9.3f}{off:>9.3f}{on / off:>11.3f}  same call, conservation='off'")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--only", nargs="*", default=None, help="method labels to run (default: all; 'guard')")
    add_device_argument(parser)
    args = parser.parse_args()
    device = resolve_device(args.device)
    import zennit.composites as zc
    import zennit.rules as zr
    import zennit.types as zt
    from captum.attr import DeepLift, DeepLiftShap
    from zennit.attribution import Gradient
    from zennit.layer import Sum
    from zennit.torchvision import ResNetCanonizer

    model = resnet().to(device)
    cmodel = captum_resnet(model)

    def uniform(rule):
        return zc.LayerMapComposite(
            [(zt.Activation, zr.Pass()), (Sum, zr.Norm()), (zt.AvgPool, zr.Norm()), (zt.BatchNorm, zr.Pass()),
             (zt.Linear, rule)], canonizers=[ResNetCanonizer()])

    def zennit_run(composite_factory, x, target):
        def run():
            with Gradient(model=model, composite=composite_factory()) as attributor:
                attributor(x, lambda out: out * torch.nn.functional.one_hot(target, out.shape[1]))
        return run

    lrp_cases = [
        ("lrp_epsilon", {}, lambda: uniform(zr.Epsilon(1e-6))),
        ("lrp_gamma", {}, lambda: uniform(zr.Gamma(0.25))),
        ("lrp_alpha_beta", {}, lambda: uniform(zr.AlphaBeta(2.0, 1.0))),
        ("lrp_zplus", {}, lambda: uniform(zr.ZPlus())),
        ("lrp_composite", {"composite": "EpsilonPlusFlat"}, lambda: zc.EpsilonPlusFlat(canonizers=[ResNetCanonizer()])),
        ("lrp_composite", {"composite": "EpsilonGammaBox", "low": -3.0, "high": 3.0},
         lambda: zc.EpsilonGammaBox(low=-3.0, high=3.0, canonizers=[ResNetCanonizer()])),
    ]
    print(f"{describe(device)}; ResNet-18, 224x224, median of {args.repeats}")
    print(f"{'method':<34}{'batch':>6}{'ours s':>9}{'peer s':>9}{'ours/peer':>11}  peer")
    only = set(args.only) if args.only else None

    def wanted(label: str) -> bool:
        return only is None or label in only

    if wanted("guard"):
        guard_cost(args.repeats)

    for batch in args.batches:
        x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            target = model(x).argmax(1)
        for name, params, factory in lrp_cases:
            label = name + (f"[{params['composite']}]" if "composite" in params else "")
            if not wanted(label):
                continue
            ours = median_time(lambda: xw.attribute(model, x, method=name, target=target, progress=False, **params),
                               args.repeats)
            peer = median_time(zennit_run(factory, x, target), args.repeats)
            print(f"{label:<34}{batch:>6}{ours:>9.3f}{peer:>9.3f}{ours / peer:>11.2f}  zennit 0.5.1")
        # captum LRP (epsilon rule by default on conv/linear); it does not canonise skip connections or BN
        if wanted("captum_lrp"):
            captum_lrp(model, x, target, batch, args.repeats)
        if not wanted("deeplift"):
            continue
        base = torch.zeros_like(x)
        ours = median_time(lambda: xw.attribute(model, x, method="deeplift", baseline=base, target=target,
                                                progress=False), args.repeats)
        peer = median_time(lambda: DeepLift(cmodel).attribute(x, base, target=target), args.repeats)
        print(f"{'deeplift':<34}{batch:>6}{ours:>9.3f}{peer:>9.3f}{ours / peer:>11.2f}  captum 0.9.0")
        background = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1)).to(device)
        ours = median_time(lambda: xw.attribute(model, x, method="deepshap", background=background, target=target,
                                                progress=False), args.repeats)
        peer = median_time(lambda: DeepLiftShap(cmodel).attribute(x, background, target=target), args.repeats)
        print(f"{'deepshap (4 background)':<34}{batch:>6}{ours:>9.3f}{peer:>9.3f}{ours / peer:>11.2f}  captum 0.9.0")


if __name__ == "__main__":
    main()
