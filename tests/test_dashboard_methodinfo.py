"""What the dashboard tells the browser about methods (widgets/methodinfo.py): description, cost,
applicability with a reason, display defaults per kind of map, IG's completeness gap, CAM block layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.methods.registry import available, get_method
from xaiwidgets.widgets.methodinfo import block_layers, display_defaults, method_info, not_applicable


def test_every_image_method_has_a_description_cost_and_display(tiny_cnn) -> None:
    for row in available(modality="image"):
        info = method_info(get_method(row["name"]), tiny_cnn)
        assert info["description"] and info["cost"], row["name"]
        assert info["cam"] == (row["family"] == "cam")
        assert 50 <= info["display"]["clip_percentile"] <= 100 and info["display"]["quantity"]


class _TokenViT(nn.Module):
    """Patch embedding, one self-attention, a linear head: attention found by what the forward computes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.attn(t, t, t)[0].mean(1))


def test_applicability_says_why(tiny_cnn) -> None:
    image = torch.rand(1, 3, 16, 16)
    rollout = not_applicable(get_method("attention_rollout"), tiny_cnn, inputs=image)
    assert "attention" in rollout
    assert "16" in not_applicable(get_method("exact_shapley"), tiny_cnn)
    assert not_applicable(get_method("exact_shapley"), tiny_cnn, {"segments": "grid"}) == ""
    assert "background" in not_applicable(get_method("deepshap"), tiny_cnn)
    for name in ("saliency", "gradcam", "integrated_gradients", "occlusion", "lrp_epsilon", "cam"):
        assert not_applicable(get_method(name), tiny_cnn) == "", name
    assert not_applicable(get_method("attention_rollout"), _TokenViT().eval(), inputs=image) == ""


def test_display_defaults_per_kind_of_map() -> None:
    # pixel-level gradient maps: top 2% saturate (captum's visualize_image_attr), sqrt alpha, display blur
    for name in ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "lrp_epsilon"):
        d = display_defaults(get_method(name))
        assert d["clip_percentile"] == 98.0 and d["alpha"] == "sqrt" and d["smoothing"] > 0, name
    for name in ("gradcam", "scorecam", "occlusion"):
        d = display_defaults(get_method(name))
        assert d["clip_percentile"] == 99.5 and d["alpha"] == "linear" and d["smoothing"] == 0, name
    assert display_defaults(get_method("saliency"))["quantity"] == "|d score / d pixel|"


@pytest.fixture
def tiny_dash(tiny_cnn):
    classifier = xw.ImageClassifier(tiny_cnn, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    torch.manual_seed(0)
    return xw.explain(classifier, torch.rand(1, 3, 16, 16), methods=["saliency", "integrated_gradients"], wait=True)


def test_dashboard_ig_is_auto_and_reports_its_gap(tiny_dash) -> None:
    assert tiny_dash.method_params["integrated_gradients"] == {"n_steps": "auto"}
    ig = next(p for p in tiny_dash.panels if p["method"] == "integrated_gradients")
    assert ig["state"] == "done"
    notes = ig["notes"]
    # auto refines until the relative gap is within tolerance (or max_steps): the badge is green here
    assert 0 <= notes["completeness_gap"] <= notes["tolerance"] == 0.01 and notes["n_steps"] >= 16
    sal = next(p for p in tiny_dash.panels if p["method"] == "saliency")
    assert sal["notes"] == {}
    infos = {m["name"]: m for m in tiny_dash.available_methods}
    assert infos["attention_rollout"]["unavailable"] and not infos["gradcam"]["unavailable"]


def test_explicit_ig_steps_win_and_added_ig_is_auto(tiny_cnn) -> None:
    classifier = xw.ImageClassifier(tiny_cnn, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    dash = xw.explain(classifier, torch.rand(1, 3, 16, 16), methods=["saliency"],
                      params={"integrated_gradients": {"n_steps": 8}})
    dash.wait(60)
    assert dash.method_params["integrated_gradients"] == {"n_steps": 8}
    dash2 = xw.explain(classifier, torch.rand(1, 3, 16, 16), methods=["saliency"], wait=True)
    dash2.set_methods(["saliency", "integrated_gradients"], wait=True)
    assert dash2.method_params["integrated_gradients"] == {"n_steps": "auto"}


def test_block_layers(resnet18) -> None:
    from xaiwidgets.methods.cam.layers_list import spatial_layers

    names = spatial_layers(resnet18, torch.rand(1, 3, 64, 64))
    blocks = block_layers(resnet18, names)
    assert {"layer1.0", "layer2", "layer4.1", "layer4"} <= set(blocks)
    # leaves inside a block (bn, relu, conv of a BasicBlock) and the downsample branch are only in the full list
    assert not any(".bn" in n or ".conv" in n or "downsample" in n for n in blocks)
    assert len(blocks) < len(names) / 2

    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.static_padding = nn.ZeroPad2d(1)
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(self.static_padding(x))

    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ModuleList([Padded()]), nn.AdaptiveAvgPool2d(1))
    assert block_layers(model, ["0", "1.0.static_padding", "1.0.conv", "1.0"]) == ["0", "1.0"]


def test_heatmap_view_takes_the_method_display_defaults(tiny_cnn) -> None:
    a = xw.attribute(tiny_cnn, torch.rand(1, 3, 16, 16), method="saliency")
    view = xw.HeatmapView.from_attribution(a)
    assert view.clip_percentile == 98.0 and view.alpha == "sqrt" and view.quantity == "|d score / d pixel|"
    assert xw.HeatmapView.from_attribution(a, clip_percentile=99.0).clip_percentile == 99.0


def test_png_fallback_uses_each_method_display_defaults(tiny_cnn) -> None:
    """The dashboard's PNG (GitHub, nbviewer) clips each panel at its method's default and uses its alpha;
    an explicit trait overrides all panels."""
    from xaiwidgets.widgets.base import ViewOptions

    opts = ViewOptions()
    sal = display_defaults(get_method("saliency"))
    assert opts.panel_display(sal) == {"clip_percentile": 98.0, "alpha": "sqrt"}
    assert opts.panel_display(display_defaults(get_method("gradcam"))) == {"clip_percentile": 99.5, "alpha": "linear"}
    opts.clip_percentile, opts.alpha = 90.0, "flat"
    assert opts.panel_display(sal) == {"clip_percentile": 90.0, "alpha": "flat"}

    import numpy as np

    from xaiwidgets.widgets.colormaps import overlay_rgba

    v = np.linspace(0, 1, 101, dtype=np.float32).reshape(1, -1)
    lin = overlay_rgba(v, False, clip_percentile=100, alpha="linear")[..., 3]
    sq = overlay_rgba(v, False, clip_percentile=100, alpha="sqrt")[..., 3]
    np.testing.assert_allclose(sq, 0.6 * np.sqrt(lin / 0.6), atol=1e-6)
    classifier = xw.ImageClassifier(tiny_cnn, labels=list("abcd"), mean=None, std=None, input_size=None)
    dash = xw.explain(classifier, torch.rand(1, 3, 16, 16), methods=["saliency", "gradcam"], wait=True)
    data, _ = dash._repr_mimebundle_()
    assert data.get("image/png")
