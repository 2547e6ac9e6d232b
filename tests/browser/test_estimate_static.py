"""EstimateView in headless Chromium against a fake anywidget model (no Jupyter).

The kernel side is real: KernelSHAP (and LIME) on the demo shapes CNN (64x64, an 8x8 grid of 64 patches)
records an estimate per model batch; the same :class:`EstimateHistory` that ``EstimateView.compute``
feeds builds the payloads, and the fake model pushes them one after another as a streaming kernel would.
Checked: the view follows each new estimate (samples up, canvases redrawn, plots extended), the error
band shrinks (mean standard error down, the fixed-scale error map darker, the top feature's +-2 SE band
narrower), the cancel button sends its message, and the final frame equals the finished attribution.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from harness import WidgetPage
from test_scrubber_static import harness_value

import xaiwidgets as xw
import xaiwidgets.methods.perturbation  # registers the methods
from xaiwidgets.demo.shapes import make_shapes
from xaiwidgets.demo.shapes_model import shapes_classifier
from xaiwidgets.widgets.estimate import EstimateHistory, plan_size
from xaiwidgets.widgets.scrubber import display_function

pytestmark = pytest.mark.browser

ROOT = ".xw-estimate"
EST, SE = "canvas.xw-estimate-map", "canvas.xw-stderr-map"

CANVAS_HASH = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) | 0; return h;
}"""

CANVAS_MEAN = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2]; return s / (d.length / 4) / 3;
}"""

BAND_HEIGHT = """() => {  // vertical extent of the first track's band at its right end (newest estimate)
  const poly = document.querySelector('.xw-plot-tracks polygon.xw-lineplot-band');
  const pts = poly.getAttribute('points').split(' ').map((p) => p.split(',').map(Number));
  const n = pts.length / 2;
  return Math.abs(pts[n][1] - pts[n - 1][1]);
}"""


def run_recorded(method: str, **params: Any) -> tuple[xw.Attribution, list[Any], Any, np.ndarray]:
    clf = shapes_classifier()
    x = clf.preprocess(make_shapes(1, seed=3).images)
    seen: list[Any] = []
    a = xw.attribute(clf, x, method=method, segments="grid", segmentation_params={"patch": 8}, stream_every=1,
                     callback=lambda est, se: seen.append(est), progress=False, **params)
    image = display_function(clf, x)(x)[0]
    return a, seen, x, image


def stream_payloads(a: xw.Attribution, seen: list[Any], image: np.ndarray, stops: list[int]) -> list[dict[str, Any]]:
    """The payloads ``EstimateView.compute`` would push after ``stops`` estimates (the last: finished)."""
    history = EstimateHistory(plan_size(64, 64), expected=a.params["n_samples"])
    out = []
    for k, est in enumerate(seen, 1):
        history.add(est.n_samples, est.values, est.stderr)
        if k in stops:
            out.append(history.payload(image, method=a.method, done=k == len(seen)))
    return out


def base_state(title: str) -> dict[str, Any]:
    return {"estimate": {}, "frame": -1, "title": title, "progress": 0.0, "status": "running",
            "colormap": "auto", "opacity": 0.6, "absolute": False, "clip_percentile": 99.5}


def read(wpage: WidgetPage) -> dict[str, Any]:
    page = wpage.page
    root = page.locator(ROOT)
    se = root.get_attribute("data-mean-stderr")
    return {
        "n": float(root.get_attribute("data-n-samples")),
        "se": float(se) if se else float("nan"),
        "count": int(root.get_attribute("data-count")),
        "est": page.evaluate(CANVAS_HASH, EST),
        "se_mean": page.evaluate(CANVAS_MEAN, SE),
        "points": len(page.locator(".xw-plot-error polyline.xw-series-se").get_attribute("points").split(" ")),
        "band": page.evaluate(BAND_HEIGHT),
    }


def test_streamed_estimates_refine_and_the_error_band_shrinks(wpage: WidgetPage) -> None:
    a, seen, _x, image = run_recorded("kernel_shap", n_samples=1200, batch_size=40)
    # one estimate per model batch of 40 distinct coalitions; repeated draws are not re-evaluated, so a
    # batch covers 40 or more of the 1200 samples (27 batches with this seed)
    assert 20 <= len(seen) <= 30 and seen[-1].n_samples == 1200
    stops = [6, 12, 20, len(seen)]  # all with a standard error (from the 4th: more pairs than the 64 features)
    payloads = stream_payloads(a, seen, image, stops)
    page = wpage.page
    wpage.mount("estimate", base_state("kernel_shap · computing"))
    root = page.locator(ROOT)
    assert root.get_attribute("data-state") == "empty" and root.get_attribute("data-status") == "running"
    states = []
    for k, payload in zip(stops, payloads):
        wpage.kernel_set("estimate", harness_value(payload))
        wpage.kernel_set("progress", k / len(seen))
        assert root.get_attribute("data-state") == "ok", page.locator(".xw-error").inner_text()
        states.append(read(wpage))
        if k == stops[1]:
            wpage.screenshot("estimate_streaming.png")
    print("\n" + "\n".join(f"n={s['n']:.0f} mean SE={s['se']:.4g} SE map mean={s['se_mean']:.1f} "
                           f"band={s['band']:.1f}px points={s['points']}" for s in states))
    ns = [s["n"] for s in states]
    assert ns == [seen[k - 1].n_samples for k in stops], "the view follows the newest estimate"
    assert all(s2["est"] != s1["est"] for s1, s2 in itertools.pairwise(states)), "the heatmap is redrawn"
    assert all(s2["points"] > s1["points"] for s1, s2 in itertools.pairwise(states)), "the error plot grows"
    # the error band shrinks: mean SE, the fixed-scale error map and the top feature's +-2 SE band
    assert all(s2["se"] < s1["se"] for s1, s2 in itertools.pairwise(states)), [s["se"] for s in states]
    assert states[-1]["se_mean"] < states[0]["se_mean"]
    assert states[-1]["band"] < states[0]["band"]

    # the final frame is the finished attribution: the estimate canvas equals a HeatmapView of it
    assert root.get_attribute("data-done") == "true"
    final = payloads[-1]
    vmin, vmax = final["values"]["vmin"], final["values"]["vmax"]
    q = np.frombuffer(final["values"]["data"], np.uint8).reshape(final["values"]["shape"])[-1]
    shown = vmin + q / 255 * (vmax - vmin)
    assert np.abs(shown - a.values[0].mean(0).numpy()).max() <= (vmax - vmin) / 255 / 2 + 1e-9

    # scrubbing back shows an earlier, noisier estimate; releasing writes the frame trait
    slider = page.locator("input.xw-frame-slider")
    slider.fill("0")
    assert root.get_attribute("data-frame") == "0"
    assert float(root.get_attribute("data-n-samples")) < ns[-1]
    assert wpage.state("frame") == 0 and "frame" in wpage.saved()
    slider.fill(str(final["count"] - 1))
    assert wpage.state("frame") == -1, "back at the newest: follow new estimates again"

    # three tracks with markers on the estimate, the guide curve in the error plot
    assert page.locator(".xw-track-marker").count() == 3
    assert page.locator(".xw-plot-tracks polyline.xw-series-track").count() == 3
    assert page.locator(".xw-plot-error polyline.xw-series-guide").count() == 1
    assert "mean standard error" in page.locator(".xw-estimate-summary").inner_text()
    wpage.kernel_set("status", "done")
    wpage.kernel_set("progress", 1.0)
    wpage.kernel_set("title", f"kernel_shap · {a.classifier.label(int(a.target[0]))}")
    wpage.screenshot("estimate_kernel_shap.png")
    assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_cancel_sends_its_message_and_keeps_the_estimate(wpage: WidgetPage) -> None:
    a, seen, _x, image = run_recorded("kernel_shap", n_samples=1200, batch_size=40)
    partial = stream_payloads(a, seen[:22], image, [22])[0]
    wpage.mount("estimate", base_state("kernel_shap · computing"))
    page = wpage.page
    wpage.kernel_set("estimate", harness_value(partial))
    cancel = page.locator("button.xw-cancel")
    assert cancel.is_enabled()
    cancel.click()
    sent = wpage.sent()
    assert any(m["type"] == "cancel" and isinstance(m.get("id"), str) for m in sent), sent
    # the kernel answers: status cancelled, the estimate of every sample so far marked cancelled
    kept = {**partial, "cancelled": True}
    wpage.kernel_set("estimate", harness_value(kept))
    wpage.kernel_set("status", "cancelled")
    assert cancel.is_disabled()
    assert page.locator(ROOT).get_attribute("data-status") == "cancelled"
    assert page.locator(".xw-estimate-summary").inner_text().startswith("cancelled: best estimate so far")
    assert float(page.locator(ROOT).get_attribute("data-n-samples")) == seen[21].n_samples
    wpage.screenshot("estimate_cancelled.png")


def test_lime_without_standard_error(wpage: WidgetPage) -> None:
    a, seen, _x, image = run_recorded("lime", n_samples=600, batch_size=40)
    payload = stream_payloads(a, seen, image, [len(seen)])[0]
    label = a.classifier.label(int(a.target[0]))
    state = {**base_state(f"lime · {label}"), "estimate": harness_value(payload), "status": "done"}
    wpage.mount("estimate", state)
    page = wpage.page
    assert page.locator(ROOT).get_attribute("data-state") == "ok"
    assert page.locator(SE).is_hidden()
    assert "reports no standard error" in page.locator("[data-panel=stderr]").inner_text()
    assert page.locator(".xw-plot-error polyline.xw-series-change").count() == 1
    assert "no standard error" in page.locator(".xw-estimate-summary").inner_text()
    wpage.screenshot("estimate_lime.png")
    assert wpage.unmount(0) == 0
