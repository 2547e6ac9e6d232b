"""EvaluationView: explanation methods compared by metrics (issue #8).

One widget with four parts, all computed by ``xaiwidgets.metrics`` (no maths here):

- deletion and insertion curves per method (Petsiuk et al. 2018, arXiv:1806.07421; AOPC, Samek et al.
  2017, arXiv:1509.06321), with a strip of perturbed-input thumbnails per curve, so hovering a point shows
  the input at that fraction also in an exported HTML page (no kernel needed);
- a leaderboard of methods x metrics (deletion AUC, insertion AUC, AOPC, sparseness (Chalasani et al. 2020),
  pointing game and energy pointing game when ground-truth masks or boxes are given (Zhang et al. 2018;
  Wang et al. 2020), the sanity check's final rank correlation (Adebayo et al. 2018, arXiv:1810.03292));
- the sanity-check strip: each method's map as the layers are re-initialised from the top down
  (cascading model randomisation), with the Spearman rank correlation to the trained model's map;
- the selection sweep: a metric against a hyperparameter's values (``xw.metrics.sweep``).

:meth:`EvaluationView.compute` (also ``xw.evaluate``) returns at once and computes on a worker thread with
progress and cancel; the results stay on the view (:attr:`EvaluationView.results`). The wire format is in
``docs/widget-protocol.md`` ("EvaluationView").
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import traitlets

from ..core.adapters import unwrap_model
from ..core.errors import Cancelled, InputError, ParameterError
from ..core.progress import Progress
from .base import PngFallbackWidget, esm
from .buffers import array_payload, quantize
from .jobs import CancellableJob, ViewJob, Worker, describe
from .scrubber import downsample_images, downsample_maps, wire_bytes

MODES = ("deletion", "insertion")
#: leaderboard columns: key -> (label, higher is better, description)
COLUMNS: dict[str, tuple[str, bool, str]] = {
    "deletion": ("deletion AUC", False, "area under the deletion curve (MoRF; lower: the output falls faster)"),
    "insertion": ("insertion AUC", True, "area under the insertion curve (MoRF; higher: the output rises faster)"),
    "aopc": ("AOPC", True, "area over the deletion curve, mean output drop over the steps (Samek et al. 2017)"),
    "sparseness": ("sparseness", True, "Gini index of |attribution| (Chalasani et al. 2020)"),
    "pointing_game": ("pointing game", True, "share of inputs whose map maximum lies on the object"),
    "energy_pointing_game": ("energy in object", True, "share of the positive map on the object (Wang et al. 2020)"),
    "sanity": ("sanity ρ", False,
               "Spearman correlation of |map| after randomising every layer (lower: the map depends on the weights)"),
}
LOCALISATION = ("pointing_game", "energy_pointing_game")
DEFAULT_METRICS = ("deletion", "insertion", "aopc", "sparseness")
MAX_THUMBS = 32  # perturbed inputs kept per curve (evenly spread over the steps, first and last kept)
MIN_THUMB = 24
DEFAULT_BUDGET = 4_000_000  # bytes of the thumbnail strips (all curves together)
SANITY_MEASURE = "spearman_abs"


# ----- planning and payloads (pure) ---------------------------------------------------------------------


def thin_steps(count: int, keep: int) -> list[int]:
    """``keep`` indices of ``range(count)`` spread evenly, first and last always included."""
    if count <= keep:
        return list(range(count))
    return sorted({round(float(v)) for v in np.linspace(0, count - 1, max(keep, 2))})


def plan_thumbs(
    n_curves: int, points: int, height: int, width: int, *, max_side: int = 64, budget: float = DEFAULT_BUDGET
) -> tuple[list[int], tuple[int, int]]:
    """``(steps, (h, w))``: which curve points get a thumbnail and its size, so that ``n_curves`` strips of
    uint8 RGB thumbnails fit ``budget`` bytes. The size shrinks first (never below ``MIN_THUMB`` px, never
    upsampled, same aspect), then the steps are thinned (at most ``MAX_THUMBS``)."""
    steps = thin_steps(points, MAX_THUMBS)
    scale = min(1.0, max_side / max(height, width))
    room = float(budget) / max(1, n_curves * len(steps) * 3)
    scale = min(scale, math.sqrt(room / (height * width)))
    scale = max(scale, min(1.0, MIN_THUMB / max(height, width)))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    fit = int(budget // max(1, n_curves * h * w * 3))
    if fit < len(steps):
        steps = thin_steps(points, max(2, fit))
    return steps, (h, w)


def _f32(values: Any) -> dict[str, Any]:
    return array_payload(np.asarray(values, dtype=np.float32))


@dataclass
class EvaluationResults:
    """What the view computed, as the metrics return it (for use beyond the view).

    ``curves[mode][method]``: :class:`~xaiwidgets.metrics.PerturbationCurve`; ``scores[metric][method]``:
    ``(N,)`` per-input values of the leaderboard's metrics; ``sanity``: the
    :class:`~xaiwidgets.metrics.sanity.SanityResult` or None; ``sweeps``: :class:`SweepResult` list;
    ``attributions[method]``; ``errors[method]``: why a method failed.
    """

    methods: list[str]
    target: torch.Tensor
    attributions: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[str, Any]] = field(default_factory=lambda: {m: {} for m in MODES})
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    sanity: Any = None
    sweeps: list[Any] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def table(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean over inputs}}`` (the leaderboard; NaN where not computed)."""
        out: dict[str, dict[str, float]] = {}
        for method in self.methods:
            out[method] = {}
            for metric, per in self.scores.items():
                v = per.get(method)
                out[method][metric] = float(np.nanmean(v)) if v is not None and np.isfinite(v).any() else math.nan
        return out


def curves_payload(
    results: EvaluationResults, modes: Sequence[str], thumbs: dict[str, dict[str, np.ndarray]],
    thumb_steps: Sequence[int], labels: list[str],
) -> dict[str, Any]:
    """The ``curves`` trait (docs/widget-protocol.md, "EvaluationView"); methods not done yet are NaN."""
    methods = results.methods
    m, n = len(methods), int(results.target.shape[0])
    out: dict[str, Any] = {"methods": list(methods), "modes": list(modes), "n_inputs": n, "labels": labels,
                           "thumb_steps": array_payload(np.asarray(thumb_steps, np.int32))}
    for mode in modes:
        done = results.curves[mode]
        k = next((c.scores.shape[1] for c in done.values()), 0)
        scores = np.full((m, n, k), np.nan, np.float32)
        fractions = np.full((m, n, k), np.nan, np.float32)
        auc = np.full((m, n), np.nan, np.float32)
        strip = None
        for i, method in enumerate(methods):
            c = done.get(method)
            if c is None:
                continue
            scores[i], fractions[i], auc[i] = c.scores, c.fractions, c.auc
            t = thumbs.get(mode, {}).get(method)
            if t is not None:
                if strip is None:
                    strip = np.zeros((m, *t.shape), np.uint8)
                strip[i] = t
        out[mode] = {
            "scores": _f32(scores), "fractions": _f32(fractions), "auc": _f32(auc),
            "output": next((c.output for c in done.values()), "probability"),
            "thumbs": None if strip is None else array_payload(strip),
        }
    out["state"] = ["error" if x in results.errors else
                    "done" if all(x in results.curves[md] for md in modes) else "pending" for x in methods]
    return out


def leaderboard_payload(results: EvaluationResults, columns: Sequence[str]) -> dict[str, Any]:
    """The ``leaderboard`` trait: ``values`` float32 ``(M, C)`` means over the inputs (NaN: not computed)."""
    table = results.table()
    values = np.array([[table[m].get(c, math.nan) for c in columns] for m in results.methods], np.float32)
    return {
        "methods": list(results.methods),
        "columns": [{"key": c, "label": COLUMNS[c][0], "higher_is_better": COLUMNS[c][1],
                     "description": COLUMNS[c][2]} for c in columns],
        "values": array_payload(values.reshape(len(results.methods), len(columns))),
        "errors": {k: v for k, v in results.errors.items()},
    }


def sanity_payload(sanity: Any, size: tuple[int, int]) -> dict[str, Any]:
    """The ``sanity`` trait: |maps| per method, randomisation step and input, each quantised on its own
    ``[0, max]`` (uint8 ``(M, S, N, h, w)``, maxima float32 ``(M, S, N)``), and the similarities."""
    methods = list(sanity.maps)
    maps = np.stack([np.abs(sanity.maps[m]) for m in methods])  # (M, S, N, H, W)
    mm, s, n = maps.shape[:3]
    small = downsample_maps(torch.from_numpy(maps.reshape(-1, *maps.shape[-2:])), size).numpy()
    small = small.reshape(mm, s, n, *size)
    peak = small.reshape(mm, s, n, -1).max(-1)
    scaled = small / np.where(peak > 0, peak, 1.0)[..., None, None]
    return {
        "methods": methods,
        "steps": list(sanity.steps),
        "kind": sanity.kind,
        "order": sanity.order,
        "measure": SANITY_MEASURE,
        "maps": array_payload(quantize(scaled, 0.0, 1.0)),
        "peaks": _f32(peak),
        "similarity": _f32(np.stack([sanity.similarity[m][SANITY_MEASURE] for m in methods])),
        "threshold": float(sanity.threshold),
        "score": _f32([sanity.score(m) for m in methods]),
        "passed": [bool(sanity.passed(m)) for m in methods],
    }


def sweep_payload(result: Any) -> dict[str, Any]:
    """One entry of the ``sweeps`` trait: mean and quartiles of the metric per value, and the best value."""
    data = result.plot_data()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data["x"])
    return {
        "method": result.method, "param": data["param"], "metric": data["metric"],
        "higher_is_better": bool(data["higher_is_better"]),
        "labels": [str(v) for v in data["x"]],
        "x": _f32(data["x"]) if numeric else None,
        "mean": _f32(data["mean"]), "q25": _f32(data["q25"]), "q75": _f32(data["q75"]),
        "best": int(result.best_index) if np.isfinite(result.mean).any() else -1,
    }


# ----- argument checks ----------------------------------------------------------------------------------


def _method_names(methods: Any) -> list[str]:
    from ..methods.registry import get_method

    if isinstance(methods, str):
        methods = [methods]
    try:
        names = [get_method(m).name for m in methods]
    except TypeError:
        raise ParameterError("methods must be a list of registered method names") from None
    if not names:
        raise ParameterError("give at least one method to evaluate, e.g. methods=['saliency', 'gradcam']")
    if len(set(names)) != len(names):
        raise ParameterError(f"each method once, please: {names}")
    return names


def _metric_names(metrics: Sequence[str] | None, *, ground_truth: bool, sanity: bool) -> list[str]:
    if metrics is None:
        chosen = list(DEFAULT_METRICS) + (list(LOCALISATION) if ground_truth else [])
    else:
        chosen = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [m for m in chosen if m not in COLUMNS or m == "sanity"]
        if unknown:
            raise ParameterError(
                f"unknown metric(s) {unknown}; choose from {', '.join(c for c in COLUMNS if c != 'sanity')} "
                "(the sanity check is sanity=True)"
            )
        if not ground_truth and any(m in LOCALISATION for m in chosen):
            raise ParameterError("pointing_game and energy_pointing_game need ground truth: pass masks= or boxes=")
    if sanity:
        chosen.append("sanity")
    return list(dict.fromkeys(chosen))


def _sweep_specs(sweep: Any) -> list[dict[str, Any]]:
    if sweep is None:
        return []
    specs = [sweep] if isinstance(sweep, Mapping) else list(sweep)
    out = []
    for spec in specs:
        if not isinstance(spec, Mapping) or not {"method", "param", "values"} <= set(spec):
            raise ParameterError(
                "sweep= takes a dict (or a list of dicts) with method, param, values and optionally metric and "
                "params, e.g. {'method': 'smoothgrad', 'param': 'noise_level', 'values': [0.05, 0.1, 0.2]}"
            )
        extra = set(spec) - {"method", "param", "values", "metric", "params", "higher_is_better"}
        if extra:
            raise ParameterError(f"unknown sweep key(s) {sorted(extra)}")
        out.append(dict(spec))
    return out


def _curve_metric(mode: str, options: dict[str, Any]) -> Callable[..., Any]:
    """A sweep metric from a perturbation curve: its AUC per input (deletion: lower is better)."""
    from .. import metrics

    fn = getattr(metrics, mode)

    def auc(model: Any, x: torch.Tensor, attribution: Any, target: torch.Tensor) -> np.ndarray:
        return fn(model, x, attribution, target, progress=False, **options).auc

    auc.__name__ = f"{mode}_auc"
    auc.higher_is_better = mode == "insertion"  # type: ignore[attr-defined]
    return auc


# ----- the computation, as named steps -------------------------------------------------------------------


@dataclass
class EvaluationPlan:
    """What ``EvaluationView.compute`` checked and resolved before returning: the batch, the targets (resolved
    once, shared by every metric), the methods and their parameters, the leaderboard's columns, the curve
    modes and options, the sweeps and the thumbnails' steps and size."""

    model: Any
    x: torch.Tensor
    target: torch.Tensor
    labels: list[str]
    methods: list[str]
    params: dict[str, dict[str, Any]]
    columns: list[str]
    modes: list[str]
    curve_options: dict[str, Any]
    baselines: dict[str, Any]
    masks: Any
    boxes: Any
    sanity: bool
    sanity_layers: Sequence[str] | None
    sweeps: list[dict[str, Any]]
    thumb_steps: list[int]
    thumb_size: tuple[int, int]

    @classmethod
    def check(cls, model: Any, inputs: Any, methods: Sequence[str], target: Any, *, metrics: Sequence[str] | None,
              params: Mapping[str, Mapping[str, Any]] | None, n_steps: int, features: Any, patch_size: int,
              baseline: Any, insertion_baseline: Any, masks: Any, boxes: Any, sanity: bool,
              sanity_layers: Sequence[str] | None, sweep: Any, thumb_size: int, budget: float) -> EvaluationPlan:
        """Check every argument (a clear error here, not on the worker) and resolve the targets."""
        from ..core.inputs import as_batch
        from ..methods.registry import get_method
        from ..metrics import _maps, localisation

        names = _method_names(methods)
        per_params = {get_method(k).name: dict(v) for k, v in (params or {}).items()}
        for name in per_params:
            if name not in names:
                raise ParameterError(f"params given for {name!r}, which is not among the methods {names}")
        for name in names:
            get_method(name).check_params(per_params.get(name, {}))
        ground_truth = masks is not None or boxes is not None
        columns = _metric_names(metrics, ground_truth=ground_truth, sanity=bool(sanity))
        specs = _sweep_specs(sweep)
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ParameterError(f"n_steps must be an int >= 1, got {n_steps!r}")
        if isinstance(thumb_size, bool) or not isinstance(thumb_size, int) or thumb_size < MIN_THUMB:
            raise ParameterError(f"thumb_size must be an int >= {MIN_THUMB}, got {thumb_size!r}")
        net, classifier = unwrap_model(model)
        x = as_batch(inputs, net)
        if x.dim() != 4:
            raise InputError(
                f"the evaluation view compares image explanations: inputs (N, C, H, W), got {tuple(x.shape)}"
            )
        _, x, resolved, _ = _maps.prepare(model, x, target)
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        if ground_truth:  # validated now, so a bad mask fails here and not on the worker
            gt_masks, _ = localisation.ground_truth(masks, boxes, (height, width))
            if gt_masks.shape[0] != n:
                raise InputError(f"{gt_masks.shape[0]} ground-truth masks for {n} inputs; give one per input")
        modes = [m for m in MODES if m in columns or (m == "deletion" and "aopc" in columns)]
        labels = [classifier.label(int(t)) if classifier is not None else f"class {int(t)}" for t in resolved]
        steps, size = plan_thumbs(len(names) * max(1, len(modes)) * n, n_steps + 1, height, width,
                                  max_side=thumb_size, budget=budget)
        return cls(model=model, x=x, target=resolved, labels=labels, methods=names, params=per_params,
                   columns=columns, modes=modes,
                   curve_options={"n_steps": n_steps, "features": features, "patch_size": patch_size},
                   baselines={"deletion": baseline, "insertion": insertion_baseline}, masks=masks, boxes=boxes,
                   sanity=bool(sanity), sanity_layers=sanity_layers, sweeps=specs, thumb_steps=steps,
                   thumb_size=size)


class _EvaluationJob(ViewJob):
    """Each method explained, its curves and scores (rows appear one by one), then the sanity check and the
    sweeps. The progress bar counts work units: per method 1 for explaining and 2 per curve; the sanity
    check 2 per method; 2 per sweep."""

    def __init__(self, view: EvaluationView, plan: EvaluationPlan) -> None:
        super().__init__(view)
        self.plan = plan
        self.results: EvaluationResults = view.results  # type: ignore[assignment]
        self.thumbs: dict[str, dict[str, np.ndarray]] = {m: {} for m in plan.modes}
        self.units = {"method": 1.0 + 2.0 * len(plan.modes), "sanity": 2.0 * len(plan.methods), "sweep": 2.0}
        self.total = (self.units["method"] * len(plan.methods) + (self.units["sanity"] if plan.sanity else 0)
                      + self.units["sweep"] * len(plan.sweeps))
        self.done_units = 0.0
        self.lock = threading.Lock()

    def run(self) -> None:
        for method in self.plan.methods:
            try:
                self.evaluate_method(method)
            except Cancelled:
                raise
            except Exception as exc:  # one method failing leaves the others' rows
                self.results.errors[method] = describe(exc)
            self.publish()
        if len(self.results.errors) == len(self.plan.methods):
            first = next(iter(self.results.errors.items()))
            raise RuntimeError(f"every method failed; {first[0]}: {first[1]}")
        if self.plan.sanity:
            self.sanity_check()
        for spec in self.plan.sweeps:
            self.sweep(spec)

    def on_cancel(self, exc: Cancelled) -> None:
        self.publish()

    def end(self) -> None:
        super().end()
        self.view.phase = ""

    # ----- the steps
    def evaluate_method(self, method: str) -> None:
        """Explain with ``method``, then its curves and the leaderboard's scores."""
        from ..api import attribute

        plan = self.plan
        a = attribute(plan.model, plan.x, method=method, target=plan.target,
                      progress=self.step(1.0, f"{method}: explaining"), **plan.params.get(method, {}))
        self.results.attributions[method] = a
        self.advance(1.0)
        for mode in plan.modes:
            self.curve(method, mode, a)
        self.scores(method, a)

    def curve(self, method: str, mode: str, attribution: Any) -> None:
        """One perturbation curve (``mode``: deletion or insertion), its thumbnails and its scores."""
        from ..metrics import faithfulness

        plan = self.plan
        fn = faithfulness.deletion if mode == "deletion" else faithfulness.insertion
        curve = fn(plan.model, plan.x, attribution, plan.target, baseline=plan.baselines[mode],
                   progress=self.step(2.0, f"{method}: {mode}"), **plan.curve_options)
        self.results.curves[mode][method] = curve
        self.thumbs[mode][method] = np.stack([  # (N, T, h, w, 3)
            downsample_images(np.stack([curve.display(i, k) for k in plan.thumb_steps]), plan.thumb_size)
            for i in range(plan.x.shape[0])
        ])
        if mode in plan.columns:
            self.score(mode, method, curve.auc)
        if mode == "deletion" and "aopc" in plan.columns:
            self.score("aopc", method, curve.aopc)
        self.advance(2.0)

    def scores(self, method: str, a: Any) -> None:
        """The cheap per-map metrics: sparseness and the pointing games."""
        from ..metrics import complexity, localisation

        columns, masks, boxes = self.plan.columns, self.plan.masks, self.plan.boxes
        if "sparseness" in columns:
            self.score("sparseness", method, complexity.sparseness(a))
        if "pointing_game" in columns:
            self.score("pointing_game", method, localisation.pointing_game(a, masks, boxes=boxes))
        if "energy_pointing_game" in columns:
            self.score("energy_pointing_game", method, localisation.energy_pointing_game(a, masks, boxes=boxes))

    def sanity_check(self) -> None:
        """Cascading model randomisation over the methods that worked (Adebayo et al. 2018)."""
        from ..metrics import sanity as sanity_mod

        plan = self.plan
        ok = [m for m in plan.methods if m not in self.results.errors]
        result = sanity_mod.model_randomisation(
            plan.model, plan.x, ok, plan.target, layers=plan.sanity_layers, measures=(SANITY_MEASURE,),
            params={m: plan.params[m] for m in ok if m in plan.params},
            progress=self.step(self.units["sanity"], "sanity check"),
        )
        self.results.sanity = result
        for m in ok:
            self.score("sanity", m, np.array([result.score(m)]))
        self.view.sanity = sanity_payload(result, plan.thumb_size)
        self.advance(self.units["sanity"])
        self.publish()

    def sweep(self, spec: dict[str, Any]) -> None:
        """One selection sweep: a metric against a hyperparameter's values (``xw.metrics.sweep``)."""
        from ..metrics import selection

        plan = self.plan
        progress = self.step(self.units["sweep"], f"sweep {spec['method']} {spec['param']}")
        metric = spec.get("metric", "deletion")
        if metric in MODES:
            metric = _curve_metric(metric, {**plan.curve_options, "baseline": plan.baselines[metric]})
        result = selection.sweep(plan.model, plan.x, spec["method"], spec["param"], spec["values"], metric,
                                 plan.target, params=spec.get("params"),
                                 higher_is_better=spec.get("higher_is_better"), progress=progress)
        self.results.sweeps.append(result)
        self.view.sweeps = [*self.view.sweeps, sweep_payload(result)]
        self.advance(self.units["sweep"])

    # ----- bookkeeping
    def step(self, weight: float, phase: str) -> Progress:
        """The progress of a step worth ``weight`` units, shown as ``phase``."""
        self.view.phase = phase
        return self.tracker(self.done_units / self.total, weight / self.total)

    def advance(self, weight: float) -> None:
        self.done_units += weight
        self.view.progress = min(1.0, self.done_units / self.total)

    def score(self, metric: str, method: str, values: Any) -> None:
        arr = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        self.results.scores.setdefault(metric, {})[method] = arr.astype(np.float64).reshape(-1)

    def publish(self) -> None:
        """The curves and the leaderboard as they stand."""
        plan = self.plan
        with self.lock:
            self.view.curves = (curves_payload(self.results, plan.modes, self.thumbs, plan.thumb_steps, plan.labels)
                                if plan.modes else {})
            self.view.leaderboard = leaderboard_payload(self.results, plan.columns)


# ----- the widget ---------------------------------------------------------------------------------------


class EvaluationView(CancellableJob, PngFallbackWidget):
    _held = ("results",)
    """Methods compared by metrics: deletion / insertion curves with the perturbed input under the cursor,
    a sortable leaderboard, the sanity-check strip and the selection sweep. Build it with :meth:`compute`
    (``xw.evaluate``)."""

    _esm = esm("evaluation")
    _bundle_name = "evaluation"

    curves = traitlets.Dict().tag(sync=True)
    leaderboard = traitlets.Dict().tag(sync=True)
    sanity = traitlets.Dict().tag(sync=True)
    sweeps = traitlets.List().tag(sync=True)
    sample = traitlets.Int(0).tag(sync=True)
    sort_column = traitlets.Unicode("").tag(sync=True)
    sort_reverse = traitlets.Bool(False).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    phase = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self.results: EvaluationResults | None = None
        self._worker: Worker | None = None
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    @classmethod
    def compute(
        cls,
        model: Any,
        inputs: Any,
        methods: Sequence[str] = ("saliency", "integrated_gradients", "gradcam"),
        target: Any = None,
        *,
        metrics: Sequence[str] | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        n_steps: int = 20,
        features: Any = "pixel",
        patch_size: int = 8,
        baseline: Any = "black",
        insertion_baseline: Any = "blur",
        masks: Any = None,
        boxes: Any = None,
        sanity: bool = False,
        sanity_layers: Sequence[str] | None = None,
        sweep: Any = None,
        thumb_size: int = 64,
        budget: float = DEFAULT_BUDGET,
        wait: bool = False,
    ) -> EvaluationView:
        """Return the view at once and evaluate ``methods`` on a worker thread.

        ``inputs``: images ``(N, C, H, W)`` (or one ``(C, H, W)``); targets are resolved once (None: the
        predicted class) and shared by every metric. ``metrics``: leaderboard columns from ``COLUMNS``
        (default deletion, insertion, AOPC, sparseness, plus the pointing games when ``masks`` or ``boxes``
        are given). Curves: ``n_steps`` steps over ``features`` (``"pixel"``, ``"patch"`` of
        ``patch_size``, superpixels, labels), removed pixels take ``baseline`` (deletion) and insertion starts
        from ``insertion_baseline`` (a blurred input, as Petsiuk et al.). ``params``: per-method parameters.
        ``sanity=True`` runs cascading model randomisation over ``sanity_layers`` (default: every layer with
        parameters, top first; the model's weights are restored afterwards). ``sweep``: a dict (or list) of
        ``xw.metrics.sweep`` arguments ``method, param, values[, metric, params]``; ``metric`` is a
        ``METRICS`` name or ``"deletion"`` / ``"insertion"`` (the curve's AUC, the default). ``thumb_size``
        and ``budget`` bound the thumbnails. ``wait=True`` blocks and raises the job's error.
        """
        plan = EvaluationPlan.check(
            model, inputs, methods, target, metrics=metrics, params=params, n_steps=n_steps, features=features,
            patch_size=patch_size, baseline=baseline, insertion_baseline=insertion_baseline, masks=masks, boxes=boxes,
            sanity=sanity, sanity_layers=sanity_layers, sweep=sweep, thumb_size=thumb_size, budget=budget,
        )
        n, names = int(plan.target.shape[0]), plan.methods
        view = cls(status="running")
        view.results = EvaluationResults(methods=names, target=plan.target.cpu())
        view.title = f"{len(names)} method{'s' * (len(names) > 1)} on {n} input{'s' * (n > 1)}"
        view._start_worker("xaiwidgets-evaluation")
        job = _EvaluationJob(view, plan)
        job.publish()
        view._submit(job)
        if wait:
            view._block(raise_error=True)
        return view

    # ----- requests from the browser and control
    @property
    def payload_bytes(self) -> int:
        """Bytes of the synced state on the wire (buffers plus JSON)."""
        return sum(wire_bytes(v) for v in (self.curves, self.leaderboard, self.sanity, self.sweeps))

    # ----- static fallback
    def _fallback_png(self) -> bytes | None:
        if self.results is None or not self.leaderboard:
            return None
        return render_evaluation_png(self.results, self.leaderboard, self.title)


def render_evaluation_png(results: EvaluationResults, leaderboard: dict[str, Any], caption: str = "") -> bytes:
    """A PNG of the mean deletion / insertion curves per method and the leaderboard as a table."""
    from matplotlib.figure import Figure  # never matplotlib.use(): it would switch the notebook's backend

    modes = [m for m in MODES if results.curves[m]]
    fig = Figure(figsize=(3.4 * max(1, len(modes)) + 4.4, 3.0), dpi=80)
    axes = fig.subplots(1, len(modes) + 1, squeeze=False, gridspec_kw={"width_ratios": [1] * len(modes) + [1.3]})[0]
    for ax, mode in zip(axes, modes):
        for method, c in results.curves[mode].items():
            ax.plot(c.fractions.mean(0), c.mean_curve, label=f"{method} ({c.auc.mean():.3f})", lw=1.4)
        ax.set_title(f"{mode} (AUC)", fontsize=9)
        ax.set_xlabel("fraction perturbed", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    table = axes[-1]
    table.axis("off")
    cols = leaderboard["columns"]
    values = np.frombuffer(leaderboard["values"]["data"], np.float32).reshape(leaderboard["values"]["shape"])
    if cols:  # metrics as rows, methods as columns: long metric names fit as row labels
        cells = [[("–" if not np.isfinite(v) else f"{v:.3f}") for v in col] for col in values.T]
        t = table.table(cellText=cells, colLabels=leaderboard["methods"],
                        rowLabels=[f"{c['label']} {'↑' if c['higher_is_better'] else '↓'}" for c in cols],
                        bbox=[0.5, 0.05, 0.5, 0.9])
        t.auto_set_font_size(False)
        t.set_fontsize(7)
    if caption:
        fig.suptitle(caption, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def evaluate(model: Any, inputs: Any, methods: Sequence[str] = ("saliency", "integrated_gradients", "gradcam"),
             target: Any = None, **kwargs: Any) -> EvaluationView:
    """Compare ``methods`` on ``inputs`` by faithfulness, complexity, localisation and sanity metrics in one
    widget: :meth:`EvaluationView.compute` (see there)."""
    return EvaluationView.compute(model, inputs, methods, target, **kwargs)


__all__ = ["COLUMNS", "EvaluationResults", "EvaluationView", "evaluate", "plan_thumbs", "thin_steps"]
