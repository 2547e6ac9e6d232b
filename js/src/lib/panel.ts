// One method's result in the dashboard: title, state (pending/running/error) or overlay + legend.
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
}

export interface PanelView {
  el: HTMLElement;
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
  a.display.clip_percentile === b.display.clip_percentile;

export function createPanelView(method: string): PanelView {
  const title = h("span", "xw-panel-title", {}, [method]);
  const seconds = h("span", "xw-seconds");
  const canvas = h("canvas", "xw-heatmap-canvas", { role: "img", "aria-label": method });
  const legend = createLegend();
  const pending = h("div", "xw-pending", {}, [h("span", "xw-spinner", { "aria-hidden": "true" }), h("span", "xw-pending-text")]);
  const error = h("div", "xw-panel-error");
  const figure = h("div", "xw-figure", {}, [canvas, legend.el]);
  const el = h("div", "xw-panel", { "data-method": method }, [
    h("div", "xw-panel-head", {}, [title, seconds]),
    figure,
    pending,
    error,
  ]);
  let last: PanelInput | null = null;

  function show(state: string): void {
    el.dataset.state = state;
    figure.hidden = state !== "done";
    pending.hidden = state !== "pending" && state !== "running";
    error.hidden = state !== "error";
  }

  function update(input: PanelInput): boolean {
    if (last && same(last, input)) return false;
    last = input;
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

  return { el, update };
}
