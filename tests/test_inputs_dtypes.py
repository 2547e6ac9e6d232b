"""Image inputs by dtype (8/16-bit integers, float ranges), float16/bfloat16 models, huge images, and
labels that matplotlib would read as mathtext. Issue 15, items 6 and 7."""

from __future__ import annotations

import base64
import copy
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import xaiwidgets as xw
from xaiwidgets.core.adapters import image_to_tensor, unit_range
from xaiwidgets.core.errors import InputError

RNG = np.random.default_rng(0)
IMAGE8 = RNG.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)


def unit(image: object) -> torch.Tensor:
    return image_to_tensor(image)


def test_sixteen_bit_images_are_scaled_by_their_range() -> None:
    expected = unit(IMAGE8)
    u16 = IMAGE8.astype(np.uint16) * 257  # the same picture in 16 bits: v * 257 / 65535 == v / 255
    torch.testing.assert_close(unit(u16), expected, rtol=0, atol=1e-6)
    gray8, gray16 = IMAGE8[..., 0], u16[..., 0]
    pil16 = Image.fromarray(gray16)
    assert pil16.mode.startswith("I;16")
    torch.testing.assert_close(unit(pil16), unit(Image.fromarray(gray8)), rtol=0, atol=1e-6)
    pil_i = Image.fromarray(gray16.astype(np.int32))  # Pillow's 32-bit mode "I" (older 16-bit PNG loading)
    assert pil_i.mode == "I"
    torch.testing.assert_close(unit(pil_i), unit(Image.fromarray(gray8)), rtol=0, atol=1e-6)
    torch.testing.assert_close(unit(IMAGE8.astype(np.int64)), expected)  # numpy's default ints: 8-bit values
    torch.testing.assert_close(unit(torch.from_numpy(IMAGE8).permute(2, 0, 1)), expected)  # read_image's uint8


def test_float_images_in_0_1_or_0_255_and_refused_otherwise() -> None:
    expected = unit(IMAGE8)
    torch.testing.assert_close(unit(IMAGE8 / 255.0), expected)
    torch.testing.assert_close(unit(IMAGE8.astype(np.float32)), expected)  # 8-bit values cast to float
    overshoot = IMAGE8 / 255.0 * 1.04 - 0.02  # bicubic resampling overshoot: clipped
    assert float(unit(overshoot).min()) == 0.0 and float(unit(overshoot).max()) == 1.0
    with pytest.raises(InputError, match="normalised already"):
        unit((IMAGE8 / 255.0 - 0.45) / 0.22)
    with pytest.raises(InputError, match="16-bit"):
        unit(IMAGE8.astype(np.float32) * 257)
    with pytest.raises(InputError, match=r"\[0, 1.5\]"):
        unit(np.linspace(0, 1.5, 20 * 24 * 3).reshape(20, 24, 3))  # neither [0, 1] nor 8-bit: ambiguous
    with pytest.raises(InputError, match="NaN"):
        unit(np.full((4, 4, 3), np.nan))
    with pytest.raises(InputError, match="bit depth"):
        unit(np.full((4, 4), -3))
    assert unit_range(np.array([[True, False]])).tolist() == [[1.0, 0.0]]


def test_preprocess_of_a_16_bit_image_predicts_as_the_8_bit_one(effnet) -> None:
    image = xw.demo.load_image("chelsea")
    x8 = effnet.preprocess(image)
    x16 = effnet.preprocess(image.astype(np.uint16) * 257)
    torch.testing.assert_close(x16, x8, rtol=0, atol=1e-5)
    assert effnet.top_k(x16, 1)[0][0]["label"] == "Egyptian cat"


# -- float16 / bfloat16 models --------------------------------------------------------------------------

# Inputs and every activation are rounded to the model's dtype (eps 2^-11 for float16, 2^-8 for
# bfloat16): ReLU gates that the rounding flips and the backward pass make the tiny CNN's maps differ from
# float32 by up to 44 eps of their maximum (measured: saliency 1.7 eps on uniform inputs, 44 on normalised
# ones in float16, 20 and 10 in bfloat16; Integrated Gradients 26 and 11; Grad-CAM 2): 64 eps. Loss
# scaling the float16 backward (x 2^10) changed nothing: no gradient underflows here, the forward rounds.
TOLERANCE_EPS = 64
EPS = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
LOW_PRECISION_METHODS = {"saliency": {}, "gradcam": {}, "integrated_gradients": {"n_steps": 8}}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attribute_on_low_precision_models(tiny_cnn, dtype) -> None:
    low = copy.deepcopy(tiny_cnn).to(dtype)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # float32: cast by as_batch
    for method, params in LOW_PRECISION_METHODS.items():
        ref = xw.attribute(tiny_cnn, x, method=method, target=[1, 2], progress=False, **params).values
        a = xw.attribute(low, x, method=method, target=[1, 2], progress=False, **params)
        assert a.values.dtype == dtype and bool(torch.isfinite(a.values).all())
        err = float((a.values.float() - ref).abs().max() / ref.abs().max())
        assert err <= TOLERANCE_EPS * EPS[dtype], (method, err)
    assert all(p.dtype == dtype for p in low.parameters())  # the model is left as it was


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_explain_dashboard_on_low_precision_models(tiny_cnn, dtype) -> None:
    """The dashboard's path: preprocess (float32 image -> the model's dtype), top-k, the maps, the PNG."""
    labels = ["a", "b", "c", "d"]
    image = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    clf = xw.ImageClassifier(copy.deepcopy(tiny_cnn).to(dtype), labels=labels, input_size=16)
    ref = xw.ImageClassifier(tiny_cnn, labels=labels, input_size=16)
    assert clf.preprocess(image).dtype == dtype
    methods = list(LOW_PRECISION_METHODS)
    params = {m: p for m, p in LOW_PRECISION_METHODS.items() if p}
    dash = xw.explain(clf, image, methods=methods, target=1, params=params, wait=True)
    expected = xw.explain(ref, image, methods=methods, target=1, params=params, wait=True)
    assert [p["state"] for p in dash.panels] == ["done"] * 3, [p["error"] for p in dash.panels]
    for method in methods:
        ours, theirs = dash.result(method), expected.result(method)
        assert ours.dtype == np.float32
        assert np.abs(ours - theirs).max() <= TOLERANCE_EPS * EPS[dtype] * np.abs(theirs).max(), method
    assert base64.b64decode(dash._repr_mimebundle_()[0]["image/png"]).startswith(b"\x89PNG")


# -- huge images and literal labels ---------------------------------------------------------------------


def test_huge_image_on_a_bare_module_warns_and_is_shown_downscaled(tiny_cnn) -> None:
    image = RNG.integers(0, 256, size=(1100, 1200, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match=r"full size, 1200x1100 \(1.3 MP\).*input_size"):
        dash = xw.explain(tiny_cnn, image, methods=["saliency"], target=0, wait=True)
    assert dash.inputs.shape[-2:] == (1100, 1200)  # the model got what it was given
    assert dash.image["shape"] == [939, 1024, 3]
    assert dash.panels[0]["state"] == "done" and dash.panels[0]["heatmap"]["shape"] == [939, 1024]
    full = xw.attribute(tiny_cnn, dash.inputs, method="saliency", target=0).heatmap()[0]
    shown = dash.result("saliency")
    assert shown.shape == (939, 1024)
    assert abs(float(shown.mean()) - float(full.mean())) <= 1e-3 * float(full.mean())  # antialiased: means kept
    assert base64.b64decode(dash._repr_mimebundle_()[0]["image/png"]).startswith(b"\x89PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 224x224 image says nothing
        xw.explain(tiny_cnn, image[:224, :224], methods=["saliency"], target=0, wait=True)


def test_labels_with_dollar_signs_are_drawn_literally(tiny_cnn) -> None:
    labels = ["$5 bill", "a $x_$ label", "a $x^2$ label", "100%"]  # the second is invalid mathtext
    image = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    clf = xw.ImageClassifier(tiny_cnn, labels=labels, input_size=16, mean=None, std=None)
    before = dict(matplotlib.rcParams)
    for target in (0, 1, 2):
        dash = xw.explain(clf, image, methods=["saliency"], target=target, wait=True)
        data, _ = dash._repr_mimebundle_()
        assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
        assert "<img" in xw.to_html(dash)
    assert dict(matplotlib.rcParams) == before  # the notebook's settings are untouched
