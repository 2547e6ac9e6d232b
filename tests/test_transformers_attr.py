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
    tokens = ig.sum(-1)  # token values: the sum over the embedding dimension
    with torch.no_grad():
        delta = fwd(x)[0, 1] - fwd(base)[0, 1]
    assert abs(float(tokens.sum() - delta)) < 0.02 * abs(float(delta)) + 1e-3


def _rollout_reference(attentions, n: int, tokens: int) -> torch.Tensor:
    """Abnar & Zuidema 2020 from the model's own attention outputs: mean over heads, add the identity,
    renormalise rows, multiply the layers; the [CLS] row over the patches."""
    r = torch.eye(tokens).expand(n, tokens, tokens)
    for a in attentions:
        a = (a.detach().mean(1) + torch.eye(tokens)) / 2
        r = (a / a.sum(-1, keepdim=True)) @ r
    return r[:, 0, 1:]


def test_hugging_face_vit_rollout_equals_its_output_attentions():
    """transformers' ViT names its attention module ViTAttention (not *SelfAttention): found, recorded once
    per layer, and the rollout equals the one from the model's ``output_attentions`` (1e-6)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=4, hidden_size=32,
                    intermediate_size=64, num_labels=5, initializer_range=0.3)
    model = ViTForImageClassification(cfg).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ref_model = ViTForImageClassification(cfg)
    ref_model.load_state_dict(model.state_dict())
    ref_model.eval().config._attn_implementation = "eager"
    expected = _rollout_reference(ref_model(pixel_values=x, output_attentions=True).attentions, 2, 17)
    ours = AttentionRollout(model).attribute(x, progress=False)
    torch.testing.assert_close(ours.raw, expected.reshape(2, 4, 4), rtol=1e-5, atol=1e-6)


class _EncoderViT(torch.nn.Module):
    """A hand-built ViT on nn.TransformerEncoder (whose fused fast path skips self_attn.forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 32, 8, 8)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 32))
        self.pos = torch.nn.Parameter(torch.randn(1, 17, 32))
        layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(len(x), -1, -1), h], 1) + self.pos
        return self.head(self.enc(h)[:, 0])


@pytest.mark.parametrize("make", [lambda: VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                                            hidden_dim=32, mlp_dim=64, num_classes=5),
                                  _EncoderViT], ids=["torchvision_vit", "encoder_vit"])
@pytest.mark.parametrize("cls", [AttentionRollout, TransformerRelevance])
def test_frozen_models_give_the_same_maps(make, cls):
    """model.requires_grad_(False) (common for inference): relevance still gets its graph and the encoder's
    fast path is switched off for the call, so both maps equal the unfrozen model's; the parameters stay
    frozen and the fast-path setting is put back."""
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    ref = cls(model).attribute(x, progress=False).raw
    model.requires_grad_(False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    out = cls(model).attribute(x, progress=False).raw
    torch.testing.assert_close(out, ref)
    assert not any(p.requires_grad for p in model.parameters())
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


class _HandBuiltViT(torch.nn.Module):
    """Attention written inline (no module named *Attention, no nn.MultiheadAttention): a softmax over
    (N, heads, T, T) scores; the probabilities are kept on the module for the test's reference."""

    def __init__(self, heads: int = 2, dim: int = 16) -> None:
        super().__init__()
        self.heads = heads
        self.patch = torch.nn.Conv2d(3, dim, 8, 8)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.qkv = torch.nn.ModuleList(torch.nn.Linear(dim, 3 * dim) for _ in range(2))
        self.head = torch.nn.Linear(dim, 4)
        self.kept: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.cls.expand(len(x), -1, -1), self.patch(x).flatten(2).transpose(1, 2)], 1)
        n, t, d = h.shape
        for qkv in self.qkv:
            q, k, v = qkv(h).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            a = (q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5).softmax(dim=-1)
            self.kept.append(a.detach())
            h = h + (a @ v).transpose(1, 2).reshape(n, t, d)
        return self.head(h[:, 0])


def test_hand_built_inline_attention_is_found():
    torch.manual_seed(0)
    model = _HandBuiltViT().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    got = AttentionRollout(model).attribute(x, progress=False)
    expected = _rollout_reference(model.kept[-2:], 2, 17)
    torch.testing.assert_close(got.raw, expected.reshape(2, 4, 4), rtol=1e-5, atol=1e-6)
    assert got.extras["attention_modules"] == [""]  # computed in the model's own forward


def test_fast_path_setting_is_counted_across_overlapping_blocks():
    """torch's fast-path flag is process-wide: overlapping blocks (two threads) restore it only at the end."""
    from xaiwidgets.core.attention import no_fused_paths

    before = torch.backends.mha.get_fastpath_enabled()
    first, second = no_fused_paths(), no_fused_paths()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not torch.backends.mha.get_fastpath_enabled()
    second.__exit__(None, None, None)
    assert torch.backends.mha.get_fastpath_enabled() == before
