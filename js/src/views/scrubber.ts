// ScrubberView: slider + play/pause over Integrated-Gradients path frames or SmoothGrad noise samples
// (docs/widget-protocol.md, "ScrubberView"). The scrubber itself is lib/scrubber.ts (shared with the
// dashboard's frames section); this view adds the title, the job line and the display controls.
//
// Selectors (stable, used by tests): everything listed in lib/scrubber.ts, plus
//   .xw-scrubber                     root (also data-status = idle | computing | cancelled | error)
//   .xw-title                        caption (trait `title`)
//   .xw-progress[role=progressbar]  .xw-status  button.xw-cancel (sends {type: "cancel", id})
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip   shared display controls
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { createJobControls, h } from "../lib/dom";
import type { ScrubberTraits } from "../lib/frames";
import type { AnyModel, DisplayTraits, RenderProps } from "../lib/model";
import { createRequests } from "../lib/requests";
import { createScrubber } from "../lib/scrubber";
import { attachStyles } from "../lib/styles";

function render({ model, el }: RenderProps<ScrubberTraits>): () => void {
  attachStyles(el);
  const display: AnyModel<DisplayTraits> = model;
  const controls = createControls(display);
  const requests = createRequests(model);

  const title = h("div", "xw-title");
  const { fill, progress, status, cancel } = createJobControls();
  const scrubber = createScrubber({
    display: () => readDisplay(display),
    onFrameCommit: (k) => {
      model.set("frame", k);
      model.save_changes();
    },
    before: [h("div", "xw-topbar", {}, [title, h("div", "xw-job", {}, [progress, status, cancel])])],
    after: [controls.el],
  });
  const root = scrubber.el;
  root.classList.add("xw-widget");
  el.append(root);

  const loadFrames = (): void => scrubber.load(model.get("frames"), model.get("frame"));
  const onFrameTrait = (): void => scrubber.goTo(model.get("frame"));
  const redrawStyles = (): void => {
    controls.sync();
    scrubber.restyle();
  };

  // --- job ----------------------------------------------------------------------------------------
  function renderJob(): void {
    const p = Math.max(0, Math.min(1, Number(model.get("progress")) || 0));
    const s = String(model.get("status") ?? "idle");
    fill.style.width = `${p * 100}%`;
    progress.setAttribute("aria-valuenow", String(p));
    status.textContent = s;
    const kind = s.startsWith("error") ? "error" : s.startsWith("computing") ? "computing" : s === "cancelled" ? "cancelled" : "idle";
    status.dataset.kind = kind;
    root.dataset.status = kind;
    cancel.disabled = kind !== "computing";
    progress.hidden = kind === "idle" && p === 0;
  }
  const onCancel = (): void => {
    requests.notify("cancel");
  };
  cancel.addEventListener("click", onCancel);

  function renderTitle(): void {
    title.textContent = model.get("title") ?? "";
  }

  const listeners: [string, () => void][] = [
    ["change:frames", loadFrames],
    ["change:frame", onFrameTrait],
    ["change:title", renderTitle],
    ["change:progress", renderJob],
    ["change:status", renderJob],
    ...DISPLAY_TRAITS.map((t): [string, () => void] => [`change:${t}`, redrawStyles]),
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  scrubber.goTo(model.get("frame")); // follow the newest frame unless the trait names one
  renderTitle();
  renderJob();
  loadFrames();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    cancel.removeEventListener("click", onCancel);
    scrubber.destroy();
    controls.destroy();
    requests.dispose();
    root.remove();
  };
}

export default { render };
