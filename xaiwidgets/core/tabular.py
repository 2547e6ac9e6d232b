"""Tabular adapter: a model on ``(N, d)`` rows with feature names and a background data set.

Model-agnostic estimators (LIME, KernelSHAP, Anchors) see a row's ``d`` features as players: a coalition
matrix ``(S, d)`` says which features keep the row's value; the others are taken from the background
(interventional: averaged over the background rows). :meth:`TabularModel.score_coalitions` does that in
batches on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .device import model_device
from .errors import InputError, ModelError, ParameterError
from .targets import scores_from_output


def _as_rows(x: Any, d: int | None, what: str, device: torch.device) -> torch.Tensor:
    """``x`` as a float ``(N, d)`` tensor on ``device`` (a single row ``(d,)`` is batched)."""
    if hasattr(x, "to_numpy"):  # pandas
        x = x.to_numpy()
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise InputError(f"{what} hold non-numeric values; encode categorical columns as numbers first")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (list, tuple)):
        x = torch.as_tensor(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} must be a tensor or array (N, d), got {type(x).__name__}")
    x = x.detach()
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise InputError(f"{what} must be rows (N, d) or one row (d,); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{what} are empty (0 rows); pass at least one row (N, d)")
    if d is not None and x.shape[1] != d:
        raise InputError(f"{what} have {x.shape[1]} features but the model takes {d}; pass rows (N, {d})")
    if not x.is_floating_point():
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} contain NaN or infinite values; impute them before explaining")
    return x.to(device)


class TabularModel:
    """A model on ``(N, d)`` feature rows with feature names, class labels and a background data set.

    ``model`` is an ``nn.Module`` or a callable on float tensors returning ``(N, C)`` scores (a ``(N,)``
    output, e.g. a regressor, is read as one score column). ``numpy=True`` wraps a callable on numpy arrays
    (e.g. scikit-learn's ``predict_proba``). ``background`` (``(B, d)``) supplies the values of absent
    features and the bins of :meth:`quantile_bins`.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[Any], Any],
        *,
        feature_names: Sequence[str] | None = None,
        background: Any = None,
        labels: Sequence[str] | None = None,
        numpy: bool = False,
        name: str = "model",
    ) -> None:
        if not callable(model):
            raise ModelError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
        self.model = model
        self.numpy = bool(numpy)
        self.labels = list(labels) if labels is not None else None
        self.name = name
        self.background = None if background is None else _as_rows(background, None, "background", self.device)
        d = None if self.background is None else self.background.shape[1]
        if feature_names is not None:
            feature_names = [str(f) for f in feature_names]
            if d is not None and len(feature_names) != d:
                raise ParameterError(f"{len(feature_names)} feature names for {d} background columns")
        self.feature_names = feature_names
        if self.background is not None and self.background.shape[0] == 0:
            raise InputError("the background data set is empty; pass at least one row (B, d)")

    def __repr__(self) -> str:
        return f"TabularModel({self.name}, {self.n_features} features)"

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    @property
    def n_features(self) -> int | None:
        if self.feature_names is not None:
            return len(self.feature_names)
        return None if self.background is None else int(self.background.shape[1])

    def feature_name(self, i: int) -> str:
        return self.feature_names[i] if self.feature_names else f"x{i}"

    def label(self, index: int) -> str:
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class {index}"

    def rows(self, x: Any) -> torch.Tensor:
        """Validated ``(N, d)`` float rows on the model's device."""
        return _as_rows(x, self.n_features, "inputs", self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` scores of ``(N, d)`` rows (differentiable for torch models)."""
        if self.numpy:
            out = self.model(x.detach().cpu().numpy())
            out = torch.as_tensor(np.asarray(out), device=x.device)
            out = out.to(x.dtype) if out.is_floating_point() else out
        else:
            out = self.model(x)
        if isinstance(out, torch.Tensor) and out.dim() == 1:
            out = out.unsqueeze(1)
        return scores_from_output(out, x.shape[0])

    def eval(self) -> TabularModel:
        if isinstance(self.model, nn.Module):
            self.model.eval()
        return self

    @torch.no_grad()
    def predict(self, x: Any, batch_size: int = 1024) -> torch.Tensor:
        """``(N, C)`` scores of rows, in chunks, without autograd."""
        x = self.rows(x)
        return torch.cat([self(x[a : a + batch_size]) for a in range(0, x.shape[0], batch_size)])

    def _background(self, background: Any) -> torch.Tensor:
        if background is None:
            if self.background is None:
                raise ParameterError(
                    "absent features are taken from a background data set: pass background=(B, d) rows here "
                    "or to TabularModel(..., background=...)"
                )
            return self.background
        return _as_rows(background, self.n_features, "background", self.device)

    @torch.no_grad()
    def score_coalitions(
        self, x: Any, masks: Any, background: Any = None, *, batch_size: int = 4096
    ) -> torch.Tensor:
        """Scores ``(S, C)`` of one row ``x`` with the features outside each coalition replaced.

        ``masks`` is ``(S, d)`` (bool or 0/1): True keeps ``x``'s value, False takes the value of each
        background row; the model's scores are averaged over the ``B`` background rows (interventional
        expectation ``E_b f(x_S, b_{~S})``). ``batch_size`` bounds the rows per model call.
        """
        x = self.rows(x)
        if x.shape[0] != 1:
            raise InputError(f"score_coalitions explains one row at a time; got {x.shape[0]} rows")
        bg = self._background(background)
        z = torch.as_tensor(masks, device=x.device)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        if z.dim() != 2 or z.shape[1] != x.shape[1]:
            raise ParameterError(f"masks must be (S, {x.shape[1]}) (one column per feature); got {tuple(z.shape)}")
        z = z.bool()
        nb = bg.shape[0]
        per_call = max(1, int(batch_size) // nb)
        out = []
        for a in range(0, z.shape[0], per_call):
            zc = z[a : a + per_call, None, :]  # (s, 1, d)
            rows = torch.where(zc, x[None], bg[None]).reshape(-1, x.shape[1])  # (s * B, d)
            out.append(self(rows).view(zc.shape[0], nb, -1).mean(1))
        return torch.cat(out) if out else x.new_zeros(0, 0)

    def quantile_bins(self, n_bins: int = 4, background: Any = None) -> torch.Tensor:
        """Bin edges ``(d, n_bins - 1)`` at the background's quantiles (quartiles by default)."""
        bg = self._background(background)
        if n_bins < 2:
            raise ParameterError(f"n_bins must be at least 2, got {n_bins}")
        q = torch.linspace(0, 1, n_bins + 1, dtype=bg.dtype, device=bg.device)[1:-1]
        return torch.quantile(bg, q, dim=0).T.contiguous()

    @staticmethod
    def discretize(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Bin index ``(N, d)`` of each value given per-feature edges ``(d, K)`` (value <= edge: lower bin)."""
        return (x.unsqueeze(-1) > edges.unsqueeze(0)).sum(-1)
