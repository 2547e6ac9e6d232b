"""Device selection: computation happens where the model's parameters live."""

from __future__ import annotations

import torch
from torch import nn


def default_device() -> torch.device:
    """CUDA when present, otherwise CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: object) -> torch.device:
    """The device of the model's first parameter or buffer; CPU for parameter-free callables."""
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return torch.device("cpu")


def resolve_device(model: object, device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: an explicit ``device`` wins, else the model's device."""
    if device is not None:
        return torch.device(device)
    return model_device(model)
