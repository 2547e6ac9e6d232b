"""What the host tests (marimo, Voilà) check in the page: a computed heatmap drawn in colour, styled buttons,
controls inside their panel, and a recomputation after a click. The views may live in a shadow root (marimo
renders each anywidget in one), so elements are looked up through open shadow roots."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from notebook_flow import failure_report

ARTIFACTS = Path(__file__).parent / "artifacts"
STARTUP_SECONDS = 240  # a cold server imports torch in its kernel on a loaded 2-core machine

# document.querySelector through open shadow roots
DEEP_QUERY = """(sel) => {
  const walk = (root) => {
    const hit = root.querySelector(sel);
    if (hit) return hit;
    for (const e of root.querySelectorAll('*')) if (e.shadowRoot) { const h = walk(e.shadowRoot); if (h) return h; }
    return null;
  };
  return walk(document);
}"""

# the canvas's spread of brightness, a hash, and the share of strongly coloured pixels (max - min channel > 60)
CANVAS_STATS = f"""(sel) => {{
  const c = ({DEEP_QUERY})(sel);
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, hash = 0, coloured = 0;
  for (let i = 0; i < d.length; i += 4) {{
    const v = d[i] + d[i + 1] + d[i + 2];
    sum += v; sq += v * v; hash = (hash * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) % 1000000007;
    if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) coloured++;
  }}
  const n = d.length / 4, mean = sum / n;
  return {{ std: Math.sqrt(Math.max(0, sq / n - mean * mean)), hash, coloured: coloured / n }};
}}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], cwd: Path, url: str, log: Path) -> subprocess.Popen:
    """Start a server (its own process group) and wait until ``url`` answers."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return process
        except urllib.error.HTTPError:  # any HTTP answer: the server is up
            return process
        except OSError:
            time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{command[0]} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group (the server and its kernels)."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def canvas(page: Any, selector: str, condition: str, arg: Any = None, timeout: float = 240_000) -> dict:
    """Wait until ``condition`` (JS, of ``s`` = CANVAS_STATS and ``arg``) holds for the canvas; its stats."""
    check = f"(arg) => {{ const s = ({CANVAS_STATS})({selector!r}); return !!s && ({condition}); }}"
    try:
        page.wait_for_function(check, arg=arg, timeout=timeout)
    except Exception as exc:
        stats = page.evaluate(CANVAS_STATS, selector)
        raise AssertionError(f"{selector}: {condition} never held; stats {stats}") from exc
    return page.evaluate(CANVAS_STATS, selector)


def element(page: Any, selector: str) -> Any:
    """The first element matching ``selector`` (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator(selector).first


def assert_button_styled(page: Any, selector: str) -> None:
    """The button is drawn as a button (pixels, not the computed style): a border and a fill that differ from
    the page around it."""
    button = element(page, selector)
    button.wait_for(timeout=60_000)
    box = button.bounding_box()
    assert box is not None and box["width"] > 10 and box["height"] > 8, box
    margin = 3
    png = page.screenshot(clip={"x": box["x"] - margin, "y": box["y"] - margin,
                                "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin})
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    outside = img[0, :, :].mean(0)  # the page just above the button
    mid = img.shape[0] // 2
    left_edge = img[mid, margin : margin + 2, :].mean(0)  # the button's left border
    inside = img[mid, margin + 3, :]  # just inside the border (padding, not text)
    # the theme's light border (#d8dadd, anti-aliased) and fill (#eef0f2) on a white page: 13-40 levels apart;
    # an unstyled button in a host that resets buttons (marimo) shows the page's own colour in both places
    assert np.abs(left_edge - outside).max() > 12, f"{selector}: no border drawn ({left_edge} vs {outside})"
    assert np.abs(inside - outside).max() > 8, f"{selector}: no button fill drawn ({inside} vs {outside})"


def assert_inside(page: Any, inner: str, outer: str) -> None:
    """``inner`` lies horizontally inside ``outer`` (a control does not stick out of its panel)."""
    a, b = element(page, inner).bounding_box(), element(page, outer).bounding_box()
    assert a is not None and b is not None
    assert a["x"] >= b["x"] - 1 and a["x"] + a["width"] <= b["x"] + b["width"] + 1, (inner, a, outer, b)


def check_dashboard(page: Any, prefix: str) -> None:
    """The dashboard's saliency and Grad-CAM panels are drawn in colour; its buttons are drawn; the layer
    dropdown stays inside the Grad-CAM panel; clicking the second prediction recomputes the saliency map."""
    sal = '.xw-panel[data-method="saliency"] canvas.xw-heatmap-canvas'
    cam = '.xw-panel[data-method="gradcam"] canvas.xw-heatmap-canvas'
    before = canvas(page, sal, "s.std > 5")
    cam_stats = canvas(page, cam, "s.std > 5 && s.coloured > 0.05")
    assert cam_stats["coloured"] > 0.05, cam_stats  # the Grad-CAM overlay colours a good part of the photo
    # an enabled button (Add and Cancel are disabled, drawn faded, until a method is chosen / while idle)
    assert_button_styled(page, '.xw-panel[data-method="gradcam"] button.xw-remove')
    assert_inside(page, '.xw-panel[data-method="gradcam"] select.xw-layer', '.xw-panel[data-method="gradcam"]')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard.png"), full_page=True)
    page.locator(".xw-prediction").nth(1).click()
    after = canvas(page, sal, "s.std > 5 && s.hash !== arg", before["hash"])
    assert after["hash"] != before["hash"]
    page.screenshot(path=str(ARTIFACTS / f"{prefix}_dashboard_recomputed.png"), full_page=True)


def run_host_page(browser: Any, url: str, prefix: str) -> None:
    """Open ``url`` (a page with the dashboard and, below it, a Grad-CAM HeatmapView), run
    :func:`check_dashboard`, check the HeatmapView's colours; screenshots under ``artifacts/<prefix>_*.png``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(url, timeout=240_000)
        check_dashboard(page, prefix)
        heat = canvas(page, ".xw-heatmap-view canvas.xw-heatmap-canvas", "s.std > 5 && s.coloured > 0.05")
        assert heat["coloured"] > 0.05, heat  # Grad-CAM drawn in colour over the photo
        page.screenshot(path=str(ARTIFACTS / f"{prefix}_page.png"), full_page=True)
        assert not [e for e in errors if "xaiwidgets" in e or "anywidget" in e], errors
    except Exception:
        failure_report(page, prefix, errors)
        raise
    finally:
        context.close()
