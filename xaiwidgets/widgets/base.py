"""Shared widget plumbing: the built bundle's location and the PNG fallback in the mime bundle."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import anywidget
import traitlets

from .fallback import fallback_png

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"


def bundle(name: str) -> pathlib.Path:
    """Path of a built view module; a clear error when the front end was not built."""
    path = STATIC / f"{name}.js"
    if not path.exists():
        raise FileNotFoundError(
            f"the widget front end is not built ({path} is missing). Install the package with pip "
            "(which builds it) or run: npm --prefix js ci && npm --prefix js run build"
        )
    return path


def esm(name: str) -> str:
    """The ``_esm`` of a view: the built module's source, or (not built) a module that says so.

    The source, not the path: anywidget turns a path into a ``FileContents`` whose change signal keeps a
    strong reference to every widget instance ever created (closed or not), and with it the model.
    """
    path = STATIC / f"{name}.js"
    if path.exists():
        return path.read_text("utf-8")
    message = f"xaiwidgets front end not built: run npm --prefix js ci && npm --prefix js run build ({name})"
    return "export default { render({ el }) { el.textContent = " + json.dumps(message) + "; } };"


class ViewOptions(traitlets.HasTraits):
    """Display options shared by every heatmap view (synced).

    ``clip_percentile``, ``alpha`` and ``smoothing`` left at ``None``/``"auto"`` follow each method's
    display defaults (:mod:`.methodinfo`: pixel-level gradient maps clip at 98, alpha ~ sqrt(|v|/clip), a
    display-only blur; CAMs and perturbation maps clip at 99.5 with linear alpha). ``alpha``: "linear"
    (opacity x |v|/clip), "sqrt" (opacity x sqrt(|v|/clip)) or "flat" (opacity everywhere, as captum's
    blended heat map). ``smoothing``: Gaussian sigma as a fraction of the map's side, display only (the
    values, colour bar range and exports are the unsmoothed ones). ``map_layout``: "overlay" (map over the
    photo), "map" (the map alone) or "side" (photo and map side by side).
    """

    colormap = traitlets.Unicode("auto").tag(sync=True)
    opacity = traitlets.Float(0.6, min=0.0, max=1.0).tag(sync=True)
    absolute = traitlets.Bool(False).tag(sync=True)
    clip_percentile = traitlets.Float(None, allow_none=True, min=50.0, max=100.0).tag(sync=True)
    alpha = traitlets.Enum(("auto", "linear", "sqrt", "flat"), "auto").tag(sync=True)
    smoothing = traitlets.Float(None, allow_none=True, min=0.0, max=0.05).tag(sync=True)
    map_layout = traitlets.Enum(("overlay", "map", "side"), "overlay").tag(sync=True)

    def panel_display(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The PNG fallback's clip and alpha for one panel: the traits where set, else ``defaults`` (a
        method's display defaults, :func:`.methodinfo.display_defaults`)."""
        clip = self.clip_percentile if self.clip_percentile is not None else defaults.get("clip_percentile", 99.5)
        alpha = self.alpha if self.alpha != "auto" else defaults.get("alpha", "linear")
        return {"clip_percentile": clip, "alpha": alpha}

    def view_options(self) -> dict[str, Any]:
        return {
            "opacity": self.opacity,
            "colormap": self.colormap,
            "clip_percentile": 99.5 if self.clip_percentile is None else self.clip_percentile,
            "absolute": self.absolute,
        }


class PngFallbackWidget(anywidget.AnyWidget):
    """An anywidget whose mime bundle also carries an ``image/png`` for hosts without a kernel.

    Subclasses set ``_esm = esm("<view>")`` and ``_bundle_name``; construction fails clearly when it was not built.
    """

    _bundle_name = ""

    def __init__(self, **kwargs: Any) -> None:
        if self._bundle_name:
            bundle(self._bundle_name)
        super().__init__(**kwargs)

    def _fallback_png(self) -> bytes | None:
        return None

    def _repr_mimebundle_(self, **kwargs: Any):
        result = super()._repr_mimebundle_(**kwargs)
        data, metadata = result if isinstance(result, tuple) else (result, {})
        png = fallback_png(self)  # None when it fails: a fallback must never break display
        if png:
            data = dict(data)
            data["image/png"] = base64.b64encode(png).decode("ascii")
            # marks the output for xaiwidgets' JupyterLab extension, which shows this PNG when a reopened
            # notebook's widget model is gone (instead of "Error displaying widget: model not found")
            metadata = {**metadata, "xaiwidgets": {"fallback": "image/png"}}
        return data, metadata
