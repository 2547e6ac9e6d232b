"""The CAM family: definitions, layers and layouts, errors, model restoration and leaks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.cam as cams
from xaiwidgets.core.errors import Cancelled, LayerError, ModelError, ParameterError
from xaiwidgets.core.progress import Progress
from xaiwidgets.core.state import tensors_alive

ALL = ["cam", "gradcam", "gradcam_plus_plus", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
       "eigencam", "eigengradcam"]


def features_and_grad(model, x, target):
    """Oracle pieces for the TinyCNN: A = features(x) and dS_target/dA, computed by hand."""
    a = model.features(x).detach().requires_grad_(True)
    scores = model.fc(model.pool(a).flatten(1))
    (g,) = torch.autograd.grad(scores.gather(1, target.view(-1, 1)).sum(), a)
    return a.detach(), g


# -- definitions ---------------------------------------------------------------------------------------


def test_gradcam_definition_shapes_and_upsampling(tiny_cnn):
    x = torch.randn(3, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    a = xw.attribute(tiny_cnn, x, method="gradcam", target=[0, 1, 2], layer="features.3", progress=False)
    acts, grads = features_and_grad(tiny_cnn, x, torch.tensor([0, 1, 2]))
    expected = torch.relu((grads.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    torch.testing.assert_close(a.raw, expected, rtol=1e-5, atol=1e-6)
    assert a.values.shape == (3, 1, 12, 10)
    torch.testing.assert_close(a.values, F.interpolate(expected, size=(12, 10), mode="bilinear",
                                                       align_corners=False), rtol=1e-5, atol=1e-6)
    assert a.extras["layer"] == "features.3" and a.method == "gradcam"
    assert a.target.tolist() == [0, 1, 2]
    torch.testing.assert_close(a.scores, tiny_cnn(x).gather(1, a.target.view(-1, 1)).squeeze(1))
    assert tiny_cnn.fc.weight.grad is None  # no .grad left on the user's parameters


def test_relu_option_and_default_layer(tiny_cnn):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    signed = xw.attribute(tiny_cnn, x, method="gradcam", target=1, relu=False, progress=False)
    clipped = xw.attribute(tiny_cnn, x, method="gradcam", target=1, progress=False)
    assert signed.extras["layer"] == "features"  # find_last_spatial_layer: the last module with a map
    assert bool((signed.raw < 0).any())
    torch.testing.assert_close(clipped.raw, signed.raw.clamp_min(0))


@pytest.mark.parametrize("method", ["gradcam_plus_plus", "xgradcam", "hirescam", "layercam"])
def test_gradient_weightings_by_hand(tiny_cnn, method):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    a = xw.attribute(tiny_cnn, x, method=method, target=[1, 3], layer="features.3", relu=False, progress=False)
    A, g = features_and_grad(tiny_cnn, x, torch.tensor([1, 3]))
    total = A.sum((2, 3), keepdim=True)
    if method == "gradcam_plus_plus":  # eq. 19 of arXiv:1710.11063
        alpha = g**2 / (2 * g**2 + total * g**3 + 1e-6)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        expected = ((g.clamp_min(0) * alpha).sum((2, 3), keepdim=True) * A).sum(1)
    elif method == "xgradcam":
        expected = ((g * A / (total + 1e-7)).sum((2, 3), keepdim=True) * A).sum(1)
    elif method == "hirescam":
        expected = (g * A).sum(1)
    else:
        expected = (g.clamp_min(0) * A).sum(1)
    torch.testing.assert_close(a.raw[:, 0], expected, rtol=1e-5, atol=1e-6)


def test_hirescam_equals_gradcam_times_hw_for_gap_head(tiny_cnn):
    """Draelos & Carin: for GAP + linear heads HiResCAM and Grad-CAM give the same map (both = CAM / hw)."""
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    kw = dict(target=2, layer="features.3", relu=False, progress=False)
    hires = xw.attribute(tiny_cnn, x, method="hirescam", **kw)
    grad = xw.attribute(tiny_cnn, x, method="gradcam", **kw)
    cam = xw.attribute(tiny_cnn, x, method="cam", **kw)
    torch.testing.assert_close(hires.raw, grad.raw, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cam.raw, grad.raw * 64, rtol=1e-5, atol=1e-5)


def test_cam_detects_head_and_accepts_fc(tiny_cnn):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    auto = xw.attribute(tiny_cnn, x, method="cam", target=[0, 1], relu=False, progress=False)
    assert auto.extras["layer"] == "features"  # the pooled map (features and features.3 are the same tensor)
    A = tiny_cnn.features(x)
    expected = torch.einsum("nc,nchw->nhw", tiny_cnn.fc.weight[[0, 1]], A)
    torch.testing.assert_close(auto.raw[:, 0], expected.detach(), rtol=1e-5, atol=1e-5)
    explicit = xw.attribute(tiny_cnn, x, method="cam", target=[0, 1], relu=False, layer="features.3",
                            fc=tiny_cnn.fc, progress=False)
    torch.testing.assert_close(explicit.raw, auto.raw)


def test_cam_errors_on_other_heads():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ModelError, match=r"global average pooling -> linear.*gradcam"):
        xw.attribute(model, x, method="cam", progress=False)
    with pytest.raises(ParameterError, match=r"fc must be the model's nn\.Linear"):
        xw.attribute(model, x, method="cam", fc=nn.Linear(4, 3), progress=False)
    with pytest.raises(ParameterError, match="fc takes 144 features but layer '0' has 4 channels"):
        xw.attribute(model, x, method="cam", layer="0", fc=model[3], progress=False)


def _brute_force_ablation(model, layer, x, target):
    """Ablation-CAM by definition: zero channel k with a hook, rerun the whole network."""
    with torch.no_grad():
        store = {}
        h = layer.register_forward_hook(lambda m, a, o: store.setdefault("a", o.clone()))
        y = model(x)[0, target]
        h.remove()
        A = store["a"]
        w = torch.zeros(A.shape[1])
        for k in range(A.shape[1]):
            def zero(m, a, o, k=k):
                o = o.clone()
                o[:, k] = 0
                return o
            h = layer.register_forward_hook(zero)
            w[k] = (y - model(x)[0, target]) / y
            h.remove()
    return (w.view(1, -1, 1, 1) * A).sum(1)


class ConcatHead(nn.Module):
    """A head that concatenates a stem feature with the pooled features: the suffix-only shortcut fails."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8 + 6, 3)

    def forward(self, x):
        s = self.stem(x)
        f = self.body(s)
        return self.fc(torch.cat([f.mean((2, 3)), s.mean((2, 3))], 1)) + 5.0


@pytest.mark.parametrize("model_name", ["tiny", "concat"])
def test_ablationcam_definition_both_paths(tiny_cnn, model_name):
    model = tiny_cnn if model_name == "tiny" else ConcatHead().eval()
    layer = model.features[3] if model_name == "tiny" else model.body
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5)) + 0.5
    a = xw.attribute(model, x, method="ablationcam", target=1, layer=layer, relu=False, batch_size=5,
                     progress=False)
    assert a.extras["ablation_rerun"] == ("after the layer" if model_name == "tiny" else "whole network")
    torch.testing.assert_close(a.raw[:, 0], _brute_force_ablation(model, layer, x, 1), rtol=1e-4, atol=1e-5)


class Permute(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


@pytest.mark.parametrize("layout", ["channels_last_memory", "permuted_view"])
def test_ablationcam_any_memory_layout(tiny_cnn, layout):
    """Ablation-CAM on a channels_last model (non-contiguous 4-D outputs) and on a layer whose output is a
    permuted (N, h, w, C) view: equal to the brute-force definition (the channel axis read through the
    layout), no raw torch error."""
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5)) + 0.5
    if layout == "channels_last_memory":
        import copy

        model = copy.deepcopy(tiny_cnn).to(memory_format=torch.channels_last)
        xin = x.contiguous(memory_format=torch.channels_last)
        layer = model.features[3]
        expected = _brute_force_ablation(model, layer, xin, 1)
    else:
        torch.manual_seed(3)
        model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), Permute(), nn.Flatten(1),
                              nn.Linear(6 * 64, 3)).eval()
        xin, layer = x, model[2]
        expected = _brute_force_ablation(nn.Sequential(*model[:2], nn.Flatten(1), ReorderedLinear(model[4])),
                                         model[1], x, 1)
    a = xw.attribute(model, xin, method="ablationcam", target=1, layer=layer, relu=False, batch_size=4,
                     progress=False)
    assert a.extras["ablation_rerun"] == "after the layer"
    torch.testing.assert_close(a.raw[:, 0], expected, rtol=1e-4, atol=1e-5)


class ReorderedLinear(nn.Module):
    """The permuted model's head read on the channels-first map (the same function, without the permute)."""

    def __init__(self, fc: nn.Linear) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, flat):
        n = flat.shape[0]
        return self.fc(flat.view(n, 6, 8, 8).permute(0, 2, 3, 1).reshape(n, -1))


def test_scorecam_definition_with_constant_channels(tiny_cnn):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    a = xw.attribute(tiny_cnn, x, method="scorecam", target=[0, 2], layer="features.3", relu=False,
                     batch_size=7, progress=False)
    with torch.no_grad():
        A = tiny_cnn.features(x)
        expected = []
        for b, t in enumerate([0, 2]):
            up = F.interpolate(A[b:b + 1].transpose(0, 1), size=(8, 8), mode="bilinear", align_corners=True)
            lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
            s = tiny_cnn(x[b:b + 1] * (up - lo) / (hi - lo + 1e-8))[:, t]
            expected.append((torch.softmax(s, 0).view(-1, 1, 1) * A[b]).sum(0))
    assert bool((A.flatten(2).amax(2) == A.flatten(2).amin(2)).any())  # the shared-zero-mask path is used
    torch.testing.assert_close(a.raw[:, 0], torch.stack(expected), rtol=1e-5, atol=1e-6)


def test_eigencam_orientation(resnet18, small_input):
    """The map correlates positively with the activation vector's length at each position."""
    a = xw.attribute(resnet18, small_input, method="eigencam", layer="layer3", relu=False, progress=False)
    with torch.no_grad():
        store = {}
        h = resnet18.layer3.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
        resnet18(small_input)
        h.remove()
    norm = store["a"].norm(dim=1)
    for i in range(2):
        assert float(((a.raw[i, 0] - a.raw[i, 0].mean()) * (norm[i] - norm[i].mean())).sum()) > 0


def test_eigencam_on_a_pre_activation_layer_highlights_the_cat(effnet, chelsea):
    """EfficientNet-Lite0's ``_conv_head`` is a convolution before batch norm and ReLU6. There the channel
    sum of the output is anti-correlated with the map (a channel-sum orientation kept the photo's border);
    oriented by the activations' length the map agrees with Grad-CAM at the same layer (which finds the
    cat) and is higher inside than on the border."""
    pre = xw.attribute(effnet, chelsea, method="eigencam", layer="_conv_head", relu=False, progress=False).raw
    gradcam = xw.attribute(effnet, chelsea, method="gradcam", layer="_conv_head", progress=False).raw
    assert np.corrcoef(pre.flatten().numpy(), gradcam.flatten().numpy())[0, 1] > 0.5
    m = pre[0, 0]
    border = torch.cat([m[0], m[-1], m[1:-1, 0], m[1:-1, -1]])
    assert float(m[1:-1, 1:-1].mean()) > 0 > float(border.mean())
    store = {}
    h = effnet.model._conv_head.register_forward_hook(lambda _m, _i, o: store.setdefault("a", o.detach()))
    with torch.no_grad():
        effnet.model(chelsea)
    h.remove()
    channel_sum = store["a"][0].sum(0)
    assert float(((m - m.mean()) * (channel_sum - channel_sum.mean())).sum()) < 0  # the old rule's failure


def test_aug_smooth_is_mean_of_six_deaugmented_maps(tiny_cnn):
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    kw = dict(target=1, layer="features.3", progress=False)
    smooth = xw.attribute(tiny_cnn, x, method="gradcam", aug_smooth=True, **kw)
    maps = []
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            xa = (x.flip(-1) if flip else x) * factor
            r = xw.attribute(tiny_cnn, xa, method="gradcam", **kw).raw
            maps.append(r.flip(-1) if flip else r)
    torch.testing.assert_close(smooth.raw, torch.stack(maps).mean(0), rtol=1e-5, atol=1e-6)


def test_several_layers(resnet18, small_input):
    a = xw.attribute(resnet18, small_input, method="gradcam", target=3, layer=["layer3", resnet18.layer4],
                     progress=False)
    assert a.extras["layer"] == ["layer3", "layer4"]
    assert a.raw.shape == (2, 1, 4, 4) and a.values.shape == (2, 1, 64, 64)
    assert [m.shape[-1] for m in a.extras["layer_maps"]] == [4, 2]
    assert float(a.values.min()) >= 0 and float(a.values.max()) <= 1 + 1e-6


def test_inplace_ops_after_the_layer(resnet18, small_input):
    """layer4.1.bn2 is followed by `out += identity` and ReLU(inplace=True): the captured A must be bn2's."""
    x = small_input[:1]
    a = xw.attribute(resnet18, x, method="gradcam", target=4, layer="layer4.1.bn2", relu=False, progress=False)
    block = resnet18.layer4[1]
    store = {}
    h = block.register_forward_pre_hook(lambda m, args: store.setdefault("in", args[0].detach().clone()))
    with torch.no_grad():
        resnet18(x)
    h.remove()
    inp = store["in"]
    A = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(inp))))).detach().requires_grad_(True)
    out = torch.relu(A + inp)
    score = resnet18.fc(resnet18.avgpool(out).flatten(1))[0, 4]
    (g,) = torch.autograd.grad(score, A)
    expected = (g.mean((2, 3), keepdim=True) * A).sum(1)
    torch.testing.assert_close(a.raw[:, 0], expected.detach(), rtol=1e-5, atol=1e-6)


# -- transformers ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                 hidden_dim=32, mlp_dim=64, num_classes=10).eval()
    nn.init.normal_(model.heads.head.weight, std=0.2)  # torchvision zero-initialises the head
    return model


def test_vit_tokens_reshaped_automatically(vit):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    name = "encoder.layers.encoder_layer_1.ln_1"
    kw = dict(target=[1, 2], layer=name, relu=False, progress=False)
    auto = xw.attribute(vit, x, method="gradcam", **kw)
    assert auto.raw.shape == (2, 1, 4, 4) and auto.values.shape == (2, 1, 32, 32)
    tuple_ = xw.attribute(vit, x, method="gradcam", reshape=(4, 4), **kw)
    fn = xw.attribute(vit, x, method="gradcam",
                      reshape=lambda t: t[:, 1:].reshape(t.shape[0], 4, 4, -1).permute(0, 3, 1, 2), **kw)
    torch.testing.assert_close(auto.raw, tuple_.raw)
    torch.testing.assert_close(auto.raw, fn.raw)
    assert bool(auto.raw.abs().sum() > 0)
    for method in ("eigencam", "ablationcam", "layercam"):
        r = xw.attribute(vit, x, method=method, **kw)
        assert r.raw.shape == (2, 1, 4, 4) and bool(torch.isfinite(r.raw).all())
    assert name in cams.spatial_layers(vit, x)


def test_token_shape_errors(vit):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(LayerError, match=r"outputs shape \(1, 10\).*reshape="):
        xw.attribute(vit, x, method="gradcam", layer="heads", progress=False)
    with pytest.raises(ParameterError, match="reshape must be"):
        xw.attribute(vit, x, method="gradcam", layer="encoder.ln", reshape=5, progress=False)
    with pytest.raises(LayerError, match=r"must return \(N, C, h, w\)"):
        xw.attribute(vit, x, method="gradcam", layer="encoder.ln", reshape=lambda t: t, progress=False)


def test_swin_channels_last_detected():
    """torchvision Swin stages output (N, h, w, C): detected from the input's aspect ratio."""
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    swin = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 1],
                           window_size=[2, 2], num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    kw = dict(target=[0, 1], relu=False, progress=False)
    auto = xw.attribute(swin, x, method="gradcam", layer="norm", **kw)
    forced = xw.attribute(swin, x, method="gradcam", layer="norm", reshape="channels_last", **kw)
    after_permute = xw.attribute(swin, x, method="gradcam", layer="permute", **kw)  # (N, C, h, w) already
    assert auto.raw.shape == (2, 1, 4, 4)
    torch.testing.assert_close(auto.raw, forced.raw)
    torch.testing.assert_close(auto.raw, after_permute.raw, rtol=1e-5, atol=1e-6)
    # the default is the map itself: "permute" only re-lays out norm's map (the same cells), so it is skipped
    assert xw.attribute(swin, x, method="gradcam", progress=False).extras["layer"] == "norm"
    assert {"features.3", "norm", "permute"} <= set(cams.spatial_layers(swin, x))


# -- layers, errors --------------------------------------------------------------------------------------


def test_spatial_layers_resnet(resnet18, small_input):
    names = cams.spatial_layers(resnet18, small_input)
    assert "layer4.1.conv2" in names and "conv1" in names
    assert not {"fc", "avgpool", "layer4.1.relu"} & set(names)  # 1x1, not spatial, or called twice
    # block outputs first (every input-to-output path passes through them; one name per tensor), then the rest
    choices = cams.layer_choices(resnet18, small_input)
    blocks = [c["name"] for c in choices if c["block"]]
    assert blocks == ["conv1", "relu", "maxpool", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0", "layer3",
                      "layer4.0", "layer4"]
    assert names[:len(blocks)] == blocks and [c["name"] for c in choices if c["default"]] == ["layer4"]
    assert not any(c["block"] for c in choices[len(blocks):])  # inside residual blocks: bypassed by the skip


def test_bad_layer_name_suggests(resnet18, small_input):
    with pytest.raises(LayerError, match=r"no layer named 'layer44'\. Did you mean: layer4"):
        xw.attribute(resnet18, small_input, method="gradcam", layer="layer44", progress=False)
    with pytest.raises(LayerError, match="was called 2 times"):
        xw.attribute(resnet18, small_input, method="gradcam", layer="layer4.1.relu", progress=False)
    with pytest.raises(ParameterError, match="did you mean 'batch_size'"):
        xw.attribute(resnet18, small_input, method="scorecam", batchsize=4, progress=False)
    with pytest.raises(ParameterError, match="batch_size must be a positive int"):
        xw.attribute(resnet18, small_input, method="ablationcam", batch_size=0, progress=False)
    with pytest.raises(LayerError, match="'side' was not called in the forward pass"):
        xw.attribute(WithUnusedLayer(), small_input, method="gradcam", layer="side", progress=False)


class WithUnusedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.side, self.fc = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_all_methods_registered():
    names = {row["name"] for row in xw.methods.available(family="cam")}
    assert set(ALL) <= names


# -- the user's model is left as it was -------------------------------------------------------------------


def _snapshot(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()],
        [getattr(m, "inplace", None) for m in model.modules()],
        [p.grad for p in model.parameters()],
    )


def test_model_restored_after_every_method_and_after_errors(resnet18, small_input):
    x = small_input[:1]
    before = _snapshot(resnet18)
    out_before = resnet18(x)
    for method in ALL:
        xw.attribute(resnet18, x, method=method, layer="layer4" if method != "cam" else None, progress=False,
                     **({"batch_size": 256} if method in ("scorecam", "ablationcam") else {}))
    cancelled = Progress(tqdm=False)
    cancelled.cancel()
    for method in ("scorecam", "ablationcam"):
        with pytest.raises(Cancelled):
            xw.attribute(resnet18, x, method=method, layer="layer4", batch_size=8, progress=cancelled)
    with pytest.raises(LayerError):
        xw.attribute(resnet18, x, method="gradcam", layer="fc", progress=False)
    after = _snapshot(resnet18)
    for b, a in zip(before[0].values(), after[0].values()):
        assert torch.equal(b, a)
    assert before[1:] == after[1:]
    assert torch.equal(out_before, resnet18(x))


def test_train_mode_and_requires_grad_restored(tiny_cnn):
    tiny_cnn.train()
    tiny_cnn.fc.weight.requires_grad_(False)
    xw.attribute(tiny_cnn, torch.randn(1, 3, 8, 8), method="gradcam", progress=False)
    assert tiny_cnn.training and not tiny_cnn.fc.weight.requires_grad and tiny_cnn.fc.bias.requires_grad


def test_200_gradcam_calls_leave_no_hooks_or_tensors(tiny_cnn):
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(10))
    method = cams.GradCAM(tiny_cnn)
    method.attribute(x, 1, progress=False)  # warm-up (default layer cache, lazy state)
    baseline = tensors_alive()
    for _ in range(200):
        result = method.attribute(x, 1, progress=False)
    del result
    assert tensors_alive() <= baseline
    for m in tiny_cnn.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    assert all(p.grad is None for p in tiny_cnn.parameters())
