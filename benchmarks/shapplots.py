"""Beeswarm of 5,000 rows x 30 features (run by hand): our TabularPlots in headless Chromium vs
``shap.plots.beeswarm`` (matplotlib, Agg, rendered to PNG) on the same values, same process.

Ours is timed in two parts: the kernel building the widget (shap's ordering and folding rules, colour ranges,
interaction partners, clustering order, cohort bars, decision paths: ``TabularPlots.of``) and the browser
drawing the beeswarm (the harness decoding the state's buffers, then ``render`` until the next animation
frame, i.e. painted; the page is reloaded between runs, the module imported before the clock starts).
The target (issue 22) is a render under 1 s. Prints medians and the ratio ours / shap.

    python benchmarks/shapplots.py [--rows N] [--features D] [--reps R]
"""

from __future__ import annotations

import argparse
import io
import pathlib
import shutil
import statistics
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "browser"))

from harness import CHROMIUM_ARGS, widget_pages  # noqa: E402
from test_text_views_static import state_of  # noqa: E402

from xaiwidgets.widgets.explanationtable import from_arrays  # noqa: E402
from xaiwidgets.widgets.shapplots import TabularPlots  # noqa: E402

RENDER = """async (state) => {
  await import("/static/shapplots.js");  // the module loaded and compiled: time the view, not the fetch
  const t0 = performance.now();
  await window.xw.mount("shapplots", state);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const dots = document.querySelector("canvas.xw-sp-beeswarm").xwPoints.x.length;
  return [performance.now() - t0, dots];
}"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n, d = args.rows, args.features
    data = rng.normal(size=(n, d))
    values = 0.1 * data * rng.uniform(0.1, 1.0, size=d) + 0.02 * rng.normal(size=(n, d))
    names = [f"feature {j}" for j in range(d)]

    build = []
    for _ in range(args.reps):
        t = time.perf_counter()
        plots = TabularPlots(from_arrays(values, 0.0, features=names, feature_values=data), views=["beeswarm"])
        build.append(time.perf_counter() - t)
    state = state_of(plots)

    from playwright.sync_api import sync_playwright

    ours = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
        with widget_pages(browser, viewport=(1000, 800)) as fresh:
            for _ in range(args.reps + 1):
                wp = fresh()
                ms, dots = wp.page.evaluate(RENDER, state)
                ours.append(ms / 1000)
            assert dots == n * 10, dots
        browser.close()
    ours = ours[1:]  # the first load compiles the bundle

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    expl = shap.Explanation(values, base_values=np.zeros(n), data=data, feature_names=names)
    peer = []
    for _ in range(args.reps):
        t = time.perf_counter()
        shap.plots.beeswarm(expl, max_display=10, show=False)
        plt.gcf().savefig(io.BytesIO(), format="png")
        plt.close("all")
        peer.append(time.perf_counter() - t)

    b, o, s = statistics.median(build), statistics.median(ours), statistics.median(peer)
    print(f"beeswarm {n} rows x {d} features ({n * 10} dots drawn), median of {args.reps}:")
    print(f"  ours: kernel build {b:.3f} s (all views' data), browser render {o:.3f} s (target < 1 s)")
    print(f"  shap.plots.beeswarm + PNG: {s:.3f} s")
    print(f"  ratio ours render / shap: {o / s:.2f}; (build + render) / shap: {(b + o) / s:.2f}")


if __name__ == "__main__":
    main()
