"""Light and dark themes: HeatmapView and ScrubberView stay legible under JupyterLab's theme variables.

The dark theme is what JupyterLab does: ``data-jp-theme-light="false"`` on the body and the ``--jp-*``
CSS variables of its dark theme (the harness's ``body.dark``, as the dashboard's dark screenshot in
test_dashboard_static.py). Oracle for "legible": every visible text (HTML ``color``, SVG ``fill``) has a
WCAG 2.1 contrast ratio of at least 4.5:1 (AA, normal text) against the background it is drawn on
(the first opaque ancestor background, else the page's). Screenshots of both themes go to artifacts/.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
import torch
from harness import WidgetPage, heatmap_dict, image_dict
from torch import nn

import xaiwidgets as xw
from xaiwidgets.widgets.scrubber import ScrubberView

pytestmark = pytest.mark.browser

MIN_CONTRAST = 4.5  # WCAG 2.1 AA, normal-size text

# [min contrast, the element's text, its colour, its background] over every element with own text
CONTRAST = r"""(root) => {
  const parse = (c) => {
    const m = c.match(/[\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const over = ([r, g, b, a], [R, G, B]) => [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a)];
  const pageBg = parse(getComputedStyle(document.body).backgroundColor);
  function background(el) {
    const layers = [];
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = pageBg.slice(0, 3);
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  }
  const rows = [];
  for (const el of document.querySelector(root).querySelectorAll('*')) {
    const own = Array.from(el.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (!own || el.closest('[hidden]') || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || Number(style.opacity) === 0) continue;
    const svg = el instanceof SVGElement;
    const fg = parse(svg ? style.fill : style.color);
    const bg = background(svg ? el.ownerSVGElement.parentElement : el);
    const L1 = lum(over(fg, bg)), L2 = lum(bg);
    const ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
    // disabled controls are exempt from the contrast requirement (WCAG 1.4.3)
    if (el.closest(':disabled')) continue;
    rows.push([ratio, own.slice(0, 40), svg ? style.fill : style.color, bg.map(Math.round).join(',')]);
  }
  return rows.sort((a, b) => a[0] - b[0]);
}"""


def set_theme(wpage: WidgetPage, theme: str) -> None:
    wpage.page.evaluate(
        "(dark) => { document.body.classList.toggle('dark', dark); "
        "document.body.dataset.jpThemeLight = String(!dark); }", theme == "dark"
    )


def check_legible(wpage: WidgetPage, root: str, theme: str) -> None:
    """Every text under ``root`` reaches MIN_CONTRAST against its background."""
    rows = wpage.page.evaluate(CONTRAST, root)
    assert len(rows) >= 5, f"too few texts found under {root}: {rows}"
    worst = rows[0]
    print(f"\n[{root} {theme}] {len(rows)} texts; lowest contrast {worst[0]:.2f}:1 for {worst[1]!r} "
          f"({worst[2]} on rgb({worst[3]}))")
    low = [r for r in rows if r[0] < MIN_CONTRAST]
    assert not low, f"texts below {MIN_CONTRAST}:1 in the {theme} theme: {low}"


def heatmap_state() -> dict[str, Any]:
    y, x = np.mgrid[0:48, 0:64] / 47.0
    picture = np.stack([60 + 120 * x[:, :64] / x.max(), 90 + 100 * y, 150 + 0 * x], -1).astype(np.uint8)
    values = np.exp(-((x - 0.4) ** 2 + (y - 0.5) ** 2) * 12) - 0.5 * np.exp(-((x - 1.1) ** 2 + (y - 0.3) ** 2) * 20)
    return {
        "image": image_dict(picture), "heatmap": heatmap_dict(values.astype(np.float32)), "signed": True,
        "title": "integrated_gradients · tabby cat", "colormap": "auto", "opacity": 0.6, "absolute": False,
        "clip_percentile": 99.5,
    }


def harness_value(x: Any) -> Any:
    """Trait value → harness JSON: every binary buffer as base64 (a DataView in the page)."""
    if isinstance(x, (memoryview, bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(x)).decode("ascii"), "view": "dataview"}
    if isinstance(x, dict):
        return {k: harness_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [harness_value(v) for v in x]
    return x


def scrubber_state() -> dict[str, Any]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    blob = torch.exp(-((xx - 0.3) ** 2 + (yy + 0.2) ** 2) * 6)
    x = torch.stack([blob, 0.5 * blob + 0.2 * xx + 0.3, 1 - blob])[None]
    a = xw.attribute(model, x, method="integrated_gradients", n_steps=16, return_frames=True, progress=False)
    view = ScrubberView.from_attribution(a)
    return {"kind": view.kind, "frames": harness_value(view.frames), "frame": view.frame, "title": view.title,
            "progress": view.progress, "status": view.status, **view.view_options()}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_heatmap_themes(wpage: WidgetPage, theme: str) -> None:
    set_theme(wpage, theme)
    wpage.mount("heatmap", heatmap_state())
    wpage.screenshot(f"heatmap-{theme}.png")
    check_legible(wpage, ".xw-heatmap-view", theme)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_scrubber_themes(wpage: WidgetPage, theme: str) -> None:
    set_theme(wpage, theme)
    wpage.mount("scrubber", scrubber_state())
    assert wpage.page.locator(".xw-scrubber").get_attribute("data-state") == "ok"
    wpage.screenshot(f"scrubber-{theme}.png")
    # the line plot's sum series and gap take theme-dependent colours (js/src/lib/scrubber.ts): no single
    # orange or red reaches 4.5:1 on both a white and a #111 background
    check_legible(wpage, ".xw-scrubber", theme)
    keys = wpage.page.evaluate("""() => ['.xw-key-sum', '.xw-gap-label'].map(
        (s) => getComputedStyle(document.querySelector(s))[s === '.xw-gap-label' ? 'fill' : 'color'])""")
    assert keys == (["rgb(154, 79, 0)", "rgb(179, 38, 30)"] if theme == "light"
                    else ["rgb(240, 163, 94)", "rgb(255, 138, 128)"]), keys


MARK_COLOURS = """() => ({
  marker: getComputedStyle(document.querySelector('.xw-estimate .xw-lineplot-marker')).fill,
  track: getComputedStyle(document.querySelector('.xw-estimate polyline.xw-track-2')).stroke,
  swatch: getComputedStyle(document.querySelector('.xw-estimate span.xw-track-2')).backgroundColor,
})"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_estimate_themes(wpage: WidgetPage, theme: str) -> None:
    """EstimateView's texts stay legible and its marker and tracked-feature colours come from the theme
    (the dark theme's lighter shades; each >= 4.5:1 on that theme's background, checked on the swatch)."""
    from test_estimate_static import base_state, run_recorded, stream_payloads

    a, seen, _x, image = run_recorded("kernel_shap", n_samples=400, batch_size=40)
    payload = stream_payloads(a, seen, image, [len(seen)])[-1]
    set_theme(wpage, theme)
    wpage.mount("estimate", {**base_state("kernel_shap · themes"), "estimate": harness_value(payload),
                             "status": "done", "progress": 1.0})
    wpage.screenshot(f"estimate-{theme}.png")
    check_legible(wpage, ".xw-estimate", theme)
    colours = wpage.page.evaluate(MARK_COLOURS)
    expected = {"light": ("rgb(179, 38, 30)", "rgb(31, 97, 141)"), "dark": ("rgb(255, 138, 128)", "rgb(127, 184, 230)")}
    assert (colours["marker"], colours["track"]) == expected[theme], colours
    assert colours["swatch"] == colours["track"]
