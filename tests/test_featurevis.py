"""Feature visualisation (issue 7): activation maximisation, top patches, activations, dissection, TCAV."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaiwidgets.featurevis as fv
from xaiwidgets.core import Progress
from xaiwidgets.core.errors import Cancelled, LayerError, ParameterError
from xaiwidgets.core.state import _hook_keys


# ---------------------------------------------------------------- activation maximisation on the demo model
@pytest.fixture(scope="module")
def photos(effnet) -> torch.Tensor:
    """The five bundled sample photos, preprocessed for the demo model and resized to 64 px."""
    from xaiwidgets.demo import SAMPLE_IMAGES, load_image

    x = torch.cat([effnet.preprocess(load_image(n)) for n in SAMPLE_IMAGES])
    return F.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)


@pytest.mark.parametrize("layer", ["_blocks.3", "_blocks.9"])
def test_objective_rises_far_above_noise_and_photos(effnet, photos, layer):
    """8 random channels optimised in one batch: each image drives its channel far above a uniform-noise
    input and above the mean over the real photos (same 64 px size)."""
    n_channels = fv.activations(effnet, layer, photos[0]).shape[0]
    chans = torch.randperm(n_channels, generator=torch.Generator().manual_seed(0))[:8].tolist()
    res = fv.maximize(effnet, fv.channel_objectives(layer, chans), size=64, n_steps=20, progress=False)
    assert res.images.shape == (8, 3, 64, 64)
    assert 0.0 <= float(res.images.min()) and float(res.images.max()) <= 1.0
    assert res.objective_values.shape == (20, 8)
    mean, std = torch.tensor(effnet.mean).view(1, 3, 1, 1), torch.tensor(effnet.std).view(1, 3, 1, 1)
    noise = (torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(1)) - mean) / std
    on_noise = fv.activations(effnet, layer, noise)[:, chans].mean((2, 3)).mean(0)
    on_photos = fv.activations(effnet, layer, photos)[:, chans].mean((2, 3)).mean(0)
    # final_values are measured on the final untransformed images, like the references
    opt = res.final_values
    check = fv.activations(effnet, layer, (res.images - mean) / std)
    torch.testing.assert_close(check[torch.arange(8), chans].mean((1, 2)), opt, rtol=1e-4, atol=1e-4)
    margin = opt - torch.maximum(on_noise, on_photos)
    assert (margin > 5.0).all(), (opt, on_noise, on_photos)
    assert (res.objective_values[-4:].mean(0) > res.objective_values[:2].mean(0) + 5.0).all()


def _high_frequency_fraction(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Fraction of each image's (mean-removed) spectral energy above ``cutoff`` cycles per pixel."""
    x = images - images.mean((2, 3), keepdim=True)
    power = torch.fft.rfft2(x).abs().pow(2).sum(1)
    h, w = images.shape[-2:]
    freqs = fv.param.fft_frequencies(h, w)
    return (power * (freqs > cutoff)).sum((1, 2)) / power.sum((1, 2))


def test_fft_decorrelated_has_less_high_frequency_energy_than_pixel(effnet):
    """At equal steps (and no transforms), the 1/f Fourier + decorrelated-colour parametrisation yields
    images with a smaller share of energy above a quarter of the sampling rate than the pixel one."""
    obj = fv.channel_objectives("_blocks.5", [0, 7])
    kw = dict(size=64, n_steps=16, transforms=None, progress=False)
    smooth = fv.maximize(effnet, obj, param="fft", decorrelate=True, **kw)
    rough = fv.maximize(effnet, obj, param="pixel", decorrelate=False, **kw)
    hf_smooth, hf_rough = _high_frequency_fraction(smooth.images), _high_frequency_fraction(rough.images)
    assert (hf_smooth < 0.75 * hf_rough).all(), (hf_smooth, hf_rough)


# ---------------------------------------------------------------- small models for the exact tests
class RedSquareDetector(nn.Module):
    """A fixed 5x5 filter that fires on red squares (R minus G and B), ReLU, 2x2 max-pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 5, bias=True)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0 / 25
            self.conv.weight[0, 1:] = -1.0 / 25
            self.conv.bias[0] = -0.5
            self.conv.weight[1] = 1.0 / 75  # channel 1: brightness (not used by the test)
            self.conv.bias[1] = 0.0
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).mean((2, 3)))


def _red_square_data(n: int = 16, size: int = 32):
    gen = torch.Generator().manual_seed(3)
    images = 0.35 * torch.rand(n, 3, size, size, generator=gen)
    red = [1, 4, 6, 11, 14]
    corners = {}
    for k, i in enumerate(red):
        y, x = 2 * (1 + 3 * k), 2 * (12 - 2 * k)  # even corners: the max-pool cell is exact
        images[i, :, y : y + 5, x : x + 5] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
        corners[i] = (y, x)
    return images, corners


def test_top_patches_finds_exactly_the_red_squares():
    model = RedSquareDetector().eval()
    images, corners = _red_square_data()
    res = fv.top_patches(model, "pool", 0, images, k=len(corners), batch_size=5, progress=False)
    assert sorted(res.indices.tolist()) == sorted(corners)
    rf = res.receptive_field  # conv 5x5 then max-pool 2x2: field 6 px, stride 2, no offset
    assert (rf.size, rf.stride, rf.offset) == ((6, 6), (2, 2), (0, 0))
    for idx, (x0, y0, x1, y1), patch in zip(res.indices.tolist(), res.boxes.tolist(), res.patches):
        y, x = corners[idx]
        assert x0 <= x and x + 5 <= x1 and y0 <= y and y + 5 <= y1  # the whole square is in the crop
        assert patch.shape == (3, 6, 6)
        red = (patch[0] > 0.9) & (patch[1] < 0.1)
        assert int(red.sum()) == 25  # and the crop shows it
    assert (res.values > 0.4).all()
    # the next-best image (no square) is far below
    rest = fv.top_patches(model, "pool", 0, images, k=len(corners) + 1, progress=False)
    assert float(rest.values[-1]) < 0.05


def test_top_patches_of_several_channels_in_one_pass_equal_the_single_channel_calls():
    model = RedSquareDetector().eval()
    images, _ = _red_square_data()
    both = fv.top_patches_per_channel(model, "pool", [1, 0], images, k=4, batch_size=6, progress=False)
    assert list(both) == [1, 0]
    for c in (0, 1):
        one = fv.top_patches(model, "pool", c, images, k=4, progress=False)
        assert both[c].channel == c and both[c].indices.tolist() == one.indices.tolist()
        torch.testing.assert_close(both[c].values, one.values)
        torch.testing.assert_close(both[c].patches, one.patches)
        assert both[c].boxes.tolist() == one.boxes.tolist()
    with pytest.raises(ParameterError, match="at least one channel"):
        fv.top_patches_per_channel(model, "pool", [], images)


def test_receptive_field_matches_the_analytic_field_of_a_conv_pool_stack():
    """conv3 p1 -> pool2 -> conv3 p1 -> conv3 s2 p1: field 12 px, stride 4, first box at -5 (analytic)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
    ).eval()
    rf = fv.receptive_field(model, "5", (3, 64, 64))
    assert (rf.size, rf.stride, rf.offset, rf.map_size) == ((12, 12), (4, 4), (-5, -5), (16, 16))


# ---------------------------------------------------------------- network dissection
class PlantedUnits(nn.Module):
    """Three units on the shapes data: 0 = far from the image's mean grey (the object), 1 = its negative
    (background), 2 = red minus green (no shape concept). Stride 2, so dissection upsamples."""

    def __init__(self) -> None:
        super().__init__()
        self.units = nn.Identity()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(1, keepdim=True)
        dev = (g - g.mean((2, 3), keepdim=True)).abs()
        u = torch.cat([dev, -dev, x[:, :1] - x[:, 1:2]], 1)
        u = self.units(F.avg_pool2d(u, 2))
        return self.fc(u.mean((2, 3)))


def test_dissect_recovers_the_planted_concepts():
    from xaiwidgets.demo.shapes import SHAPE_CLASSES, make_shapes

    data = make_shapes(48, size=48, seed=0)
    concepts = {"object": data.masks, "background": ~data.masks}
    for c, name in enumerate(SHAPE_CLASSES):
        concepts[name] = data.masks & (data.labels == c).view(-1, 1, 1)
    frac = float(data.masks.float().mean())
    res = fv.dissect(PlantedUnits().eval(), "units", data.images, concepts, quantile=1 - frac, batch_size=16,
                     progress=False)
    assert res.iou.shape == (3, 6)
    best = {u: (c, v) for u, c, v in res.best()}
    assert best[0][0] == "object" and best[0][1] > 0.6
    assert best[1][0] == "background"
    assert float(res.iou[2].max()) < 0.3  # the colour unit matches no shape
    assert res.table()[0]["unit"] == 0


def test_dissect_iou_equals_a_direct_computation():
    """IoU against a plain loop over images (same threshold rule, same bilinear upsampling)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU()).eval()
    images = torch.rand(6, 3, 16, 16)
    masks = torch.rand(6, 2, 16, 16) > 0.7
    res = fv.dissect(model, "1", images, masks, quantile=0.9, batch_size=4, progress=False)
    with torch.no_grad():
        acts = model(images)
    flat = acts.transpose(0, 1).reshape(4, -1)
    thr = flat.sort(1).values[:, round(0.9 * flat.shape[1]) - 1]
    torch.testing.assert_close(res.thresholds, thr)
    for u in range(4):
        for c in range(2):
            inter = union = 0
            for i in range(6):
                up = F.interpolate(acts[i : i + 1, u : u + 1], size=(16, 16), mode="bilinear", align_corners=False)
                on = up[0, 0] > thr[u]
                inter += int((on & masks[i, c]).sum())
                union += int((on | masks[i, c]).sum())
            assert abs(float(res.iou[u, c]) - inter / union) < 1e-6


# ---------------------------------------------------------------- TCAV
class RedConceptModel(nn.Module):
    """Unit 0 of ``features`` is redness (R - (G + B) / 2); class 0's logit is its mean ReLU plus small
    random smooth terms of the other units, so gradients vary between inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Conv2d(3, 4, 1)
        with torch.no_grad():
            self.features.weight[0] = torch.tensor([1.0, -0.5, -0.5]).view(3, 1, 1)
            self.features.bias[0] = 0.0
        self.mix = torch.randn(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.features(x)
        logit0 = F.relu(u[:, 0]).mean((1, 2)) + 0.1 * (torch.tanh(u[:, 1:]).mean((2, 3)) * self.mix).sum(1)
        return torch.stack([logit0, -logit0], 1)


def _blobs(n: int, colour: torch.Tensor | None, gen: torch.Generator, size: int = 16) -> torch.Tensor:
    x = torch.rand(n, 3, size, size, generator=gen)
    if colour is not None:
        x[:, :, 4:12, 4:12] = colour.view(1, 3, 1, 1) + 0.1 * torch.rand(n, 3, 8, 8, generator=gen)
    return x


def test_tcav_scores_one_for_a_planted_concept_and_chance_for_random():
    model = RedConceptModel().eval()
    gen = torch.Generator().manual_seed(0)
    red = _blobs(20, torch.tensor([0.9, 0.05, 0.05]), gen)
    pool = _blobs(80, None, gen)
    inputs = _blobs(30, torch.tensor([0.8, 0.1, 0.1]), gen)
    res = fv.tcav(model, "features", red, pool, inputs, target=0, n_repeats=8, progress=False)
    assert res.score > 0.95 and res.significant and res.p_value < 0.01
    assert (res.accuracies == 1.0).all()
    fake = _blobs(20, None, gen)  # a "concept" with no content: random images
    null = fv.tcav(model, "features", fake, pool, inputs, target=0, n_repeats=8, progress=False)
    assert abs(null.score - 0.5) < 0.3 and not null.significant


# ---------------------------------------------------------------- objectives, parametrisation, frames
def test_objective_algebra_and_batch_selection(tiny_cnn):
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        acts = {"features.1": tiny_cnn.features[1](tiny_cnn.features[0](x))}
    a, b = fv.channel("features.1", 2), fv.channel("features.1", 5, batch=1)
    ca, cb = acts["features.1"][:, 2].mean((1, 2)), acts["features.1"][:, 5].mean((1, 2))
    torch.testing.assert_close((a + 2 * b - a * 0.5)(acts, 3), 0.5 * ca + 2 * cb * torch.tensor([0.0, 1, 0]))
    torch.testing.assert_close(sum([a, -a])(acts, 3), torch.zeros(3))
    n = fv.neuron("features.1", 3, x=1, y=2)(acts, 3)
    torch.testing.assert_close(n, acts["features.1"][:, 3, 2, 1])
    torch.testing.assert_close(fv.layer("features.1")(acts, 3), acts["features.1"].pow(2).mean((1, 2, 3)))
    div = fv.diversity("features.1")(acts, 3)
    assert div.shape == (3,) and (div <= 0).all()


def test_maximize_class_direction_diversity_and_frames(tiny_cnn):
    before = tiny_cnn(torch.full((1, 3, 32, 32), 0.5))[0, 1]
    obj = fv.class_logit(1) + 0.1 * fv.diversity("features.3") + fv.direction("features.3", torch.ones(16)) * 0.01
    events = []
    tracker = Progress(tqdm=False, on_event=lambda e, d: events.append((e, list(d["frame_steps"]), len(d["frames"]),
                                                                          len(d["objective_values"]))))
    res = fv.maximize(tiny_cnn, obj, batch=2, size=32, n_steps=12, lr=0.1, snapshot_every=5, normalize=False,
                      progress=tracker)
    assert res.frames.shape == (4, 2, 32, 32, 3) and res.frame_steps == [0, 5, 10, 12]
    assert events == [("frames", [0, 5], 2, 5), ("frames", [0, 5, 10], 3, 10)]  # streamed at each snapshot
    assert res.frames.dtype.name == "uint8"
    with torch.no_grad():
        after = tiny_cnn(res.images)[:, 1]
    assert (after > before).all()
    again = fv.maximize(tiny_cnn, obj, batch=2, size=32, n_steps=12, lr=0.1, normalize=False, progress=False)
    torch.testing.assert_close(again.images, res.images)  # seeded


@pytest.mark.parametrize("param", ["pixel", "fft"])
def test_regularizers_run_and_l2_pulls_to_grey(tiny_cnn, param):
    regs = [fv.regularizers.l2(1.0), fv.regularizers.total_variation(0.1), fv.regularizers.frequency_penalty(0.1),
            fv.regularizers.clip_small_gradients(20)]
    if param == "pixel":
        regs += [fv.regularizers.blur_every(3), fv.regularizers.clip_small_pixels(10),
                 fv.regularizers.clip_small_contributions(10)]
    obj = fv.channel("features.3", 4)
    kw = dict(param=param, size=24, n_steps=10, lr=0.1, normalize=False, progress=False)
    plain = fv.maximize(tiny_cnn, obj, **kw)
    reg = fv.maximize(tiny_cnn, obj, regularizers=regs, **kw)
    assert (reg.images - 0.5).abs().mean() < (plain.images - 0.5).abs().mean()


def test_activations_and_grid(tiny_cnn):
    x = torch.rand(3, 16, 16)
    maps = fv.activations(tiny_cnn, "features.2", x)
    assert maps.shape == (16, 16, 16)
    torch.testing.assert_close(maps, tiny_cnn.features[:3](x[None])[0].detach())
    grid = fv.activation_grid(maps, ncols=4, pad=2)
    assert grid.shape == (4 * 18 - 2, 4 * 18 - 2) and 0 <= float(grid.min()) and float(grid.max()) <= 1


# ---------------------------------------------------------------- restoration and errors
def _snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [_hook_keys(m) for m in model.modules()],
    )


def test_model_restored_after_success_and_after_cancel(tiny_cnn):
    tiny_cnn.train()
    tiny_cnn.features[0].weight.requires_grad_(False)
    handle = tiny_cnn.features[1].register_forward_hook(lambda *a: None)
    before = _snapshot(tiny_cnn)
    x = torch.rand(2, 3, 16, 16)
    out = tiny_cnn(x)
    fv.maximize(tiny_cnn, fv.channel("features.3", 1), size=16, n_steps=3, progress=False)
    fv.top_patches(tiny_cnn, "features.3", 1, x, k=1, progress=False)
    fv.dissect(tiny_cnn, "features.3", x, torch.rand(2, 16, 16) > 0.5, quantile=0.9, progress=False)
    progress = Progress(tqdm=False)
    progress.callback = lambda frac, msg: progress.cancel() if frac > 0.3 else None
    with pytest.raises(Cancelled):
        fv.maximize(tiny_cnn, fv.channel("features.3", 1), size=16, n_steps=10, progress=progress)
    with pytest.raises(ParameterError):  # raises inside the loop, at the first forward
        fv.maximize(tiny_cnn, fv.channel("features.3", 99), size=16, n_steps=3, progress=False)
    after = _snapshot(tiny_cnn)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1:] == after[1:]
    assert all(p.grad is None for p in tiny_cnn.parameters())  # no gradient reached the model
    torch.testing.assert_close(tiny_cnn(x), out)
    handle.remove()


def test_errors_say_what_to_do(tiny_cnn):
    with pytest.raises(LayerError, match=r"Did you mean: features\.3"):
        fv.maximize(tiny_cnn, fv.channel("features.33", 0), size=16, n_steps=1, progress=False)
    with pytest.raises(ParameterError, match=r"channel 16 is out of range.*16 channels"):
        fv.maximize(tiny_cnn, fv.channel("features.3", 16), size=16, n_steps=1, progress=False)
    with pytest.raises(ParameterError, match="param must be one of"):
        fv.maximize(tiny_cnn, fv.channel("features.3", 0), param="cppn", progress=False)
    with pytest.raises(ParameterError, match="needs param='pixel'"):
        fv.maximize(tiny_cnn, fv.channel("features.3", 0), regularizers=[fv.regularizers.blur_every(2)])
    with pytest.raises(ParameterError, match="objective must be"):
        fv.maximize(tiny_cnn, "features.3:0")
    with pytest.raises(ParameterError, match="batch=3"):
        fv.maximize(tiny_cnn, fv.channel_objectives("features.3", [0, 1]), batch=3)
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ParameterError, match="out of range"):
        fv.top_patches(tiny_cnn, "features.3", 40, x, progress=False)
    with pytest.raises(LayerError, match="no layer named"):
        fv.activations(tiny_cnn, "nope", x)
    with pytest.raises(LayerError, match="spatial"):
        fv.top_patches(tiny_cnn, "fc", 0, x, progress=False)
    with pytest.raises(ParameterError, match="quantile"):
        fv.dissect(tiny_cnn, "features.3", x, torch.zeros(2, 16, 16, dtype=torch.bool), quantile=99)
