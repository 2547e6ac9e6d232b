// The stylesheet, bundled as text and placed inside each view's element (no global side effects).
import css from "../styles.css";

export function attachStyles(el: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = css;
  el.append(style);
}
