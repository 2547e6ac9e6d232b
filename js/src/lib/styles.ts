// The stylesheet, bundled as text and placed inside each view's element (no global side effects).
import css from "../styles.css";

export function attachStyles(el: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = css;
  el.append(style);
}

/** The shared stylesheet, then a view's own rules; returns the view's <style> (removed on unmount). */
export function attachViewStyles(el: HTMLElement, viewCss: string): HTMLStyleElement {
  attachStyles(el);
  const style = document.createElement("style");
  style.textContent = viewCss;
  el.append(style);
  return style;
}
