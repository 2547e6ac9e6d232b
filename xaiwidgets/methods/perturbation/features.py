"""Features for model-agnostic methods: segments, baselines, and coalitions turned into model inputs.

A *feature map* is an integer tensor whose values ``0..M-1`` name the feature each input element belongs
to. For images it has shape ``(1, H, W)`` (superpixels or patches, shared by the channels) or
``(C, H, W)``; for ``(N, d)`` inputs it has shape ``(d,)``. A *coalition matrix* ``z`` of shape
``(S, M)`` says which features are present (1) or replaced by the baseline (0). The same code serves
images, tabular rows and (later) tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ...core.batching import ChunkPlanner, Retry, row_bytes
from ...core.errors import ParameterError
from ...core.progress import Progress
from ...core.targets import scores_from_output
from ..baselines import NAMES, deprecated_resolver

SEGMENTATIONS = ("quickshift", "slic", "felzenszwalb", "grid")


# ----------------------------------------------------------------------------------------------------------
# baselines (resolved by xaiwidgets.methods.baselines.resolve_baseline)

#: deprecated: the names are :data:`xaiwidgets.methods.baselines.NAMES`
BASELINES = NAMES
resolve_baseline = deprecated_resolver("xaiwidgets.methods.perturbation.features.resolve_baseline", background=True)


def baseline_rows(baseline: torch.Tensor, n: int, index: int) -> torch.Tensor:
    """The baseline rows ``(B, ...)`` for input ``index`` of ``n`` (a background batch is shared)."""
    if baseline.shape[0] == n:
        return baseline[index : index + 1]
    return baseline


# ----------------------------------------------------------------------------------------------------------
# segments


def relabel(segments: torch.Tensor) -> torch.Tensor:
    """Labels renumbered to ``0..M-1`` in order of first value (sorted unique)."""
    _, inverse = torch.unique(segments, sorted=True, return_inverse=True)
    return inverse.view(segments.shape)


def grid_segments(height: int, width: int, patch: int | tuple[int, int], device: torch.device) -> torch.Tensor:
    """A regular grid of ``patch`` x ``patch`` patches (the last row/column may be smaller): ``(H, W)``."""
    ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
    if ph < 1 or pw < 1:
        raise ParameterError(f"patch size must be at least 1, got {patch}")
    rows = torch.arange(height, device=device) // ph
    cols = torch.arange(width, device=device) // pw
    return rows[:, None] * (-(-width // pw)) + cols[None, :]


def _display(x: torch.Tensor, classifier: Any) -> np.ndarray:
    if classifier is not None and hasattr(classifier, "to_display"):
        return classifier.to_display(x[None])[0].astype(np.float64) / 255.0
    from ...core.adapters import tensor_to_display

    return tensor_to_display(x[None])[0].astype(np.float64) / 255.0


def image_segments(
    image: torch.Tensor, segmentation: str, params: dict[str, Any] | None = None, classifier: Any = None
) -> torch.Tensor:
    """Superpixels (scikit-image ``quickshift``/``slic``/``felzenszwalb``) or a ``grid`` of one image.

    ``image`` is ``(C, H, W)``; ``params`` go to the scikit-image function unchanged (``grid`` takes
    ``patch``). Segmentation runs on the display image (de-normalised, in [0, 1]). Returns ``(H, W)`` long
    labels ``0..M-1`` on the image's device.
    """
    params = dict(params or {})
    h, w = image.shape[-2:]
    if segmentation == "grid":
        patch = params.pop("patch", max(1, min(h, w) // 8))
        if params:
            raise ParameterError(f"grid segmentation takes only 'patch', got {sorted(params)}")
        return relabel(grid_segments(h, w, patch, image.device))
    if segmentation not in SEGMENTATIONS:
        raise ParameterError(
            f"unknown segmentation {segmentation!r}; choose one of {', '.join(SEGMENTATIONS)} or pass a "
            "tensor of segment labels (H, W)"
        )
    try:
        from skimage import segmentation as skseg
    except ImportError as exc:  # pragma: no cover - scikit-image is in the demo extra
        raise ParameterError(
            "superpixels need scikit-image (pip install scikit-image), or use segmentation='grid'"
        ) from exc
    img = _display(image, classifier)
    fn = {"quickshift": skseg.quickshift, "slic": skseg.slic, "felzenszwalb": skseg.felzenszwalb}[segmentation]
    if segmentation == "quickshift":
        params = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2, **params}  # lime's defaults
    elif segmentation == "slic":
        params = {"n_segments": 50, "compactness": 10.0, "start_label": 0, **params}
    else:
        params = {"scale": 100, "sigma": 0.8, "min_size": 50, **params}
    try:
        labels = fn(img, **params)
    except TypeError as exc:
        raise ParameterError(f"scikit-image {segmentation} rejected segmentation_params: {exc}") from exc
    return relabel(torch.as_tensor(np.asarray(labels), dtype=torch.long, device=image.device))


def feature_map(
    x: torch.Tensor,
    index: int,
    segments: Any,
    segmentation_params: dict[str, Any] | None = None,
    classifier: Any = None,
    default: str = "slic",
) -> torch.Tensor:
    """The feature map of input ``index`` of ``x``: ``(1, H, W)`` for images, ``x.shape[1:]`` otherwise.

    ``segments``: ``None`` (``default`` for images, one feature per element otherwise), a segmentation name,
    or a tensor of labels: ``(H, W)``, ``(1|C, H, W)``, one per input ``(N, ...)``, or ``x.shape[1:]``.
    """
    shape = tuple(x.shape[1:])
    is_image = x.dim() == 4
    if segments is None:
        if not is_image:
            return torch.arange(int(np.prod(shape)), device=x.device).view(shape)
        segments = default
    if isinstance(segments, str):
        if not is_image:
            raise ParameterError(
                f"segments={segments!r} segments images; for (N, d) inputs pass None (one feature per "
                "column) or a tensor of group labels (d,)"
            )
        return image_segments(x[index], segments, segmentation_params, classifier)[None]
    seg = torch.as_tensor(segments, device=x.device)
    if seg.is_floating_point() or seg.dtype == torch.bool:
        raise ParameterError(f"segments must hold integer labels, got dtype {seg.dtype}")
    if seg.dim() == len(shape) + 1 and seg.shape[0] == x.shape[0]:
        seg = seg[index]
    elif is_image and seg.dim() == 3 and seg.shape[0] == x.shape[0] and seg.shape[0] not in (1, x.shape[1]):
        seg = seg[index]  # (N, H, W): one label map per image (N == C stays the per-channel (C, H, W) form)
    if is_image and seg.dim() == 2:
        seg = seg[None]
    if seg.dim() != len(shape) or any(a not in (1, b) for a, b in zip(seg.shape, shape)):
        raise ParameterError(
            f"segments of shape {tuple(seg.shape)} do not match the inputs {tuple(x.shape)}; give labels of "
            f"shape {shape[-2:] if is_image else shape}" + (" or (N, H, W)" if is_image else "")
        )
    return relabel(seg.long())


# ----------------------------------------------------------------------------------------------------------
# coalitions -> inputs -> values


class Masker:
    """Turns a coalition matrix ``(S, M)`` into model inputs for one input ``x`` ``(1, ...)``.

    Present features keep ``x``; absent ones take the baseline. With a background batch of ``B`` rows
    the inputs are ``(S * B, ...)`` and :meth:`values` averages the model over the background.
    """

    def __init__(self, x: torch.Tensor, segments: torch.Tensor, baseline: torch.Tensor) -> None:
        self.x = x
        self.segments = segments
        self.baseline = baseline
        self.n_features = int(segments.max()) + 1 if segments.numel() else 0
        self.n_background = int(baseline.shape[0])
        self._flat = segments.reshape(-1)
        self._delta = x - baseline  # (B, ...)

    def inputs(self, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Masked inputs ``(S * B, ...)`` for coalitions ``z`` ``(S, M)`` (0/1, bool or float).

        ``out`` (optional) is a buffer of at least ``S * B`` rows to write into (no allocation per call).
        """
        z = z.to(device=self.x.device, dtype=self.x.dtype)
        s = z.shape[0]
        # index_select is much faster than advanced indexing for a long index
        mask = torch.index_select(z, 1, self._flat).view(s, *self.segments.shape)  # (S, *seg)
        if out is not None:
            out = out[: s * self.n_background]
        if self.n_background == 1:
            if out is None:
                return torch.addcmul(self.baseline, mask, self._delta)  # b + mask * (x - b)
            return torch.addcmul(self.baseline, mask, self._delta, out=out.view(s, *self.x.shape[1:]))
        shape = (s, self.n_background, *self.x.shape[1:])
        b, m, d = self.baseline.unsqueeze(0), mask.unsqueeze(1), self._delta.unsqueeze(0)
        if out is None:
            return torch.addcmul(b, m, d).reshape(-1, *self.x.shape[1:])
        torch.addcmul(b, m, d, out=out.view(shape))
        return out

    def to_input_space(self, phi: torch.Tensor) -> torch.Tensor:
        """Per-feature values ``(..., M)`` spread over the input ``(..., *x.shape[1:])``."""
        spread = phi[..., self.segments.reshape(-1)].view(*phi.shape[:-1], *self.segments.shape)
        return spread.expand(*phi.shape[:-1], *self.x.shape[1:])

    def to_feature_map(self, phi: torch.Tensor) -> torch.Tensor:
        """Per-feature values ``(..., M)`` as a map of the segments' shape (channel axis of 1 dropped)."""
        spread = phi[..., self.segments.reshape(-1)].view(*phi.shape[:-1], *self.segments.shape)
        if self.x.dim() == 4 and self.segments.shape[0] == 1:
            spread = spread.squeeze(-3)
        return spread


def target_values(
    model: Callable[[torch.Tensor], object],
    inputs: torch.Tensor,
    target: int,
    batch_size: int,
) -> torch.Tensor:
    """``model(inputs)[:, target]`` in chunks of ``batch_size`` without autograd."""
    out = []
    with torch.no_grad():
        for a in range(0, inputs.shape[0], batch_size):
            chunk = inputs[a : a + batch_size]
            out.append(scores_from_output(model(chunk), chunk.shape[0])[:, target])
    return torch.cat(out) if out else inputs.new_zeros(0)


def _row_keys(z: np.ndarray) -> np.ndarray:
    """One sortable key per 0/1 row of ``z`` ``(S, M)``: its bits packed into an int64 (M <= 64), else
    into a byte string (exact for any M)."""
    packed = np.packbits(z, axis=1, bitorder="little")
    if packed.shape[1] <= 8:
        words = np.zeros((z.shape[0], 8), dtype=np.uint8)
        words[:, : packed.shape[1]] = packed
        return words.view("<i8").reshape(-1)
    return np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).reshape(-1)


def first_rows(z: torch.Tensor) -> np.ndarray:
    """``source[k]``: the index of the first row of ``z`` ``(S, M)`` equal to row ``k`` (numpy int64).

    Sorting one packed key per row (numpy, on the host: ``z`` is a few kB) is ~50x faster than
    ``torch.unique(dim=0)``, a lexicographic sort of whole rows.
    """
    rows = z.detach().cpu().numpy().astype(bool, copy=False)
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(_row_keys(rows), return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64, copy=False)


def first_occurrence(z: torch.Tensor) -> torch.Tensor:
    """:func:`first_rows` as a tensor on ``z``'s device."""
    return torch.from_numpy(first_rows(z)).to(z.device)


def distinct_chunks(game: Game, z: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """Evaluate each distinct coalition of ``z`` once, in order of first appearance, a model batch at a time.

    Sampled coalitions repeat (KernelSHAP draws the small and large sizes often, every Shapley ordering
    starts with a singleton): 7-30% of the rows for 16-50 features and 500-1000 samples. Yields
    ``(covered, values)`` after each batch, where ``values[:covered]`` is ``v(z[:covered])``.
    """
    s = z.shape[0]
    source = first_rows(z)
    fresh = source == np.arange(s)
    new = np.flatnonzero(fresh)  # the rows to evaluate, in order
    device = z.device
    new_t = torch.from_numpy(new).to(device)
    repeats = new.size < s
    if repeats:
        # row k's value is distinct[position[k]]: the rank of its first occurrence among the distinct rows
        position = torch.from_numpy((np.cumsum(fresh) - 1)[source]).to(device)
        distinct = torch.empty(new.size, dtype=game.masker.x.dtype, device=device)
    values = torch.empty(s, dtype=game.masker.x.dtype, device=device)
    taken = covered = 0
    while covered < s:
        rows = game(torch.index_select(z, 0, new_t[taken : taken + game.chunk]))
        (distinct if repeats else values)[taken : taken + rows.shape[0]] = rows
        taken += rows.shape[0]
        end = int(new[taken]) if taken < new.size else s
        if repeats:
            torch.index_select(distinct, 0, position[covered:end], out=values[covered:end])
        covered = end
        yield covered, values


class Game:
    """The cooperative game ``v(z) = E_background f_target(x_z)`` of one input, evaluated in batches.

    ``batch_size`` fixes the rows per model call; ``None`` lets :class:`ChunkPlanner` measure the fastest
    size (on CPU large batches spill the cache; the probes are real work). Masked inputs are written into
    one reused buffer, so a call allocates nothing per chunk.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], object],
        masker: Masker,
        target: int,
        batch_size: int | None,
        progress: Progress | None = None,
    ) -> None:
        self.model = model
        self.masker = masker
        self.target = int(target)
        self.planner = ChunkPlanner(
            row_bytes(masker.x), masker.x.device, None if batch_size is None else max(1, int(batch_size))
        )
        self.progress = progress
        self.n_features = masker.n_features
        self.evaluations = 0
        self._buffer: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Model rows per call (the planner's current size)."""
        return self.planner.size

    @property
    def chunk(self) -> int:
        """Coalitions per model call (each coalition is one row per background row)."""
        return max(1, self.planner.size // self.masker.n_background)

    def _buffer_for(self, rows: int) -> torch.Tensor:
        x = self.masker.x
        if self._buffer is None or self._buffer.shape[0] < rows:
            self._buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
        return self._buffer

    def _values(self, z: torch.Tensor) -> torch.Tensor:
        nb = self.masker.n_background
        inputs = self.masker.inputs(z, out=self._buffer_for(z.shape[0] * nb))
        scores = scores_from_output(self.model(inputs), inputs.shape[0])[:, self.target]
        self.evaluations += inputs.shape[0]
        return scores.reshape(-1, nb).mean(1) if nb > 1 else scores.clone()

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """``v`` for each row of ``z`` ``(S, M)``: ``(S,)`` in the model's dtype."""
        nb = self.masker.n_background
        out = []
        start = 0
        with torch.no_grad():
            while start < z.shape[0]:
                rows = max(1, self.planner.next((z.shape[0] - start) * nb) // nb)
                try:
                    out.append(self.planner.run(rows * nb, lambda _n, a=start, r=rows: self._values(z[a : a + r])))
                except Retry:
                    self._buffer = None
                    continue
                start += rows
        return torch.cat(out) if out else z.new_zeros(0, dtype=self.masker.x.dtype)
