// Colour key of the text views: transparent at zero, red / blue with alpha growing to the clip value.
import { h } from "./dom";
import { formatValue } from "./format";
import { MAX_ALPHA, NEGATIVE, POSITIVE } from "./signed";

export interface SignedLegend {
  el: HTMLElement;
  update(clip: number, signed: boolean): void;
}

const rgba = (c: readonly number[], a: number): string => `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${a})`;

export function createSignedLegend(): SignedLegend {
  const bar = h("div", "xw-signed-legend-bar");
  const min = h("span", "xw-legend-min");
  const mid = h("span", "xw-legend-mid");
  const max = h("span", "xw-legend-max");
  const el = h("div", "xw-signed-legend", { "aria-label": "colour key" }, [bar, h("div", "xw-legend-labels", {}, [min, mid, max])]);

  function update(clip: number, signed: boolean): void {
    bar.style.background = signed
      ? `linear-gradient(to right, ${rgba(NEGATIVE, MAX_ALPHA)}, ${rgba(NEGATIVE, 0)} 50%, ${rgba(POSITIVE, 0)} 50%, ${rgba(POSITIVE, MAX_ALPHA)})`
      : `linear-gradient(to right, ${rgba(POSITIVE, 0)}, ${rgba(POSITIVE, MAX_ALPHA)})`;
    min.textContent = signed ? formatValue(-clip) : "0";
    mid.textContent = signed ? "0" : "";
    max.textContent = (signed ? "+" : "") + formatValue(clip);
    el.dataset.signed = String(signed);
  }

  return { el, update };
}
