"""Sanity checks for explanation methods (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018, "Sanity
Checks for Saliency Maps", NeurIPS, arXiv:1810.03292).

An explanation that does not change when the model's parameters are destroyed cannot explain the model.

- ``model_randomisation``: re-initialise the layers from the top down, cumulatively (``"cascading"``) or
  one at a time (``"independent"``), explain the same inputs for the same classes after each step and
  measure how similar each map stays to the trained model's (Spearman rank correlation of absolute and of
  signed maps, SSIM, HOG correlation). The user's weights are saved before and restored afterwards in a
  ``finally`` block, so also after an error or an interruption; hooks and flags are restored too.
- ``data_randomisation``: the same comparison against a model trained on shuffled labels, given as a
  model or as a callable that trains one (``shuffled_labels`` permutes labels reproducibly).
- ``sobel_edges``: an "explanation" that is an edge detector of the input: it ignores the model and so
  fails both checks, which is the paper's control.

The verdict per method: it passes when the median absolute-map Spearman correlation after the last
cascading step (the mean over steps for independent randomisation) is below ``threshold``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ModelError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.state import preserved
from ..core.targets import TargetLike
from ._maps import MethodLike, as_maps, explain_batched, make_explainer, method_label, prepare
from .similarity import hog_similarity, spearman, ssim

MEASURES: dict[str, str] = {
    "spearman_abs": "Spearman rank correlation of the absolute maps",
    "spearman": "Spearman rank correlation of the signed maps",
    "ssim": "structural similarity of the absolute maps scaled to [0, 1]",
    "hog": "Pearson correlation of the HOG features of the absolute maps scaled to [0, 1]",
}
ORDERS = ("cascading", "independent")


# --- the control explanation ----------------------------------------------------------------------------------


def sobel_edges(model: Any, inputs: torch.Tensor, target: Any = None) -> torch.Tensor:
    """``(N, 1, H, W)`` Sobel gradient magnitude of the channel mean of ``inputs``; ``model`` and ``target``
    are ignored (the model-independent control of Adebayo et al. 2018)."""
    x = inputs.detach().float().mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device).view(1, 1, 3, 3)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx)
    gy = F.conv2d(padded, kx.transpose(2, 3))
    return torch.hypot(gx, gy)


def shuffled_labels(labels: Any, seed: int = 0) -> torch.Tensor:
    """A reproducible random permutation of ``labels`` (for training the data-randomisation model)."""
    t = torch.as_tensor(labels)
    gen = torch.Generator().manual_seed(int(seed))
    return t[torch.randperm(t.shape[0], generator=gen)]


# --- randomising layers, restoring the weights -----------------------------------------------------------------


def parametrised_layers(net: nn.Module, inputs: torch.Tensor) -> list[str]:
    """Names of the modules that own parameters, in the order the forward pass first calls them
    (bottom to top); modules never called are left out."""
    owners = {m: n for n, m in net.named_modules() if any(True for _ in m.parameters(recurse=False))}
    order: list[str] = []

    def hook(module: nn.Module, _args: tuple) -> None:
        name = owners[module]
        if name not in order:
            order.append(name)

    handles = [m.register_forward_pre_hook(hook) for m in owners]
    try:
        with torch.no_grad():
            net(inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return order


Randomiser = Callable[[nn.Module, torch.Generator], None]


def _reset(module: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's own initialisation (``reset_parameters``; batch norm: weight 1, bias 0, fresh statistics),
    drawn under a seed taken from ``gen`` without touching the global random state."""
    if not hasattr(module, "reset_parameters"):
        _normal(module, gen)
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    devices = [p.device for p in module.parameters(recurse=False) if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        module.reset_parameters()


@torch.no_grad()
def _normal(module: nn.Module, gen: torch.Generator) -> None:
    """Every parameter re-drawn from a normal distribution with the parameter's own mean and standard
    deviation (the scale survives, the learned values do not)."""
    for p in module.parameters(recurse=False):
        mean = float(p.mean())
        std = float(p.std()) if p.numel() > 1 else abs(float(p)) or 1.0
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.device, p.dtype)
        p.copy_(mean + std * noise)


RANDOMISERS: dict[str, Randomiser] = {"reset": _reset, "normal": _normal}


@contextlib.contextmanager
def restored_weights(net: nn.Module) -> Iterator[None]:
    """Save every parameter and buffer (objects and values) and put them back on exit, also on errors."""
    params = {n: (p, p.detach().clone()) for n, p in net.named_parameters(remove_duplicate=False)}
    buffers = {n: (b, b.detach().clone()) for n, b in net.named_buffers(remove_duplicate=False)}
    try:
        yield
    finally:
        with torch.no_grad():
            for store in (params, buffers):
                for name, (obj, value) in store.items():
                    owner_name, _, attr = name.rpartition(".")
                    owner = net.get_submodule(owner_name) if owner_name else net
                    if getattr(owner, attr, None) is not obj:
                        if isinstance(obj, nn.Parameter):
                            setattr(owner, attr, obj)
                        else:
                            owner.register_buffer(attr, obj)
                    obj.copy_(value)


# --- results -------------------------------------------------------------------------------------------------


@dataclass
class SanityResult:
    """Explanations per randomisation step and their similarity to the trained model's (the strip a
    widget draws: one column per step, one row per method).

    ``steps``: ``"trained"`` then the randomised layer names (top first) or ``"random labels"``;
    ``maps[method]``: float32 ``(S, N, H, W)`` (or ``(S, N, ...)``) maps per step;
    ``similarity[method][measure]``: ``(S, N)`` scores against step 0 (1 at step 0).
    """

    kind: str
    order: str
    steps: list[str]
    maps: dict[str, np.ndarray]
    similarity: dict[str, dict[str, np.ndarray]]
    threshold: float
    target: torch.Tensor
    measures: tuple[str, ...] = field(default_factory=tuple)

    def score(self, method: str, measure: str = "spearman_abs") -> float:
        """The similarity the verdict uses: median over samples at the last step (cascading, data) or
        the mean over steps of the median (independent)."""
        values = self.similarity[method][measure][1:]
        if values.shape[0] == 0:
            return float("nan")
        medians = np.nanmedian(values, axis=1)
        return float(medians.mean() if self.order == "independent" else medians[-1])

    def passed(self, method: str) -> bool:
        """The method passes when its maps decorrelate: ``score(method) < threshold``."""
        return bool(self.score(method) < self.threshold)

    @property
    def verdict(self) -> dict[str, bool]:
        return {method: self.passed(method) for method in self.maps}

    def rows(self) -> list[dict[str, Any]]:
        """One leaderboard row per method: the final (or mean) similarity per measure and the verdict."""
        rows = []
        for method in self.maps:
            row: dict[str, Any] = {"method": method, "check": f"{self.kind} ({self.order})"}
            for measure in self.similarity[method]:
                row[measure] = self.score(method, measure)
            row["passed"] = self.passed(method)
            rows.append(row)
        return rows

    def curve(self, method: str, measure: str = "spearman_abs") -> dict[str, Any]:
        """The similarity per step (median and quartiles over samples), for the line under the strip."""
        v = self.similarity[method][measure]
        return {
            "steps": list(self.steps),
            "median": np.nanmedian(v, axis=1).tolist(),
            "q25": np.nanquantile(v, 0.25, axis=1).tolist(),
            "q75": np.nanquantile(v, 0.75, axis=1).tolist(),
        }


def _unit(maps: torch.Tensor) -> torch.Tensor:
    """Absolute maps scaled to [0, 1] per sample (zero maps stay zero)."""
    a = maps.abs().double()
    peak = a.flatten(1).amax(1).clamp_min(1e-300).view(-1, *([1] * (a.dim() - 1)))
    return a / peak


def _similarities(reference: torch.Tensor, maps: torch.Tensor, measures: Sequence[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for measure in measures:
        if measure == "spearman_abs":
            value = spearman(reference.abs(), maps.abs())
        elif measure == "spearman":
            value = spearman(reference, maps)
        elif measure == "ssim":
            value = ssim(_unit(reference), _unit(maps), data_range=1.0)
        else:
            value = hog_similarity(_unit(reference), _unit(maps))
        out[measure] = value.numpy()
    return out


def _methods(methods: MethodLike | Sequence[MethodLike] | Mapping[str, MethodLike]) -> dict[str, MethodLike]:
    if isinstance(methods, Mapping):
        return dict(methods)
    if isinstance(methods, str) or callable(methods):
        return {method_label(methods): methods}
    return {method_label(m): m for m in methods}


def _check_measures(measures: Sequence[str], image: bool) -> tuple[str, ...]:
    measures = tuple(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise ParameterError(f"unknown similarity measure(s) {unknown}; choose from {', '.join(MEASURES)}")
    if not image:
        measures = tuple(m for m in measures if m.startswith("spearman")) or ("spearman_abs",)
    return measures


# --- the checks ----------------------------------------------------------------------------------------------


def model_randomisation(
    model: Any,
    inputs: Any,
    methods: MethodLike | Sequence[MethodLike] | Mapping[str, MethodLike],
    target: TargetLike = None,
    *,
    order: str = "cascading",
    layers: Sequence[str] | None = None,
    randomise: str | Randomiser = "reset",
    seed: int = 0,
    measures: Sequence[str] = ("spearman_abs", "spearman", "ssim", "hog"),
    threshold: float = 0.5,
    reduce: str = "sum",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int | None = None,
    progress: Progress | bool | None = None,
) -> SanityResult:
    """Cascading or independent model parameter randomisation test (Adebayo et al. 2018, sec. 4).

    ``methods``: method names, callables ``explain(model, inputs, target)``, or a dict label -> either;
    ``params``: per-method parameters (by label). ``layers``: the layers to randomise, top first (default:
    every module with parameters, in reverse forward order). ``randomise``: ``"reset"`` (PyTorch's
    initialisation, as Quantus), ``"normal"`` (a normal draw with each parameter's mean and std) or a
    callable ``(module, generator)``. Targets are resolved once on the trained model. Maps are channel
    reduced with ``reduce``.
    """
    if order not in ORDERS:
        raise ParameterError(f"order must be one of {ORDERS}, got {order!r}")
    randomiser = RANDOMISERS.get(randomise) if isinstance(randomise, str) else randomise
    if randomiser is None or not callable(randomiser):
        raise ParameterError(
            f"randomise must be 'reset', 'normal' or a callable (module, generator); got {randomise!r}"
        )
    threshold = float(threshold)
    net, x, resolved, _ = prepare(model, inputs, target)
    measures = _check_measures(measures, image=x.dim() == 4)
    if not isinstance(net, nn.Module):
        raise ModelError("model randomisation changes parameters, so the model must be a torch.nn.Module")
    available = parametrised_layers(net, x)
    if layers is None:
        chosen = available[::-1]
    else:
        chosen = list(layers)
        names = dict(net.named_modules())
        missing = [name for name in chosen if name not in names]
        if missing:
            raise ParameterError(f"no layer named {missing}; layers with parameters (bottom to top): {available}")
    if not chosen:
        raise ModelError("the model has no parameters to randomise")
    explainers = {label: make_explainer(m, (params or {}).get(label)) for label, m in _methods(methods).items()}
    steps = ["trained", *chosen]
    tracker = as_progress(progress)
    total = len(steps) * len(explainers) * x.shape[0]
    maps: dict[str, list[torch.Tensor]] = {label: [] for label in explainers}
    done = 0

    def explain_all() -> None:
        nonlocal done
        for label, explain in explainers.items():
            values = explain_batched(explain, net, x, resolved, batch_size, tracker, done, total)
            maps[label].append(as_maps(values, reduce).detach().double().cpu())
            done += x.shape[0]

    try:
        with preserved(net), restored_weights(net):
            explain_all()
            saved = {n: t.detach().clone() for n, t in net.state_dict(keep_vars=True).items()}
            for i, name in enumerate(chosen):
                if order == "independent" and i:
                    with torch.no_grad():
                        for key, value in net.state_dict(keep_vars=True).items():
                            value.copy_(saved[key])
                gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + i)
                randomiser(net.get_submodule(name) if name else net, gen)
                explain_all()
    finally:
        tracker.close()
    return _result("model randomisation", order, steps, maps, threshold, resolved, measures)


def data_randomisation(
    model: Any,
    random_label_model: Any,
    inputs: Any,
    methods: MethodLike | Sequence[MethodLike] | Mapping[str, MethodLike],
    target: TargetLike = None,
    *,
    measures: Sequence[str] = ("spearman_abs", "spearman", "ssim", "hog"),
    threshold: float = 0.5,
    reduce: str = "sum",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int | None = None,
    progress: Progress | bool | None = None,
) -> SanityResult:
    """Data randomisation test (Adebayo et al. 2018, sec. 5): compare explanations of ``model`` with those
    of ``random_label_model``, the same architecture trained on shuffled labels (or a callable returning
    it, e.g. training with ``shuffled_labels``). Targets are resolved once, on ``model``."""
    if callable(random_label_model) and not isinstance(random_label_model, nn.Module) and not hasattr(
        random_label_model, "model"
    ):
        random_label_model = random_label_model()
    net, x, resolved, _ = prepare(model, inputs, target)
    measures = _check_measures(measures, image=x.dim() == 4)
    other, x_other, _, _ = prepare(random_label_model, x, resolved)
    explainers = {label: make_explainer(m, (params or {}).get(label)) for label, m in _methods(methods).items()}
    tracker = as_progress(progress)
    total = 2 * len(explainers) * x.shape[0]
    maps: dict[str, list[torch.Tensor]] = {label: [] for label in explainers}
    done = 0
    try:
        for which, xs in ((net, x), (other, x_other)):
            for label, explain in explainers.items():
                values = explain_batched(explain, which, xs, resolved.to(xs.device), batch_size, tracker, done, total)
                maps[label].append(as_maps(values, reduce).detach().double().cpu())
                done += x.shape[0]
    finally:
        tracker.close()
    return _result("data randomisation", "data", ["trained", "random labels"], maps, float(threshold), resolved,
                   measures)


def _result(kind: str, order: str, steps: list[str], maps: dict[str, list[torch.Tensor]], threshold: float,
            target: torch.Tensor, measures: Sequence[str]) -> SanityResult:
    first = next(iter(maps.values()))[0]
    chosen = tuple(measures) if first.dim() == 3 else tuple(m for m in measures if m.startswith("spearman"))
    similarity = {}
    for label, per_step in maps.items():
        reference = per_step[0]
        sims = [_similarities(reference, m, chosen) for m in per_step]
        similarity[label] = {measure: np.stack([s[measure] for s in sims]) for measure in chosen}
    stacked = {label: torch.stack(per_step).float().numpy() for label, per_step in maps.items()}
    return SanityResult(kind=kind, order=order, steps=steps, maps=stacked, similarity=similarity,
                        threshold=threshold, target=target.cpu(), measures=chosen)


__all__ = [
    "MEASURES",
    "SanityResult",
    "data_randomisation",
    "model_randomisation",
    "parametrised_layers",
    "restored_weights",
    "shuffled_labels",
    "sobel_edges",
]
