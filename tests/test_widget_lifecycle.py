"""Widgets free what they hold, answer every browser request, and survive interrupts.

- Closing a view (or collecting an unreferenced one) stops its worker thread and drops the model, the
  inputs and the caches: the model is collectable afterwards (weakref), for every computing view.
- The kernel holds browser input to the spec it sent: out-of-range and non-tunable parameters, a target
  that is not a class index and a message that is not an object are answered with an error reply.
- A ``KeyboardInterrupt`` while waiting cancels the job; a ``BaseException`` inside a job leaves the
  worker alive and the view in an error state.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget import _instances
from torch import nn

import xaiwidgets as xw
from xaiwidgets.methods.gradient import quadrature as quad
from xaiwidgets.widgets.dashboard import ExplainDashboard
from xaiwidgets.widgets.jobs import Worker


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                                      nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def image() -> torch.Tensor:
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("xaiwidgets-") and t.is_alive()]


def make_dashboard(model: nn.Module) -> Any:
    clf = xw.ImageClassifier(model, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    return xw.explain(clf, image(), methods=["saliency", "gradcam"], wait=True)


def make_scrubber(model: nn.Module) -> Any:
    return xw.widgets.ScrubberView.compute(model, image(), method="integrated_gradients", n_steps=4, wait=True)


def make_estimate(model: nn.Module) -> Any:
    return xw.widgets.stream(model, image(), method="kernel_shap", n_samples=32, segments="grid",
                             segmentation_params={"patch": 8}, wait=True)


def make_evaluation(model: nn.Module) -> Any:
    return xw.evaluate(model, image(), ["saliency"], metrics=["deletion"], n_steps=3, wait=True)


def make_gallery(model: nn.Module) -> Any:
    return xw.featurevis.gallery(model, "features.2", channels=[0, 1], n_steps=4, size=16, images=image(),
                                 wait=True)


VIEWS: dict[str, Callable[[nn.Module], Any]] = {
    "dashboard": make_dashboard, "scrubber": make_scrubber, "estimate": make_estimate,
    "evaluation": make_evaluation, "gallery": make_gallery,
}


def collected(ref: weakref.ref, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        gc.collect()
        if ref() is None:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("kind", list(VIEWS))
def test_closing_a_view_stops_its_thread_and_frees_the_model(kind: str) -> None:
    before = len(workers())
    model = Net().eval()
    ref = weakref.ref(model)
    view = VIEWS[kind](model)
    assert view.status in ("done", "idle"), view.status
    assert len(workers()) == before + 1
    view.close()
    assert len(workers()) == before
    del model
    assert collected(ref), gc.get_referrers(ref()) if ref() is not None else None


@pytest.mark.parametrize("kind", ["dashboard", "scrubber"])
def test_an_unreferenced_view_is_collected_with_its_thread(kind: str) -> None:
    """When the widget registry and the comm manager let go, garbage collection frees everything: no
    reference from our worker thread or from anywidget's module-file signal keeps the view alive."""
    from comm import get_comm_manager

    before = len(workers())
    model = Net().eval()
    ref = weakref.ref(model)
    view = VIEWS[kind](model)
    view_ref = weakref.ref(view)
    _instances.pop(view.model_id, None)  # what ipywidgets' own close() drops
    get_comm_manager().unregister_comm(view.comm)
    view.comm._closed = True  # the host closed it: ipywidgets' __del__ -> close() must not close it again
    del view, model
    assert collected(view_ref) and collected(ref)
    end = time.monotonic() + 10
    while len(workers()) > before and time.monotonic() < end:
        time.sleep(0.05)
    assert len(workers()) == before


def test_many_dashboards_created_and_closed_leave_no_threads_and_no_models() -> None:
    before = len(workers())
    refs = []
    for _ in range(20):
        model = Net().eval()
        refs.append(weakref.ref(model))
        make_dashboard(model).close()
        del model
    assert len(workers()) == before
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_a_closed_view_says_so() -> None:
    dash = make_dashboard(Net().eval())
    dash.close()
    with pytest.raises(RuntimeError, match="closed"):
        dash.compute(1)


def test_idle_worker_does_not_keep_the_last_job() -> None:
    class Payload:
        pass

    worker = Worker("xaiwidgets-test")
    payload = Payload()
    ref = weakref.ref(payload)
    worker.submit(lambda _cancel, p=payload: p)
    assert worker.wait(10)
    del payload
    assert collected(ref)
    worker.close()
    assert not worker.alive


# ----- browser input held to the spec
@pytest.fixture
def dash() -> ExplainDashboard:
    view = make_dashboard(Net().eval())
    view.sent = []
    view.send = view.sent.append
    yield view
    view.close()


def reply(dash: ExplainDashboard, msg: Any) -> dict:
    dash._on_message(dash, msg, [])
    assert dash.wait(60)
    rid = msg.get("id", "") if isinstance(msg, dict) else ""
    done = [m for m in dash.sent if m.get("id") == rid and m["type"] == "done"]
    assert done, dash.sent
    return done[-1]


@pytest.mark.parametrize("params,fragment", [
    ({"n_steps": 3e8}, "[2, 200]"),
    ({"n_steps": 6000}, "[2, 200]"),
    ({"n_steps": -1}, "[2, 200]"),
    ({"n_steps": float("nan")}, "[2, 200]"),
    ({"n_steps": True}, "[2, 200]"),
    ({"n_steps": [5]}, "[2, 200]"),
    ({"baseline": "blur"}, "cannot be set from the view"),
    ({"batch_size": 10**9}, "cannot be set from the view"),
    ("n_steps", "must be a dict"),
])
def test_slider_parameters_outside_the_spec_are_refused(dash: ExplainDashboard, params: Any, fragment: str) -> None:
    reply(dash, {"type": "set_methods", "id": "m", "methods": ["saliency", "integrated_gradients"]})
    before = dict(dash.method_params)
    done = reply(dash, {"type": "set_params", "id": "p", "method": "integrated_gradients", "params": params})
    assert done["status"] == "error" and fragment in done["error"], done
    assert dash.method_params == before


def test_parameters_in_the_spec_are_taken(dash: ExplainDashboard) -> None:
    reply(dash, {"type": "set_methods", "id": "m", "methods": ["integrated_gradients", "gradcam"]})
    assert reply(dash, {"type": "set_params", "id": "a", "method": "integrated_gradients",
                        "params": {"n_steps": 200}})["status"] == "done"
    assert reply(dash, {"type": "set_params", "id": "b", "method": "gradcam",
                        "params": {"layer": "features.0"}})["status"] == "done"
    bad = reply(dash, {"type": "set_params", "id": "c", "method": "gradcam", "params": {"layer": 3}})
    assert bad["status"] == "error" and "module name" in bad["error"]


@pytest.mark.parametrize("target", ["1", 1.5, None, [1], True, {"a": 1}])
def test_compute_with_a_bad_target_is_answered(dash: ExplainDashboard, target: Any) -> None:
    done = reply(dash, {"type": "compute", "id": "t", "target": target})
    assert done["status"] == "error" and "class index" in done["error"]
    assert not [m for m in dash.sent if m.get("id") == "t" and m["type"] == "accepted"]


@pytest.mark.parametrize("content", [["compute"], "compute", 3, None])
def test_a_message_that_is_not_an_object_is_answered(dash: ExplainDashboard, content: Any) -> None:
    dash._on_message(dash, content, [])
    assert dash.sent[-1]["type"] == "done" and dash.sent[-1]["status"] == "error"


def test_unknown_request_is_answered(dash: ExplainDashboard) -> None:
    assert reply(dash, {"type": "nope", "id": "u"})["status"] == "error"


@pytest.mark.parametrize("kind", ["scrubber", "estimate", "evaluation", "gallery"])
def test_every_view_answers_malformed_messages(kind: str) -> None:
    view = VIEWS[kind](Net().eval())
    sent: list[dict] = []
    view.send = sent.append
    for content in (["cancel"], "x", None, {"type": "nope", "id": "n"}):
        view._on_message(view, content, [])
        assert sent[-1]["type"] == "done" and sent[-1]["status"] == "error", (content, sent[-1])
    view._on_message(view, {"type": "cancel", "id": "c"}, [])
    assert sent[-1] == {"type": "accepted", "id": "c"}
    view.close()


def test_gauss_legendre_for_many_nodes_is_fast_exact_and_cancellable() -> None:
    """Above 100 nodes numpy's O(n^3) eigenvalue method is replaced by Newton's iteration (O(n^2))."""
    for n in (101, 157, 400):
        nodes, weights = quad.gauss_legendre(n)
        ref_nodes, ref_weights = np.polynomial.legendre.leggauss(n)
        np.testing.assert_allclose(nodes, ref_nodes, rtol=0, atol=1e-14)
        np.testing.assert_allclose(weights, ref_weights, rtol=0, atol=1e-13)
    nodes, weights = quad.gauss_legendre(6000)
    assert abs(weights.sum() - 2) < 1e-12 and np.all(np.diff(nodes) > 0)
    # int_{-1}^{1} x^2 = 2/3 exactly for any n >= 2
    assert abs((weights * nodes**2).sum() - 2 / 3) < 1e-12

    def cancel() -> None:
        raise xw.core.errors.Cancelled("stop")

    with pytest.raises(xw.core.errors.Cancelled):
        quad.quadrature("gauss_legendre", 6000, cancel)


# ----- interrupts
def test_keyboard_interrupt_while_waiting_cancels_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    cancelled = threading.Event()
    model = Net().eval()

    def slow_attribute(*_a: Any, progress: Any = None, **_k: Any) -> Any:
        started.set()
        while not progress.cancelled:
            time.sleep(0.01)
        cancelled.set()
        raise xw.core.errors.Cancelled()

    monkeypatch.setattr("xaiwidgets.widgets.dashboard.attribute", slow_attribute)
    clf = xw.ImageClassifier(model, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    dash = xw.explain(clf, image(), methods=["saliency"])
    assert started.wait(10)
    original = dash._worker.wait

    def interrupted(timeout: float | None = None) -> bool:
        raise KeyboardInterrupt

    dash._worker.wait = interrupted
    with pytest.raises(KeyboardInterrupt):
        dash.compute(wait=True)
    dash._worker.wait = original
    assert cancelled.wait(10)
    assert dash.wait(10)
    dash.close()


def test_a_base_exception_in_a_job_leaves_the_worker_alive_and_the_panel_in_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def attribute(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt("interrupted inside the job")
        return real(*a, **k)

    import xaiwidgets.widgets.dashboard as dashboard_module

    real = dashboard_module.attribute
    monkeypatch.setattr(dashboard_module, "attribute", attribute)
    model = Net().eval()
    clf = xw.ImageClassifier(model, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    dash = xw.explain(clf, image(), methods=["saliency"], wait=True)
    assert dash.status == "error" and "KeyboardInterrupt" in dash.error
    assert dash.panels[0]["state"] == "error" and "interrupted inside the job" in dash.panels[0]["error"]
    assert dash._worker.alive
    dash.compute(2, wait=True)  # the worker serves the next job
    assert dash.status == "done" and dash.panels[0]["state"] == "done"
    dash.close()


def test_cancelled_panels_say_so_and_progress_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel leaves the unfinished panels "cancelled" (not pending forever); an error still ends the bar."""
    import xaiwidgets.widgets.dashboard as dashboard_module

    real = dashboard_module.attribute
    gate = threading.Event()

    def attribute(clf: Any, x: Any, method: str, progress: Any = None, **k: Any) -> Any:
        if method == "gradcam":
            raise ValueError("boom")
        if method == "input_x_gradient":
            gate.set()
            while not progress.cancelled:
                time.sleep(0.01)
            raise xw.core.errors.Cancelled()
        return real(clf, x, method=method, progress=progress, **k)

    monkeypatch.setattr(dashboard_module, "attribute", attribute)
    model = Net().eval()
    clf = xw.ImageClassifier(model, labels=["a", "b", "c", "d"], mean=None, std=None, input_size=None)
    dash = xw.explain(clf, image(), methods=["gradcam", "saliency", "input_x_gradient", "smoothgrad"])
    assert gate.wait(30)
    dash.cancel()
    assert dash.wait(30)
    states = {p["method"]: p["state"] for p in dash.panels}
    assert states == {"gradcam": "error", "saliency": "done", "input_x_gradient": "cancelled",
                      "smoothgrad": "cancelled"}
    assert dash.status == "cancelled"
    monkeypatch.setattr(dashboard_module, "attribute", real)
    dash.set_params("smoothgrad", {}, wait=True)  # the view's Recompute button
    assert next(p for p in dash.panels if p["method"] == "smoothgrad")["state"] == "done"
    assert dash.progress == 1.0 and dash.status == "done"
    dash.close()
