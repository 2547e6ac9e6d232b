"""Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks",
arXiv:1703.01365).

``IG_i(x) = (x_i - x'_i) * int_0^1 dF(x' + a (x - x')) / dx_i da``, approximated by a quadrature rule
(:mod:`.quadrature`). The completeness delta ``sum(IG) - (F(x) - F(x'))`` is reported in
``extras["delta"]`` (and relative to ``|F(x) - F(x')|`` in ``extras["completeness_gap"]``).

``n_steps="auto"`` refines a nested trapezoid grid (16, 32, 64, ... intervals; every refinement reuses all
points evaluated so far and adds the midpoints) until the relative completeness gap of every sample is at
most ``tolerance`` or ``max_steps`` intervals are reached; ``extras["n_steps"]`` is the number of points
used and ``extras["refinement"]`` the gap after each level. The path is cut into chunks whose size the
method chooses itself (:class:`~xaiwidgets.core.batching.ChunkPlanner`) unless ``batch_size`` is given.

``return_frames=True`` (``frame_kind="ig_path"``) records, on CPU in float32 and sorted by alpha: ``alphas``
(K,), ``weights`` (K,) (the final quadrature weights), ``path_scores`` (N, K) = F(x' + a_k (x - x')),
``gradient_maps`` (N, K, H, W) (channel-summed gradients at a_k), ``partial_maps`` (N, K, H, W) (the
channel-summed running integral up to a_k; the last equals ``values.sum(1)``), ``baseline`` (N, C, H, W),
and for ``"auto"`` ``level`` (K,), the refinement level at which each point was added.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.batching import ChunkPlanner, Retry, batched_forward, row_bytes
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores, selected_scores_and_grad
from ..base import Method, require
from ..baselines import check_baseline, resolve_baseline
from ..registry import register
from .quadrature import check_rule, quadrature, trapezoid_weights

AUTO_START = 16


def check_batch_size(batch_size: Any) -> None:
    require(
        batch_size is None
        or (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1),
        f"batch_size must be None (chosen automatically) or an integer >= 1; got {batch_size!r}",
    )


def reduce_map(t: torch.Tensor) -> torch.Tensor:
    """Channel sum of image rows ``(R, C, H, W) -> (R, H, W)``; other shapes unchanged."""
    return t.sum(1) if t.dim() == 4 else t


def endpoint_scores(
    model: Any, x: torch.Tensor, baseline: torch.Tensor, target: TargetLike, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(F(x), F(x'), target)`` from one chunked no-grad forward of inputs and baseline."""
    with torch.no_grad():
        scores = batched_forward(lambda t: forward_scores(model, t), torch.cat([x, baseline]), batch_size)
    n = x.shape[0]
    resolved = resolve_target(target, scores[:n])
    return gather_scores(scores[:n], resolved), gather_scores(scores[n:], resolved), resolved


class PathIntegrator:
    """Evaluates ``sum_k w_k dF/dx(x' + a_k (x - x'))`` over chunks of rows ``(k, i)`` (alpha-major).

    With ``record=True`` it keeps, per evaluated point, the target score, the channel-summed gradient and
    the channel-summed contribution ``sum_c (x - x')_c * grad_c`` (on CPU, float32) for the frames.
    """

    def __init__(
        self, model: Any, x: torch.Tensor, baseline: torch.Tensor, target: torch.Tensor,
        planner: ChunkPlanner, progress: Progress, record: bool,
    ) -> None:
        self.model, self.x, self.baseline, self.target = model, x, baseline, target
        self.diff = x - baseline
        self.planner, self.progress, self.record = planner, progress, record
        self.alphas: list[torch.Tensor] = []  # per run, float64 (K,)
        self.scores: list[torch.Tensor] = []  # per run, (N, K)
        self.grad_maps: list[torch.Tensor] = []  # per run, (N, K, ...)
        self.contrib_maps: list[torch.Tensor] = []
        #: emit a "frames" snapshot after every chunk (fixed rules); "auto" emits once per level instead
        self.stream_chunks = True

    def _emit_partial(
        self, alphas: torch.Tensor, weights: torch.Tensor, scores: torch.Tensor, grads: torch.Tensor,
        contrib: torch.Tensor,
    ) -> None:
        """Stream the frames of the path points finished so far (alpha order of this run)."""
        order = torch.argsort(alphas)
        w = weights.float()[order]
        c = contrib[:, order]
        shape = (1, -1) + (1,) * (c.dim() - 2)
        self.progress.emit("frames", {
            "alphas": alphas[order].float(), "weights": w, "path_scores": scores[:, order],
            "gradient_maps": grads[:, order], "partial_maps": torch.cumsum(c * w.view(shape), dim=1),
            "baseline": self.baseline.detach().float().cpu(),
        })

    def run(
        self, alphas: torch.Tensor, weights: torch.Tensor, done: int = 0, total: int | None = None
    ) -> torch.Tensor:
        n = self.x.shape[0]
        k_count = alphas.numel()
        rows = k_count * n
        total = total or rows
        dev = self.x.device
        a32 = alphas.to(device=dev, dtype=self.x.dtype)
        w32 = weights.to(device=dev, dtype=self.x.dtype)
        acc = torch.zeros_like(self.x)
        if self.record:
            map_shape = tuple(reduce_map(self.x[:1]).shape[1:])
            rec_scores = torch.zeros(n, k_count)
            rec_grad = torch.zeros((n, k_count, *map_shape))
            rec_contrib = torch.zeros((n, k_count, *map_shape))
        start = 0
        while start < rows:
            size = self.planner.next(rows - start)
            idx = torch.arange(start, start + size, device=dev)
            k, i = idx // n, idx % n
            try:
                grads, scores = self.planner.run(size, lambda _s, k=k, i=i: self._chunk(k, i, a32))
            except Retry:
                continue
            shape = (-1,) + (1,) * (grads.dim() - 1)
            acc.index_add_(0, i, grads * w32[k].view(shape))
            if self.record:
                kc, ic = k.cpu(), i.cpu()
                rec_scores[ic, kc] = scores.detach().float().cpu()
                rec_grad[ic, kc] = reduce_map(grads).float().cpu()
                rec_contrib[ic, kc] = reduce_map(grads * self.diff[i]).float().cpu()
            start += size
            k_done = min(k_count, start // n)
            if self.record and self.stream_chunks and self.progress.on_event is not None and k_done:
                self._emit_partial(alphas[:k_done], weights[:k_done], rec_scores[:, :k_done],
                                   rec_grad[:, :k_done], rec_contrib[:, :k_done])
            self.progress.update(done + start, total, "integrated gradients")
        if self.record:
            self.alphas.append(alphas.double().cpu())
            self.scores.append(rec_scores)
            self.grad_maps.append(rec_grad)
            self.contrib_maps.append(rec_contrib)
        return acc

    def _chunk(
        self, k: torch.Tensor, i: torch.Tensor, a32: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        points = self.baseline[i] + a32[k].view(shape) * self.diff[i]
        grads, scores, target = selected_scores_and_grad(self.model, points, self.target[i])
        return grads, gather_scores(scores, target)

    def frames(self, weights_of: Any) -> dict[str, torch.Tensor]:
        """Frames sorted by alpha; ``weights_of(alphas)`` gives the final quadrature weights."""
        alphas = torch.cat(self.alphas)
        order = torch.argsort(alphas)
        alphas = alphas[order]
        scores = torch.cat(self.scores, 1)[:, order]
        grads = torch.cat(self.grad_maps, 1)[:, order]
        contrib = torch.cat(self.contrib_maps, 1)[:, order]
        w = weights_of(alphas).float()
        shape = (1, -1) + (1,) * (contrib.dim() - 2)
        partial = torch.cumsum(contrib * w.view(shape), dim=1)
        return {
            "alphas": alphas.float(), "weights": w, "path_scores": scores, "gradient_maps": grads,
            "partial_maps": partial, "baseline": self.baseline.detach().float().cpu(),
            "order": order,
        }


@register
class IntegratedGradients(Method):
    """Integrated Gradients along the straight path from ``baseline`` to the input.

    Parameters: ``n_steps`` (int >= 1, or ``"auto"``), ``baseline`` (``"black"`` = black pixels in the model's
    input space, ``"zeros"``, ``"mean"``, ``"blur"``, ``"uniform"``, ``"gaussian"``, a number, a tensor or a
    callable; see :mod:`.baselines`), ``rule``
    (see :mod:`.quadrature`), ``batch_size`` (rows per model call; None: chosen by measurement),
    ``tolerance`` and ``max_steps`` (for ``"auto"``), ``seed`` (random baselines), ``return_frames``
    (record per-step data for the scrubber: ``frame_kind="ig_path"``).
    """

    name = "integrated_gradients"
    family = "gradient"
    text_strategy = "embeddings"
    reference = "Sundararajan, Taly & Yan 2017, arXiv:1703.01365"
    defaults: ClassVar[dict[str, Any]] = {
        "n_steps": 50, "baseline": "black", "rule": "gauss_legendre", "batch_size": None,
        "tolerance": 0.01, "max_steps": 512, "seed": 0, "return_frames": False,
    }
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {"n_steps": (2, 200, 1)}

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        n_steps = params["n_steps"]
        if n_steps != "auto":
            require(
                isinstance(n_steps, int) and not isinstance(n_steps, bool) and n_steps >= 1,
                f"n_steps must be an integer >= 1 or 'auto'; got {n_steps!r}",
            )
            require(
                params["rule"] != "riemann_trapezoid" or n_steps >= 2,
                "rule='riemann_trapezoid' needs n_steps >= 2 (it evaluates both ends of the path)",
            )
        check_rule(params["rule"])
        tol = params["tolerance"]
        require(isinstance(tol, (int, float)) and tol > 0, f"tolerance must be a number > 0; got {tol!r}")
        max_steps = params["max_steps"]
        require(
            isinstance(max_steps, int) and max_steps >= AUTO_START,
            f"max_steps must be an integer >= {AUTO_START}; got {max_steps!r}",
        )
        check_batch_size(params["batch_size"])
        check_baseline(params["baseline"], inputs)

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        x = inputs
        baseline = resolve_baseline(params["baseline"], x, self.classifier, seed=params["seed"])
        planner = ChunkPlanner(row_bytes(x), x.device, params["batch_size"])
        record = bool(params["return_frames"])
        fx, fb, resolved = endpoint_scores(self.model, x, baseline, target, params["batch_size"] or 4)
        path = PathIntegrator(self.model, x, baseline, resolved, planner, progress, record)
        if params["n_steps"] == "auto":
            attr, extras, weights_of = self._auto(path, fx, fb, params)
        else:
            alphas, weights = quadrature(params["rule"], params["n_steps"], progress.check)
            attr = path.run(alphas, weights) * path.diff
            extras = {"n_steps": params["n_steps"], "rule": params["rule"]}

            def weights_of(_a: torch.Tensor, w: torch.Tensor = weights) -> torch.Tensor:
                return w

        delta, gap = completeness(attr, fx, fb)
        extras.update(
            delta=delta, completeness_gap=gap, f_input=fx, f_baseline=fb,
            batch_size=planner.size, chunk_history=planner.history,
        )
        frames = path.frames(weights_of) if record else None
        if frames is not None:
            frames.pop("order")
            if "levels" in extras:
                frames["level"] = extras.pop("levels")
        return Attribution(
            values=attr.detach(), method=self.name, target=resolved, scores=fx, extras=extras,
            frames=frames, frame_kind="ig_path" if record else None,
        )

    def _auto(
        self, path: PathIntegrator, fx: torch.Tensor, fb: torch.Tensor, params: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any], Any]:
        m = AUTO_START
        path.stream_chunks = False
        ends = path.run(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64))
        inner_alphas = torch.arange(1, m, dtype=torch.float64) / m
        interior = path.run(inner_alphas, torch.ones(m - 1, dtype=torch.float64))
        levels = [torch.zeros(2, dtype=torch.long), torch.zeros(m - 1, dtype=torch.long)]
        refinement = []
        level = 0
        while True:
            attr = (0.5 * ends + interior) / m * path.diff
            _delta, gap = completeness(attr, fx, fb)
            worst = float(gap.max())
            refinement.append({"n_steps": m + 1, "gap": worst})
            if path.record and path.progress.on_event is not None:
                snapshot = path.frames(trapezoid_weights)
                snapshot.pop("order")
                path.progress.emit("frames", snapshot)
            if worst <= params["tolerance"] or 2 * m > params["max_steps"]:
                break
            m *= 2
            level += 1
            new = (2 * torch.arange(m // 2, dtype=torch.float64) + 1) / m
            interior = interior + path.run(new, torch.ones(m // 2, dtype=torch.float64))
            levels.append(torch.full((m // 2,), level, dtype=torch.long))
        extras = {
            "n_steps": m + 1, "rule": "riemann_trapezoid", "refinement": refinement,
            "converged": worst <= params["tolerance"], "levels": torch.cat(levels),
        }
        return attr, extras, trapezoid_weights


def completeness(attr: torch.Tensor, fx: torch.Tensor, fb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: ``delta = sum(attr) - (F(x) - F(x'))`` and the gap ``|delta| / |F(x) - F(x')|``."""
    delta = attr.flatten(1).sum(1) - (fx - fb)
    return delta.detach(), (delta.abs() / (fx - fb).abs().clamp_min(1e-12)).detach()
