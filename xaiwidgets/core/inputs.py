"""Input validation: rank, channels, dtype and finiteness, with messages that say what to do."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import InputError


def first_conv_channels(model: object) -> int | None:
    """``in_channels`` of the first ``Conv2d`` in the model, if it has one."""
    if isinstance(model, nn.Module):
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                return module.in_channels
    return None


def model_dtype(model: object) -> torch.dtype | None:
    """The floating dtype of the model's first floating parameter (None for callables without one)."""
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
    return None


def as_batch(inputs: object, model: object = None, *, device: torch.device | None = None) -> torch.Tensor:
    """Validate ``inputs`` and return a float ``(N, ...)`` tensor on ``device``.

    A single unbatched image ``(C, H, W)`` is batched when the model's first convolution takes ``C``
    channels; without a convolution a 3-D tensor is taken as a batch (e.g. token embeddings
    ``(N, T, D)``). Floating inputs are cast to the dtype of the model's parameters (numpy arrays are
    float64). Raises :class:`InputError` for non-tensors, integer or boolean tensors, NaN/inf, a
    wrong rank or a wrong channel count.
    """
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
    if not isinstance(inputs, torch.Tensor):
        raise InputError(
            f"inputs must be a torch.Tensor, got {type(inputs).__name__}; for images use "
            "classifier.preprocess(image) or torchvision transforms first"
        )
    if not inputs.is_floating_point():
        raise InputError(
            f"inputs have dtype {inputs.dtype}; gradients need floating point inputs. Convert with "
            ".float() (and normalise images as the model expects)"
        )
    dtype = model_dtype(model)
    if dtype is not None and inputs.dtype != dtype:
        inputs = inputs.to(dtype)  # numpy images are float64; the model's layers need their own dtype
    channels = first_conv_channels(model)
    if inputs.dim() == 3 and channels is not None and channels == inputs.shape[0]:
        inputs = inputs.unsqueeze(0)
    if channels is not None:
        if inputs.dim() != 4:
            raise InputError(
                f"this model takes images (N, {channels}, H, W) or one image ({channels}, H, W); "
                f"got shape {tuple(inputs.shape)}"
            )
        if inputs.shape[1] != channels:
            raise InputError(
                f"the model's first convolution takes {channels} channels but the inputs have "
                f"{inputs.shape[1]} (shape {tuple(inputs.shape)}); inputs are (N, C, H, W)"
                + (" — channels-last images need .permute(0, 3, 1, 2)" if inputs.shape[-1] == channels else "")
            )
    if inputs.dim() < 2:
        raise InputError(f"inputs must be a batch (N, ...); got shape {tuple(inputs.shape)}")
    if inputs.shape[0] == 0:
        raise InputError("inputs are an empty batch")
    if not bool(torch.isfinite(inputs).all()):
        raise InputError("inputs contain NaN or infinite values; clean them before explaining")
    if device is not None:
        inputs = inputs.to(device)
    return inputs.detach()
