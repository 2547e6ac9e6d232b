"""Standalone HTML export: a widget's view and state in one file that renders without a kernel.

The anywidget ES module (the built bundle from ``xaiwidgets/static/``, as the widget's ``_esm`` trait holds
it) is inlined, and the synced state is embedded as JSON with every binary buffer base64-encoded. A small
loader decodes the buffers into ``DataView`` objects (as JupyterLab delivers them), builds a model whose
``get`` reads that state, whose ``set`` updates it locally (so display controls such as the opacity slider
still work) and whose ``send`` does nothing, and calls the view's ``render``. Nothing is fetched: the page
works from ``file://`` with the network off. Requests to the kernel (another class, another method) have
no one to answer them in the exported page.
"""

from __future__ import annotations

import base64
import html
import json
import math
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import anywidget

from .fallback import fallback_png

# ipywidgets' own traits that a view never reads (``layout`` is a reference to another widget model)
_SKIP = frozenset({
    "_esm", "_css", "_anywidget_id", "_dom_classes", "_model_module", "_model_module_version", "_model_name",
    "_view_count", "_view_module", "_view_module_version", "_view_name", "layout", "tabbable", "tooltip",
})

_THEMES = {
    "light": "",
    # the JupyterLab dark theme's variables that the views read (js/src/styles.css)
    "dark": (
        "--jp-layout-color0:#111111;--jp-layout-color1:#1e1e1e;--jp-layout-color2:#2d2d2d;"
        "--jp-ui-font-color1:rgba(255,255,255,.87);--jp-ui-font-color2:rgba(255,255,255,.6);"
        "--jp-border-color2:#444444;--jp-brand-color1:#64b5f6;--jp-error-color1:#ef5350;"
    ),
}

_LOADER = r"""
const payload = JSON.parse(document.getElementById(%(data_id)s).textContent);
const esm = JSON.parse(document.getElementById(%(esm_id)s).textContent);

function bytes(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return new DataView(out.buffer);
}

function putBuffers(state, buffers) {
  for (const { path, data } of buffers) {
    let node = state;
    for (const key of path.slice(0, -1)) node = node[key];
    node[path[path.length - 1]] = bytes(data);
  }
  return state;
}

// The part of the anywidget model API a view may use; no kernel behind it.
class StaticModel {
  constructor(state) { this.state = state; this.handlers = new Map(); }
  get(key) { return this.state[key]; }
  set(key, value) {
    const old = this.state[key];
    this.state[key] = value;
    if (old !== value) this.trigger(`change:${key}`, this, value);
  }
  save_changes() {}
  send() {}
  on(event, cb) {
    for (const name of String(event).split(/\s+/)) {
      if (!this.handlers.has(name)) this.handlers.set(name, []);
      this.handlers.get(name).push(cb);
    }
  }
  off(event, cb) {
    if (!event) { this.handlers.clear(); return; }
    for (const name of String(event).split(/\s+/)) {
      if (!cb) { this.handlers.delete(name); continue; }
      const list = this.handlers.get(name) || [];
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    }
  }
  trigger(event, ...args) { for (const cb of [...(this.handlers.get(event) || [])]) cb(...args); }
}

async function widgetDefinition(source) {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  try {
    const mod = await import(url);
    const def = mod.default ?? mod;
    return typeof def === "function" ? await def() : def;
  } finally {
    URL.revokeObjectURL(url);
  }
}

const definitions = new Map();
for (const item of payload) {
  const host = document.getElementById(item.host);
  try {
    if (!definitions.has(item.esm)) definitions.set(item.esm, widgetDefinition(esm[item.esm]));
    const def = await definitions.get(item.esm);
    const model = new StaticModel(putBuffers(item.state, item.buffers));
    const signal = new AbortController().signal;
    const experimental = { invoke: async () => { throw new Error("no kernel in an exported page"); } };
    if (typeof def.initialize === "function") await def.initialize({ model, signal, experimental });
    await def.render({ model, el: host, signal, experimental });
    host.dataset.rendered = "true";
  } catch (e) {
    host.dataset.rendered = "error";
    host.textContent = `xaiwidgets export: ${e instanceof Error ? e.message : e}`;
    console.error(e);
  }
}
document.body.dataset.xwReady = "true";
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<style>
body { margin: 0; padding: 16px; %(theme_vars)s background: var(--jp-layout-color0, #fff);
  color: var(--jp-ui-font-color1, #222); font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.xw-export-host { margin: 0 0 24px; }
.xw-export-note { font-size: 12px; color: var(--jp-ui-font-color2, #666); margin: 0 0 12px; }
%(css)s
</style></head>
<body data-jp-theme-light="%(light)s" data-jp-theme-name="%(theme_name)s">
<p class="xw-export-note">%(note)s</p>
%(hosts)s
<script type="application/json" id="%(esm_id_raw)s">%(esm_json)s</script>
<script type="application/json" id="%(data_id_raw)s">%(data_json)s</script>
<script type="module">%(loader)s</script>
</body></html>
"""


def _split_buffers(value: Any, path: list[Any], buffers: list[dict[str, Any]]) -> Any:
    """``value`` with every bytes-like leaf replaced by None and recorded as ``{path, data(base64)}``
    (ipywidgets' buffer paths); non-finite floats become None."""
    if isinstance(value, (memoryview, bytes, bytearray)):
        buffers.append({"path": path, "data": base64.b64encode(bytes(value)).decode("ascii")})
        return None
    if isinstance(value, dict):
        return {k: _split_buffers(v, [*path, k], buffers) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_buffers(v, [*path, i], buffers) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / inf
    return value


def _check_no_widget_refs(value: Any, where: str) -> None:
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        raise ValueError(
            f"{where} refers to another widget ({value}); to_html exports widgets whose views only read their "
            "own traits. Export the child widgets themselves: xw.to_html([w1, w2], path)."
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _check_no_widget_refs(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_no_widget_refs(v, f"{where}[{i}]")


def _esm_source(widget: anywidget.AnyWidget, state: dict[str, Any]) -> str:
    source = state.get("_esm")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{type(widget).__name__} has no front-end module (_esm) to export")
    candidate = pathlib.Path(source) if "\n" not in source and len(source) < 4096 else None
    if candidate is not None and candidate.suffix in (".js", ".mjs") and candidate.is_file():
        return candidate.read_text("utf-8")  # an _esm given as a path (anywidget's dev mode)
    return source


def _json_for_script(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _fallback_img(widget: Any) -> str:
    png = fallback_png(widget)  # optional: never a reason to fail the export
    if not png:
        return ""
    b64 = base64.b64encode(png).decode("ascii")
    return f'<noscript><img alt="static rendering" src="data:image/png;base64,{b64}"></noscript>'


def to_html(
    widget: anywidget.AnyWidget | Sequence[anywidget.AnyWidget],
    path: str | pathlib.Path | None = None,
    *,
    title: str = "xaiwidgets",
    theme: str = "light",
) -> str:
    """A standalone HTML page showing ``widget`` (or several) without a kernel; written to ``path`` if given.

    Works for :class:`~xaiwidgets.HeatmapView`, :class:`~xaiwidgets.ExplainDashboard`,
    :class:`~xaiwidgets.ScrubberView` and any anywidget whose view only reads its own traits. The page
    embeds the view's JavaScript and the widget state (binary buffers base64-encoded) and loads nothing
    from the network. Display controls keep working; anything that needs the kernel (recomputing for
    another class) does not. ``theme``: ``"light"`` or ``"dark"`` (JupyterLab's theme colours).
    Returns the HTML text.
    """
    widgets = list(widget) if isinstance(widget, (list, tuple)) else [widget]
    if not widgets:
        raise ValueError("to_html needs at least one widget")
    if theme not in _THEMES:
        raise ValueError(f"theme must be one of {', '.join(map(repr, _THEMES))}; got {theme!r}")
    sources: list[str] = []
    items, hosts, css = [], [], []
    for i, w in enumerate(widgets):
        if not isinstance(w, anywidget.AnyWidget):
            raise TypeError(f"to_html exports anywidget widgets (HeatmapView, ExplainDashboard, ScrubberView, ...); "
                            f"got {type(w).__name__}")
        if getattr(w, "status", None) == "running":
            warnings.warn(f"{type(w).__name__} is still computing; the export holds the results so far "
                          "(build it with wait=True, or export when it has finished)", stacklevel=2)
        # a view may export a bounded snapshot of itself (DatasetExplorer: the selection, not every item)
        export_state = getattr(w, "_export_state", None)
        state = export_state() if callable(export_state) else w.get_state()
        source = _esm_source(w, state)
        if source not in sources:
            sources.append(source)
        style = state.get("_css")
        if isinstance(style, str) and style.strip() and style not in css:
            css.append(style)
        data = {k: v for k, v in state.items() if k not in _SKIP}
        _check_no_widget_refs(data, type(w).__name__)
        buffers: list[dict[str, Any]] = []
        data = _split_buffers(data, [], buffers)
        host_id = f"xw-export-{i}"
        items.append({"host": host_id, "esm": sources.index(source), "state": data, "buffers": buffers})
        label = html.escape(type(w).__name__)
        hosts.append(f'<div class="xw-export-host" id="{host_id}" data-widget="{label}">{_fallback_img(w)}</div>')
    esm_id, data_id = "xw-export-esm", "xw-export-state"
    page = _PAGE % {
        "title": html.escape(title),
        "theme_vars": _THEMES[theme],
        "light": "false" if theme == "dark" else "true",
        "theme_name": "JupyterLab Dark" if theme == "dark" else "JupyterLab Light",
        "css": "\n".join(c.replace("</", "<\\/") for c in css),
        "note": "Exported from xaiwidgets: a static snapshot (the display controls work; recomputing needs the "
                "notebook's kernel).",
        "hosts": "\n".join(hosts),
        "esm_id_raw": esm_id,
        "data_id_raw": data_id,
        "esm_json": _json_for_script(sources),
        "data_json": _json_for_script(items),
        "loader": _LOADER % {"data_id": json.dumps(data_id), "esm_id": json.dumps(esm_id)},
    }
    if path is not None:
        pathlib.Path(path).write_text(page, encoding="utf-8")
    return page
