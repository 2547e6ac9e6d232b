"""One baseline resolver, one meaning per name (docs/baselines.md; issue 18.1).

The meanings are checked numerically against their definitions: "black" is black pixels in the model's
input space ((0 - mean) / std of an ImageClassifier, the tensor its preprocess makes of a black image), the
blur's sigma is max(H, W) / 20 (its impulse response is the sampled Gaussian), random names stay in each
input's range and repeat with the seed. Then every method and metric that takes a baseline is shown to go
through :func:`xaiwidgets.methods.baselines.resolve_baseline` and to receive the same tensor for the same
name and seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.adapters import IMAGENET_MEAN, IMAGENET_STD
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.methods import baselines as bl
from xaiwidgets.methods.baselines import NAMES, blur_sigma, resolve_baseline

ROOT = Path(__file__).resolve().parent.parent


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 4 - 2


@pytest.fixture
def clf() -> xw.ImageClassifier:
    return xw.ImageClassifier(Tiny().eval(), input_size=8)


# ---------------------------------------------------------------------------------------------- meanings


def test_black_is_black_pixels_after_the_classifiers_normalisation(images, clf):
    black = resolve_baseline("black", images, clf)
    expected = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)  # (0 - mean) / std
    torch.testing.assert_close(black, expected.view(1, 3, 1, 1).expand_as(images), rtol=0, atol=1e-6)
    # the same tensor the adapter makes of a black image
    torch.testing.assert_close(black[:1], clf.preprocess(np.zeros((8, 8, 3), np.uint8)), rtol=0, atol=1e-6)
    # one mean for every channel broadcasts; a mean of the wrong length is refused, not guessed
    grey = xw.ImageClassifier(Tiny(), mean=(0.5,), std=(0.25,), input_size=8)
    assert torch.equal(resolve_baseline("black", images, grey), torch.full_like(images, -2.0))
    with pytest.raises(ParameterError, match="normalises 2 channels"):
        resolve_baseline("black", images, xw.ImageClassifier(Tiny(), mean=(0.5, 0.5), std=None))


def test_black_without_normalisation_and_off_images_is_zero(images):
    plain = xw.ImageClassifier(Tiny(), mean=None, std=None, input_size=8)
    for classifier in (None, plain):
        assert torch.equal(resolve_baseline("black", images, classifier), torch.zeros_like(images))
    rows = torch.randn(3, 5)
    assert torch.equal(resolve_baseline("black", rows), torch.zeros_like(rows))


def test_zeros_none_and_numbers_are_literal(images, clf):
    for name in ("zeros", None, 0, 0.0):
        assert torch.equal(resolve_baseline(name, images, clf), torch.zeros_like(images))
    assert torch.equal(resolve_baseline(-1.5, images, clf), torch.full_like(images, -1.5))  # not normalised


def test_mean_is_per_image_per_channel_or_the_batch_mean_of_rows(images):
    mean = resolve_baseline("mean", images)
    torch.testing.assert_close(mean, images.mean((2, 3), keepdim=True).expand_as(images))
    rows = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    assert torch.equal(resolve_baseline("mean", rows), torch.tensor([[2.0, 20.0], [2.0, 20.0]]))
    with pytest.raises(ParameterError, match="the input itself"):
        resolve_baseline("mean", rows[:1])


def test_blur_sigma_is_a_twentieth_of_the_longer_side():
    assert blur_sigma(torch.zeros(1, 3, 224, 224)) == pytest.approx(11.2)
    assert blur_sigma(torch.zeros(1, 3, 30, 40)) == pytest.approx(2.0)
    # impulse response of the blur on a 30 x 40 image: the sampled Gaussian of sigma 40 / 20 = 2 px,
    # truncated at int(3 sigma) = 6 px and normalised (separable: the outer product of two such profiles)
    x = torch.zeros(1, 1, 30, 40, dtype=torch.float64)
    x[0, 0, 15, 20] = 1.0
    out = resolve_baseline("blur", x)[0, 0]
    t = torch.arange(-6, 7, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / 2.0) ** 2)
    g = g / g.sum()
    torch.testing.assert_close(out[9:22, 14:27], g[:, None] * g[None, :], rtol=1e-12, atol=1e-15)
    assert float(out.sum()) == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="needs image inputs"):
        resolve_baseline("blur", torch.randn(2, 5))


def test_uniform_and_gaussian_follow_each_inputs_range_and_the_seed():
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.rand(1, 3, 32, 32, generator=g), 10 + 10 * torch.rand(1, 3, 32, 32, generator=g)])
    lo = x.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    for name in ("uniform", "gaussian"):
        b = resolve_baseline(name, x, seed=3)
        assert bool(((b >= lo) & (b <= hi)).all()), name
        assert torch.equal(b, resolve_baseline(name, x, seed=3))  # seeded
        assert not torch.equal(b, resolve_baseline(name, x, seed=4))
    u = resolve_baseline("uniform", x, seed=3)
    # 3072 draws per input: the mean of U(lo, hi) is (lo + hi) / 2 within 5 standard errors
    se = (hi - lo).flatten() / math.sqrt(12 * 3072)
    assert bool(((u.flatten(1).mean(1) - ((lo + hi) / 2).flatten()).abs() < 5 * se).all())
    # gaussian: sigma 0.1 (hi - lo) of each input (clipping changes little at 0.1 of the range away from the ends)
    z = resolve_baseline("gaussian", x, seed=3) - x
    inner = (x > lo + 0.3 * (hi - lo)) & (x < hi - 0.3 * (hi - lo))
    for i in range(2):
        assert float(z[i][inner[i]].std()) == pytest.approx(0.1 * float(hi[i] - lo[i]), rel=0.05)
    # drawn on the CPU: the values do not depend on the inputs' dtype beyond rounding
    torch.testing.assert_close(resolve_baseline("uniform", x.double(), seed=3).float(), u)


def test_tensors_arrays_callables_and_backgrounds(images):
    per_channel = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    assert torch.equal(resolve_baseline(per_channel, images), per_channel.expand_as(images))
    assert torch.equal(resolve_baseline(np.ones((3, 8, 8)), images), torch.ones_like(images))
    assert torch.equal(resolve_baseline(np.float32(0.5), images), torch.full_like(images, 0.5))
    assert torch.equal(resolve_baseline(lambda x: x * 0 + 2, images), torch.full_like(images, 2.0))
    background = torch.randn(5, 3, 8, 8)
    assert torch.equal(resolve_baseline(background, images, background=True), background)
    with pytest.raises(ParameterError, match="one baseline per input"):
        resolve_baseline(background, images)
    bad = [("white", "unknown baseline 'white'"), (torch.zeros(2, 5), "does not broadcast"),
           (float("nan"), "finite"), (torch.full((3, 8, 8), float("inf")), "NaN or infinite"),
           (True, "not|bool"), (object(), "got object"), (lambda x: "black", "not a name")]
    for baseline, message in bad:
        with pytest.raises(ParameterError, match=message):
            resolve_baseline(baseline, images)


def test_old_resolvers_warn_and_name_their_successor(images, clf):
    from xaiwidgets.methods.perturbation import features
    from xaiwidgets.methods.relevance import deeplift
    from xaiwidgets.metrics import perturb

    for old in (features.resolve_baseline, deeplift.resolve_baseline, perturb.resolve_baseline):
        with pytest.warns(DeprecationWarning, match=r"xaiwidgets\.methods\.baselines\.resolve_baseline"):
            out = old("black", images, clf)
        assert torch.equal(out, resolve_baseline("black", images, clf))
    assert features.BASELINES == perturb.BASELINES == NAMES


def test_the_docs_table_lists_every_name():
    doc = (ROOT / "docs" / "baselines.md").read_text()
    for name in NAMES:
        assert f'| `"{name}"` |' in doc, name
    assert "baselines.md" in (ROOT / "docs" / "methods.md").read_text()


# -------------------------------------------------------------------------------- one path for everyone


QUIET = {"progress": False}
CONSUMERS = {
    "integrated_gradients": lambda m, x, b: xw.attribute(m, x, method="integrated_gradients", target=0, n_steps=2,
                                                         baseline=b, **QUIET),
    "expected_gradients": lambda m, x, b: xw.attribute(m, x, method="expected_gradients", target=0, n_samples=2,
                                                       baseline=b, **QUIET),
    "deeplift": lambda m, x, b: xw.attribute(m, x, method="deeplift", target=0, baseline=b, **QUIET),
    "occlusion": lambda m, x, b: xw.attribute(m, x, method="occlusion", target=0, window=4, baseline=b, **QUIET),
    "rise": lambda m, x, b: xw.attribute(m, x, method="rise", target=0, n_masks=4, baseline=b, **QUIET),
    "extremal_perturbation": lambda m, x, b: xw.attribute(m, x, method="extremal_perturbation", target=0,
                                                          n_steps=1, baseline=b, **QUIET),
    "kernel_shap": lambda m, x, b: xw.attribute(m, x, method="kernel_shap", target=0, n_samples=8, baseline=b,
                                                segments=torch.arange(4).repeat_interleave(16).view(8, 8), **QUIET),
    "smoothgrad(integrated_gradients)": lambda m, x, b: xw.attribute(
        m, x, method="smoothgrad", target=0, n_samples=1, noise_level=0.0, base_method="integrated_gradients",
        base_params={"n_steps": 2, "baseline": b}, **QUIET),
    "deletion": lambda m, x, b: xw.metrics.deletion(m, x, torch.rand(x.shape), 0, n_steps=2, baseline=b, **QUIET),
    "insertion": lambda m, x, b: xw.metrics.insertion(m, x, torch.rand(x.shape), 0, n_steps=2, baseline=b,
                                                      **QUIET),
    "region_perturbation": lambda m, x, b: xw.metrics.region_perturbation(m, x, torch.rand(x.shape), 0,
                                                                          patch_size=4, n_regions=2, baseline=b,
                                                                          **QUIET),
    "faithfulness_correlation": lambda m, x, b: xw.metrics.faithfulness_correlation(
        m, x, torch.rand(x.shape), 0, n_runs=2, baseline=b, **QUIET),
    "infidelity": lambda m, x, b: xw.metrics.infidelity(m, x, torch.rand(x.shape), 0, perturbation="square",
                                                        patch_size=4, n_samples=2, baseline=b, **QUIET),
    "completeness": lambda m, x, b: xw.metrics.completeness(m, x, torch.rand(x.shape), 0, baseline=b),
    "selectivity": lambda m, x, b: xw.metrics.selectivity(m, x, torch.rand(x.shape), 0, patch=4, n_random=1,
                                                          baseline=b, **QUIET),
}


@pytest.fixture
def spy(monkeypatch):
    """Records ``(name, classifier, baseline tensor)`` for every named baseline the resolver builds."""
    calls: list[tuple[str, object, torch.Tensor]] = []
    named = bl._named

    def recording(name, x, classifier, seed):
        out = named(name, x, classifier, seed)
        calls.append((name, classifier, out.detach().clone()))
        return out

    monkeypatch.setattr(bl, "_named", recording)
    return calls


@pytest.mark.parametrize("consumer", list(CONSUMERS))
def test_every_method_and_metric_resolves_names_through_the_one_resolver(consumer, clf, spy):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 4 - 2
    CONSUMERS[consumer](clf, x, "black")
    assert spy, f"{consumer} did not call resolve_baseline"
    name, classifier, black = spy[0]
    assert name == "black" and classifier is clf, consumer  # with the adapter: its normalisation is known
    torch.testing.assert_close(black, resolve_baseline("black", x, clf), rtol=0, atol=0)


def test_the_same_name_and_seed_give_the_same_baseline_everywhere(clf, spy):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 4 - 2
    for consumer in ("integrated_gradients", "deeplift", "occlusion", "kernel_shap", "deletion",
                     "faithfulness_correlation"):
        CONSUMERS[consumer](clf, x, "uniform")  # every default seed is 0
    tensors = [t for name, _, t in spy if name == "uniform"]
    assert len(tensors) >= 6
    for t in tensors[1:]:
        assert torch.equal(t, tensors[0])
    assert torch.equal(tensors[0], resolve_baseline("uniform", x, clf, seed=0))


def test_deepshap_background_goes_through_the_resolver(clf):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ParameterError, match="NaN or infinite"):
        xw.attribute(clf, x, method="deepshap", target=0, background=torch.full((2, 3, 8, 8), float("nan")),
                     **QUIET)


def test_completeness_auto_uses_the_baseline_the_method_used(clf, spy):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 4 - 2
    ig = xw.attribute(clf, x, method="integrated_gradients", target=0, n_steps=2, **QUIET)  # default "black"
    result = xw.metrics.completeness(clf, x, ig)
    assert [name for name, _, _ in spy] == ["black", "black"]
    assert torch.equal(spy[0][2], spy[1][2])
    torch.testing.assert_close(result.baseline_output, ig.extras["f_baseline"].float().cpu())
