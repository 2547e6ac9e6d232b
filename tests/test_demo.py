"""Offline demo assets: the synthetic shapes data set, the bundled shapes CNN, the ImageNet demo model and
the torchvision loader (with the download mocked: the tests never touch the network)."""

from __future__ import annotations

import contextlib
import urllib.error
from unittest import mock

import pytest
import torch

from xaiwidgets.core.adapters import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.core.layers import find_last_spatial_layer
from xaiwidgets.demo.shapes import SHAPE_CLASSES, ShapesData, make_shapes
from xaiwidgets.demo.shapes_model import (
    SHAPES_CAM_LAYER,
    ShapesCNN,
    load_shapes_cnn,
    shapes_classifier,
    weights_path,
)
from xaiwidgets.demo.torchvision_models import WeightsUnavailableError, torchvision_model

FRESH_SEED = 20240607  # never used in training (train seed 0, test seed 1)


@pytest.fixture(scope="module")
def shapes() -> ShapesData:
    return make_shapes(300, seed=7)


# --- make_shapes ---------------------------------------------------------------------------------------


def test_make_shapes_types_and_ranges(shapes: ShapesData) -> None:
    n, size = 300, 64
    assert len(shapes) == n
    assert shapes.images.shape == (n, 3, size, size) and shapes.images.dtype == torch.float32
    assert shapes.labels.shape == (n,) and shapes.labels.dtype == torch.long
    assert shapes.masks.shape == (n, size, size) and shapes.masks.dtype == torch.bool
    assert shapes.boxes.shape == (n, 4) and shapes.boxes.dtype == torch.long
    assert shapes.classes == SHAPE_CLASSES == ("circle", "square", "triangle", "cross")
    assert 0.0 <= float(shapes.images.min()) and float(shapes.images.max()) <= 1.0
    assert ((shapes.labels >= 0) & (shapes.labels < len(shapes.classes))).all()
    assert set(shapes.labels.tolist()) == {0, 1, 2, 3}  # every class occurs in 300 draws
    with pytest.raises(AttributeError):  # frozen
        shapes.labels = shapes.labels  # type: ignore[misc]


def test_make_shapes_is_deterministic() -> None:
    a, b, c = (make_shapes(40, size=32, seed=s) for s in (3, 3, 4))
    for name in ("images", "labels", "masks", "boxes"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.masks, c.masks)
    # a prefix of a longer draw is the shorter draw (also across the 256-image chunk boundary)
    long = make_shapes(300, size=32, seed=3)
    assert torch.equal(long.images[:40], a.images) and torch.equal(long.boxes[:40], a.boxes)
    assert torch.equal(make_shapes(270, size=32, seed=3).masks, long.masks[:270])


def test_masks_and_boxes_are_consistent(shapes: ShapesData) -> None:
    size = shapes.images.shape[-1]
    for mask, box in zip(shapes.masks, shapes.boxes):
        ys, xs = mask.nonzero(as_tuple=True)
        assert len(xs) > 0, "empty object mask"
        expected = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        assert box.tolist() == expected  # the box is the mask's bounding box, ends exclusive
        x0, y0, x1, y1 = expected
        assert 0 < x0 < x1 < size and 0 < y0 < y1 < size  # the whole object lies inside the image
    # the mask marks the object in the image: inside it the colour is uniform up to the pixel noise and
    # differs clearly from the background
    for image, mask in zip(shapes.images[:50], shapes.masks[:50]):
        inside, outside = image[:, mask], image[:, ~mask]
        assert float(inside.std(1).max()) < 0.06
        assert float((inside.mean(1) - outside.mean(1)).abs().max()) > 0.2


def test_shape_geometry_matches_labels(shapes: ShapesData) -> None:
    area = shapes.masks.sum((1, 2)).float()
    width = (shapes.boxes[:, 2] - shapes.boxes[:, 0]).float()
    height = (shapes.boxes[:, 3] - shapes.boxes[:, 1]).float()
    circles = shapes.labels == 0
    # a disc: square box, fills pi/4 of it
    assert ((width - height).abs()[circles] <= 1).all()
    fill = area / (width * height)
    assert ((fill[circles] - torch.pi / 4).abs() < 0.1).all()
    # a triangle fills at most about half its box; a disc or a square clearly more
    assert (fill[shapes.labels == 2] < 0.62).all()
    assert (fill[shapes.labels == 1] > 0.45).all()


def test_make_shapes_other_size_and_bad_arguments() -> None:
    small = make_shapes(5, size=32, seed=1)
    assert small.images.shape == (5, 3, 32, 32) and small.masks.any((1, 2)).all()
    assert len(make_shapes(0)) == 0
    with pytest.raises(ParameterError, match="non-negative int"):
        make_shapes(-1)
    with pytest.raises(ParameterError, match="size must be an int >= 16"):
        make_shapes(3, size=8)


# --- the shapes CNN ------------------------------------------------------------------------------------


def test_shapes_weights_file_is_small_and_bundled() -> None:
    path = weights_path()
    assert path.is_file()
    with path.open("rb") as f:
        size = len(f.read())
    assert size < 2 * 1024 * 1024


def test_shapes_classifier_is_accurate_on_fresh_samples() -> None:
    clf = shapes_classifier()
    assert isinstance(clf, ImageClassifier) and isinstance(clf.model, ShapesCNN)
    assert not clf.model.training
    assert clf.labels == list(SHAPE_CLASSES)
    assert clf.mean == (0.5, 0.5, 0.5) and clf.std == (0.5, 0.5, 0.5) and clf.input_size == (64, 64)
    data = make_shapes(256, seed=FRESH_SEED)
    x = clf.preprocess(data.images)
    assert torch.allclose(x, (data.images - 0.5) / 0.5)
    predicted = clf.probabilities(x).argmax(1)
    accuracy = float((predicted == data.labels).float().mean())
    assert accuracy >= 0.9, accuracy


def test_shapes_cnn_structure_suits_cam() -> None:
    model = load_shapes_cnn()
    x = torch.zeros(2, 3, 64, 64)
    assert find_last_spatial_layer(model, lambda: model(x)) == SHAPES_CAM_LAYER == "last_conv"
    # GAP + linear: the logits are the spatial mean of the class activation maps plus the bias (CAM)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = model.last_conv(model.features(x))  # (2, C, 8, 8)
        cams = torch.einsum("kc,nchw->nkhw", model.fc.weight, maps)
        logits = model(x)
    assert maps.shape[-2:] == (8, 8)
    torch.testing.assert_close(cams.mean((2, 3)) + model.fc.bias, logits, rtol=1e-5, atol=1e-5)


def test_train_script_runs_and_writes_loadable_weights(tmp_path) -> None:
    from xaiwidgets.demo import train_shapes

    out = tmp_path / "w.pt"
    train_shapes.main(["--n-train", "128", "--n-test", "32", "--epochs", "1", "--out", str(out)])
    state = torch.load(out, weights_only=True)
    ShapesCNN().load_state_dict(state)


# --- the ImageNet demo model ---------------------------------------------------------------------------


def test_imagenet_demo_classifies_sample_photos(effnet) -> None:
    from xaiwidgets.demo import load_image

    x = effnet.preprocess([load_image("chelsea"), load_image("coffee")])
    top = effnet.top_k(x, k=1)
    assert top[0][0]["label"] == "Egyptian cat" and top[0][0]["prob"] > 0.5, top[0]
    assert top[1][0]["label"] == "espresso", top[1]


# --- torchvision models (download mocked) --------------------------------------------------------------


def _fake_download(arch: str, calls: list[str]):
    """A stand-in for ``load_state_dict_from_url``: the state dict of a freshly built ``arch``."""
    import torchvision

    def load(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append(url)
        torch.manual_seed(0)
        return torchvision.models.get_model(arch, weights=None).state_dict()

    return load


def _patch_download(fake) -> contextlib.ExitStack:
    """Replace the download everywhere torchvision may call it (WeightsEnum.get_state_dict uses the name
    bound in ``torchvision.models._api``)."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch("torch.hub.load_state_dict_from_url", fake))
    stack.enter_context(mock.patch("torchvision.models._api.load_state_dict_from_url", fake))
    return stack


@pytest.mark.parametrize(("arch", "crop"), [("resnet18", 224), ("mobilenet_v3_small", 224)])
def test_torchvision_model_with_mocked_download(arch: str, crop: int) -> None:
    from torchvision.models import get_model_weights

    from xaiwidgets.demo import load_image

    weights = get_model_weights(arch).DEFAULT
    calls: list[str] = []
    with _patch_download(_fake_download(arch, calls)):
        clf = torchvision_model(arch)
    assert calls == [weights.url]
    assert not clf.model.training
    assert clf.labels == list(weights.meta["categories"]) and len(clf.labels) == 1000
    assert clf.labels[0] == "tench"
    transform = weights.transforms()
    assert clf.mean == tuple(transform.mean) and clf.std == tuple(transform.std)
    assert clf.input_size == (crop, crop)
    x = clf.preprocess(load_image("coffee"))  # 400x600 photo: resize, centre crop, normalise
    assert x.shape == (1, 3, crop, crop)
    probs = clf.probabilities(x)
    assert probs.shape == (1, 1000) and torch.isfinite(probs).all()


def test_torchvision_model_failed_download_says_where_to_put_weights() -> None:
    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with _patch_download(offline), pytest.raises(WeightsUnavailableError) as info:
        torchvision_model("resnet18", weights="IMAGENET1K_V1")
    assert isinstance(info.value, ImportError)
    message = str(info.value)
    assert torch.hub.get_dir() in message and "torch.hub.get_dir()" in message
    assert "resnet18-f37072fd.pth" in message and "weights=None" in message


def test_torchvision_model_random_weights_and_bad_names() -> None:
    clf = torchvision_model("resnet18", weights=None)
    assert clf.labels is None and clf.input_size == (224, 224)
    assert clf.mean == IMAGENET_MEAN and clf.std == IMAGENET_STD
    with torch.no_grad():
        assert clf(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    with pytest.raises(ParameterError, match="Did you mean: resnet50"):
        torchvision_model("resnet_50")
    with pytest.raises(ParameterError, match="IMAGENET1K_V2"):
        torchvision_model("resnet50", weights="IMAGENET")
