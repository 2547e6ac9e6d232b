// Redraw a view when any of its traits changes or its width changes by more than 8 px (one animation frame
// after the resize); returns the cleanup that removes every listener it added.
import type { AnyModel } from "./model";

export function redrawOn<T extends object>(
  model: AnyModel<T>, traits: (keyof T & string)[], el: HTMLElement, draw: () => void, width: () => number, lastWidth: () => number,
): () => void {
  const events = traits.map((t) => `change:${t}`);
  for (const ev of events) model.on(ev, draw);
  let frame = 0;
  const observer = typeof ResizeObserver !== "undefined"
    ? new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => { if (Math.abs(width() - lastWidth()) > 8) draw(); });
    })
    : null;
  observer?.observe(el);
  draw();
  return () => {
    for (const ev of events) model.off(ev, draw);
    observer?.disconnect();
    cancelAnimationFrame(frame);
  };
}
