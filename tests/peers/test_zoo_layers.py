"""Default CAM layer and attention capture on real zoo architectures (timm 1.0, torchvision), random weights.

Models: ``timm.create_model(name, pretrained=False)`` at 64x64 with batch norms given trained-like running
statistics (one calibration pass in training mode on random images: the default (0, 1) statistics hide
broken layer handling because activations vanish or explode), tiny depths where timm allows.

- Grad-CAM family: the default layer is a map on the input grid outside attention (its name is checked per
  architecture, with the reason the result carries), and our Grad-CAM/Grad-CAM++ on that layer equals
  pytorch-grad-cam 1.5.7's (same layer; ``reshape_transform`` for token and channels-last layers, built
  from the layer's geometry) before ReLU and scaling: rtol 1e-5, atol 1e-5 of the map's scale (float32
  sums in another order).
- attention_rollout / transformer_relevance: against the papers' formulas applied to the model's own
  attention probabilities, taken from a reference forward of a copy with timm's fused attention switched off
  (``fused_attn = False``: timm then computes ``softmax(q k^T * scale)`` itself and hands it to
  ``attn_drop``, where a hook records it), and for torchvision from ``nn.MultiheadAttention`` asked for its
  per-head weights. Rollout (Abnar & Zuidema 2020): mean over heads, ``(A + I) / 2`` row-normalised,
  product over layers; relevance (Chefer et al. 2021): ``R <- R + mean_h((dS/dA * A)^+) R`` from ``R = I``.
  Tolerance rtol 1e-4 / atol 1e-6: fused and explicit attention round differently in float32.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.core.errors import ModelError
from xaiwidgets.core.grid import grid_of, token_grid
from xaiwidgets.methods.transformers import AttentionRollout, TransformerRelevance

timm = pytest.importorskip("timm")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

pytestmark = pytest.mark.peers

HW = (64, 64)

#: name -> (timm kwargs, expected default layer): plain CNN, residual, inverted residual, RepVGG (training
#: form, three branches), ConvNeXt, ViT (class token), DeiT (class + distillation tokens), Swin
#: (channels-last stages), hybrid ResNet-stem ViT, LeViT (conv stem, tokens without class token)
ZOO = {
    "vgg11_bn": (dict(mlp_ratio=0.125), "features"),
    "resnet10t": ({}, "layer4"),
    "mobilenetv3_small_050": ({}, "blocks"),
    "repvgg_a0": ({}, "stages"),
    "convnext_atto": ({}, "stages"),
    "vit_tiny_patch16_224": (dict(img_size=64, depth=2), "blocks.1.norm1"),
    "deit_tiny_distilled_patch16_224": (dict(img_size=64, depth=2), "blocks.1.norm1"),
    "swin_tiny_patch4_window7_224": (dict(img_size=64, window_size=4, depths=(1, 1, 1, 1), embed_dim=24,
                                          num_heads=(1, 1, 2, 2)), "norm"),
    "vit_tiny_r_s16_p8_224": (dict(img_size=64, depth=2), "blocks.1.norm1"),
    "levit_128s": (dict(img_size=64), "stages.1"),
}


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm running statistics from one pass over random images (cumulative average), then eval."""
    norms = [m for m in model.modules() if isinstance(getattr(m, "running_var", None), torch.Tensor)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, *HW, generator=torch.Generator().manual_seed(5)))
    return model.eval()


def zoo(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return trained_like(timm.create_model(name, pretrained=False, num_classes=10, **ZOO[name][0]))


def reshape_for(out: torch.Tensor):
    """pytorch-grad-cam's reshape_transform for a layer output of this shape (None for (N, C, h, w))."""
    layout = grid_of(tuple(out.shape), HW)
    if layout == "channels_last":
        return lambda t: t.permute(0, 3, 1, 2)
    if layout == "tokens":
        h, w = token_grid(out.shape[1], HW)
        return lambda t: t[:, -h * w:].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)
    return None


@pytest.mark.parametrize("name", list(ZOO))
def test_default_layer_and_gradcam_vs_peer(name):
    model = zoo(name)
    x = torch.randn(2, 3, *HW, generator=torch.Generator().manual_seed(1))
    ours = xw.attribute(model, x, method="gradcam", target=[1, 2], relu=False, progress=False)
    layer = ours.extras["layer"]
    assert layer == ZOO[name][1], (layer, ours.extras["layer_reason"])
    assert ours.extras["layer_reason"].startswith("automatic: the last")
    assert ".attn" not in layer and bool(ours.raw.abs().sum() > 0)
    module = model.get_submodule(layer)
    seen = []
    handle = module.register_forward_hook(lambda _m, _a, out: seen.append(out.shape))
    with torch.no_grad():
        model(x)
    handle.remove()
    probe = torch.empty(seen[0], device="meta")
    for method, peer in (("gradcam", "GradCAM"), ("gradcam_plus_plus", "GradCAMPlusPlus")):
        mine = ours if method == "gradcam" else xw.attribute(model, x, method=method, target=[1, 2], layer=layer,
                                                              relu=False, progress=False)
        cam = getattr(pgc, peer)(model, [module], reshape_transform=reshape_for(probe))
        try:
            cam(x, [ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
            acts = cam.activations_and_grads.activations[0].numpy()
            grads = cam.activations_and_grads.gradients[0].numpy()
            theirs = np.asarray(cam.get_cam_image(x, module, None, acts, grads, False), dtype=np.float64)
        finally:
            cam.activations_and_grads.release()
        np.testing.assert_allclose(mine.raw[:, 0].double().numpy(), theirs, rtol=1e-5,
                                   atol=1e-5 * np.abs(theirs).max())


def test_default_layer_skips_attention_and_is_recomputed_after_a_swap():
    """A ViT whose last 4-D tensor is the attention's key normalisation (batch, heads, tokens, head_dim):
    never chosen; and the cached default is dropped when a submodule is replaced."""
    model = zoo("vit_tiny_patch16_224")
    x = torch.randn(1, 3, *HW)
    first = xw.attribute(model, x, method="gradcam", progress=False).extras["layer"]
    assert first == "blocks.1.norm1"
    model.blocks[1] = torch.nn.Identity()  # the last block gone: the default moves to the first one
    assert xw.attribute(model, x, method="gradcam", progress=False).extras["layer"] == "blocks.0.norm1"


# -- attention methods ---------------------------------------------------------------------------------


def reference_attentions(model: torch.nn.Module, x: torch.Tensor, target: list[int]):
    """(per-layer probabilities (N, H, T, T), d score / d probabilities) from timm's own eager attention."""
    ref = copy.deepcopy(model)
    store = []
    for m in ref.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
            m.attn_drop.register_forward_pre_hook(lambda _m, args: store.append(args[0]))
    scores = ref(x)
    grads = torch.autograd.grad(scores.gather(1, torch.tensor(target).view(-1, 1)).sum(), store)
    return [a.detach() for a in store], [g.detach() for g in grads]


def paper_rollout(attns, extra):
    t = attns[0].shape[-1]
    r = torch.eye(t).expand(attns[0].shape[0], t, t)
    for a in attns:
        a = (a.mean(1) + torch.eye(t)) / 2
        r = (a / a.sum(-1, keepdim=True)) @ r
    return r[:, 0, extra:]


def paper_relevance(attns, grads, extra):
    t = attns[0].shape[-1]
    r = torch.eye(t).expand(attns[0].shape[0], t, t).clone()
    for a, g in zip(attns, grads):
        r = r + (g * a).clamp_min(0).mean(1) @ r
    return r[:, 0, extra:]


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224",
                                  "vit_tiny_r_s16_p8_224"])
def test_timm_attention_methods_equal_the_papers_on_timm_own_probabilities(name):
    model = zoo(name)
    assert model.blocks[0].attn.fused_attn  # timm computes F.scaled_dot_product_attention here
    x = torch.randn(2, 3, *HW, generator=torch.Generator().manual_seed(3))
    attns, grads = reference_attentions(model, x, [1, 2])
    h, w = token_grid(attns[0].shape[-1], HW)
    extra = attns[0].shape[-1] - h * w  # 1 class token (ViT, hybrid), 2 with DeiT's distillation token
    for cls, expected in ((AttentionRollout, paper_rollout(attns, extra)),
                          (TransformerRelevance, paper_relevance(attns, grads, extra))):
        got = cls(model).attribute(x, target=[1, 2], progress=False)
        assert got.extras["extra_tokens"] == extra and len(got.extras["attention_modules"]) == 2
        torch.testing.assert_close(got.raw.reshape(2, -1), expected, rtol=1e-4, atol=1e-6)


def test_frozen_timm_vit_relevance_leaves_flags_and_equals_unfrozen():
    model = zoo("vit_tiny_patch16_224")
    x = torch.randn(1, 3, *HW, generator=torch.Generator().manual_seed(4))
    ref = TransformerRelevance(model).attribute(x, progress=False).raw
    model.requires_grad_(False)
    flags = []
    hook = model.blocks[0].register_forward_hook(lambda *_: flags.append(any(p.requires_grad
                                                                            for p in model.parameters())))
    out = TransformerRelevance(model).attribute(x, progress=False).raw
    hook.remove()
    assert flags == [False]  # not even during the call
    torch.testing.assert_close(out, ref)


def test_torchvision_vit_rollout_equals_its_own_head_weights():
    import torchvision

    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=32, mlp_dim=64, num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    inputs = []
    handles = [layer.self_attention.register_forward_pre_hook(lambda m, args: inputs.append((m, args[0])))
               for layer in vit.encoder.layers]
    with torch.no_grad():
        vit(x)
        for h in handles:
            h.remove()
        attns = [m(q, q, q, need_weights=True, average_attn_weights=False)[1] for m, q in inputs]
    got = AttentionRollout(vit).attribute(x, progress=False)
    torch.testing.assert_close(got.raw.reshape(2, -1), paper_rollout(attns, 1), rtol=1e-4, atol=1e-6)


def test_swin_attention_is_refused_with_the_reason():
    model = zoo("swin_tiny_patch4_window7_224")
    with pytest.raises(ModelError, match="windows"):
        AttentionRollout(model).attribute(torch.randn(1, 3, *HW), progress=False)


def test_cnn_attention_methods_say_no_attention():
    model = zoo("resnet10t")
    with pytest.raises(ModelError, match="found no attention"):
        AttentionRollout(model).attribute(torch.randn(1, 3, *HW), progress=False)
