"""TokenView, AnchorView and ForcePlot in headless Chromium against a fake anywidget model (no Jupyter).

The page gets the real trait payloads of widgets built in this process (buffers as base64, revived in the
page as a DataView or, for the Colab path, a Uint8Array at an odd offset of a junk-filled buffer). Oracles:
the numbers given to the constructors. ForcePlot geometry is read back from the SVG (polygon points and
axis tick positions), not from data attributes.
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

import numpy as np
import pytest
from harness import WidgetPage

from xaiwidgets.widgets.anchor import AnchorView
from xaiwidgets.widgets.forceplot import ForcePlot
from xaiwidgets.widgets.tokens import TokenView

pytestmark = pytest.mark.browser

TEXT = "It wasn't unwatchable; the cinematographer's work is breathtaking!"
TOKENS = ["it", "wasn", "'", "t", "un", "##watch", "##able", ";", "the", "cinematographer", "'", "s", "work", "is",
          "breath", "##taking", "!"]
VALUES = np.array([0.02, -0.31, 0.0, -0.05, 0.12, 0.4, -0.08, 0.0, 0.01, 0.22, 0.0, 0.03, 0.05, 0.0, 0.61, 0.3,
                   0.07])


def harness_value(x: Any, view: str = "dataview") -> Any:
    """Trait value -> harness JSON: every binary buffer as base64 (a DataView or Uint8Array in the page)."""
    if isinstance(x, (memoryview, bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(x)).decode("ascii"), "view": view}
    if isinstance(x, dict):
        return {k: harness_value(v, view) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [harness_value(v, view) for v in x]
    return x


def state_of(widget: Any, view: str = "dataview") -> dict[str, Any]:
    return {name: harness_value(getattr(widget, name), view) for name in widget.trait_names(sync=True)
            if not name.startswith("_") and name not in ("comm", "keys", "layout", "tabbable", "tooltip", "log")}


def rgba(css: str) -> tuple[float, ...]:
    nums = [float(v) for v in re.findall(r"[\d.]+", css)]
    return tuple(nums + [1.0] * (4 - len(nums)))


TOKEN_INFO = """() => Array.from(document.querySelectorAll('.xw-token')).map(t => ({
  index: Number(t.dataset.index), value: Number(t.dataset.value), sign: t.dataset.sign, text: t.textContent,
  bg: getComputedStyle(t).backgroundColor }))"""


def check_colours(tokens: list[dict[str, Any]], values: np.ndarray) -> None:
    clip = float(np.abs(values).max())
    for t in tokens:
        v = float(values[t["index"]])
        r, _g, b, a = rgba(t["bg"])
        assert abs(t["value"] - v) < 1e-6
        assert a == pytest.approx(0.8 * abs(v) / clip, abs=0.01), (t, v)
        if v > 0:
            assert t["sign"] == "pos" and r > b, t
        elif v < 0:
            assert t["sign"] == "neg" and b > r, t
        else:
            assert t["sign"] == "zero" and a == 0, t


@pytest.mark.parametrize("view", ["dataview", "uint8"])
def test_token_view_colours_hover_and_levels(wpage: WidgetPage, view: str) -> None:
    widget = TokenView.from_arrays(TOKENS, VALUES, text=TEXT, level="token", title="integrated_gradients · positive",
                                   caption="f(x) = 0.93 · base = 0.12")
    wpage.mount("tokens", state_of(widget, view))
    page = wpage.page
    root = page.locator(".xw-textview")
    assert root.get_attribute("data-state") == "ok", page.locator(".xw-error").inner_text()
    assert root.get_attribute("data-level") == "token"

    # the original text is shown exactly, tokens at their spans; colours follow the sign, alpha ~ |v|
    assert page.locator(".xw-tokens").inner_text() == TEXT
    tokens = page.evaluate(TOKEN_INFO)
    assert [t["index"] for t in tokens] == list(range(len(TOKENS)))
    assert tokens[5]["text"] == "watch"
    check_colours(tokens, VALUES)

    # hover shows the value (and the word a piece belongs to)
    page.locator('.xw-token[data-index="14"]').hover()
    tip = page.locator(".xw-tooltip")
    assert tip.is_visible()
    assert "breath" in tip.inner_text() and "+0.61" in tip.inner_text() and "breathtaking" in tip.inner_text()
    page.locator('.xw-token[data-index="1"]').hover()
    assert "-0.31" in tip.inner_text()

    # top features: sorted by |value|, signed bars from the middle
    rows = page.locator(".xw-bar-row")
    assert rows.count() == 10
    shown = [int(rows.nth(i).get_attribute("data-index")) for i in range(10)]
    assert shown == sorted(range(len(VALUES)), key=lambda i: (-abs(VALUES[i]), i))[:10]
    assert rows.nth(0).locator(".xw-bar-value").inner_text() == "+0.61"
    wpage.screenshot(f"tokenview_pieces_{view}.png")

    # the word level: pieces summed; the toggle writes the trait
    page.locator('.xw-level button[data-level="word"]').click()
    assert wpage.state("level") == "word" and "level" in wpage.saved()
    assert root.get_attribute("data-level") == "word"
    words = page.evaluate(TOKEN_INFO)
    assert [w["text"] for w in words][4] == "unwatchable" and len(words) == 14
    word_values = np.array([w["value"] for w in words])
    assert word_values[4] == pytest.approx(0.12 + 0.4 - 0.08, abs=1e-6)
    assert word_values[12] == pytest.approx(0.91, abs=1e-6)
    assert word_values.sum() == pytest.approx(VALUES.sum(), abs=1e-5)
    check_colours(words, word_values)
    assert page.locator(".xw-tokens").inner_text() == TEXT
    if view == "dataview":
        wpage.screenshot("tokenview.png")
        page.evaluate("document.body.classList.add('dark')")
        wpage.screenshot("tokenview-dark.png")
    assert wpage.unmount(0) == 0, "cleanup must remove every model listener"


def test_token_view_without_text_or_pieces(wpage: WidgetPage) -> None:
    """Word-level results (LIME) and unsigned ones (attention): one level, the toggle disabled, no blue."""
    words = ["A", "gorgeous", ",", "moving", "film", "."]
    values = np.array([0.01, 0.5, 0.02, 0.3, 0.1, 0.0])
    widget = TokenView.from_arrays(words, values, level="word", signed=False, title="attention_rollout")
    wpage.mount("tokens", state_of(widget))
    page = wpage.page
    assert page.locator(".xw-tokens").inner_text() == "A gorgeous, moving film."
    assert page.locator('.xw-level button[data-level="token"]').is_disabled()
    for t in page.evaluate(TOKEN_INFO):
        r, _g, b, a = rgba(t["bg"])
        assert a == 0 or r > b
    assert page.locator(".xw-signed-legend").get_attribute("data-signed") == "false"


def test_anchor_view_text(wpage: WidgetPage) -> None:
    words = ["The", "plot", "is", "predictable", "but", "the", "acting", "is", "superb", "."]
    widget = AnchorView.from_text(
        words, [8], prediction="positive", precision=0.972, coverage=0.431, threshold=0.95, n_samples=820,
        text="The plot is predictable but the acting is superb.", title="anchors · positive",
        examples_hold=["[UNK] plot [UNK] predictable [UNK] the acting [UNK] superb .",
                       "The [UNK] is [UNK] but [UNK] acting is superb [UNK]"],
        examples_fail=["[UNK] [UNK] is predictable but [UNK] [UNK] [UNK] superb ."],
    )
    wpage.mount("anchor", state_of(widget))
    page = wpage.page
    root = page.locator(".xw-anchor-view")
    assert root.get_attribute("data-state") == "ok" and root.get_attribute("data-kind") == "text"
    assert page.locator(".xw-rule").inner_text().replace("\n", " ") == "IF superb THEN positive"
    precision = page.locator('.xw-metric[data-metric="precision"]')
    coverage = page.locator('.xw-metric[data-metric="coverage"]')
    assert precision.locator(".xw-metric-value").inner_text() == "97.2%"
    assert coverage.locator(".xw-metric-value").inner_text() == "43.1%"
    fill = page.evaluate("""() => { const f = document.querySelector('[data-metric=precision] .xw-metric-fill');
      return f.getBoundingClientRect().width / f.parentElement.getBoundingClientRect().width; }""")
    assert fill == pytest.approx(0.972, abs=0.01)
    assert precision.locator(".xw-metric-threshold").count() == 1
    marked = page.locator(".xw-anchor-text .xw-anchor-word")
    assert marked.count() == 1 and marked.inner_text() == "superb" and marked.get_attribute("data-index") == "8"
    assert page.locator(".xw-anchor-text").inner_text() == "The plot is predictable but the acting is superb."
    hold = page.locator('.xw-example-list[data-outcome="hold"] .xw-example')
    fail = page.locator('.xw-example-list[data-outcome="fail"] .xw-example')
    assert hold.count() == 2 and fail.count() == 1
    assert hold.nth(0).locator(".xw-ex-anchor").inner_text() == "superb"
    assert hold.nth(0).locator(".xw-ex-replaced").count() == 4
    wpage.screenshot("anchorview.png")
    page.evaluate("document.body.classList.add('dark')")
    wpage.screenshot("anchorview-dark.png")
    assert wpage.unmount(0) == 0


def test_anchor_view_tabular(wpage: WidgetPage) -> None:
    names = ["mean radius", "mean texture", "worst concavity", "worst area"]
    rng = np.random.default_rng(0)
    widget = AnchorView.from_row(
        names, [13.1, 20.5, 0.12, 540.0], [2, 3], ["worst concavity <= 0.19", "worst area <= 686"],
        prediction="benign", precision=1.0, coverage=0.5, threshold=0.95,
        examples_hold=rng.normal(size=(3, 4)), examples_fail=np.zeros((0, 4)),
    )
    wpage.mount("anchor", state_of(widget))
    page = wpage.page
    assert page.locator(".xw-anchor-view").get_attribute("data-kind") == "tabular"
    assert page.locator(".xw-predicate").all_inner_texts() == ["worst concavity <= 0.19", "worst area <= 686"]
    assert page.locator("table.xw-instance th").all_inner_texts() == ["worst concavity", "worst area"]
    assert page.locator('.xw-example-list[data-outcome="hold"] tbody tr').count() == 3
    assert "none sampled" in page.locator('.xw-example-list[data-outcome="fail"]').inner_text()
    page.locator("button.xw-show-all").click()
    assert page.locator("table.xw-instance th").count() == 4
    wpage.screenshot("anchorview_tabular.png")


# --- ForcePlot ----------------------------------------------------------------------------------------

SINGLE_GEOMETRY = """() => {
  const svg = document.querySelector('svg.xw-force-single');
  const ticks = Array.from(svg.querySelectorAll('.xw-force-tick'))
    .map(t => [Number(t.dataset.value), Number(t.getAttribute('x1'))]);
  const arrows = Array.from(svg.querySelectorAll('polygon.xw-force-arrow')).map(p => {
    const pts = p.getAttribute('points').trim().split(/\\s+/).map(s => s.split(',').map(Number));
    return { kind: p.dataset.kind, feature: Number(p.dataset.feature),
             a: pts[0][0], b: pts[1][0], y: pts[0][1], y2: pts[1][1] };
  });
  const out = svg.querySelector('.xw-force-out-line');
  return { ticks, arrows, outX: Number(out.getAttribute('x1')),
           base: Number(svg.querySelector('.xw-force-base').dataset.value),
           output: Number(svg.querySelector('.xw-force-output').dataset.value),
           labels: Array.from(svg.querySelectorAll('text.xw-force-label')).map(t => t.textContent) };
}"""


def read_single(page: Any) -> dict[str, Any]:
    g = page.evaluate(SINGLE_GEOMETRY)
    (v0, x0), (v1, x1) = g["ticks"][0], g["ticks"][-1]
    g["px_per_unit"] = (x1 - x0) / (v1 - v0)
    g["value_at"] = lambda x: v0 + (x - x0) / g["px_per_unit"]
    return g


@pytest.mark.parametrize("view", ["dataview", "uint8"])
def test_force_plot_arrows_sum_to_output_minus_base(wpage: WidgetPage, view: str) -> None:
    names = ["mean radius", "worst texture", "worst concavity", "area error", "mean smoothness", "worst symmetry"]
    contrib = np.array([0.21, -0.08, 0.34, 0.015, -0.12, 0.004])
    row = np.array([17.99, 25.4, 0.71, 153.4, 0.118, 0.46])
    base = 0.373
    widget = ForcePlot.from_arrays(contrib, base, features=names, feature_values=row, title="kernel_shap · malignant")
    wpage.mount("forceplot", state_of(widget, view))
    page = wpage.page
    root = page.locator(".xw-forceplot")
    assert root.get_attribute("data-state") == "ok", page.locator(".xw-error").inner_text()
    g = read_single(page)
    up = [a for a in g["arrows"] if a["kind"] == "up"]
    down = [a for a in g["arrows"] if a["kind"] == "down"]
    assert len(up) == 4 and len(down) == 2
    assert all(a["y"] == a["y2"] for a in g["arrows"]), "points start with the top edge"
    red = sum(abs(a["b"] - a["a"]) for a in up) / g["px_per_unit"]
    blue = sum(abs(a["b"] - a["a"]) for a in down) / g["px_per_unit"]
    output = base + contrib.sum()
    # coordinates are written with 3 decimals: tolerance 6 * 0.0005 px over the scale
    tol = 6 * 5e-4 / g["px_per_unit"] + 1e-9
    print(f"\n[force {view}] red {red:.6f} - blue {blue:.6f} = {red - blue:.6f}; output - base = {output - base:.6f}")
    assert red - blue == pytest.approx(output - base, abs=tol)
    assert red == pytest.approx(contrib[contrib > 0].sum(), abs=tol)
    # every arrow meets the output: red ones end there, blue ones start there
    assert g["value_at"](g["outX"]) == pytest.approx(output, abs=1e-3)
    assert max(max(a["a"], a["b"]) for a in up) == pytest.approx(g["outX"], abs=1e-3)
    assert min(min(a["a"], a["b"]) for a in down) == pytest.approx(g["outX"], abs=1e-3)
    assert g["base"] == pytest.approx(base, abs=1e-6) and g["output"] == pytest.approx(output, abs=1e-6)
    # the largest contributions are labelled with name = value
    assert "worst concavity = 0.71" in g["labels"] and "mean radius = 18" in g["labels"]

    # hover: feature name, value, contribution
    page.locator('polygon.xw-force-arrow[data-feature="2"]').hover()
    tip = page.locator(".xw-tooltip").inner_text()
    assert "worst concavity" in tip and "0.71" in tip and "+0.34" in tip and "up" in tip
    page.locator('polygon.xw-force-arrow[data-feature="4"]').hover()
    assert "-0.12" in page.locator(".xw-tooltip").inner_text()
    if view == "dataview":
        page.mouse.move(0, 0)
        wpage.screenshot("forceplot.png")
        page.evaluate("document.body.classList.add('dark')")
        wpage.screenshot("forceplot-dark.png")
    assert wpage.unmount(0) == 0


STACK_GEOMETRY = """() => {
  const svg = document.querySelector('svg.xw-force-stack');
  const ticks = Array.from(svg.querySelectorAll('.xw-force-tick'))
    .map(t => [Number(t.dataset.value), Number(t.getAttribute('y1'))]);
  const bands = Array.from(svg.querySelectorAll('polygon.xw-force-band')).map(p => ({
    kind: p.dataset.kind, feature: Number(p.dataset.feature),
    pts: p.getAttribute('points').trim().split(/\\s+/).map(s => s.split(',').map(Number)) }));
  const pts = (sel) => svg.querySelector(sel).getAttribute('points').trim().split(/\\s+/)
    .map(s => s.split(',').map(Number));
  return { ticks, bands, out: pts('.xw-force-out-line'), base: pts('polyline.xw-force-base-line') };
}"""


def test_force_plot_stacked_instances(wpage: WidgetPage) -> None:
    rng = np.random.default_rng(1)
    n, d = 40, 5
    centres = np.array([[0.3, -0.1, 0.05, 0.0, 0.1], [-0.25, 0.2, -0.05, 0.1, -0.1]])
    values = centres[rng.integers(0, 2, n)] + 0.03 * rng.normal(size=(n, d))
    base = 0.5
    widget = ForcePlot.from_arrays(values, base, features=[f"f{j}" for j in range(d)],
                                   instance_names=[f"row {i}" for i in range(n)], title="kernel_shap, 40 rows")
    wpage.mount("forceplot", state_of(widget))
    page = wpage.page
    root = page.locator(".xw-forceplot")
    assert root.get_attribute("data-n") == "40" and root.get_attribute("data-order") == "similarity"
    assert page.locator("svg.xw-force-single").count() == 0, "no instance selected yet"

    g = page.evaluate(STACK_GEOMETRY)
    (v0, y0), (v1, y1) = g["ticks"][0], g["ticks"][-1]
    per_unit = (y1 - y0) / (v1 - v0)  # negative: values grow upwards
    order = np.frombuffer(widget.similarity_order["data"], dtype=np.int32)
    m = len(g["out"])
    assert m == n
    # at every instance column: (up thickness - down thickness) in value units = output - base
    for k in range(m):
        up = sum(abs(b["pts"][k][1] - b["pts"][2 * m - 1 - k][1]) for b in g["bands"] if b["kind"] == "up")
        down = sum(abs(b["pts"][k][1] - b["pts"][2 * m - 1 - k][1]) for b in g["bands"] if b["kind"] == "down")
        expected = values[order[k]].sum()
        assert (up - down) / abs(per_unit) == pytest.approx(expected, abs=0.02 / abs(per_unit) + 1e-6)
        assert (g["out"][k][1] - g["base"][k][1]) / per_unit == pytest.approx(expected, abs=0.02 / abs(per_unit))
    # similarity order: the two clusters are contiguous (one change of sign of feature 0 along the order)
    signs = np.sign(values[order, 0])
    assert int((signs[1:] != signs[:-1]).sum()) == 1

    # order by output: the output line rises monotonically (y falls)
    page.select_option("select.xw-force-order", "output")
    assert wpage.state("order") == "output" and root.get_attribute("data-order") == "output"
    ys = [p[1] for p in page.evaluate(STACK_GEOMETRY)["out"]]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(ys))

    # hover shows the instance; click selects it and draws its single force plot
    box = page.locator("rect.xw-force-hit").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    top = int(np.argmax(values.sum(1)))
    tip = page.locator(".xw-tooltip").inner_text()
    assert f"row {top}\n" in tip + "\n" and "f(x) =" in tip
    assert page.locator("line.xw-force-guide").get_attribute("data-instance") == str(top)
    page.mouse.click(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    assert wpage.state("selected") == top
    assert page.locator("svg.xw-force-single").count() == 1
    assert page.locator(".xw-force-single-title").inner_text() == f"row {top}"
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    wpage.screenshot("forceplot_stacked.png")
    assert wpage.unmount(0) == 0


def test_views_in_html_export_offline(chromium_browser: Any, tmp_path: Any) -> None:
    """``xw.to_html`` of the three views: one page from ``file://`` with the network off renders them all."""
    import xaiwidgets as xw

    contrib = np.array([0.2, -0.1, 0.05])
    widgets = [
        TokenView.from_arrays(TOKENS, VALUES, text=TEXT, level="token"),
        AnchorView.from_text(["A", "good", "film"], [1], prediction="pos", precision=0.98, coverage=0.3),
        ForcePlot.from_arrays(contrib, 0.5, features=["a", "b", "c"]),
    ]
    path = tmp_path / "text_views.html"
    xw.to_html(widgets, path)
    context = chromium_browser.new_context(viewport={"width": 1000, "height": 900}, offline=True)
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route: Any, request: Any) -> None:
        if request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-xw-ready='true']", timeout=60_000)
        for root in (".xw-textview", ".xw-anchor-view", ".xw-forceplot"):
            assert page.locator(root).get_attribute("data-state") == "ok", root
        assert page.locator(".xw-tokens").inner_text() == TEXT
        g = read_single(page)
        red = sum(abs(a["b"] - a["a"]) for a in g["arrows"] if a["kind"] == "up") / g["px_per_unit"]
        blue = sum(abs(a["b"] - a["a"]) for a in g["arrows"] if a["kind"] == "down") / g["px_per_unit"]
        assert red - blue == pytest.approx(contrib.sum(), abs=1e-4)
        page.locator('.xw-level button[data-level="word"]').click()  # local state still works
        assert page.locator(".xw-token").count() == 14
        assert not errors and not blocked, (errors, blocked)
    finally:
        context.close()


def test_token_top_list_gives_repeated_words_their_position(wpage: WidgetPage) -> None:
    words = ["the", "cat", "saw", "the", "dog"]
    widget = TokenView.from_arrays(words, np.array([0.5, 0.1, -0.2, -0.4, 0.3]), level="word", top_k=5)
    wpage.mount("tokens", state_of(widget))
    labels = wpage.page.locator(".xw-bars .xw-bar-label").all_inner_texts()
    assert labels[:2] == ["the (pos 1)", "the (pos 4)"] and "dog" in labels
