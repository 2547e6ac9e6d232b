// A compact list of signed horizontal bars (top features): label, bar from a zero line, value.
import { h } from "./dom";
import { formatValue } from "./format";
import { POSITIVE, NEGATIVE, rgb, signOf } from "./signed";

export interface BarItem {
  index: number;
  label: string;
  value: number;
}

export interface BarList {
  el: HTMLElement;
  update(items: BarItem[], clip: number, signed: boolean): void;
}

export function createBarList(onHover?: (index: number, el: HTMLElement | null) => void): BarList {
  const el = h("div", "xw-bars", { role: "list" });

  function update(items: BarItem[], clip: number, signed: boolean): void {
    el.dataset.signed = String(signed);
    el.replaceChildren(
      ...items.map((it) => {
        const frac = clip > 0 ? Math.min(1, Math.abs(it.value) / clip) : 0;
        const sign = signOf(it.value);
        const fill = h("span", "xw-bar-fill");
        fill.style.background = rgb(it.value < 0 && signed ? NEGATIVE : POSITIVE);
        if (signed) {
          fill.style.width = `${(frac * 50).toFixed(2)}%`;
          fill.style.left = it.value < 0 ? `${(50 - frac * 50).toFixed(2)}%` : "50%";
        } else {
          fill.style.width = `${(frac * 100).toFixed(2)}%`;
          fill.style.left = "0";
        }
        const row = h("div", "xw-bar-row", { role: "listitem", "data-index": it.index, "data-sign": sign }, [
          h("span", "xw-bar-label", { title: it.label }, [it.label]),
          h("span", "xw-bar-track", {}, [fill]),
          h("span", "xw-bar-value", {}, [(it.value > 0 && signed ? "+" : "") + formatValue(it.value)]),
        ]);
        if (onHover) {
          row.addEventListener("mouseenter", () => onHover(it.index, row));
          row.addEventListener("mouseleave", () => onHover(-1, null));
        }
        return row;
      }),
    );
  }

  return { el, update };
}
