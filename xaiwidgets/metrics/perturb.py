"""Plumbing of the perturbation metrics: features, their order, baselines, perturbed inputs, ROAD imputation.

- *features* group input elements: ``"pixel"`` (every channel of a pixel together), ``"element"`` (every
  scalar of the input), ``"patch"`` (a grid of ``patch_size`` squares), superpixels (``"slic"``,
  ``"quickshift"``, ``"felzenszwalb"``) or a tensor of labels. A feature's relevance is the sum of the
  explanation over its elements (channels reduced first unless the features split channels).
- an *order* ranks the features: MoRF (most relevant first), LeRF (least relevant first) or random;
  ties are broken at random (seeded), so a binary mask is not flipped in raster order.
- the perturbed input of step ``k`` is ``where(rank < count_k, baseline, x)`` (deletion) or the reverse
  (insertion): one ``(N, ...)`` map of element ranks rebuilds any step cheaply.
- ROAD's noisy linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
  Attribution Methods", arXiv:2202.00449): removed pixels take the weighted mean of their 8 neighbours
  (weights 1/6 for edge neighbours, 1/12 for diagonal ones), solved jointly as one sparse linear system,
  plus Gaussian noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..core.adapters import unwrap_model
from ..core.attribution import Attribution, reduce_channels
from ..core.batching import MAX_ROWS, ChunkPlanner, Retry, row_bytes
from ..core.device import resolve_device
from ..core.errors import InputError, ParameterError
from ..core.inputs import as_batch
from ..core.progress import Progress
from ..core.targets import TargetLike, resolve_target, scores_from_output
from ..methods.baselines import NAMES, deprecated_resolver
from ..methods.perturbation import features as _features

FEATURES = ("pixel", "element", "patch", "slic", "quickshift", "felzenszwalb")
ORDERS = ("morf", "lerf", "random")
OUTPUTS = ("probability", "logit")
BASELINES = NAMES  # deprecated alias of xaiwidgets.methods.baselines.NAMES
ExplanationLike = Attribution | torch.Tensor | np.ndarray


# ----------------------------------------------------------------------------------------------------------
# parameters


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_int(value: Any, name: str, minimum: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int:
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed must be an int, got {seed!r}")
    return int(seed)


def cpu_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from ``keys`` (draws on CPU, moved to the device: equal on every device)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


# ----------------------------------------------------------------------------------------------------------
# explanations


def explanation_values(explanation: ExplanationLike) -> torch.Tensor:
    """The explanation as a detached float tensor ``(N, ...)``."""
    if isinstance(explanation, Attribution):
        values = explanation.values
    elif isinstance(explanation, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(explanation))
    elif isinstance(explanation, torch.Tensor):
        values = explanation
    else:
        raise InputError(
            "the explanation must be an Attribution (from xw.attribute), a torch.Tensor or a numpy array; "
            f"got {type(explanation).__name__}"
        )
    values = values.detach()
    if not values.is_floating_point():
        values = values.float()
    if values.dim() < 2:
        raise InputError(f"the explanation must be a batch (N, ...), one map per input; got {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise InputError("the explanation contains NaN or infinite values")
    return values


def align_explanation(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Explanation values as ``(N, C', ...)`` with ``C'`` 1 or ``C`` for images, else the inputs' shape."""
    if values.shape[0] != x.shape[0]:
        raise InputError(
            f"the explanation has {values.shape[0]} maps but there are {x.shape[0]} inputs; give one per input"
        )
    values = values.to(device=x.device, dtype=x.dtype)
    if x.dim() == 4 and values.dim() == 3:
        values = values.unsqueeze(1)
    if x.dim() == 4 and values.dim() == 4 and values.shape[1] in (1, x.shape[1]):
        if tuple(values.shape[2:]) == tuple(x.shape[2:]):
            return values
    elif tuple(values.shape) == tuple(x.shape):
        return values
    raise InputError(
        f"the explanation has shape {tuple(values.shape)} but the inputs {tuple(x.shape)}; give input-shaped "
        "values, or for images one map (N, H, W) / (N, 1, H, W) at the input size"
    )


ProgressLike = Progress | bool | None


class MetricSetup:
    """The validated pieces every metric starts from."""

    def __init__(
        self,
        model: Any,
        inputs: Any,
        explanation: ExplanationLike,
        target: TargetLike,
        reduce: str | None,
        device: str | torch.device | None,
    ) -> None:
        self.net, classifier = unwrap_model(model)
        if isinstance(explanation, Attribution):
            if inputs is None:
                inputs = explanation.inputs
            if target is None:
                target = explanation.target
            classifier = classifier or explanation.classifier
            reduce = reduce or explanation.default_reduce
            self.method: str | None = explanation.method
        else:
            self.method = None
        if inputs is None:
            raise InputError("give the inputs the explanation belongs to (the Attribution does not hold them)")
        self.classifier = classifier
        self.device = resolve_device(self.net, device)
        self.x = as_batch(inputs, self.net, device=self.device)
        self.values = align_explanation(explanation_values(explanation), self.x)
        self.reduce = reduce or "sum"
        with torch.no_grad():
            self.scores = scores_from_output(self.net(self.x), self.x.shape[0])
        if isinstance(target, torch.Tensor):
            target = target.to(self.scores.device)
        self.target = resolve_target(target, self.scores)
        self.n = self.x.shape[0]

    def outputs(self, output: str) -> torch.Tensor:
        """``(N,)`` float64 outputs of the unperturbed inputs for their targets (CPU)."""
        return target_output(self.scores, self.target, output).double().cpu()



# ----------------------------------------------------------------------------------------------------------
# features


def feature_labels(
    x: torch.Tensor,
    features: Any = "pixel",
    *,
    patch_size: int = 8,
    segmentation_params: dict[str, Any] | None = None,
    classifier: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(labels, counts)``: integer feature labels ``(N, *shape)`` (``shape`` broadcasts to one input:
    ``(1, H, W)`` for features shared by the channels) numbered ``0..M_i-1`` per input, and ``M_i`` ``(N,)``.
    """
    n, sample = x.shape[0], tuple(x.shape[1:])
    image = x.dim() == 4
    if isinstance(features, str):
        check_choice(features, "features", FEATURES)
        if features == "element" or (features == "pixel" and not image):
            labels = torch.arange(int(np.prod(sample)), device=x.device).view(1, *sample).expand(n, *sample)
            return labels, torch.full((n,), labels[0].numel(), device=x.device)
        if not image:
            raise ParameterError(
                f"features={features!r} needs images (N, C, H, W); for {tuple(x.shape)} inputs use 'element' or "
                "a tensor of feature labels"
            )
        h, w = sample[1:]
        if features == "pixel":
            labels = torch.arange(h * w, device=x.device).view(1, 1, h, w).expand(n, 1, h, w)
            return labels, torch.full((n,), h * w, device=x.device)
        if features == "patch":
            size = check_int(patch_size, "patch_size")
            grid = centred_grid(h, w, size, x.device)
            labels = grid.view(1, 1, h, w).expand(n, 1, h, w)
            return labels, torch.full((n,), int(grid.max()) + 1, device=x.device)
        maps = [
            _features.image_segments(x[i], features, segmentation_params, classifier)[None] for i in range(n)
        ]
        labels = torch.stack(maps)
        return labels, labels.reshape(n, -1).amax(1) + 1
    return _label_tensor(x, features)


def centred_grid(h: int, w: int, size: int, device: torch.device) -> torch.Tensor:
    """``(H, W)`` labels of ``size`` x ``size`` patches on a grid centred on the image: when ``size`` does not
    divide a side, the missing ``p`` rows (columns) are split ``floor(p/2)`` before and ``ceil(p/2)`` after,
    so the first and last patches are cut (Quantus' padding in RegionPerturbation and Selectivity)."""
    def index(n: int) -> torch.Tensor:
        missing = (size - n % size) % size
        return (torch.arange(n, device=device) + missing // 2) // size

    rows, cols = index(h), index(w)
    return rows[:, None] * (int(cols.max()) + 1) + cols[None, :]


def _label_tensor(x: torch.Tensor, features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    n, sample = x.shape[0], tuple(x.shape[1:])
    seg = torch.as_tensor(features, device=x.device)
    if seg.is_floating_point() or seg.dtype == torch.bool:
        raise ParameterError(f"a features tensor holds integer labels; got dtype {seg.dtype}")
    if x.dim() == 4 and seg.dim() == 2:
        seg = seg[None, None]
    elif x.dim() == 4 and seg.dim() == 3:
        seg = seg[None] if seg.shape[0] in (1, x.shape[1]) and seg.shape[0] != n else seg[:, None]
    elif seg.dim() == len(sample):
        seg = seg[None]
    ok = seg.dim() == x.dim() and seg.shape[0] in (1, n)
    if ok:
        try:
            torch.broadcast_shapes(tuple(seg.shape[1:]), sample)
        except RuntimeError:
            ok = False
    if not ok or (x.dim() == 4 and tuple(seg.shape[2:]) != sample[1:]):
        raise ParameterError(
            f"features of shape {tuple(seg.shape)} do not fit the inputs {tuple(x.shape)}; give labels of shape "
            + ("(H, W), (1 or C, H, W) or one per input (N, H, W)" if x.dim() == 4 else f"{sample} or (N, ...)")
        )
    seg = seg.long().expand(n, *seg.shape[1:])
    labels = torch.stack([_features.relabel(s) for s in seg])
    return labels, labels.reshape(n, -1).amax(1) + 1


def feature_relevance(
    values: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, reduce: str
) -> torch.Tensor:
    """``(N, M)`` sums of the explanation over each feature (``M = max M_i``; absent features 0)."""
    n = values.shape[0]
    if values.dim() == 4 and labels.shape[1] == 1 and values.shape[1] > 1:
        try:
            values = reduce_channels(values, reduce).unsqueeze(1)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
    values = values.expand(n, *torch.broadcast_shapes(tuple(values.shape[1:]), tuple(labels.shape[1:])))
    lab = labels.expand_as(values).reshape(n, -1)
    out = values.new_zeros(n, int(counts.max()))
    return out.scatter_add_(1, lab, values.reshape(n, -1))


def feature_ranks(
    relevance: torch.Tensor, counts: torch.Tensor, order: str, generator: torch.Generator
) -> torch.Tensor:
    """``(N, M)`` position of each feature in the order (0 = perturbed first); ties broken at random.

    Features ``>= M_i`` (absent from input ``i``) come last.
    """
    n, m = relevance.shape
    noise = torch.rand(n, m, generator=generator).to(relevance.device)
    if order == "morf":
        key = -relevance
    elif order == "lerf":
        key = relevance.clone()
    else:
        key = torch.zeros_like(relevance)
    absent = torch.arange(m, device=relevance.device)[None, :] >= counts[:, None]
    key = key.masked_fill(absent, float("inf")).double()
    # a random permutation first, then a stable sort by key: equal keys keep the random order
    perm = noise.argsort(1)
    order_idx = perm.gather(1, key.gather(1, perm).argsort(dim=1, stable=True))
    ranks = torch.empty_like(order_idx)
    ranks.scatter_(1, order_idx, torch.arange(m, device=relevance.device).expand(n, m).contiguous())
    return ranks


def step_counts(
    counts: torch.Tensor, n_steps: int | None, features_per_step: int | None, max_steps: int | None = None
) -> torch.Tensor:
    """``(N, L + 1)`` number of features perturbed after each step ``0..L``.

    ``features_per_step`` fixes the step (``L = ceil(M / features_per_step)``, the last step may be
    smaller; Bach et al. 2015); otherwise ``n_steps`` equal fractions ``round(k / L * M_i)``.
    """
    c = counts.long().cpu()
    if features_per_step is not None:
        steps = int((int(c.max()) + features_per_step - 1) // features_per_step)
        if max_steps is not None:
            steps = min(steps, max_steps)
        k = torch.arange(steps + 1)[None, :] * features_per_step
        return torch.minimum(k, c[:, None])
    k = torch.arange(n_steps + 1, dtype=torch.float64)[None, :] / n_steps
    return torch.round(k * c[:, None].double()).long()


# ----------------------------------------------------------------------------------------------------------
# baselines


resolve_baseline = deprecated_resolver("xaiwidgets.metrics.perturb.resolve_baseline")


# ----------------------------------------------------------------------------------------------------------
# perturbed inputs


class Perturber:
    """Rebuilds perturbed inputs from per-element ranks: row ``(i, count)`` replaces (``"deletion"``) or
    keeps (``"insertion"``) the ``count`` first features of input ``i``."""

    def __init__(self, x: torch.Tensor, baseline: torch.Tensor, element_ranks: torch.Tensor, mode: str) -> None:
        self.x = x
        self.baseline = baseline
        self.element_ranks = element_ranks  # (N, *label_shape), int32
        self.mode = mode

    def rows(self, index: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        index = index.to(self.x.device)
        count = count.to(device=self.x.device, dtype=self.element_ranks.dtype)
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        perturbed = self.element_ranks[index] < count.view(shape)
        if self.mode == "insertion":
            return torch.where(perturbed, self.x[index], self.baseline[index])
        return torch.where(perturbed, self.baseline[index], self.x[index])


def element_ranks(labels: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """Feature ranks spread over the elements: ``(N, *label_shape)`` int32."""
    n = labels.shape[0]
    flat = ranks.gather(1, labels.reshape(n, -1))
    return flat.view(labels.shape).to(torch.int32)


# ----------------------------------------------------------------------------------------------------------
# scoring


def target_output(scores: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """``(R,)`` output for ``target``: the softmax probability or the raw score (logit)."""
    scores = scores.float()
    if output == "probability":
        scores = scores.softmax(1)
    return scores.gather(1, target.view(-1, 1).to(scores.device)).squeeze(1)


#: bytes of model input per CPU chunk for forward-only work (about 55 rows at 3x224x224 float32), the most the
#: planner may grow to. Where the best size lies depends on the machine's load: EfficientNet-Lite0 at 224 on
#: 2 quiet cores costs 24.6 ms per row at 1-4 rows, 29.5 at 16, 41 at 27 and 51 at 54 (activations leave the
#: cache), while on a loaded machine larger chunks were faster per row. So the planner starts small (its
#: forward+backward start, ~6 rows at 224) and grows only while the time per row improves.
FORWARD_INPUT_BUDGET = 32 * 2**20


def forward_planner(bytes_per_row: int, device: torch.device, batch_size: int | None) -> ChunkPlanner:
    """A :class:`ChunkPlanner` for forward passes without autograd: on CPU it starts where the
    forward+backward planner starts and may grow up to ``FORWARD_INPUT_BUDGET`` bytes of input per chunk
    while the time per row improves."""
    planner = ChunkPlanner(bytes_per_row, device, batch_size)
    if not planner.fixed and not planner.cuda:
        planner.cap = max(planner.cap, min(MAX_ROWS, FORWARD_INPUT_BUDGET // max(1, bytes_per_row)))
    return planner


def score_rows(
    net: Callable[[torch.Tensor], Any],
    total: int,
    build: Callable[[int, int], torch.Tensor],
    target: Callable[[int, int], torch.Tensor],
    output: str,
    *,
    bytes_per_row: int,
    device: torch.device,
    batch_size: int | None,
    progress: Progress | None = None,
    message: str = "",
    done: int = 0,
    grand_total: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs for ``total`` rows built by ``build(start, stop)``: ``(values (R,), still_top (R,))``.

    Rows go through the model in chunks of ``batch_size`` (None: a measured size, see ``ChunkPlanner``).
    """
    planner = forward_planner(bytes_per_row, device, batch_size)
    values = torch.empty(total, dtype=torch.float32)
    top = torch.empty(total, dtype=torch.bool)
    start = 0
    grand_total = grand_total if grand_total is not None else total

    def call(rows: int) -> torch.Tensor:
        with torch.inference_mode():
            inputs = build(start, start + rows)
            return scores_from_output(net(inputs), rows)

    while start < total:
        size = planner.next(total - start)
        try:
            scores = planner.run(size, call)
        except Retry:
            continue
        tgt = target(start, start + size).to(scores.device)
        values[start : start + size] = target_output(scores, tgt, output).cpu()
        top[start : start + size] = (scores.argmax(1) == tgt).cpu()
        start += size
        if progress is not None:
            progress.update(done + start, grand_total, message)
    return values, top


def bytes_of_row(x: torch.Tensor) -> int:
    return row_bytes(x)


# ----------------------------------------------------------------------------------------------------------
# ROAD: noisy linear imputation

#: (row offset, column offset, weight) of the 8 neighbours (Rong et al. 2022)
NEIGHBOURS = (
    (-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12),
    (0, -1, 1 / 6), (0, 1, 1 / 6),
    (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12),
)


def linear_impute(image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """``image`` ``(C, H, W)`` with the ``removed`` pixels ``(H, W)`` (bool) replaced by the solution of
    ``x_p = sum_q w_pq x_q / sum_q w_pq`` over the in-image neighbours ``q`` of every removed ``p``.

    Solved as one sparse system (scipy) for all channels; raises when every pixel is removed.
    """
    try:
        from scipy import sparse
        from scipy.sparse.linalg import splu
    except ImportError as exc:  # pragma: no cover - scipy ships with scikit-image
        raise ParameterError("ROAD's linear imputation needs scipy (pip install scipy)") from exc
    c, h, w = image.shape
    mask = removed.detach().cpu().numpy().astype(bool)
    if not mask.any():
        return image.clone()
    if mask.all():
        raise ParameterError("ROAD cannot impute an image with every pixel removed; use fractions < 1")
    img = image.detach().cpu().double().numpy().reshape(c, -1)
    unknown = np.flatnonzero(mask.ravel())
    n_unknown = unknown.size
    var = np.full(h * w, -1, dtype=np.int64)
    var[unknown] = np.arange(n_unknown)
    rows_u, cols_u = np.divmod(unknown, w)
    diag = np.zeros(n_unknown)
    rhs = np.zeros((n_unknown, c))
    a_rows, a_cols, a_vals = [], [], []
    for dr, dc, weight in NEIGHBOURS:
        r, q = rows_u + dr, cols_u + dc
        inside = (r >= 0) & (r < h) & (q >= 0) & (q < w)
        diag[inside] += weight
        eq = np.flatnonzero(inside)
        nb = r[inside] * w + q[inside]
        known = var[nb] < 0
        rhs[eq[known]] += weight * img[:, nb[known]].T
        a_rows.append(eq[~known])
        a_cols.append(var[nb[~known]])
        a_vals.append(np.full(int((~known).sum()), -weight))
    a_rows.append(np.arange(n_unknown))
    a_cols.append(np.arange(n_unknown))
    a_vals.append(diag)
    system = sparse.csc_matrix(
        (np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(n_unknown, n_unknown)
    )
    solution = splu(system).solve(rhs)  # (n_unknown, C)
    out = img.copy()
    out[:, unknown] = solution.T
    return torch.from_numpy(out.reshape(c, h, w)).to(device=image.device, dtype=image.dtype)


def noisy_linear_impute(
    image: torch.Tensor, removed: torch.Tensor, noise: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`linear_impute` plus Gaussian noise of standard deviation ``noise`` on the imputed pixels."""
    out = linear_impute(image, removed)
    if noise > 0:
        z = torch.randn(image.shape, generator=generator, dtype=torch.float32).to(image.device, image.dtype)
        out = torch.where(removed.to(image.device).unsqueeze(0), out + noise * z, out)
    return out
