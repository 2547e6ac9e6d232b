// Styles of the text/tabular views (TokenView, AnchorView, ForcePlot), added after the shared sheet.
import css from "../textviews.css";
import { attachStyles } from "./styles";

export function attachTextStyles(el: HTMLElement): void {
  attachStyles(el);
  const style = document.createElement("style");
  style.textContent = css;
  el.append(style);
}
