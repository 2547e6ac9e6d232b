// One method's result in the dashboard: title, remove button, (CAM) layer picker, state
// (pending/running/error) or overlay + legend. The buttons only call back; the dashboard asks the kernel.
import { isArrayDict } from "./arrays";
import { h } from "./dom";
import { formatSeconds } from "./format";
import type { RGBAImage } from "./image";
import { createLegend } from "./legend";
import type { DisplayTraits, Panel } from "./model";
import { drawOverlay, overlayStyle } from "./overlay";
import { scalarMapOf } from "./scalarmap";

export interface PanelInput {
  panel: Panel | undefined;
  image: RGBAImage | null;
  display: DisplayTraits;
  target: number;
  /** The method's family ("cam" shows the layer picker). */
  family?: string;
  /** The model's spatial layers (`layers` trait). */
  layers?: string[];
  /** The layer set in `method_params` ("" = automatic). */
  layer?: string;
}

export interface PanelCallbacks {
  /** The user chose a layer ("" = automatic). */
  onLayer?(layer: string): void;
  onRemove?(): void;
}

export interface PanelView {
  el: HTMLElement;
  destroy(): void;
  /** Redraw if anything in `input` differs from the last call; returns whether it redrew. */
  update(input: PanelInput): boolean;
}

const same = (a: PanelInput, b: PanelInput): boolean =>
  a.panel === b.panel &&
  a.image === b.image &&
  a.target === b.target &&
  a.display.colormap === b.display.colormap &&
  a.display.opacity === b.display.opacity &&
  a.display.absolute === b.display.absolute &&
  a.display.clip_percentile === b.display.clip_percentile &&
  a.family === b.family &&
  a.layers === b.layers &&
  a.layer === b.layer;

export function createPanelView(method: string, callbacks: PanelCallbacks = {}): PanelView {
  const title = h("span", "xw-panel-title", {}, [method]);
  const seconds = h("span", "xw-seconds");
  const remove = h("button", "xw-remove", { type: "button", title: `remove ${method}`, "aria-label": `remove ${method}` }, ["×"]);
  const layerSelect = h("select", "xw-layer", { "aria-label": `${method} layer` });
  const layerRow = h("label", "xw-control xw-layer-control", { title: "the layer this CAM explains" }, [
    h("span", "xw-control-name", {}, ["Layer"]),
    layerSelect,
  ]);
  layerRow.hidden = true;
  const canvas = h("canvas", "xw-heatmap-canvas", { role: "img", "aria-label": method });
  const legend = createLegend();
  const pending = h("div", "xw-pending", {}, [h("span", "xw-spinner", { "aria-hidden": "true" }), h("span", "xw-pending-text")]);
  const error = h("div", "xw-panel-error");
  const figure = h("div", "xw-figure", {}, [canvas, legend.el]);
  const el = h("div", "xw-panel", { "data-method": method }, [
    h("div", "xw-panel-head", {}, [title, h("span", "xw-panel-actions", {}, [seconds, remove])]),
    layerRow,
    figure,
    pending,
    error,
  ]);
  let last: PanelInput | null = null;

  const onRemove = (): void => callbacks.onRemove?.();
  const onLayer = (): void => callbacks.onLayer?.(layerSelect.value);
  remove.addEventListener("click", onRemove);
  layerSelect.addEventListener("change", onLayer);

  let layersKey = "";
  function renderLayers(input: PanelInput): void {
    layerRow.hidden = input.family !== "cam";
    if (layerRow.hidden) return;
    const chosen = input.layer ?? "";
    // "auto" names the layer the last automatic result used (the panel's `layer`).
    const resolved = !chosen && input.panel?.layer ? input.panel.layer : "";
    // Rebuild only when something shown changed (an open menu would otherwise close on redraws).
    const key = JSON.stringify([chosen, resolved, input.layers ?? []]);
    if (key === layersKey) return;
    layersKey = key;
    const names = [...(input.layers ?? [])];
    if (chosen && !names.includes(chosen)) names.push(chosen);
    const options = [
      h("option", "", { value: "" }, [resolved ? `auto (${resolved})` : "auto"]),
      ...names.map((n) => h("option", "", { value: n }, [n])),
    ];
    layerSelect.replaceChildren(...options);
    layerSelect.value = chosen;
  }

  function show(state: string): void {
    el.dataset.state = state;
    figure.hidden = state !== "done";
    pending.hidden = state !== "pending" && state !== "running";
    error.hidden = state !== "error";
  }

  function update(input: PanelInput): boolean {
    if (last && same(last, input)) return false;
    last = input;
    renderLayers(input);
    const p = input.panel;
    const state = p?.state ?? "pending";
    seconds.textContent = state === "done" && p ? formatSeconds(p.seconds) : "";
    el.classList.toggle("xw-stale", state === "done" && p !== undefined && p.target !== input.target);
    el.title = p && p.target !== input.target ? `computed for class ${p.target}` : "";
    if (state === "pending" || state === "running") {
      show(state);
      pending.lastElementChild!.textContent = state === "running" ? "running…" : "pending";
      return true;
    }
    if (state === "error" || !isArrayDict(p?.heatmap)) {
      show("error");
      error.textContent = p?.error || (state === "error" ? "error" : "no heatmap");
      return true;
    }
    try {
      const map = scalarMapOf(p.heatmap);
      const style = overlayStyle(map, input.display, Boolean(p.signed), input.image !== null);
      drawOverlay(canvas, input.image, map, style);
      legend.update(style, input.display.clip_percentile);
      show("done");
    } catch (e) {
      show("error");
      error.textContent = e instanceof Error ? e.message : String(e);
    }
    return true;
  }

  function destroy(): void {
    remove.removeEventListener("click", onRemove);
    layerSelect.removeEventListener("change", onLayer);
  }

  return { el, update, destroy };
}
