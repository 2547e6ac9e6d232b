"""EvaluationView, kernel side: payload shapes and dtypes (binary buffers, never JSON lists), metric values
equal to calling ``xw.metrics`` directly, thumbnails equal to ``PerturbationCurve.display``, the thumbnail
budget, the user's model left as it was, cancel, and clear errors for bad input. The demo shapes CNN
(64x64) keeps it fast."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import xaiwidgets as xw
from xaiwidgets.core.errors import InputError, ParameterError
from xaiwidgets.demo.shapes import make_shapes
from xaiwidgets.demo.shapes_model import shapes_classifier
from xaiwidgets.widgets.evaluation import EvaluationView, plan_thumbs, thin_steps


@pytest.fixture(scope="module")
def setup() -> tuple[Any, torch.Tensor, Any]:
    clf = shapes_classifier()
    data = make_shapes(2, seed=4)
    return clf, clf.preprocess(data.images), data


@pytest.fixture(scope="module")
def view(setup: tuple[Any, torch.Tensor, Any]) -> EvaluationView:
    clf, x, data = setup
    return xw.evaluate(clf, x, ["saliency", "gradcam"], boxes=data.boxes, n_steps=10, sanity=True,
                       sanity_layers=["fc", "last_conv.conv"], wait=True)


def arr(d: dict[str, Any]) -> np.ndarray:
    assert isinstance(d["data"], memoryview), "arrays travel as binary buffers"
    return np.frombuffer(d["data"], d["dtype"]).reshape(d["shape"])


def no_lists_of_numbers(x: Any, path: str = "") -> None:
    """No JSON list of numbers anywhere in a trait value (strings and booleans lists are fine)."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k != "shape":  # an array dict's shape is the one list of numbers the protocol has
                no_lists_of_numbers(v, f"{path}.{k}")
    elif isinstance(x, (list, tuple)):
        assert not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x), path
        for i, v in enumerate(x):
            no_lists_of_numbers(v, f"{path}[{i}]")


def test_payload_shapes_dtypes_and_buffers(view: EvaluationView) -> None:
    assert view.status == "done" and view.progress == 1.0
    c = view.curves
    assert c["methods"] == ["saliency", "gradcam"] and c["modes"] == ["deletion", "insertion"]
    assert c["n_inputs"] == 2 and c["state"] == ["done", "done"]
    steps = arr(c["thumb_steps"])
    assert steps.dtype == np.int32 and steps.tolist() == list(range(11))
    for mode in ("deletion", "insertion"):
        m = c[mode]
        assert arr(m["scores"]).shape == (2, 2, 11) and arr(m["scores"]).dtype == np.float32
        assert arr(m["fractions"]).shape == (2, 2, 11)
        assert arr(m["auc"]).shape == (2, 2)
        assert arr(m["thumbs"]).shape == (2, 2, 11, 64, 64, 3) and arr(m["thumbs"]).dtype == np.uint8
    lb = view.leaderboard
    keys = [col["key"] for col in lb["columns"]]
    assert keys == ["deletion", "insertion", "aopc", "sparseness", "pointing_game", "energy_pointing_game", "sanity"]
    assert arr(lb["values"]).shape == (2, 7) and arr(lb["values"]).dtype == np.float32
    s = view.sanity
    assert s["steps"] == ["trained", "fc", "last_conv.conv"]
    assert arr(s["maps"]).shape == (2, 3, 2, 64, 64) and arr(s["maps"]).dtype == np.uint8
    assert arr(s["similarity"]).shape == (2, 3, 2)
    for trait in (view.curves, view.leaderboard, view.sanity, view.sweeps):
        no_lists_of_numbers(trait)
    assert view.payload_bytes < 4_000_000


def test_metric_values_equal_the_metrics_called_directly(view: EvaluationView,
                                                         setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, data = setup
    res = view.results
    target = res.target
    table = res.table()
    values = arr(view.leaderboard["values"])
    for row, method in enumerate(["saliency", "gradcam"]):
        a = xw.attribute(clf, x, method=method, target=target, progress=False)
        assert torch.allclose(a.values, res.attributions[method].values)
        dele = xw.metrics.deletion(clf, x, a, target, n_steps=10, baseline="black", progress=False)
        ins = xw.metrics.insertion(clf, x, a, target, n_steps=10, baseline="blur", progress=False)
        np.testing.assert_allclose(res.curves["deletion"][method].scores, dele.scores, rtol=1e-6)
        np.testing.assert_allclose(res.curves["insertion"][method].scores, ins.scores, rtol=1e-6)
        expected = {
            "deletion": dele.auc.mean(), "insertion": ins.auc.mean(), "aopc": dele.aopc.mean(),
            "sparseness": float(xw.metrics.sparseness(a).mean()),
            "pointing_game": float(xw.metrics.pointing_game(a, boxes=data.boxes).mean()),
            "energy_pointing_game": float(xw.metrics.energy_pointing_game(a, boxes=data.boxes).mean()),
        }
        for key, value in expected.items():
            assert table[method][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (method, key)
            col = [c["key"] for c in view.leaderboard["columns"]].index(key)
            assert values[row, col] == pytest.approx(value, rel=1e-6, abs=1e-7)
        # the curve arrays on the wire are the curve's own
        np.testing.assert_array_equal(arr(view.curves["deletion"]["scores"])[row], dele.scores.astype(np.float32))
    sanity = xw.metrics.model_randomisation(clf, x, ["saliency", "gradcam"], target,
                                            layers=["fc", "last_conv.conv"], measures=("spearman_abs",))
    for method in ("saliency", "gradcam"):
        assert table[method]["sanity"] == pytest.approx(sanity.score(method), rel=1e-9)


def test_thumbnails_are_the_perturbed_inputs(view: EvaluationView) -> None:
    for mode in ("deletion", "insertion"):
        thumbs = arr(view.curves[mode]["thumbs"])
        for m, method in enumerate(["saliency", "gradcam"]):
            curve = view.results.curves[mode][method]
            for i, k in ((0, 0), (1, 4), (0, 10)):
                np.testing.assert_array_equal(thumbs[m, i, k], curve.display(i, k))


def test_thumbnail_plan_fits_the_budget() -> None:
    assert thin_steps(5, 32) == [0, 1, 2, 3, 4]
    kept = thin_steps(101, 32)
    assert len(kept) <= 32 and kept[0] == 0 and kept[-1] == 100
    steps, (h, w) = plan_thumbs(4, 51, 64, 64)
    assert (h, w) == (64, 64) and len(steps) == 32  # at most 32 per curve, never upsampled
    steps, (h, w) = plan_thumbs(12, 51, 224, 160, budget=1e6)
    assert 12 * len(steps) * h * w * 3 <= 1e6 and abs(h / w - 224 / 160) < 0.05 and max(h, w) <= 64
    assert steps[0] == 0 and steps[-1] == 50


def test_sweep_and_png_fallback(setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, _ = setup
    v = xw.evaluate(clf, x[:1], ["gradcam"], metrics=["deletion"], n_steps=5,
                    sweep={"method": "smoothgrad", "param": "noise_level", "values": [0.05, 0.3], "metric": "deletion",
                           "params": {"n_samples": 3}}, wait=True)
    assert v.status == "done"
    assert [c["key"] for c in v.leaderboard["columns"]] == ["deletion"]
    assert v.curves["modes"] == ["deletion"]
    (sw,) = v.sweeps
    assert sw["param"] == "noise_level" and sw["metric"] == "deletion_auc" and sw["higher_is_better"] is False
    direct = xw.metrics.sweep(clf, x[:1], "smoothgrad", "noise_level", [0.05, 0.3],
                              lambda m, xx, a, t: xw.metrics.deletion(m, xx, a, t, n_steps=5, progress=False).auc,
                              v.results.target, params={"n_samples": 3}, higher_is_better=False)
    np.testing.assert_allclose(arr(sw["mean"]), direct.mean.astype(np.float32), rtol=1e-6)
    assert sw["best"] == direct.best_index
    bundle, _ = v._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_model_left_unchanged(setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, _ = setup
    net = clf.model
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    ids = {k: id(p) for k, p in net.named_parameters()}
    grads = [p.requires_grad for p in net.parameters()]
    v = xw.evaluate(clf, x[:1], ["saliency"], n_steps=4, sanity=True, wait=True)
    assert v.status == "done"
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert ids == {k: id(p) for k, p in net.named_parameters()}
    assert grads == [p.requires_grad for p in net.parameters()] and not net.training
    assert not any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks for m in net.modules())


class Slow(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01 * x.shape[0])  # 10 ms per row: a 41-row perturbation curve takes 0.4 s
        return self.inner(x)


def test_cancel_keeps_finished_methods(setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, _ = setup
    slow = Slow(clf.model).eval()
    v = xw.evaluate(slow, x[:1], ["saliency", "gradcam", "input_x_gradient"], metrics=["deletion"], n_steps=4)
    deadline = time.time() + 15
    while not v.results.curves["deletion"] and time.time() < deadline:
        time.sleep(0.02)
    v.cancel()
    assert v.wait(15)
    assert v.status == "cancelled"
    assert v.curves["state"][0] == "done" and "pending" in v.curves["state"]
    values = arr(v.leaderboard["values"])
    assert np.isfinite(values[0, 0]) and np.isnan(values[-1, 0])
    # the browser's cancel message goes the same way
    v2 = xw.evaluate(slow, x[:1], ["saliency"], metrics=["deletion"], n_steps=40)
    while "deletion" not in v2.phase and v2.status == "running" and time.time() < deadline + 15:
        time.sleep(0.005)
    assert v2.status == "running"
    sent: list[dict[str, Any]] = []
    v2.send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    v2._on_message(v2, {"type": "cancel", "id": "r1"}, [])
    assert v2.wait(15) and v2.status == "cancelled"
    assert {"type": "accepted", "id": "r1"} in sent


def test_one_failing_method_leaves_the_others(setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, _ = setup
    v = xw.evaluate(clf, x[:1], ["saliency", "gradcam"], metrics=["deletion"], n_steps=4,
                    params={"gradcam": {"layer": "features.block1.bn.nonexistent"}}, wait=True)
    assert v.status == "done"
    assert v.curves["state"] == ["done", "error"]
    assert "gradcam" in v.leaderboard["errors"]
    values = arr(v.leaderboard["values"])
    assert np.isfinite(values[0, 0]) and np.isnan(values[1, 0])


def test_every_method_failing_is_an_error(setup: tuple[Any, torch.Tensor, Any]) -> None:
    clf, x, _ = setup
    with pytest.raises(RuntimeError, match=r"every method failed; gradcam: .*nonexistent"):
        xw.evaluate(clf, x[:1], ["gradcam"], metrics=["deletion"], n_steps=4,
                    params={"gradcam": {"layer": "nonexistent"}}, wait=True)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"methods": []}, ParameterError, "at least one method"),
    ({"methods": ["salency"]}, ParameterError, "Did you mean"),
    ({"methods": ["saliency", "saliency"]}, ParameterError, "each method once"),
    ({"metrics": ["deletion", "faithfulness"]}, ParameterError, "unknown metric"),
    ({"metrics": ["pointing_game"]}, ParameterError, "need ground truth"),
    ({"n_steps": 0}, ParameterError, "n_steps"),
    ({"thumb_size": 8}, ParameterError, "thumb_size"),
    ({"sweep": {"method": "smoothgrad"}}, ParameterError, "sweep= takes"),
    ({"params": {"gradcam": {}}}, ParameterError, "not among the methods"),
    ({"params": {"saliency": {"n_steps": 3}}}, ParameterError, "does not take .n_steps."),
    ({"masks": torch.zeros(3, 64, 64, dtype=torch.bool)}, InputError, "3 ground-truth masks for 2 inputs"),
])
def test_bad_input_fails_clearly_before_any_work(setup: tuple[Any, torch.Tensor, Any], kwargs: dict[str, Any],
                                                 error: type, match: str) -> None:
    clf, x, _ = setup
    kwargs = {"methods": ["saliency"], **kwargs}
    methods = kwargs.pop("methods")
    before = threading.active_count()
    with pytest.raises(error, match=match):
        xw.evaluate(clf, x, methods, **kwargs)
    assert threading.active_count() == before  # no worker was started


def test_non_image_inputs_are_refused() -> None:
    net = nn.Sequential(nn.Linear(5, 3)).eval()
    with pytest.raises(InputError, match="image explanations"):
        xw.evaluate(net, torch.randn(2, 5), ["saliency"])
