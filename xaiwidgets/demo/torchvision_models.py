"""Torchvision classifiers as :class:`ImageClassifier` adapters, with labels and preprocessing from the weights.

This is the real-user path: pretrained weights are downloaded by torchvision into the torch hub cache
(``torch.hub.get_dir()``) on first use, where the network allows it. The demo and the tests never download.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch

from ..core.adapters import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier, image_to_tensor
from ..core.errors import ParameterError, XAIError


class WeightsUnavailableError(XAIError, ImportError):
    """Pretrained weights could not be downloaded or read (no network, blocked host, corrupt file)."""


def _resolve_weights(name: str, weights: Any) -> Any:
    """The torchvision ``WeightsEnum`` member for ``weights`` (``"DEFAULT"``, ``"IMAGENET1K_V2"``, a full
    ``"ResNet50_Weights.IMAGENET1K_V2"`` name, or a member), or None."""
    from torchvision.models import get_model_weights

    if weights is None:
        return None
    enum = get_model_weights(name)
    try:
        return enum.verify(weights)
    except (KeyError, TypeError) as exc:
        options = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise ParameterError(
            f"unknown weights {weights!r} for torchvision model {name!r}; choose one of {options} or None"
        ) from exc


def _check_name(name: str) -> None:
    from torchvision.models import list_models

    names = list_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ParameterError(
            f"torchvision has no model named {name!r}.{hint} See torchvision.models.list_models()."
        )


def _download_error(name: str, weights: Any, exc: BaseException) -> WeightsUnavailableError:
    hub_dir = torch.hub.get_dir()
    url = getattr(weights, "url", "?")
    file = url.rsplit("/", 1)[-1]
    return WeightsUnavailableError(
        f"could not download the pretrained weights {weights} for torchvision model {name!r} "
        f"({type(exc).__name__}: {exc}). Without network access, download {url} elsewhere and place it "
        f"as {hub_dir}/checkpoints/{file} (the torch hub cache, torch.hub.get_dir()), or pass "
        "weights=None for random weights."
    )


def torchvision_model(
    name: str = "resnet50", weights: str | Any | None = "DEFAULT", device: str | torch.device | None = None
) -> ImageClassifier:
    """``torchvision.models.get_model(name, weights=weights)`` in eval mode, as an :class:`ImageClassifier`.

    Labels come from ``weights.meta["categories"]``; mean, std and input size (``crop_size``) from
    ``weights.transforms()``, whose resize-then-centre-crop pipeline is also the adapter's ``preprocess``.
    ``weights=None`` gives random weights with ImageNet defaults (mean/std, 224x224, no labels). Raises
    :class:`WeightsUnavailableError` (an ``ImportError``) when the download fails.
    """
    from torchvision.models import get_model

    if not isinstance(name, str):
        raise ParameterError(f"name must be a torchvision model name such as 'resnet50', got {name!r}")
    _check_name(name)
    resolved = _resolve_weights(name, weights)
    transform = resolved.transforms() if resolved is not None else None
    if transform is not None and not all(hasattr(transform, a) for a in ("crop_size", "mean", "std")):
        raise ParameterError(
            f"{name!r} is not an image classifier (its weights' transforms have no crop_size/mean/std); "
            "pick a classification model from torchvision.models.list_models(torchvision.models)"
        )
    try:
        model = get_model(name, weights=resolved)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError/HTTPError are OSErrors; bad files raise
        if resolved is None:
            raise
        raise _download_error(name, resolved, exc) from exc
    model.eval()
    if device is not None:
        model.to(device)

    if resolved is None or transform is None:
        return ImageClassifier(
            model, labels=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, name=name
        )
    crop = transform.crop_size
    input_size = crop[0] if len(crop) == 1 else tuple(crop)

    def preprocess(image: Any) -> torch.Tensor:
        return transform(image_to_tensor(image))

    return ImageClassifier(
        model,
        labels=resolved.meta.get("categories"),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        input_size=input_size,
        preprocess=preprocess,
        name=f"{name} ({resolved})",
    )
