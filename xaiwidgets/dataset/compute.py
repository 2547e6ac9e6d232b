"""One chunk of a dataset explanation: load items, predict, explain, reduce to per-item records.

Shared by the local loop and the Ray actors so both write the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..api import attribute
from ..core.adapters import unwrap_model
from ..core.device import model_device
from ..core.errors import InputError, LayerError, ModelError, TargetError
from ..core.state import preserved
from ..core.targets import scores_from_output
from ..methods.registry import get_method
from .sources import Source, UnreadableItem


@dataclass
class RunConfig:
    """What a chunk computation needs besides the model and the data (picklable for Ray)."""

    methods: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    map_size: tuple[int, int]
    keep_full: bool
    top_k: int
    on_error: str = "raise"
    input_shape: tuple[int, ...] | None = None  # (C, H, W) of item 0: every item must match it
    n_classes: int | None = None
    #: per method taking a ``seed`` given as None: a seed drawn once per store (in the manifest)
    drawn_seeds: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def load_items(source: Source, indices: range, cfg: RunConfig) -> tuple[list[int], torch.Tensor, torch.Tensor, dict]:
    """``(valid positions in the chunk, inputs, labels, skipped {index: reason})``; checks sizes and labels."""
    xs, labels, keep, skipped = [], [], [], {}
    for pos, i in enumerate(indices):
        try:
            x, label = source.load(i)
        except UnreadableItem as exc:
            if cfg.on_error != "skip":
                raise
            skipped[str(i)] = f"{exc.what}: {exc.reason}"
            continue
        if cfg.input_shape is not None and tuple(x.shape) != tuple(cfg.input_shape):
            raise InputError(
                f"item {i} has shape {tuple(x.shape)} but item 0 has {tuple(cfg.input_shape)}; images of "
                "mixed sizes need a preprocessing rule: pass an ImageClassifier (it resizes to input_size) or "
                "a Dataset with a transform"
            )
        if cfg.n_classes is not None and not (label == -1 or 0 <= label < cfg.n_classes):
            raise TargetError(f"item {i} has label {label}, outside the model's {cfg.n_classes} classes")
        xs.append(x)
        labels.append(label)
        keep.append(pos)
    x = torch.stack(xs) if xs else torch.empty(0)
    return keep, x, torch.tensor(labels, dtype=torch.long), skipped


#: Methods whose first forward of the model is a plain forward on the very batch they are given (no
#: value-changing hooks, no function mode, no perturbation) and whose ``target=None`` is the argmax of
#: that forward's scores: the records come from it instead of a forward of their own. Each is checked by
#: tests/test_dataset.py::test_records_from_the_methods_forward_are_bitwise_the_plain_forwards.
PLAIN_FORWARD = frozenset({
    "gradient", "saliency", "input_x_gradient",  # selected_scores_and_grad(model, inputs)
    "smoothgrad", "smoothgrad_squared", "vargrad",  # a no-grad forward on the inputs resolves the target
    "cam", "gradcam", "gradcam_plus_plus", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
    "eigencam", "eigengradcam",  # CAMBase: capture() (hooks hand on exact copies) or CAM's head search
})


class ForwardRecorder:
    """Keeps the scores and the embedding of one forward of ``net``: the first whose input is exactly ``x``.

    "Exactly": the same storage, shape, strides, dtype and device, not modified in place since, no
    ``__torch_function__`` mode active, every module's ``training`` flag as on entry. The embedding is the
    input of the last ``nn.Linear`` called inside that forward. Use as a context manager around the work.
    """

    def __init__(self, net: Any, x: torch.Tensor) -> None:
        self.net, self.x = net, x
        self.output: Any = None
        self.last: torch.Tensor | None = None
        self._active = self._done = False

    def _is_x(self, t: Any) -> bool:
        x = self.x
        return (isinstance(t, torch.Tensor) and t.data_ptr() == x.data_ptr() and t.shape == x.shape
                and t.stride() == x.stride() and t.dtype == x.dtype and t.device == x.device
                and t._version == self._version and not torch._C._is_torch_function_mode_enabled()
                and [m.training for m in self._modules] == self._training)

    def _enter(self, _module: nn.Module, args: tuple) -> None:
        if not self._done and not self._active and args and self._is_x(args[0]):
            self._active = True

    def _linear(self, _module: nn.Module, args: tuple) -> None:
        if self._active:
            self.last = args[0].detach() if args and isinstance(args[0], torch.Tensor) else None

    def _exit(self, _module: nn.Module, _args: tuple, output: Any) -> None:
        if self._active:  # keep detached scores only: holding the output would keep its autograd graph
            self._active, self._done = False, True
            try:
                self.output = scores_from_output(output, self.x.shape[0]).detach()
            except ModelError:
                self._done = False  # the method itself reports a bad output

    def __enter__(self) -> ForwardRecorder:
        self._handles = []
        if isinstance(self.net, nn.Module):
            self._modules = list(self.net.modules())
            self._training = [m.training for m in self._modules]
            self._version = self.x._version
            self._handles = [m.register_forward_pre_hook(self._linear) for m in self._modules
                             if isinstance(m, nn.Linear)]
            self._handles += [self.net.register_forward_pre_hook(self._enter),
                              self.net.register_forward_hook(self._exit)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()

    def result(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(scores (N, C) float32, embedding (N, D) float32)``, or None when no forward was on ``x``:
        the embedding averaged over positions if it has any (``(N, C, H, W)``: spatial mean; ``(N, T, D)``:
        token mean); the scores themselves for a model without a linear layer, or when its input does not
        have one row per item."""
        if not self._done:
            return None
        n = self.x.shape[0]
        scores = self.output.float()
        last = self.last
        emb = last if isinstance(last, torch.Tensor) and last.dim() >= 1 and last.shape[0] == n else scores
        if emb.dim() == 3:
            emb = emb.mean(1)
        elif emb.dim() > 3:
            emb = emb.flatten(2).mean(2)
        return scores, emb.reshape(n, -1).float()


@torch.no_grad()
def predict(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, embedding)`` of a plain forward of ``model`` on ``x`` (:meth:`ForwardRecorder.result`)."""
    net, _ = unwrap_model(model)
    with preserved(net), ForwardRecorder(net, x) as rec:
        out = net(x)
    found = rec.result()
    if found is None:  # a callable model (no hooks)
        scores = scores_from_output(out, x.shape[0]).float()
        return scores, scores.reshape(x.shape[0], -1)
    return found


def area_average(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` maps averaged over areas to ``(N, *size)`` (exact block means when size divides H, W)."""
    return F.adaptive_avg_pool2d(maps.unsqueeze(1), size)[:, 0]


def to_scaled_float16(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(maps / scale as float16, scale (N,) float32)`` with ``scale`` each map's max |value| (1 for an
    all-zero map): every map keeps float16's relative precision (2^-11 of its max) whatever its magnitude,
    so tiny gradients are neither flushed to zero nor large ones turned into inf."""
    scale = maps.abs().flatten(1).amax(1).float()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (maps / scale.view(-1, 1, 1)).to(torch.float16), scale


def compute_chunk(model: Any, source: Source, indices: range, cfg: RunConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Records of the items ``indices``: rows of skipped items are NaN / -1 with ``valid`` False."""
    keep, x, labels, skipped = load_items(source, indices, cfg)
    n = len(indices)
    rec: dict[str, np.ndarray] = {}
    valid = np.zeros(n, bool)
    valid[keep] = True
    rec["valid"] = valid
    if not keep:
        return rec, skipped
    net = unwrap_model(model)[0]
    x = x.to(model_device(net))
    done: dict[str, Any] = {}  # method -> Attribution
    first = next((m for m in cfg.methods if get_method(m).name in PLAIN_FORWARD), None)
    found = None
    if first is not None:  # the records from the method's own forward (target=None: its argmax)
        with preserved(net), ForwardRecorder(net, x) as recorder:
            done[first] = _attribute(model, x, first, None, cfg, indices)
        found = recorder.result()
    scores, emb = found if found is not None else predict(model, x)
    probs = scores.softmax(1)
    k = min(cfg.top_k, probs.shape[1])
    top_i = scores.topk(k, dim=1).indices  # rank by the scores: softmax can tie classes in float32
    top_p = probs.gather(1, top_i)
    pred = top_i[:, 0]
    if first is not None and not torch.equal(done[first].target.to(pred.device), pred):
        del done[first]  # tied top scores: argmax and topk may pick different classes; explain topk's
    lab = labels.to(x.device)
    has = lab >= 0
    loss = torch.full((len(keep),), float("nan"), device=x.device)
    if has.any():
        loss[has] = F.cross_entropy(scores[has], lab[has], reduction="none")
    correct = (pred == lab) & has

    def put(name: str, values: torch.Tensor | np.ndarray, fill: Any, dtype: Any) -> None:
        values = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values
        out = np.full((n, *values.shape[1:]), fill, dtype=dtype)
        out[keep] = values
        rec[name] = out

    put("predictions", top_i, -1, np.int32)
    put("probabilities", top_p, np.nan, np.float32)
    put("labels", labels, -1, np.int64)
    put("correct", correct, False, np.bool_)
    put("loss", loss, np.nan, np.float32)
    put("embeddings", emb, np.nan, np.float32)
    for method in cfg.methods:
        a = done.pop(method, None) or _attribute(model, x, method, pred, cfg, indices)
        maps = torch.from_numpy(a.heatmap())
        small, scale = to_scaled_float16(area_average(maps, cfg.map_size))
        put(f"maps/{method}", small, np.nan, np.float16)
        put(f"scale/{method}", scale, np.nan, np.float32)
        if cfg.keep_full:
            put(f"full/{method}", maps, np.nan, np.float32)
    return rec, skipped


def chunk_seed(seed: int, start: int) -> int:
    """The seed of the chunk starting at item ``start``: a hash of the run's seed and ``start``
    (numpy ``SeedSequence``), so a chunk's random draws do not depend on which chunks ran before it
    (resume, Ray) and differ from chunk to chunk."""
    return int(np.random.SeedSequence([int(seed) & (2**64 - 1), start]).generate_state(1, np.uint32)[0]) >> 1


def method_params(method: str, cfg: RunConfig, indices: range) -> dict[str, Any]:
    """``method``'s parameters for the chunk ``indices``: a random method's seed derived per chunk."""
    params = dict(cfg.params.get(method, {}))
    defaults = get_method(method).defaults
    if "seed" in defaults:
        seed = params.get("seed", defaults["seed"])
        if seed is None:
            seed = cfg.drawn_seeds.get(method)
        if seed is not None:
            params["seed"] = chunk_seed(seed, indices.start)
    return params


def _attribute(model: Any, x: torch.Tensor, method: str, target: Any, cfg: RunConfig, indices: range) -> Any:
    try:
        return attribute(model, x, method, target=target, progress=False, **method_params(method, cfg, indices))
    except LayerError as exc:
        raise LayerError(f"method {method!r} needs a layer: {exc}. Pass {method}={{'layer': 'name'}} "
                         "naming a spatial layer of the model") from exc
