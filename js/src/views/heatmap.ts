// HeatmapView: one attribution map over its input image (docs/widget-protocol.md).
//
// Selectors (stable, used by tests):
//   .xw-heatmap-view                root, data-state="ok" | "empty" | "error"
//   .xw-title                       caption (trait `title`)
//   canvas.xw-heatmap-canvas        image + overlay, intrinsic size = image size (else heatmap size)
//   .xw-legend  canvas.xw-legend-bar  .xw-legend-min  .xw-legend-mid  .xw-legend-max
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip
//   .xw-error                       decode/render error text
import { isArrayDict } from "../lib/arrays";
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { h } from "../lib/dom";
import { imageOf } from "../lib/image";
import { createLegend } from "../lib/legend";
import type { AnyModel, DisplayTraits, HeatmapTraits, RenderProps } from "../lib/model";
import { resolveDisplay, smoothMap } from "../lib/display";
import { drawImage, drawOverlay, overlayStyle } from "../lib/overlay";
import { scalarMapOf } from "../lib/scalarmap";
import { attachStyles } from "../lib/styles";

const TRAITS = ["image", "heatmap", "signed", "title", "quantity", ...DISPLAY_TRAITS] as const;

function render({ model, el }: RenderProps<HeatmapTraits>): () => void {
  attachStyles(el);
  const title = h("div", "xw-title");
  const canvas = h("canvas", "xw-heatmap-canvas", { role: "img" });
  const photo = h("canvas", "xw-photo-canvas", { role: "img", "aria-label": "input image" });
  photo.hidden = true;
  const error = h("div", "xw-error");
  const legend = createLegend();
  const display: AnyModel<DisplayTraits> = model;
  const controls = createControls(display);
  const root = h("div", "xw-widget xw-heatmap-view", {}, [
    title,
    h("div", "xw-figure", {}, [h("div", "xw-canvases", {}, [photo, canvas]), legend.el]),
    error,
    controls.el,
  ]);
  el.append(root);

  function draw(): void {
    title.textContent = model.get("title") ?? "";
    title.hidden = !title.textContent;
    canvas.setAttribute("aria-label", title.textContent || "attribution heatmap");
    controls.sync();
    const dict = model.get("heatmap");
    error.textContent = "";
    if (!isArrayDict(dict)) {
      root.dataset.state = "empty";
      legend.el.hidden = true;
      canvas.width = canvas.height = 0;
      return;
    }
    try {
      const raw = scalarMapOf(dict);
      const imageDict = model.get("image");
      const d = resolveDisplay(readDisplay(display));
      const photoImage = isArrayDict(imageDict) ? imageOf(imageDict) : null;
      const image = d.layout === "overlay" ? photoImage : null;
      const map = smoothMap(raw, d.smoothing);
      const style = overlayStyle(map, d, Boolean(model.get("signed")), image !== null);
      drawOverlay(canvas, image, map, style);
      photo.hidden = !(d.layout === "side" && photoImage);
      if (!photo.hidden && photoImage) drawImage(photo, photoImage);
      legend.update(style, d.clip_percentile, {
        quantity: model.get("quantity") || undefined, range: [raw.min, raw.max],
        smoothingPx: map === raw ? 0 : d.smoothing * Math.max(raw.width, raw.height),
      });
      legend.el.hidden = false;
      root.dataset.state = "ok";
    } catch (e) {
      root.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  const events = TRAITS.map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, draw);
  draw();

  return () => {
    for (const ev of events) model.off(ev, draw);
    controls.destroy();
    root.remove();
  };
}

export default { render };
