"""Static browser harness: serve the built view bundles to a page on a fake origin and drive them
through a fake anywidget model, without Jupyter.

The page lives at ``http://xw.test/``; every request is answered by ``page.route`` (the bundles come
from ``xaiwidgets/static/``) and any other URL is aborted and recorded, so a view that reaches for the
network fails its test. Array dicts are passed from Python as ``{"__bytes__": base64, "view": ...}``
and turned in the page into a ``DataView`` (JupyterLab) or a ``Uint8Array`` (Colab) over a larger,
junk-filled ``ArrayBuffer`` at an odd offset, so a decoder that reads from offset 0 shows wrong pixels.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "xaiwidgets" / "static"
JS_SRC = ROOT / "js" / "src"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ORIGIN = "http://xw.test"
BUILD_HINT = "run `npm --prefix js ci && npm --prefix js run build` from the repository root"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_bundle(view: str) -> Path:
    """Path of the built view; fails (never skips) when it is missing or older than js/src."""
    path = STATIC / f"{view}.js"
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: {BUILD_HINT}", pytrace=False)
    if JS_SRC.is_dir():
        newest = max((p.stat().st_mtime for p in JS_SRC.rglob("*") if p.is_file()), default=0.0)
        if newest > path.stat().st_mtime + 1.0:
            pytest.fail(f"{path.relative_to(ROOT)} is older than js/src: {BUILD_HINT}", pytrace=False)
    return path


# --- array dicts --------------------------------------------------------------------------------


def array_dict(
    arr: np.ndarray, *, view: str = "dataview", vmin: float | None = None, vmax: float | None = None
) -> dict[str, Any]:
    """An array dict whose ``data`` becomes a DataView (``view="dataview"``) or a Uint8Array
    (``view="uint8"``, the Colab path) inside the page."""
    arr = np.ascontiguousarray(arr)
    out: dict[str, Any] = {
        "dtype": str(arr.dtype),
        "shape": list(arr.shape),
        "data": {"__bytes__": base64.b64encode(arr.tobytes()).decode("ascii"), "view": view},
    }
    if vmin is not None:
        out["vmin"] = float(vmin)
    if vmax is not None:
        out["vmax"] = float(vmax)
    return out


def quantize(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The protocol's uint8 quantisation (symmetric range when the map has both signs)."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    if lo < 0 < hi:
        hi = max(-lo, hi)
        lo = -hi
    if hi == lo:
        return np.zeros(v.shape, np.uint8), lo, hi
    q = np.clip(np.round((v - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    return q, lo, hi


def heatmap_dict(values: np.ndarray, *, view: str = "dataview") -> dict[str, Any]:
    q, lo, hi = quantize(values)
    return array_dict(q, view=view, vmin=lo, vmax=hi)


def image_dict(rgb: np.ndarray, *, view: str = "dataview") -> dict[str, Any]:
    return array_dict(np.asarray(rgb, dtype=np.uint8), view=view)


# --- the page -----------------------------------------------------------------------------------

INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>xaiwidgets harness</title>
<style>
  body { margin: 0; background: var(--jp-layout-color0, #fff); }
  #root { display: inline-flex; flex-direction: column; gap: 16px; padding: 16px; }
  body.dark {
    --jp-layout-color0: #111; --jp-layout-color1: #1e1e1e; --jp-layout-color2: #2d2d2d;
    --jp-ui-font-color1: rgba(255,255,255,.87); --jp-ui-font-color2: rgba(255,255,255,.6);
    --jp-border-color2: #444; --jp-brand-color1: #64b5f6; --jp-error-color1: #ef5350;
  }
</style>
<script type="module" src="/harness.js"></script>
</head><body><div id="root"></div></body></html>
"""

HARNESS_JS = r"""
const PAD = 11; // odd offset into a junk-filled buffer

function bytesView(spec) {
  const raw = atob(spec.__bytes__);
  const buf = new ArrayBuffer(PAD + raw.length + 5);
  const all = new Uint8Array(buf);
  all.fill(0xee);
  for (let i = 0; i < raw.length; i++) all[PAD + i] = raw.charCodeAt(i);
  return spec.view === "uint8" ? new Uint8Array(buf, PAD, raw.length) : new DataView(buf, PAD, raw.length);
}

function revive(x) {
  if (Array.isArray(x)) return x.map(revive);
  if (x && typeof x === "object") {
    if (typeof x.__bytes__ === "string") return bytesView(x);
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, revive(v)]));
  }
  return x;
}

// The subset of the anywidget model API the views may use, Backbone-like: set() fires
// change:<key> synchronously when the value changed.
class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.handlers = new Map();
    this.sent = [];
    this.saved = [];
    this.dirty = new Set();
  }
  get(key) { return this.state[key]; }
  set(key, value) {
    const old = this.state[key];
    this.state[key] = value;
    this.dirty.add(key);
    if (old !== value) this._emit(`change:${key}`, this, value);
  }
  save_changes() { this.saved.push(...this.dirty); this.dirty.clear(); }
  on(event, cb) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(cb);
  }
  off(event, cb) {
    if (!event) { this.handlers.clear(); return; }
    if (!cb) { this.handlers.delete(event); return; }
    const list = this.handlers.get(event) || [];
    const i = list.indexOf(cb);
    if (i >= 0) list.splice(i, 1);
  }
  send(msg, callbacks, buffers) { this.sent.push(JSON.parse(JSON.stringify(msg))); }
  _emit(event, ...args) { for (const cb of [...(this.handlers.get(event) || [])]) cb(...args); }
  // test side
  listenerCount() { let n = 0; for (const l of this.handlers.values()) n += l.length; return n; }
  kernelSet(key, value) { // a change coming from the kernel: not marked dirty
    const old = this.state[key];
    this.state[key] = revive(value);
    if (old !== this.state[key]) this._emit(`change:${key}`, this, this.state[key]);
  }
  emitCustom(msg, buffers) { this._emit("msg:custom", msg, (buffers || []).map(bytesView)); }
}

const mounted = [];

window.xw = {
  async mount(view, state) {
    const mod = await import(`/static/${view}.js`);
    const model = new FakeModel(revive(state));
    const el = document.createElement("div");
    el.className = "xw-host";
    el.dataset.host = String(mounted.length);
    document.getElementById("root").append(el);
    const cleanup = await mod.default.render({ model, el });
    mounted.push({ model, el, cleanup });
    return mounted.length - 1;
  },
  model(i = 0) { return mounted[i].model; },
  unmount(i = 0) {
    const m = mounted[i];
    if (typeof m.cleanup === "function") m.cleanup();
    return m.model.listenerCount();
  },
  pixel(selector, x, y, nth = 0) {
    const canvas = document.querySelectorAll(selector)[nth];
    if (!canvas) throw new Error(`no canvas ${selector} #${nth}`);
    return Array.from(canvas.getContext("2d").getImageData(x, y, 1, 1).data);
  },
};
window.xwReady = true;
"""


class WidgetPage:
    """A page with the harness loaded; thin helpers over ``page.evaluate``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.external: list[str] = []

    def mount(self, view: str, state: dict[str, Any]) -> int:
        require_bundle(view)
        return self.page.evaluate("([v, s]) => window.xw.mount(v, s)", [view, state])

    def pixel(self, selector: str, x: int, y: int, nth: int = 0) -> tuple[int, int, int, int]:
        return tuple(self.page.evaluate("([s, x, y, n]) => window.xw.pixel(s, x, y, n)", [selector, x, y, nth]))

    def canvas_size(self, selector: str, nth: int = 0) -> tuple[int, int]:
        w, h = self.page.evaluate(
            "([s, n]) => { const c = document.querySelectorAll(s)[n]; return [c.width, c.height]; }", [selector, nth]
        )
        return w, h

    def state(self, key: str, i: int = 0) -> Any:
        return self.page.evaluate("([k, i]) => window.xw.model(i).state[k]", [key, i])

    def sent(self, i: int = 0) -> list[dict[str, Any]]:
        return self.page.evaluate("(i) => window.xw.model(i).sent", i)

    def saved(self, i: int = 0) -> list[str]:
        return self.page.evaluate("(i) => window.xw.model(i).saved", i)

    def kernel_set(self, key: str, value: Any, i: int = 0) -> None:
        self.page.evaluate("([k, v, i]) => window.xw.model(i).kernelSet(k, v)", [key, value, i])

    def emit_custom(self, msg: dict[str, Any], i: int = 0, buffers: list[bytes] | None = None) -> None:
        """A kernel message; ``buffers`` arrive in the page as DataViews (as ipywidgets delivers them)."""
        specs = [{"__bytes__": base64.b64encode(bytes(b)).decode("ascii"), "view": "dataview"} for b in buffers or []]
        self.page.evaluate("([m, i, b]) => window.xw.model(i).emitCustom(m, b)", [msg, i, specs])

    def unmount(self, i: int = 0) -> int:
        """Run the view's cleanup; returns the listeners left on the model."""
        return self.page.evaluate("(i) => window.xw.unmount(i)", i)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.locator("#root").screenshot(path=str(path))
        return path

    def assert_clean(self) -> None:
        assert not self.errors, f"page errors: {self.errors}"
        assert not self.external, f"requests outside the harness: {self.external}"


def _serve(route: Any, request: Any, external: list[str]) -> None:
    url: str = request.url
    if not url.startswith(ORIGIN + "/"):
        external.append(url)
        route.abort()
        return
    path = url[len(ORIGIN) :].split("?", 1)[0]
    if path in ("/", "/index.html"):
        route.fulfill(status=200, content_type="text/html", body=INDEX_HTML)
    elif path == "/harness.js":
        route.fulfill(status=200, content_type="text/javascript", body=HARNESS_JS)
    elif path.startswith("/static/") and path.endswith(".js") and "/" not in path[len("/static/") :]:
        bundle = STATIC / path[len("/static/") :]
        if bundle.is_file():
            route.fulfill(status=200, content_type="text/javascript", body=bundle.read_text("utf-8"))
        else:
            route.fulfill(status=404, content_type="text/plain", body=f"{bundle.name} not built")
    else:
        route.fulfill(status=404, content_type="text/plain", body="not found")


@contextlib.contextmanager
def widget_pages(browser: Any, *, viewport: tuple[int, int] = (900, 700)) -> Iterator[Callable[[], WidgetPage]]:
    """One context and page on the fake origin, reused; each call of the yielded function reloads the
    harness (fresh JS state, no new renderer process) and returns a new WidgetPage."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    # every Playwright wait and action on these pages (locator actions, wait_for_*, goto) may take up to
    # 60 s before it fails: on a loaded CI machine the renderer can be starved for seconds
    context.set_default_timeout(60_000)
    page = context.new_page()
    current: list[WidgetPage] = []

    def record_error(text: str) -> None:
        if current:
            current[-1].errors.append(text)

    def serve(route: Any, request: Any) -> None:
        _serve(route, request, current[-1].external if current else [])

    page.on("pageerror", lambda exc: record_error(str(exc)))
    page.on("console", lambda m: record_error(m.text) if m.type == "error" else None)
    context.route("**/*", serve)

    def fresh() -> WidgetPage:
        current.append(WidgetPage(page))
        page.goto(f"{ORIGIN}/index.html")
        page.wait_for_function("window.xwReady === true")
        return current[-1]

    try:
        yield fresh
    finally:
        context.close()
