"""ScrubberView: wire budget, fidelity of the last accumulated frame, errors, streaming compute, cancel."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget import _remove_buffers
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.gradient.integrated_gradients
import xaiwidgets.methods.gradient.smoothgrad
from xaiwidgets.core.attribution import Attribution
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.methods import registry
from xaiwidgets.methods.base import Method
from xaiwidgets.methods.registry import register
from xaiwidgets.widgets.scrubber import ScrubberView, downsample_maps, plan_frames

BUDGET = 3_000_000


def small_cnn() -> nn.Module:
    """Cheap enough for 50 IG steps / SmoothGrad samples at 224x224 on 2 CPU cores."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()


def image(size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def on_the_wire(view: ScrubberView) -> tuple[int, int]:
    """(binary buffer bytes, JSON bytes) of the ``frames`` trait as ipywidgets sends it (the ES module
    source in ``_esm``, ~30 kB, is sent once per widget and is not part of the frame budget)."""
    state = view.get_state("frames")
    stripped, _paths, buffers = _remove_buffers(state)
    return sum(memoryview(b).nbytes for b in buffers), len(json.dumps(stripped))


@pytest.fixture(scope="module")
def ig224() -> Attribution:
    return xw.attribute(small_cnn(), image(224), method="integrated_gradients", n_steps=50, return_frames=True,
                        progress=False)


@pytest.fixture(scope="module")
def sg224() -> Attribution:
    return xw.attribute(small_cnn(), image(224), method="smoothgrad", n_samples=50, noise_level=0.1, seed=0,
                        return_frames=True, progress=False)


@pytest.mark.parametrize("name", ["ig224", "sg224"])
def test_fifty_frames_at_224_fit_the_budget(name: str, request: pytest.FixtureRequest) -> None:
    attribution = request.getfixturevalue(name)
    view = ScrubberView.from_attribution(attribution)
    f = view.frames
    buffers, text = on_the_wire(view)
    print(f"\n{attribution.frame_kind}: 50 frames 224x224 -> maps {f['shape']}, buffers {buffers} B + JSON {text} B "
          f"= {(buffers + text) / 1e6:.3f} MB (reported {f['bytes']})")
    assert f["count"] == 50 and f["source_shape"] == [224, 224]
    assert buffers + text <= BUDGET
    assert abs(f["bytes"] - (buffers + text)) < 2048, "the reported size is the size on the wire"
    assert buffers > 0.95 * BUDGET, "the resolution uses the budget (not needlessly small)"
    # every buffer is binary: no array travels as a JSON list
    assert text < 20_000
    h, w = f["shape"]
    assert f["gradients"]["shape"] == [50, h, w] and f["accumulated"]["shape"] == [50, h, w]
    assert len(f["gradients"]["vmins"]) == 50 and "vmin" in f["accumulated"]


def last_accumulated(view: ScrubberView) -> tuple[np.ndarray, float]:
    acc = view.frames["accumulated"]
    q = np.frombuffer(acc["data"], np.uint8).reshape(acc["shape"])[-1]
    step = (acc["vmax"] - acc["vmin"]) / 255
    return acc["vmin"] + q.astype(np.float64) * step, step


@pytest.mark.parametrize("name", ["ig224", "sg224"])
@pytest.mark.parametrize("budget", [BUDGET, 200_000])
def test_last_accumulated_frame_is_the_final_attribution(
    name: str, budget: float, request: pytest.FixtureRequest
) -> None:
    attribution = request.getfixturevalue(name)
    view = ScrubberView.from_attribution(attribution, frame_budget=budget)
    shown, step = last_accumulated(view)
    final = attribution.values[0].detach().float().sum(0)  # the channel reduction of the final attribution
    expected = downsample_maps(final[None], tuple(view.frames["shape"]))[0].double().numpy()
    assert shown.shape == expected.shape
    assert np.abs(shown - expected).max() <= step * 1.0001, "within one quantisation step"
    assert view.frames["bytes"] <= budget
    # the accumulated range is the final map's (signed: symmetric)
    acc = view.frames["accumulated"]
    assert acc["vmax"] == pytest.approx(np.abs(expected).max(), rel=1e-5)


def test_ig_line_plot_data_and_completeness(ig224: Attribution) -> None:
    f = ScrubberView.from_attribution(ig224).frames
    alphas = np.frombuffer(f["alphas"]["data"], np.float32)
    scores = np.frombuffer(f["path_scores"]["data"], np.float32)
    assert np.all(np.diff(alphas) > 0) and 0 < alphas[0] < alphas[-1] < 1  # gauss-legendre nodes
    np.testing.assert_allclose(scores, ig224.frames["path_scores"][0].numpy(), rtol=1e-6)
    ex = ig224.extras
    assert f["f_input"] == pytest.approx(float(ex["f_input"][0]))
    assert f["f_baseline"] == pytest.approx(float(ex["f_baseline"][0]))
    assert f["delta"] == pytest.approx(float(ex["delta"][0]))
    assert f["attribution_sum"] == pytest.approx(float(ig224.values.sum()), rel=1e-5)
    sums = np.frombuffer(f["partial_sums"]["data"], np.float32)
    assert sums[-1] == pytest.approx(f["attribution_sum"], rel=1e-4)
    # the path input is rebuilt in the browser: input and baseline images only, no per-step images
    assert "baseline" in f and "noisy" not in f


def test_noise_payload_has_noisy_inputs(sg224: Attribution) -> None:
    f = ScrubberView.from_attribution(sg224).frames
    h, w = f["shape"]
    assert f["noisy"]["shape"] == [50, h, w, 3] and f["noisy"]["dtype"] == "uint8"
    conv = np.frombuffer(f["convergence"]["data"], np.float32)
    assert conv[-1] == pytest.approx(0, abs=1e-6) and conv[0] > conv[-2]


def test_fallback_png_is_the_last_frame(ig224: Attribution) -> None:
    png = ScrubberView.from_attribution(ig224)._fallback_png()
    assert png is not None and png.startswith(b"\x89PNG")
    data, _ = ScrubberView.from_attribution(ig224)._repr_mimebundle_()
    assert "image/png" in data


def test_plan_drops_frames_only_below_the_minimum_side() -> None:
    h, w, kept = plan_frames(224, 224, 50, "ig_path", BUDGET)
    assert (h, w) == (168, 168) and len(kept) == 50
    h, w, kept = plan_frames(64, 64, 2000, "noise", BUDGET)
    assert (h, w) == (32, 32) and len(kept) < 2000 and kept[-1] == 1999 and kept[0] == 0
    assert plan_frames(32, 48, 4, "noise", BUDGET)[:2] == (32, 48), "never upsampled"


def test_error_without_frames(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, image(32), method="integrated_gradients", n_steps=4, progress=False)
    with pytest.raises(ParameterError, match="return_frames=True"):
        ScrubberView.from_attribution(a)
    b = xw.attribute(tiny_cnn, image(32), method="saliency", progress=False)
    with pytest.raises(ParameterError, match="return_frames=True"):
        ScrubberView.from_attribution(b)
    with pytest.raises(ParameterError, match="no scrubber frames"):
        ScrubberView.compute(tiny_cnn, image(32), method="saliency")
    framed = xw.attribute(tiny_cnn, image(32), method="integrated_gradients", n_steps=4, return_frames=True,
                          progress=False)
    with pytest.raises(IndexError):
        ScrubberView.from_attribution(framed, index=3)


# ----- streaming compute with a fake slow method that emits frames snapshots -------------------------


class _FakeSlowPath(Method):
    """Test double: an IG-shaped result built over ``chunks`` sleeps, emitting a frames snapshot per chunk."""

    name = "scrubber_test_fake_slow"
    family = "test"
    reference = "test double"
    defaults: ClassVar[dict[str, Any]] = {"chunks": 6, "delay": 0.3, "return_frames": False}

    def _attribute(self, inputs, target, params, progress) -> Attribution:
        n, _c, hh, ww = inputs.shape
        k_total = params["chunks"] * 2
        alphas = (torch.arange(k_total) + 0.5) / k_total
        grads = torch.randn(n, k_total, hh, ww, generator=torch.Generator().manual_seed(0))
        partial = torch.cumsum(grads / k_total, 1)

        def snapshot(k: int) -> dict[str, torch.Tensor]:
            return {"alphas": alphas[:k], "weights": torch.full((k,), 1 / k_total),
                    "path_scores": torch.linspace(0, 1, k_total)[:k].expand(n, k).clone(),
                    "gradient_maps": grads[:, :k], "partial_maps": partial[:, :k],
                    "baseline": torch.zeros_like(inputs)}

        for chunk in range(params["chunks"]):
            time.sleep(params["delay"])
            progress.update(chunk + 1, params["chunks"], "fake")
            progress.emit("frames", snapshot(2 * (chunk + 1)))
        values = partial[:, -1:].expand(n, 3, hh, ww) / 3
        return Attribution(values=values, method=self.name, target=torch.zeros(n, dtype=torch.long),
                           scores=torch.zeros(n), frames=snapshot(k_total), frame_kind="ig_path",
                           extras={"f_input": torch.ones(n), "f_baseline": torch.zeros(n)})


@pytest.fixture(scope="module", autouse=True)
def _fake_method_registered():
    """Register the test double for this module only (the registry is global)."""
    register(_FakeSlowPath)
    yield
    registry._REGISTRY.pop(_FakeSlowPath.name, None)


def record_frames(view: ScrubberView) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    view.observe(lambda change: seen.append(change["new"]), names="frames")
    return seen


def test_compute_streams_frames_and_ends_idle(tiny_cnn: nn.Module) -> None:
    view = ScrubberView.compute(tiny_cnn, image(24), method="scrubber_test_fake_slow", chunks=6, delay=0.3)
    seen = record_frames(view)
    assert view.status == "running"  # returned at once
    assert view.wait(30)
    assert view.status == "done" and view.progress == 1.0
    counts = [f["count"] for f in seen]
    print(f"\nframes updates while computing: {counts}")
    assert len(seen) >= 4, "several streamed updates plus the final one"
    assert len(seen) <= 6 + 1
    assert counts == sorted(counts) and seen[-1]["done"] and not seen[0]["done"]
    assert seen[0]["expected"] >= seen[0]["count"]
    assert view.frames["count"] == 12 and view.kind == "ig_path"
    assert view.attribution is not None


def test_streamed_updates_are_throttled(tiny_cnn: nn.Module) -> None:
    view = ScrubberView.compute(tiny_cnn, image(24), method="scrubber_test_fake_slow", chunks=20, delay=0.02)
    seen = record_frames(view)
    assert view.wait(30) and view.status == "done"
    # 20 snapshots in ~0.4 s: at most ~4 per second get through, plus the final result
    assert 2 <= len(seen) <= 5, [f["count"] for f in seen]
    assert seen[-1]["done"] and seen[-1]["count"] == 40


def test_cancel_by_message_keeps_frames(tiny_cnn: nn.Module) -> None:
    view = ScrubberView.compute(tiny_cnn, image(24), method="scrubber_test_fake_slow", chunks=40, delay=0.1)
    sent: list[dict[str, Any]] = []
    view.send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    deadline = time.time() + 20
    while not view.frames and time.time() < deadline:
        time.sleep(0.05)
    assert view.frames, "frames streamed in before cancel"
    view._on_message(view, {"type": "cancel", "id": "req-1"}, [])
    assert view.wait(20)
    assert view.status == "cancelled"
    assert {"type": "accepted", "id": "req-1"} in sent
    assert any(m.get("type") == "done" and m.get("status") == "cancelled" for m in sent)
    assert 0 < view.frames["count"] < 80 and not view.frames["done"]


def test_compute_with_real_ig_and_smoothgrad(tiny_cnn: nn.Module) -> None:
    x = image(32, seed=2)
    view = ScrubberView.compute(tiny_cnn, x, method="integrated_gradients", n_steps=8, wait=True)
    assert view.status == "done", view.status
    ref = xw.attribute(tiny_cnn, x, method="integrated_gradients", n_steps=8, return_frames=True, progress=False)
    shown, step = last_accumulated(view)
    np.testing.assert_allclose(shown, ref.values[0].sum(0).double().numpy(), atol=step * 1.0001)
    view = ScrubberView.compute(tiny_cnn, x, method="smoothgrad", n_samples=6, seed=1, wait=True)
    assert view.status == "done" and view.kind == "noise" and view.frames["count"] == 6


def test_compute_reports_errors(tiny_cnn: nn.Module) -> None:
    view = ScrubberView.compute(tiny_cnn, image(16), method="integrated_gradients", n_steps=4, target=99, wait=True)
    assert view.status == "error" and "99" in view.error, view.error


def test_worker_thread_does_not_block(tiny_cnn: nn.Module) -> None:
    start = time.perf_counter()
    view = ScrubberView.compute(tiny_cnn, image(24), method="scrubber_test_fake_slow", chunks=3, delay=0.3)
    assert time.perf_counter() - start < 0.5
    assert any(t.name == "xaiwidgets-scrubber" for t in threading.enumerate())
    view.wait(10)


def test_real_ig_streams_partial_snapshots(tiny_cnn: nn.Module, monkeypatch) -> None:
    """Snapshots with fewer frames than n_steps are shown (the resolution is planned for all n_steps)."""
    import xaiwidgets.widgets.scrubber as scrubber

    monkeypatch.setattr(scrubber, "UPDATE_INTERVAL", 0.0)
    view = ScrubberView.compute(tiny_cnn, image(24), method="integrated_gradients", n_steps=12, batch_size=3)
    seen = record_frames(view)
    assert view.wait(30) and view.status == "done"
    counts = [f["count"] for f in seen]
    assert [c for c in counts if c < 12] and counts == sorted(counts), counts
    assert {tuple(f["shape"]) for f in seen} == {tuple(view.frames["shape"])}
    assert seen[-1]["done"] and not seen[0]["done"] and seen[0]["expected"] == 12
