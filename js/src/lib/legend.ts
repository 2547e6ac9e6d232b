// Colour bar with value labels for the current clip range and absolute toggle.
import { h } from "./dom";
import { formatValue } from "./format";
import type { OverlayStyle } from "./overlay";

export interface LegendInfo {
  /** What the values are, e.g. "|d score / d pixel|". */
  quantity?: string;
  /** The unsmoothed map's [min, max]. */
  range?: [number, number];
  /** Display-only blur sigma in pixels (0: none). */
  smoothingPx?: number;
}

export interface Legend {
  el: HTMLElement;
  update(style: OverlayStyle, clipPercentile: number | null, info?: LegendInfo): void;
}

/** The legend's second line: the real range, where colour saturates, and any display smoothing. */
export function legendNote(style: OverlayStyle, clipPercentile: number, info: LegendInfo = {}): string {
  const parts: string[] = [];
  if (info.range) parts.push(`range ${formatValue(info.range[0])} to ${formatValue(info.range[1])}`);
  const of = style.mode === "sequential" ? "v" : "|v|";
  parts.push(`saturates at ${formatValue(style.clip)} (${Number(clipPercentile.toFixed(1))}th pct of ${of})`);
  if (info.smoothingPx && info.smoothingPx >= 0.5) parts.push(`display blur ${Number(info.smoothingPx.toFixed(1))} px`);
  return parts.join(" · ");
}

const BAR_STEPS = 128;

export function createLegend(): Legend {
  const bar = h("canvas", "xw-legend-bar", { width: BAR_STEPS, height: 1 });
  const min = h("span", "xw-legend-min");
  const mid = h("span", "xw-legend-mid");
  const max = h("span", "xw-legend-max");
  const quantity = h("div", "xw-legend-quantity");
  const note = h("div", "xw-legend-note");
  const el = h("div", "xw-legend", {}, [quantity, bar, h("div", "xw-legend-labels", {}, [min, mid, max]), note]);
  const ctx = bar.getContext("2d");

  function update(st: OverlayStyle, clipPercentile: number | null, info: LegendInfo = {}): void {
    const pct = typeof clipPercentile === "number" && Number.isFinite(clipPercentile) ? clipPercentile : 99.5;
    if (ctx) {
      const img = ctx.createImageData(BAR_STEPS, 1);
      for (let x = 0; x < BAR_STEPS; x++) {
        const i = Math.round((st.t0 + ((st.t1 - st.t0) * x) / (BAR_STEPS - 1)) * 255) * 3;
        img.data.set([st.lut[i], st.lut[i + 1], st.lut[i + 2], 255], x * 4);
      }
      ctx.putImageData(img, 0, 0);
    }
    const lo = st.mode === "signed" ? -st.clip : st.mode === "absolute" ? 0 : st.lo;
    min.textContent = formatValue(lo);
    mid.textContent = st.mode === "signed" ? "0" : st.mode === "absolute" ? "|v|" : "";
    max.textContent = formatValue(st.clip);
    el.dataset.mode = st.mode;
    el.title = `colour saturates at the ${pct}th percentile of ${st.mode === "sequential" ? "v" : "|v|"}`;
    quantity.textContent = info.quantity ?? "";
    quantity.hidden = !info.quantity;
    note.textContent = info.range || info.quantity ? legendNote(st, pct, info) : "";
    note.hidden = !note.textContent;
  }

  return { el, update };
}
