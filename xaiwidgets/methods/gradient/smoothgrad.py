"""SmoothGrad, SmoothGrad-squared and VarGrad: average a gradient method over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas & Wattenberg 2017, "SmoothGrad: removing noise by adding noise",
arXiv:1706.03825 (``smoothgrad``: mean; ``smoothgrad_squared``: mean of squares); Adebayo et al. 2018,
"Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values",
arXiv:1810.03307 (``vargrad``: variance ``E[a^2] - E[a]^2``).

Noise: ``x + N(0, sigma^2)`` with ``sigma = noise_level * (max(x) - min(x))`` per image, drawn from a
``torch.Generator`` seeded with ``seed`` one sample at a time (sample ``s`` gets the ``s``-th draw of shape
``(N, ...)``), so results do not depend on ``batch_size``. ``base_method`` wraps any input-space method
(``gradient``, ``saliency``, ``input_x_gradient``, ``integrated_gradients``, ``guided_backprop``,
``deconvnet``, ...) as captum's ``NoiseTunnel`` does; ``base_params`` are passed to it.

``return_frames=True`` (``frame_kind="noise"``) records, on CPU in float32: ``noisy_inputs`` (N, S, C, H, W),
``gradient_maps`` (N, S, H, W), the channel sum of each sample's attribution (the gradient for the default
``base_method``), and ``running_maps`` (N, S, H, W), the channel sum of the method's combination (mean,
mean of squares or variance) after ``s + 1`` samples; the last equals ``values.sum(1)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...core.attribution import Attribution
from ...core.batching import ChunkPlanner, Retry, row_bytes
from ...core.progress import Progress
from ...core.targets import TargetLike, gather_scores, resolve_target
from .._autograd import forward_scores, selected_scores_and_grad
from ..base import Method, require
from ..registry import get_method, register
from .integrated_gradients import check_batch_size, reduce_map

NOISE_FAMILY = ("smoothgrad", "smoothgrad_squared", "vargrad", "expected_gradients")


class NoiseStream:
    """Noise rows ``r = s * N + i`` (sample-major), generated one sample at a time from a seeded generator."""

    def __init__(self, x: torch.Tensor, noise_level: float, seed: int | None) -> None:
        self.x = x
        flat = x.reshape(x.shape[0], -1)
        self.sigma = (noise_level * (flat.amax(1) - flat.amin(1))).view((-1,) + (1,) * (x.dim() - 1))
        self.gen = None if seed is None else torch.Generator(device=x.device).manual_seed(int(seed))
        self.cache: dict[int, torch.Tensor] = {}
        self.next_sample = 0

    def draw(self, n_rows: int) -> torch.Tensor:
        """Standard normal noise of shape ``(N, ...)`` for the next sample (patched in peer tests)."""
        return torch.randn(self.x.shape, generator=self.gen, device=self.x.device, dtype=self.x.dtype)

    def sample(self, s: int) -> torch.Tensor:
        while self.next_sample <= s:
            self.cache[self.next_sample] = self.draw(self.x.shape[0]) * self.sigma
            self.next_sample += 1
        return self.cache[s]

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Noisy inputs for rows ``start..stop-1``; drops cached samples before ``start``."""
        n = self.x.shape[0]
        for s in [s for s in self.cache if s < start // n]:
            del self.cache[s]
        idx = torch.arange(start, stop)
        noise = torch.stack([self.sample(int(s))[int(i)] for s, i in zip(idx // n, idx % n)])
        return self.x[idx % n] + noise


def base_attribution(
    model: Any, name: str, params: dict[str, Any], n_inputs: int = 1, classifier: Any = None
) -> Any:
    """A function ``(rows, target_rows, input_rows) -> attribution rows`` for the wrapped method ``name``.

    A ``baseline`` tensor in ``params`` with one baseline per input (``(N, ...)``, N > 1) is indexed by each
    row's input, as captum's ``NoiseTunnel`` repeats per-input baselines for every sample. The wrapped
    method gets ``classifier`` (the model's adapter) when given, so its baseline names mean what they mean
    for the model (``"black"``: black pixels after the adapter's normalisation).
    """
    if name == "gradient":
        return lambda rows, t, i: selected_scores_and_grad(model, rows, t)[0]
    inner = get_method(name)(classifier if classifier is not None else model)
    baseline = params.get("baseline")
    per_input = (
        isinstance(baseline, torch.Tensor) and n_inputs > 1 and baseline.dim() >= 2
        and baseline.shape[0] == n_inputs
    )

    def run(rows: torch.Tensor, t: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        kwargs = params
        if per_input and baseline.dim() == rows.dim():
            kwargs = {**params, "baseline": baseline[i.to(baseline.device)]}
        values = inner.attribute(rows, t, progress=False, **kwargs).values
        if values.shape != rows.shape:
            raise_shape(name, values, rows)
        return values

    return run


def raise_shape(name: str, values: torch.Tensor, rows: torch.Tensor) -> None:
    require(False, f"base_method={name!r} gives values of shape {tuple(values.shape[1:])}, not the input's "
                   f"{tuple(rows.shape[1:])}; wrap an input-space method (gradient, input_x_gradient, ...)")


class _NoiseTunnel(Method):
    family = "gradient"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 25, "noise_level": 0.15, "seed": 0, "base_method": "gradient", "base_params": None,
        "batch_size": None, "return_frames": False,
    }
    tunable: ClassVar[dict[str, tuple[float, float, float]]] = {
        "noise_level": (0.0, 0.5, 0.01), "n_samples": (1, 100, 1),
    }
    combination = "mean"

    def validate(self, inputs: torch.Tensor, params: dict[str, Any]) -> None:
        check_noise(params)
        check_batch_size(params["batch_size"])
        base = params["base_method"]
        require(isinstance(base, str), f"base_method must be a method name such as 'gradient'; got {base!r}")
        get_method(base)  # unknown names raise with suggestions
        require(
            base not in NOISE_FAMILY,
            f"base_method={base!r} is itself a sampling method; wrap 'gradient', 'input_x_gradient', "
            "'integrated_gradients', 'guided_backprop', ...",
        )
        bp = params["base_params"]
        require(
            bp is None or isinstance(bp, dict), f"base_params must be a dict or None; got {type(bp).__name__}"
        )
        if bp:
            get_method(base).check_params(bp)

    def _combine(self, total: torch.Tensor, total_sq: torch.Tensor, count: int) -> torch.Tensor:
        mean = total / count
        if self.combination == "mean":
            return mean
        if self.combination == "mean_sq":
            return total_sq / count
        return total_sq / count - mean * mean

    def _attribute(
        self, inputs: torch.Tensor, target: TargetLike, params: dict[str, Any], progress: Progress
    ) -> Attribution:
        x = inputs
        n, n_samples = x.shape[0], params["n_samples"]
        record = bool(params["return_frames"])
        with torch.no_grad():
            scores = forward_scores(self.model, x)
        resolved = resolve_target(target, scores)
        base = params["base_method"]
        attribute_rows = base_attribution(self.model, base, params["base_params"] or {}, n, self.classifier)
        stream = NoiseStream(x, float(params["noise_level"]), params["seed"])
        planner = ChunkPlanner(row_bytes(x), x.device, params["batch_size"])
        total = torch.zeros_like(x)
        total_sq = torch.zeros_like(x) if self.combination != "mean" else None
        if record:
            map_shape = tuple(reduce_map(x[:1]).shape[1:])
            noisy_frames = torch.zeros((n, n_samples, *x.shape[1:]))
            grad_frames = torch.zeros((n, n_samples, *map_shape))
            running = torch.zeros((n, n_samples, *map_shape))
        rows, start = n * n_samples, 0
        while start < rows:
            size = planner.next(rows - start)
            idx = torch.arange(start, start + size, device=x.device)
            s_idx, i_idx = idx // n, idx % n
            noisy = stream.rows(start, start + size)
            try:
                attr = planner.run(size, lambda _s, z=noisy, i=i_idx: attribute_rows(z, resolved[i], i))
            except Retry:
                continue
            attr = attr.detach()
            if record:
                for r in range(size):
                    s, i = int(s_idx[r]), int(i_idx[r])
                    total[i] += attr[r]
                    if total_sq is not None:
                        total_sq[i] += attr[r] * attr[r]
                    sq = total_sq[i] if total_sq is not None else total[i]
                    running[i, s] = reduce_map(self._combine(total[i], sq, s + 1)[None])[0].float().cpu()
                noisy_frames[i_idx.cpu(), s_idx.cpu()] = noisy.float().cpu()
                grad_frames[i_idx.cpu(), s_idx.cpu()] = reduce_map(attr).float().cpu()
            else:
                total.index_add_(0, i_idx, attr)
                if total_sq is not None:
                    total_sq.index_add_(0, i_idx, attr * attr)
            start += size
            s_done = start // n
            if record and progress.on_event is not None and s_done:
                progress.emit("frames", {"noisy_inputs": noisy_frames[:, :s_done],
                                         "gradient_maps": grad_frames[:, :s_done],
                                         "running_maps": running[:, :s_done]})
            progress.update(start, rows, self.name)
        values = self._combine(total, total_sq if total_sq is not None else total, n_samples)
        frames = None
        if record:
            frames = {"noisy_inputs": noisy_frames, "gradient_maps": grad_frames, "running_maps": running}
        return Attribution(
            values=values, method=self.name, target=resolved, scores=gather_scores(scores, resolved),
            frames=frames, frame_kind="noise" if record else None,
            extras={
                "batch_size": planner.size, "sigma": stream.sigma.flatten().detach().cpu(), "base_method": base,
            },
        )


def check_noise(params: dict[str, Any]) -> None:
    """``n_samples`` an integer >= 1 and ``noise_level`` a number >= 0."""
    n = params["n_samples"]
    require(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"n_samples must be an integer >= 1; got {n!r}"
    )
    level = params["noise_level"]
    require(
        isinstance(level, (int, float)) and not isinstance(level, bool) and level >= 0,
        f"noise_level must be a number >= 0 (sigma as a fraction of the input's max - min, e.g. 0.15); "
        f"got {level!r}",
    )


@register
class SmoothGrad(_NoiseTunnel):
    """Mean of the base method's attributions over noisy inputs (Smilkov et al. 2017, arXiv:1706.03825)."""

    name = "smoothgrad"
    reference = "Smilkov et al. 2017, arXiv:1706.03825"


@register
class SmoothGradSquared(_NoiseTunnel):
    """Mean of the squared attributions over noisy inputs (Smilkov et al. 2017; Hooker et al. 2019)."""

    name = "smoothgrad_squared"
    reference = "Smilkov et al. 2017, arXiv:1706.03825; Hooker et al. 2019, arXiv:1806.10758"
    combination = "mean_sq"
    signed = False


@register
class VarGrad(_NoiseTunnel):
    """Variance of the attributions over noisy inputs (Adebayo et al. 2018, arXiv:1810.03307)."""

    name = "vargrad"
    reference = "Adebayo et al. 2018, arXiv:1810.03307"
    combination = "var"
    signed = False
