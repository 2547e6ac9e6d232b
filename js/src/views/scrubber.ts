// ScrubberView: slider + play/pause over Integrated-Gradients path frames or SmoothGrad noise samples
// (docs/widget-protocol.md, "ScrubberView"). The scrubber itself is lib/scrubber.ts (shared with the
// dashboard's frames section); this view adds the title, the job line and the display controls.
//
// Selectors (stable, used by tests): everything listed in lib/scrubber.ts, plus
//   .xw-scrubber                     root (also data-status = idle | running | done | cancelled | error)
//   .xw-title                        caption (trait `title`)
//   .xw-progress[role=progressbar]  .xw-status  button.xw-cancel (sends {type: "cancel", id})
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip   shared display controls
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { h } from "../lib/dom";
import type { ScrubberTraits } from "../lib/frames";
import type { AnyModel, DisplayTraits, RenderProps } from "../lib/model";
import { createRequests } from "../lib/requests";
import { createScrubber } from "../lib/scrubber";
import { createJobLine } from "../lib/status";
import { attachStyles } from "../lib/styles";

function render({ model, el }: RenderProps<ScrubberTraits>): () => void {
  attachStyles(el);
  const display: AnyModel<DisplayTraits> = model;
  const controls = createControls(display);
  const requests = createRequests(model);

  const title = h("div", "xw-title");
  const job = createJobLine(model, { requests });
  const scrubber = createScrubber({
    display: () => readDisplay(display),
    onFrameCommit: (k) => {
      model.set("frame", k);
      model.save_changes();
    },
    before: [h("div", "xw-topbar", {}, [title, job.el])],
    after: [controls.el],
  });
  const root = scrubber.el;
  root.classList.add("xw-widget");
  job.mark(root);
  el.append(root);

  const loadFrames = (): void => scrubber.load(model.get("frames"), model.get("frame"));
  const onFrameTrait = (): void => scrubber.goTo(model.get("frame"));
  const redrawStyles = (): void => {
    controls.sync();
    scrubber.restyle();
  };

  function renderTitle(): void {
    title.textContent = model.get("title") ?? "";
  }

  const listeners: [string, () => void][] = [
    ["change:frames", loadFrames],
    ["change:frame", onFrameTrait],
    ["change:title", renderTitle],
    ...DISPLAY_TRAITS.map((t): [string, () => void] => [`change:${t}`, redrawStyles]),
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  scrubber.goTo(model.get("frame")); // follow the newest frame unless the trait names one
  renderTitle();
  job.render();
  loadFrames();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    job.destroy();
    scrubber.destroy();
    controls.destroy();
    requests.dispose();
    root.remove();
  };
}

export default { render };
