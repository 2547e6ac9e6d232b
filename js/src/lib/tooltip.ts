// A small floating tooltip inside a widget's root (position: relative), shown next to a target
// element or a point. Plain text lines; never reaches outside the widget.
import { h } from "./dom";

export interface Tooltip {
  el: HTMLElement;
  /** Show `lines` below (or above, near the bottom) the element's box, or at a client point. */
  show(lines: string[], at: Element | { x: number; y: number }): void;
  hide(): void;
}

export function createTooltip(root: HTMLElement): Tooltip {
  const el = h("div", "xw-tooltip", { role: "tooltip" });
  el.hidden = true;
  root.append(el);

  function show(lines: string[], at: Element | { x: number; y: number }): void {
    el.replaceChildren(...lines.map((line, i) => h("div", i === 0 ? "xw-tooltip-head" : "xw-tooltip-line", {}, [line])));
    el.hidden = false;
    const host = root.getBoundingClientRect();
    let x: number;
    let y: number;
    if (at instanceof Element) {
      const r = at.getBoundingClientRect();
      x = r.left + r.width / 2 - host.left;
      y = r.bottom - host.top + 6;
    } else {
      x = at.x - host.left;
      y = at.y - host.top + 14;
    }
    const w = el.offsetWidth;
    const left = Math.max(0, Math.min(x - w / 2, root.clientWidth - w));
    el.style.left = `${left}px`;
    el.style.top = `${y}px`;
  }

  function hide(): void {
    el.hidden = true;
  }

  return { el, show, hide };
}
