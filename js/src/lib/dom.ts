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
