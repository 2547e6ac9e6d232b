"""EstimateView: the payload of recorded and streamed estimates, the byte budget, live compute, and cancel
keeping the best estimate (the samples evaluated so far, flagged in ``extras``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
import xaiwidgets.methods.perturbation  # registers the methods
from xaiwidgets.core.errors import ParameterError
from xaiwidgets.widgets.estimate import DEFAULT_BUDGET, EstimateView, plan_size, stream

GRID = {"segments": "grid", "segmentation_params": {"patch": 8}}  # 16 features on 32x32


def image(size: int = 32) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def stack(payload: dict[str, Any], key: str) -> np.ndarray:
    d = payload[key]
    q = np.frombuffer(d["data"], np.uint8).reshape(d["shape"]).astype(np.float64)
    return d["vmin"] + q / 255 * (d["vmax"] - d["vmin"])


def floats(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(d["data"], np.float32)


class Slow(nn.Module):
    """The tiny CNN, 10 ms per call: slow enough to cancel in the middle."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01)
        return self.inner(x)


def test_plan_size_fits_the_budget_and_never_upsamples() -> None:
    for h, w, k, budget in [(224, 224, 40, DEFAULT_BUDGET), (224, 160, 40, 1e6), (32, 32, 40, DEFAULT_BUDGET)]:
        ph, pw = plan_size(h, w, k, budget)
        assert ph <= h and pw <= w and abs(ph / pw - h / w) < 0.02
        assert (2 * k + 3) * ph * pw <= budget
    assert plan_size(32, 32) == (32, 32)


def test_recorded_estimates_refine_and_the_error_shrinks(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, image(), method="kernel_shap", n_samples=400, batch_size=16, stream_every=1,
                     progress=False, **GRID)
    view = a.show()
    assert isinstance(view, EstimateView)
    e = view.estimate
    assert e["done"] and not e["cancelled"] and e["has_stderr"] and e["method"] == "kernel_shap"
    assert e["shape"] == [32, 32] and e["count"] >= 10 and e["bytes"] <= DEFAULT_BUDGET
    n = floats(e["n_samples"])
    assert (np.diff(n) > 0).all() and n[-1] == 400
    # oracle: the newest frame is the final attribution (kernel_shap's map is the channel mean), within one
    # quantisation step of the shared range
    final = a.values[0].mean(0).numpy()
    step = (e["values"]["vmax"] - e["values"]["vmin"]) / 255
    assert np.abs(stack(e, "values")[-1] - final).max() <= step / 2 + 1e-9
    # one standard-error scale for every frame: [0, largest error]; the mean error falls ~ 1/sqrt(n)
    assert e["stderr"]["vmin"] == 0 and e["stderr"]["vmax"] == pytest.approx(stack(e, "stderr").max(), rel=1e-6)
    se = floats(e["history"]["mean_stderr"])
    hn = floats(e["history"]["n_samples"])
    finite = np.isfinite(se)
    first, last = np.flatnonzero(finite)[[0, -1]]
    assert se[last] < se[first]
    assert se[last] == pytest.approx(se[first] * np.sqrt(hn[first] / hn[last]), rel=0.6)
    # the tracks follow the top features: the newest value of track 1 is the largest |estimate|
    tracks = e["tracks"]["items"]
    assert [t["rank"] for t in tracks] == [1, 2, 3]
    top = floats(tracks[0]["values"])[-1]
    assert abs(top) == pytest.approx(np.abs(final).max(), rel=1e-5)
    assert np.isfinite(floats(tracks[0]["stderr"])[-1])
    assert view._fallback_png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lime_has_no_standard_error_but_a_change_history(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, image(), method="lime", n_samples=200, batch_size=20, stream_every=1,
                     progress=False, **GRID)
    e = EstimateView.from_attribution(a).estimate
    assert not e["has_stderr"] and e["stderr"] is None
    change = floats(e["history"]["change"])
    assert np.isnan(change[0]) and np.isfinite(change[1:]).all() and change[-1] < change[1]


def test_rise_map_estimates(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, image(), method="rise", n_masks=128, batch_size=32, stream_every=1, progress=False)
    e = EstimateView.from_attribution(a).estimate
    assert e["count"] == 4 and e["has_stderr"]
    se = floats(e["history"]["mean_stderr"])
    assert se[-1] < se[0]


def test_errors_say_what_to_do(tiny_cnn: nn.Module) -> None:
    a = xw.attribute(tiny_cnn, image(), method="kernel_shap", n_samples=64, progress=False, **GRID)
    with pytest.raises(ParameterError, match="stream_every"):
        EstimateView.from_attribution(a)
    with pytest.raises(ParameterError, match="no running estimate"):
        stream(tiny_cnn, image(), method="occlusion")


def test_live_stream_ends_with_the_same_result_as_attribute(tiny_cnn: nn.Module) -> None:
    kw = {"n_samples": 200, "batch_size": 16, "seed": 3, **GRID}
    view = stream(tiny_cnn, image(), method="kernel_shap", update_interval=0.0, **kw)
    seen: list[int] = []
    view.observe(lambda change: seen.append(change["new"].get("count", 0)), names="estimate")
    assert view.wait(60) and view.status == "done" and view.progress == 1.0
    e = view.estimate
    assert e["done"] and floats(e["n_samples"])[-1] == 200
    assert len(seen) >= 3, "estimates are pushed while sampling runs"
    direct = xw.attribute(tiny_cnn, image(), method="kernel_shap", progress=False, **kw)
    assert torch.equal(view.result.values, direct.values)


def test_cancel_keeps_the_best_estimate(tiny_cnn: nn.Module) -> None:
    view = stream(Slow(tiny_cnn), image(), method="kernel_shap", n_samples=2000, batch_size=8,
                  update_interval=0.0, **GRID)
    sent: list[dict[str, Any]] = []
    view.send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    deadline = time.time() + 30
    def ready() -> bool:  # a few estimates with a standard error (more coalition pairs than features)
        return bool(view.estimate.get("has_stderr")) and view.estimate["count"] >= 3

    while not ready() and time.time() < deadline:
        time.sleep(0.02)
    assert ready(), "estimates streamed in before cancel"
    view._on_message(view, {"type": "cancel", "id": "req-1"}, [])  # the browser's cancel button
    assert view.wait(30)
    assert view.status == "cancelled"
    assert {"type": "accepted", "id": "req-1"} in sent
    assert any(m.get("type") == "done" and m.get("status") == "cancelled" for m in sent)
    result = view.result
    assert result is not None and result.extras["cancelled"] is True and result.extras["complete"] == [False]
    done = result.extras["n_samples_done"][0]
    assert 0 < done < 2000 and np.isfinite(result.extras["stderr"][0].numpy()).all()
    assert result.inputs is not None and result.method == "kernel_shap"
    # the view keeps that estimate: its newest frame used every sample evaluated and shows the partial result
    e = view.estimate
    assert e["cancelled"] and not e["done"] and floats(e["n_samples"])[-1] == done
    step = (e["values"]["vmax"] - e["values"]["vmin"]) / 255
    assert np.abs(stack(e, "values")[-1] - result.values[0].mean(0).numpy()).max() <= step / 2 + 1e-9


def test_live_stream_of_an_exhaustive_kernel_shap_shows_the_result(tiny_cnn: nn.Module) -> None:
    """4 features, 64 samples >= 2**4: KernelSHAP enumerates every coalition (exact, nothing to stream)."""
    view = stream(tiny_cnn, image(), method="kernel_shap", n_samples=64, segments="grid",
                  segmentation_params={"patch": 16}, wait=True)
    assert view.status == "done" and view.estimate["count"] == 1 and view.estimate["done"]
    shown = stack(view.estimate, "values")[-1]
    step = (view.estimate["values"]["vmax"] - view.estimate["values"]["vmin"]) / 255
    assert np.abs(shown - view.result.values[0].mean(0).numpy()).max() <= step / 2 + 1e-9
