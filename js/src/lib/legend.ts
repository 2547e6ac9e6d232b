// Colour bar with value labels for the current clip range and absolute toggle.
import { h } from "./dom";
import { formatValue } from "./format";
import type { OverlayStyle } from "./overlay";

export interface Legend {
  el: HTMLElement;
  update(style: OverlayStyle, clipPercentile: number): void;
}

const BAR_STEPS = 128;

export function createLegend(): Legend {
  const bar = h("canvas", "xw-legend-bar", { width: BAR_STEPS, height: 1 });
  const min = h("span", "xw-legend-min");
  const mid = h("span", "xw-legend-mid");
  const max = h("span", "xw-legend-max");
  const el = h("div", "xw-legend", {}, [bar, h("div", "xw-legend-labels", {}, [min, mid, max])]);
  const ctx = bar.getContext("2d");

  function update(st: OverlayStyle, clipPercentile: number): void {
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
    el.title = `colour saturates at the ${clipPercentile}th percentile of ${st.mode === "sequential" ? "v" : "|v|"}`;
  }

  return { el, update };
}
