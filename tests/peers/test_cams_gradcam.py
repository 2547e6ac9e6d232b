"""CAM family vs pytorch-grad-cam 1.5.7 (jacobgil/pytorch-grad-cam), class of the same name.

Oracle: ``pytorch_grad_cam.<Class>(model, [layer])(x, [ClassifierOutputTarget(t)])``, which returns maps
ReLU'd, min-max scaled per image and resized with OpenCV. We min-max scale our unnormalised ``values`` the
same way and require Pearson >= 0.999 (Score-CAM, Ablation-CAM: >= 0.99). Where the definitions agree we
also compare the unnormalised layer-resolution map with the peer's ``get_cam_image`` (its map before
ReLU and scaling) with ``relu=False``: allclose, rtol 1e-5 (atol 1e-5 of the map's scale; float32 sums in
another order).

Models: seeded random torchvision ResNet-18 at 64x64 (layer ``layer4``, targets 3 and 5), and the demo
EfficientNet-Lite0 (ImageNet weights) on the real 'chelsea' photo at 224 (layer ``_conv_head``; Score-CAM
on ``_blocks.7`` (80 channels) and Ablation-CAM on ``_bn1`` at 112x112 to keep the peer's 1280 full
reruns affordable).

Expected differences: EigenCAM/EigenGradCAM's SVD sign is arbitrary in the peer; we orient it (EigenCAM by the
activations' length, EigenGradCAM by the channel sum: docs/differences.md), so the raw maps agree up to a sign
per image and the scaled maps are compared with the peer's projection given our orientation (their code
otherwise). Score-CAM: same masks (align_corners=True) and softmax; its raw map is compared at rtol 1e-4
because the masked scores come from batches of other sizes (float32 summation order inside the convolutions).
Ablation-CAM sets ablated channels to 0 as the paper; the peer does so only when the layer's minimum is 0
(``layer4`` of the ResNet is post-ReLU), so on EfficientNet's ``_bn1`` the oracle is the peer's AblationCAM
with an ``AblationLayer`` that always zeroes. ``cam``: pytorch-grad-cam has no plain CAM; its GradCAM on a GAP
+ linear head at the pooled layer equals CAM / (h*w) (the mean of the gradients is W[c] / (h*w)), used as the
oracle on the ResNet; on EfficientNet, whose pooled map is the output of a shared functional ReLU6 (no module
outputs it), the oracle is the definition W[c] . extract_features(x).
"""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_grad_cam as pgc
import torch
import torch.nn.functional as F
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import xaiwidgets as xw
import xaiwidgets.methods.cam  # registers the CAM family

pytestmark = pytest.mark.peers

GRADIENT = {
    "gradcam": "GradCAM", "gradcam_plus_plus": "GradCAMPlusPlus", "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM", "layercam": "LayerCAM", "eigengradcam": "EigenGradCAM", "eigencam": "EigenCAM",
}
EIGEN = {"eigencam", "eigengradcam"}


def scaled(values: torch.Tensor) -> np.ndarray:
    v = values[:, 0].double().numpy()
    v = v - v.min(axis=(1, 2), keepdims=True)
    return v / (v.max(axis=(1, 2), keepdims=True) + 1e-7)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def peer_unscaled(cls_name, model, layer, x, targets, eigen_smooth=False):
    """(peer's scaled output, peer's unscaled per-layer map before ReLU) from one forward/backward."""
    cam = getattr(pgc, cls_name)(model, [layer])
    try:
        out = cam(x, [ClassifierOutputTarget(int(t)) for t in targets], eigen_smooth=eigen_smooth)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy() if cam.activations_and_grads.gradients else None
        raw = cam.get_cam_image(x, layer, None, acts, grads, eigen_smooth)
    finally:
        cam.activations_and_grads.release()
    return out, np.asarray(raw)


def assert_raw_equal(ours: torch.Tensor, theirs: np.ndarray, up_to_sign: bool = False) -> None:
    ours_np = ours[:, 0].double().numpy()
    theirs = theirs.astype(np.float64)
    if up_to_sign:
        signs = np.sign((ours_np * theirs).sum(axis=(1, 2)))[:, None, None]
        theirs = theirs * signs
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours_np, theirs, rtol=1e-5, atol=1e-5 * scale)


def oriented_peer_scaled(theirs_raw: np.ndarray, ours_raw: torch.Tensor, size) -> np.ndarray:
    """The peer's pipeline (ReLU, scale, resize, scale) on its projection flipped to our orientation."""
    signs = np.sign((ours_raw[:, 0].double().numpy() * theirs_raw).sum(axis=(1, 2)))[:, None, None]
    cam = np.maximum(theirs_raw * signs, 0)
    return scale_cam_image(scale_cam_image(cam, size))


@pytest.mark.parametrize("method", list(GRADIENT))
def test_resnet18_gradient_and_eigen_cams(resnet18, small_input, method):
    targets = [3, 5]
    ours = xw.attribute(resnet18, small_input, method=method, target=targets, layer="layer4", progress=False)
    signed = xw.attribute(resnet18, small_input, method=method, target=targets, layer="layer4", relu=False,
                          progress=False)
    theirs, theirs_raw = peer_unscaled(GRADIENT[method], resnet18, resnet18.layer4, small_input, targets)
    assert_raw_equal(signed.raw, theirs_raw, up_to_sign=method in EIGEN)
    if method in EIGEN:
        theirs = oriented_peer_scaled(theirs_raw, signed.raw, (64, 64))
    for i in range(2):
        assert pearson(scaled(ours.values)[i], theirs[i]) >= 0.999


@pytest.mark.parametrize("method", ["gradcam", "gradcam_plus_plus", "layercam"])
def test_resnet18_eigen_smooth(resnet18, small_input, method):
    ours = xw.attribute(resnet18, small_input, method=method, target=[3, 5], layer="layer4", relu=False,
                        eigen_smooth=True, progress=False)
    _theirs, theirs_raw = peer_unscaled(GRADIENT[method], resnet18, resnet18.layer4, small_input, [3, 5],
                                        eigen_smooth=True)
    assert_raw_equal(ours.raw, theirs_raw, up_to_sign=True)


def test_resnet18_aug_smooth(resnet18, small_input):
    """Same 6 augmentations (flip x multiply 0.9/1/1.1). The peer min-max scales each augmented map before
    averaging, we average unnormalised maps; so the oracle check is on the augmentations: the mean of our
    per-augmentation maps, each scaled as the peer does, must match the peer's aug_smooth output. The
    aug_smooth=True result itself is tested against that mean (unscaled) in tests/test_cams.py."""
    from xaiwidgets.methods.cam.base import AUGMENTATIONS

    maps = []
    for flip, factor in AUGMENTATIONS:
        xa = (small_input.flip(-1) if flip else small_input) * factor
        v = xw.attribute(resnet18, xa, method="gradcam", target=[3, 5], layer="layer4", progress=False).values
        maps.append(scaled(v.flip(-1) if flip else v))
    ours_scaled_then_averaged = np.mean(maps, axis=0)[:, None]
    cam = pgc.GradCAM(resnet18, [resnet18.layer4])
    try:
        theirs = cam(small_input, [ClassifierOutputTarget(3), ClassifierOutputTarget(5)], aug_smooth=True)
    finally:
        cam.activations_and_grads.release()
    for i in range(2):
        assert pearson(scaled(torch.from_numpy(ours_scaled_then_averaged))[i], theirs[i]) >= 0.999


def test_resnet18_scorecam(resnet18, small_input):
    x = small_input[:1]
    ours = xw.attribute(resnet18, x, method="scorecam", target=3, layer="layer4", progress=False)
    cam = pgc.ScoreCAM(resnet18, [resnet18.layer4])
    try:
        theirs = cam(x, [ClassifierOutputTarget(3)])
    finally:
        cam.activations_and_grads.release()
    assert pearson(scaled(ours.values)[0], theirs[0]) >= 0.99


def test_resnet18_ablationcam_exact(resnet18, small_input):
    """layer4 is post-ReLU (min 0): both zero the channel, so the unnormalised maps agree."""
    x = small_input[:1]
    ours = xw.attribute(resnet18, x, method="ablationcam", target=3, layer="layer4", relu=False, progress=False)
    assert ours.extras["ablation_rerun"] == "after the layer"
    cam = pgc.AblationCAM(resnet18, [resnet18.layer4])
    try:
        acts = xw.methods.cam.base.capture(resnet18, x, [xw.methods.cam.base.LayerSpec("layer4", resnet18.layer4)],
                                           3, gradients=False).acts[0]
        assert float(acts.min()) == 0.0
        theirs_raw = cam.get_cam_image(x, resnet18.layer4, [ClassifierOutputTarget(3)], acts.numpy(), None, False)
    finally:
        cam.activations_and_grads.release()
    assert_raw_equal(ours.raw, np.asarray(theirs_raw))
    theirs = scale_cam_image(scale_cam_image(np.maximum(theirs_raw, 0), (64, 64)))
    relu = xw.attribute(resnet18, x, method="ablationcam", target=3, layer="layer4", progress=False)
    assert pearson(scaled(relu.values)[0], theirs[0]) >= 0.99


def test_resnet18_cam_vs_peer_gradcam(resnet18, small_input):
    """CAM = (h*w) x Grad-CAM's map at the pooled layer, for a GAP + linear head."""
    ours = xw.attribute(resnet18, small_input, method="cam", target=[3, 5], relu=False, progress=False)
    assert ours.extras["layer"] == "layer4"
    theirs, theirs_raw = peer_unscaled("GradCAM", resnet18, resnet18.layer4, small_input, [3, 5])
    hw = ours.raw.shape[-1] * ours.raw.shape[-2]
    assert_raw_equal(ours.raw, theirs_raw * hw)
    relu = xw.attribute(resnet18, small_input, method="cam", target=[3, 5], progress=False)
    for i in range(2):
        assert pearson(scaled(relu.values)[i], theirs[i]) >= 0.999


# -- EfficientNet-Lite0 (real weights) on the chelsea photo ----------------------------------------------


@pytest.mark.parametrize("method", list(GRADIENT))
def test_effnet_chelsea(effnet, chelsea, method):
    model = effnet.model
    target = [int(effnet.probabilities(chelsea).argmax())]
    ours = xw.attribute(effnet, chelsea, method=method, target=target, layer="_conv_head", progress=False)
    signed = xw.attribute(effnet, chelsea, method=method, target=target, layer="_conv_head", relu=False,
                          progress=False)
    theirs, theirs_raw = peer_unscaled(GRADIENT[method], model, model._conv_head, chelsea, target)
    assert_raw_equal(signed.raw, theirs_raw, up_to_sign=method in EIGEN)
    if method in EIGEN:
        theirs = oriented_peer_scaled(theirs_raw, signed.raw, (224, 224))
    assert pearson(scaled(ours.values)[0], theirs[0]) >= 0.999


def test_effnet_scorecam(effnet, chelsea):
    model = effnet.model
    target = int(effnet.probabilities(chelsea).argmax())
    ours = xw.attribute(effnet, chelsea, method="scorecam", target=target, layer="_blocks.7", progress=False)
    signed = xw.attribute(effnet, chelsea, method="scorecam", target=target, layer="_blocks.7", relu=False,
                          progress=False)
    cam = pgc.ScoreCAM(model, [model._blocks[7]])
    try:
        theirs = cam(chelsea, [ClassifierOutputTarget(target)])
        acts = cam.activations_and_grads.activations[0].numpy()
        theirs_raw = np.asarray(cam.get_cam_image(chelsea, model._blocks[7], [ClassifierOutputTarget(target)],
                                                  acts, None, False))
    finally:
        cam.activations_and_grads.release()
    assert pearson(scaled(ours.values)[0], theirs[0]) >= 0.99
    np.testing.assert_allclose(signed.raw[0, 0].double().numpy(), theirs_raw[0], rtol=1e-4,
                               atol=1e-4 * np.abs(theirs_raw).max())


class ZeroAblation(AblationLayer):
    """The peer's AblationLayer with the paper's ablation value 0 (it uses min - 1e7 when min != 0)."""

    def __call__(self, x):
        out = self.activations
        for i in range(out.size(0)):
            out[i, self.indices[i], :] = 0
        return out


def test_effnet_ablationcam(effnet, chelsea):
    model = effnet.model
    x = F.interpolate(chelsea, size=(112, 112), mode="bilinear", align_corners=False, antialias=True)
    target = int(effnet.probabilities(chelsea).argmax())
    ours = xw.attribute(effnet, x, method="ablationcam", target=target, layer="_bn1", relu=False,
                        batch_size=128, progress=False)
    assert ours.extras["ablation_rerun"] == "after the layer"
    cam = pgc.AblationCAM(model, [model._bn1], ablation_layer=ZeroAblation(), batch_size=128)
    try:
        spec = xw.methods.cam.base.LayerSpec("_bn1", model._bn1)
        acts = xw.methods.cam.base.capture(model, x, [spec], target, gradients=False).acts[0]
        theirs_raw = np.asarray(cam.get_cam_image(x, model._bn1, [ClassifierOutputTarget(target)],
                                                  acts.numpy(), None, False))
    finally:
        cam.activations_and_grads.release()
    # scores differ in float32 summation order; the relative drops are then compared at 1e-4
    ours_np, theirs_np = ours.raw[0, 0].double().numpy(), theirs_raw[0].astype(np.float64)
    np.testing.assert_allclose(ours_np, theirs_np, rtol=1e-4, atol=1e-4 * np.abs(theirs_np).max())
    theirs = scale_cam_image(scale_cam_image(np.maximum(theirs_raw, 0), (112, 112)))
    relu = ours.raw.clamp_min(0)
    assert pearson(scaled(F.interpolate(relu, size=(112, 112), mode="bilinear"))[0], theirs[0]) >= 0.99


def test_effnet_cam_definition(effnet, chelsea):
    """pytorch-grad-cam has no CAM and cannot hook the pooled map here; oracle: W[c] . extract_features(x)."""
    model = effnet.model
    ours = xw.attribute(effnet, chelsea, method="cam", relu=False, progress=False)
    assert ours.extras["layer"] == "input of _avg_pooling"
    with torch.no_grad():
        feats = model.extract_features(chelsea)
        expected = torch.einsum("c,nchw->nhw", model._fc.weight[ours.target[0]], feats)
    torch.testing.assert_close(ours.raw[:, 0], expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_vit_tokens_vs_peer_reshape_transform():
    """Small seeded torchvision ViT: our automatic token grid equals the peer with a reshape_transform."""
    import torchvision

    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=32, mlp_dim=64, num_classes=10).eval()
    torch.nn.init.normal_(vit.head.weight if hasattr(vit, "head") else vit.heads.head.weight, std=0.2)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    layer = vit.encoder.layers.encoder_layer_1.ln_1
    ours = xw.attribute(vit, x, method="gradcam", target=[1, 2], layer=layer, relu=False, progress=False)

    def reshape_transform(t):
        return t[:, 1:].reshape(t.shape[0], 4, 4, t.shape[2]).permute(0, 3, 1, 2)

    cam = pgc.GradCAM(vit, [layer], reshape_transform=reshape_transform)
    try:
        cam(x, [ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        theirs_raw = cam.get_cam_image(x, layer, None, acts, grads, False)
    finally:
        cam.activations_and_grads.release()
    assert_raw_equal(ours.raw, np.asarray(theirs_raw))
