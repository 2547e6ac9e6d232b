"""HeatmapView: an image with an attribution overlay, colour map, opacity, sign and clipping controls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .base import PngFallbackWidget, ViewOptions, esm
from .buffers import display_shape, fit_display, heatmap_payload, image_payload
from .fallback import render_png

if TYPE_CHECKING:  # pragma: no cover
    from ..core.attribution import Attribution


class HeatmapView(PngFallbackWidget, ViewOptions):
    """One heatmap over one image. Build it with :meth:`from_attribution` or :meth:`from_arrays`."""

    _esm = esm("heatmap")
    _bundle_name = "heatmap"

    image = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    heatmap = traitlets.Dict().tag(sync=True)
    signed = traitlets.Bool(True).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    quantity = traitlets.Unicode("").tag(sync=True)  # what the values are: the colour bar's label

    def __init__(self, **kwargs: Any) -> None:
        self._image_array: np.ndarray | None = kwargs.pop("_image_array", None)
        self._map_array: np.ndarray | None = kwargs.pop("_map_array", None)
        super().__init__(**kwargs)

    @classmethod
    def from_arrays(
        cls,
        image: np.ndarray | None,
        values: np.ndarray,
        *,
        signed: bool | None = None,
        title: str = "",
        **options: Any,
    ) -> HeatmapView:
        """From a uint8 ``(H, W, 3)`` image (or None) and a float ``(H, W)`` map."""
        values = np.asarray(values, dtype=np.float32)
        size = display_shape(values.shape)  # a huge input is shown downscaled (image and map alike)
        values = fit_display(values, size)
        image = fit_display(image, size) if image is not None else None
        if signed is None:
            signed = bool((values < 0).any() and (values > 0).any())
        return cls(
            image=image_payload(image) if image is not None else None,
            heatmap=heatmap_payload(values, signed),
            signed=signed,
            title=title,
            _image_array=image,
            _map_array=values,
            **options,
        )

    @classmethod
    def from_attribution(
        cls, attribution: Attribution, index: int = 0, *, reduce: str | None = None, **options: Any
    ) -> HeatmapView:
        """Sample ``index`` of an :class:`~xaiwidgets.Attribution`."""
        n = len(attribution)
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} explained inputs")
        values = attribution.heatmap(reduce)[index]
        images = attribution.display_images()
        image = images[index] if images is not None else None
        if image is not None and image.shape[:2] != values.shape:
            image = None
        target = int(attribution.target[index])
        label = attribution.classifier.label(target) if attribution.classifier else f"class {target}"
        signed = attribution.signed and bool((values < 0).any())
        try:  # the method's display defaults (clip, alpha, display-only smoothing) unless given
            from ..methods.registry import get_method
            from .methodinfo import display_defaults

            defaults = display_defaults(get_method(attribution.method))
        except Exception:  # a method outside the registry: the plain rule
            defaults = {}
        for key, value in defaults.items():
            options.setdefault(key, value)
        return cls.from_arrays(
            image, values, signed=signed, title=f"{attribution.method} · {label}", **options
        )

    def _fallback_png(self) -> bytes | None:
        if self._map_array is None:
            return None
        return render_png(
            self._image_array, [(self.title, self._map_array, self.signed, self.panel_display({}))],
            **self.view_options()
        )
