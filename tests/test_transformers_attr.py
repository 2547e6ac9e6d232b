"""attention_rollout and transformer_relevance on a tiny seeded ViT and on the MiniLM demo; IG completeness
on text embeddings."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import VisionTransformer

from xaiwidgets.methods.transformers import AttentionRollout, TransformerRelevance, capture_attentions, rollout


@pytest.fixture()
def vit():
    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
                             num_classes=5).eval()


def test_rollout_rows_and_brute_force(vit):
    x = torch.randn(2, 3, 32, 32)
    with capture_attentions(vit) as store:
        out = vit(x)
    torch.testing.assert_close(out, vit(x), atol=1e-5, rtol=1e-5)  # explicit attention = torch's
    r = rollout(store)
    torch.testing.assert_close(r.sum(-1), torch.ones(2, 17))
    brute = torch.eye(17).expand(2, 17, 17)
    for a in store:
        m = (a.mean(1) + torch.eye(17)) / 2
        brute = (m / m.sum(-1, keepdim=True)) @ brute
    torch.testing.assert_close(r, brute)
    assert "forward" not in vit.encoder.layers[0].self_attention.__dict__


def test_vit_maps_and_restoration(vit):
    x = torch.randn(1, 3, 32, 32)
    before = vit(x)
    for cls in (AttentionRollout, TransformerRelevance):
        a = cls(vit).attribute(x)
        assert a.values.shape == (1, 1, 32, 32) and a.raw.shape == (1, 4, 4) and a.values.isfinite().all()
    torch.testing.assert_close(vit(x), before)
    assert all(not m._forward_hooks for m in vit.modules())


def test_minilm_maps_and_ig_completeness():
    pytest.importorskip("transformers")
    from xaiwidgets.demo.text import sentiment_classifier

    clf = sentiment_classifier()
    text = "A gorgeous, moving film."
    for cls in (AttentionRollout, TransformerRelevance):
        a = cls(clf).attribute(text)
        assert a.values.shape == (1, len(clf.encode(text))) and a.values.isfinite().all()
    assert clf.model.encoder.config._attn_implementation == "sdpa"
    # IG at the embedding layer (local Riemann sum): sum of token attributions = f(x) - f(baseline)
    enc = clf.encode(text)
    fwd = clf.embedding_model(enc)
    x, base = clf.embed(enc), clf.baseline_embeddings(enc, "pad")
    steps = 64
    alphas = (torch.arange(steps) + 0.5) / steps
    path = (base + alphas.view(-1, 1, 1) * (x - base)).requires_grad_(True)
    (grad,) = torch.autograd.grad(fwd(path)[:, 1].sum(), path)
    ig = (x - base) * grad.mean(0, keepdim=True)
    tokens = clf.token_values(ig, enc, special="keep")
    with torch.no_grad():
        delta = fwd(x)[0, 1] - fwd(base)[0, 1]
    assert abs(float(tokens.sum() - delta)) < 0.02 * abs(float(delta)) + 1e-3
