// Tiny DOM helper.

type Attrs = Record<string, string | number | boolean | undefined>;

/** Create an element with class names, attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  attrs: Attrs = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (className) el.className = className;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children);
  return el;
}

/** The controls of a view that runs a kernel job: a progress bar (and its fill), a status line and Cancel. */
export interface JobControls {
  fill: HTMLDivElement;
  progress: HTMLDivElement;
  status: HTMLSpanElement;
  cancel: HTMLButtonElement;
}

export function createJobControls(): JobControls {
  const fill = h("div", "xw-progress-fill");
  const progress = h("div", "xw-progress", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 1 }, [fill]);
  const status = h("span", "xw-status", { "aria-live": "polite" });
  const cancel = h("button", "xw-cancel", { type: "button" }, ["Cancel"]);
  return { fill, progress, status, cancel };
}
