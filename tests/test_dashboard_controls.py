"""ExplainDashboard controls (kernel side): set_methods, set_params (CAM layer, tunable sliders; results
cached by parameters), list_layers, frames (the scrubber over an IG / SmoothGrad panel)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import xaiwidgets as xw
from xaiwidgets.widgets.dashboard import ExplainDashboard


@pytest.fixture
def dash(resnet18) -> ExplainDashboard:
    classifier = xw.ImageClassifier(resnet18, labels=[str(i) for i in range(1000)])
    torch.manual_seed(0)
    dashboard = xw.explain(classifier, torch.rand(1, 3, 64, 64), methods=["saliency"], wait=True)
    sent: list[dict] = []
    dashboard.send = sent.append  # capture kernel -> browser messages
    dashboard.sent = sent
    return dashboard


def request(dash: ExplainDashboard, msg: dict) -> dict:
    """Send ``msg`` as the browser would, wait for the worker, return the ``done`` message for its id."""
    dash._on_message(dash, msg, [])
    assert dash.wait(120)
    done = [m for m in dash.sent if m.get("id") == msg["id"] and m["type"] == "done"]
    assert len(done) == 1, dash.sent
    return done[0]


def panel(dash: ExplainDashboard, method: str) -> dict:
    return next(p for p in dash.panels if p["method"] == method)


def test_available_methods_are_image_methods(dash) -> None:
    names = {m["name"]: m["family"] for m in dash.available_methods}
    assert names["gradcam"] == "cam" and names["saliency"] == "gradient" and names["occlusion"] == "perturbation"
    keys = {"name", "family", "frames", "tunable", "description", "cost", "cam", "unavailable", "display"}
    assert all(set(m) == keys for m in dash.available_methods)
    assert dash.layers == [] and dash.method_params == {}


def test_set_methods_adds_and_removes_without_recomputing(dash) -> None:
    saliency = dash.panels[0]
    done = request(dash, {"type": "set_methods", "id": "a", "methods": ["saliency", "gradcam"]})
    assert done["status"] == "done" and {"type": "accepted", "id": "a"} in dash.sent
    assert dash.methods == ["saliency", "gradcam"]
    assert [p["method"] for p in dash.panels] == ["saliency", "gradcam"]
    assert dash.panels[0] is saliency or dash.panels[0] == saliency  # cached panel kept, not recomputed
    cam = panel(dash, "gradcam")
    assert cam["state"] == "done" and cam["layer"] == "layer4"  # the automatic layer, resolved
    assert "layer4" in dash.layers  # a CAM panel fills the layer list

    done = request(dash, {"type": "set_methods", "id": "b", "methods": ["gradcam"]})
    assert done["status"] == "done"
    assert dash.methods == ["gradcam"] and [p["method"] for p in dash.panels] == ["gradcam"]
    assert dash.result("saliency") is not None  # cache stays

    for bad in (["nope"], "gradcam", [1]):
        done = request(dash, {"type": "set_methods", "id": f"bad-{bad}", "methods": bad})
        assert done["status"] == "error" and done["error"]
    assert dash.methods == ["gradcam"]


def test_set_params_layer_recomputes_one_panel(dash) -> None:
    request(dash, {"type": "set_methods", "id": "a", "methods": ["saliency", "gradcam"]})
    auto = dash.result("gradcam").copy()
    saliency = panel(dash, "saliency")
    done = request(dash, {"type": "set_params", "id": "p", "method": "gradcam", "params": {"layer": "layer3"}})
    assert done["status"] == "done"
    assert dash.method_params == {"gradcam": {"layer": "layer3"}}
    cam = panel(dash, "gradcam")
    assert cam["state"] == "done" and cam["layer"] == "layer3"
    assert panel(dash, "saliency") == saliency
    assert not np.allclose(dash.result("gradcam"), auto)

    # back to automatic
    request(dash, {"type": "set_params", "id": "q", "method": "gradcam", "params": {"layer": None}})
    assert dash.method_params == {} and panel(dash, "gradcam")["layer"] == "layer4"
    np.testing.assert_allclose(dash.result("gradcam"), auto, rtol=1e-5, atol=1e-6)

    # a bad layer is an error in that panel only
    request(dash, {"type": "set_params", "id": "r", "method": "gradcam", "params": {"layer": "nolayer"}})
    cam = panel(dash, "gradcam")
    assert cam["state"] == "error" and "nolayer" in cam["error"]
    assert panel(dash, "saliency")["state"] == "done"

    done = request(dash, {"type": "set_params", "id": "s", "method": "occlusion", "params": {"layer": "x"}})
    assert done["status"] == "error"


def test_list_layers(dash) -> None:
    done = request(dash, {"type": "list_layers", "id": "l"})
    assert done["status"] == "done"
    assert "layer4" in dash.layers and "layer1.0.conv1" in dash.layers
    assert "fc" not in dash.layers and "avgpool" not in dash.layers
    assert request(dash, {"type": "list_layers", "id": "l2"})["status"] == "done"


def test_method_params_sync_is_json_safe(dash) -> None:
    dash.method_params = {"integrated_gradients": {"baseline": torch.zeros(1), "steps": 8}}
    state = dash.get_state("method_params")["method_params"]
    assert state["integrated_gradients"]["steps"] == 8
    assert isinstance(state["integrated_gradients"]["baseline"], str)


# ----- parameters in the cache key, tunable sliders ---------------------------------------------------


def counting(monkeypatch) -> list[tuple[str, dict]]:
    """Record every attribute() call the dashboard makes: (method, params)."""
    import xaiwidgets.widgets.dashboard as module

    calls: list[tuple[str, dict]] = []
    real = module.attribute

    def counted(model, inputs, method, **kwargs):
        calls.append((method, {k: v for k, v in kwargs.items() if k not in ("target", "progress")}))
        return real(model, inputs, method=method, **kwargs)

    monkeypatch.setattr(module, "attribute", counted)
    return calls


def test_every_tunable_spec_is_a_numeric_default_in_range() -> None:
    from xaiwidgets.methods.registry import _REGISTRY

    assert xw.methods.get_method("lrp_gamma").tunable == {"gamma": (0.0, 1.0, 0.05)}
    for cls in _REGISTRY.values():
        for name, (lo, hi, step) in cls.tunable.items():
            assert name in cls.defaults, (cls.name, name)
            assert lo < hi and 0 < step <= hi - lo, (cls.name, name)
            default = cls.defaults[name]
            assert isinstance(default, (int, float)) and lo <= default <= hi, (cls.name, name, default)


def test_available_methods_carry_frames_and_tunable(dash) -> None:
    info = {m["name"]: m for m in dash.available_methods}
    assert info["lrp_gamma"]["tunable"] == {
        "gamma": {"min": 0.0, "max": 1.0, "step": 0.05, "integer": False, "default": 0.8}
    }
    assert info["integrated_gradients"]["tunable"]["n_steps"]["integer"] is True
    assert info["integrated_gradients"]["frames"] and info["smoothgrad"]["frames"] and info["vargrad"]["frames"]
    assert not info["saliency"]["frames"] and not info["lrp_gamma"]["frames"]
    assert info["gradcam"]["tunable"] == {}


def test_gamma_slider_values_are_cached_with_their_parameters(dash, monkeypatch) -> None:
    """Moving back to a gamma already computed shows its map again without calling the method."""
    calls = counting(monkeypatch)
    request(dash, {"type": "set_methods", "id": "m", "methods": ["saliency", "lrp_gamma"]})
    assert [c[0] for c in calls] == ["lrp_gamma"]
    default = dash.result("lrp_gamma").copy()

    assert request(dash, {"type": "set_params", "id": "g1", "method": "lrp_gamma",
                          "params": {"gamma": 0.3}})["status"] == "done"
    assert dash.method_params == {"lrp_gamma": {"gamma": 0.3}}
    assert len(calls) == 2 and calls[-1] == ("lrp_gamma", {"gamma": 0.3})
    low = dash.result("lrp_gamma").copy()
    assert not np.allclose(low, default)
    np.testing.assert_allclose(  # the panel shows what xw.attribute gives for these parameters
        low, xw.attribute(dash.classifier, dash.inputs, method="lrp_gamma", gamma=0.3, target=dash.target,
                          progress=False).heatmap()[0], rtol=1e-5, atol=1e-7)

    # back to the default value (explicit or removed): the cached map, no call
    request(dash, {"type": "set_params", "id": "g2", "method": "lrp_gamma", "params": {"gamma": 0.8}})
    assert len(calls) == 2
    np.testing.assert_array_equal(dash.result("lrp_gamma"), default)
    assert panel(dash, "lrp_gamma")["state"] == "done"
    request(dash, {"type": "set_params", "id": "g3", "method": "lrp_gamma", "params": {"gamma": 0.3}})
    request(dash, {"type": "set_params", "id": "g4", "method": "lrp_gamma", "params": {"gamma": None}})
    assert len(calls) == 2 and dash.method_params == {}
    np.testing.assert_array_equal(dash.result("lrp_gamma"), default)
    np.testing.assert_array_equal(dash.result("lrp_gamma", params={"gamma": 0.3}), low)

    # a class seen before with these parameters is cached too; a new class computes once
    request(dash, {"type": "compute", "id": "c", "target": 3})
    n = len(calls)
    assert n == 4  # saliency and lrp_gamma for class 3
    request(dash, {"type": "compute", "id": "c2", "target": 3})
    assert len(calls) == n


def test_slider_numbers_take_the_parameter_type(dash, monkeypatch) -> None:
    calls = counting(monkeypatch)
    request(dash, {"type": "set_methods", "id": "m", "methods": ["integrated_gradients"]})
    done = request(dash, {"type": "set_params", "id": "n", "method": "integrated_gradients",
                          "params": {"n_steps": 8.0}})
    assert done["status"] == "done" and type(dash.method_params["integrated_gradients"]["n_steps"]) is int
    assert calls[-1] == ("integrated_gradients", {"n_steps": 8})
    done = request(dash, {"type": "set_params", "id": "x", "method": "integrated_gradients",
                          "params": {"n_steps": 8.5}})
    assert done["status"] == "error" and "integer" in done["error"]
    assert dash.method_params["integrated_gradients"] == {"n_steps": 8}
    # a non-numeric value passes to the method unchanged
    request(dash, {"type": "set_params", "id": "a", "method": "integrated_gradients", "params": {"n_steps": "auto"}})
    assert dash.method_params["integrated_gradients"]["n_steps"] == "auto"


def test_cache_keys() -> None:
    from xaiwidgets.widgets.cache import ResultCache, freeze, params_key

    baseline = torch.zeros(3)
    assert params_key({"gamma": 0.8}, {}) == params_key({"gamma": 0.8}, {"gamma": 0.8})
    assert params_key({"gamma": 0.8}, {}) != params_key({"gamma": 0.8}, {"gamma": 0.3})
    assert freeze({"b": [1, 2], "a": "x"}) == freeze({"a": "x", "b": (1, 2)})
    # tensors by identity: an equal tensor is another key; the key keeps its tensor alive
    assert freeze({"baseline": baseline}) == freeze({"baseline": baseline})
    assert freeze({"baseline": baseline}) != freeze({"baseline": torch.zeros(3)})
    cache: ResultCache[int] = ResultCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2


# ----- the scrubber over a panel's frames ---------------------------------------------------------


@pytest.fixture
def frames_dash(dash, monkeypatch) -> ExplainDashboard:
    import xaiwidgets.widgets.dashboard as module

    monkeypatch.setattr(module, "UPDATE_INTERVAL", 0.0)  # stream every snapshot
    request(dash, {"type": "set_methods", "id": "m", "methods": ["saliency", "integrated_gradients", "smoothgrad"]})
    dash.set_params("integrated_gradients", {"n_steps": 12, "batch_size": 3}, wait=True)
    dash.set_params("smoothgrad", {"n_samples": 6}, wait=True)
    return dash


def test_frames_open_stream_and_cache(frames_dash, monkeypatch) -> None:
    dash = frames_dash
    seen: list[tuple[str, int]] = []
    dash.observe(lambda ch: seen.append((ch["new"].get("state", ""), ch["new"].get("frames", {}).get("count", 0))),
                 "scrubber")
    calls = counting(monkeypatch)
    done = request(dash, {"type": "frames", "id": "f", "method": "integrated_gradients"})
    assert done["status"] == "done" and {"type": "accepted", "id": "f"} in dash.sent
    assert calls == [("integrated_gradients", {"n_steps": 12, "batch_size": 3, "return_frames": True})]
    s = dash.scrubber
    assert s["method"] == "integrated_gradients" and s["state"] == "done" and s["target"] == dash.target
    assert s["frames"]["kind"] == "ig_path" and s["frames"]["count"] == 12 and s["frames"]["done"]
    assert s["params"] == {"n_steps": 12, "batch_size": 3}
    # streamed: pending, then running with partial frames (chunks of 3 steps), then done
    assert seen[0] == ("pending", 0) and seen[-1] == ("done", 12)
    partial = [count for state, count in seen if state == "running" and 0 < count < 12]
    assert partial == sorted(partial) and len(partial) >= 2, seen
    # the payload is the scrubber's: same dict as a ScrubberView of the same result
    from xaiwidgets.widgets.scrubber import result_payload

    a = xw.attribute(dash.classifier, dash.inputs, method="integrated_gradients", target=dash.target,
                     n_steps=12, batch_size=3, return_frames=True, progress=False)
    ref = result_payload(a)
    assert s["frames"]["shape"] == ref["shape"] and s["frames"]["alphas"] == ref["alphas"]
    assert np.allclose(np.frombuffer(s["frames"]["path_scores"]["data"], np.float32),
                       np.frombuffer(ref["path_scores"]["data"], np.float32), rtol=1e-5)

    # close, re-open: cached, no call
    request(dash, {"type": "frames", "id": "c", "method": None})
    assert dash.scrubber == {}
    request(dash, {"type": "frames", "id": "f2", "method": "integrated_gradients"})
    assert len(calls) == 1 and dash.scrubber["state"] == "done" and dash.scrubber["frames"]["count"] == 12

    # the open scrubber follows the parameters and the class
    request(dash, {"type": "set_params", "id": "p", "method": "integrated_gradients", "params": {"n_steps": 6}})
    assert dash.scrubber["frames"]["count"] == 6 and dash.scrubber["params"]["n_steps"] == 6
    request(dash, {"type": "compute", "id": "t", "target": 2})
    assert dash.scrubber["target"] == 2 and dash.scrubber["state"] == "done"

    # another panel's frames replace them; SmoothGrad gives noise frames
    request(dash, {"type": "frames", "id": "s", "method": "smoothgrad"})
    assert dash.scrubber["method"] == "smoothgrad" and dash.scrubber["frames"]["kind"] == "noise"
    assert dash.scrubber["frames"]["count"] == 6

    # removing the method closes its frames
    request(dash, {"type": "set_methods", "id": "r", "methods": ["saliency", "integrated_gradients"]})
    assert dash.scrubber == {}


def test_frames_errors_and_replaced_requests(frames_dash) -> None:
    dash = frames_dash
    for method, match in (("saliency", "has no frames"), ("gradcam", "no panel")):
        done = request(dash, {"type": "frames", "id": f"x-{method}", "method": method})
        assert done["status"] == "error" and match in done["error"]
    assert dash.scrubber == {}
    # a bad parameter: the error shows in the scrubber
    dash.method_params = {**dash.method_params, "integrated_gradients": {"n_steps": 12, "rule": "nope"}}
    done = request(dash, {"type": "frames", "id": "bad", "method": "integrated_gradients"})
    assert done["status"] == "error" and dash.scrubber["state"] == "error" and "nope" in dash.scrubber["error"]

    # a frames request replaced before it ran is answered (cancelled), the newer one runs
    dash.method_params = {**dash.method_params, "integrated_gradients": {"n_steps": 12}}
    gate = threading.Event()
    dash._worker.submit(lambda _cancel: gate.wait(30), cancel_running=False)  # hold the worker
    dash._on_message(dash, {"type": "frames", "id": "old", "method": "integrated_gradients"}, [])
    dash._on_message(dash, {"type": "frames", "id": "new", "method": "smoothgrad"}, [])
    gate.set()
    assert dash.wait(120)
    answers = {m["id"]: m["status"] for m in dash.sent if m["type"] == "done" and m["id"] in ("old", "new")}
    assert answers == {"old": "cancelled", "new": "done"}
    assert dash.scrubber["method"] == "smoothgrad"


def test_frames_budget_on_the_demo_size(tiny_cnn) -> None:
    """50 IG frames of a 224x224 input fit 3 MB on the wire (the issue's budget)."""
    classifier = xw.ImageClassifier(tiny_cnn, labels=list("abcd"), mean=None, std=None, input_size=None)
    torch.manual_seed(0)
    dash = xw.explain(classifier, torch.rand(1, 3, 224, 224), methods=["integrated_gradients"], wait=True,
                      params={"integrated_gradients": {"n_steps": 50}})  # the dashboard's default is "auto"
    dash.show_frames("integrated_gradients", wait=True)
    f = dash.scrubber["frames"]
    from xaiwidgets.widgets.scrubber import wire_bytes

    assert f["count"] == 50 and f["bytes"] <= 3e6 and wire_bytes(dash.scrubber) <= 3e6 + 1000
    print(f"\n50 IG frames at 224x224 in the dashboard: {f['shape']} on the wire, {wire_bytes(dash.scrubber)} bytes")
