// ExplainDashboard: input, top-k predictions, one panel per method, shared controls, progress.
//
// Selectors (stable, used by tests):
//   .xw-dashboard                          root
//   canvas.xw-input-canvas                 input image thumbnail
//   .xw-prediction[data-index="<class>"]   prediction rows; the current `target` has .xw-selected
//                                          and aria-selected="true"; .xw-requested while a compute
//                                          request for it is open. Inside: .xw-pred-label,
//                                          .xw-prob-fill (width = prob), .xw-prob-text ("87.3%")
//   .xw-panel[data-method="<name>"]        one per method, data-state = pending|running|done|error,
//                                          .xw-stale when computed for another class. Inside:
//                                          .xw-panel-title, canvas.xw-heatmap-canvas, .xw-legend,
//                                          .xw-seconds, .xw-pending, .xw-panel-error,
//                                          button.xw-remove (sends set_methods without this method),
//                                          select.xw-layer (CAMs only, method info `cam`: "" = auto, then `layers`;
//                                          sends set_params {layer}),
//                                          input.xw-param[data-param="<name>"] one slider per tunable
//                                          parameter (sends set_params {name: value} on release),
//                                          .xw-param-value its value,
//                                          button.xw-frames-toggle (methods with frames; aria-pressed
//                                          when the scrubber shows them; sends frames {method | null}).
//                                          While recomputing, the last map stays: .xw-figure.xw-busy
//   .xw-frames                             the scrubber section (hidden when `scrubber` is {}):
//                                          data-method, data-state = pending|running|done|cancelled|error,
//                                          .xw-stale when computed for another class. Inside:
//                                          .xw-frames-title, .xw-frames-state, button.xw-frames-close,
//                                          .xw-frames-error and the scrubber (lib/scrubber.ts selectors)
//   select.xw-add-method  button.xw-add    method picker (`available_methods` in optgroups by family;
//                                          shown methods disabled); add sends set_methods
//   .xw-picker-error                       a rejected set_methods/set_params/list_layers
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip   shared controls
//   .xw-progress[role=progressbar]         aria-valuenow = progress (0..1); .xw-progress-fill
//   .xw-status                             the status ("error: " + the `error` trait on errors);
//                                          data-kind = idle|running|done|cancelled|error (lib/status.ts)
//   button.xw-cancel                       sends {type: "cancel", id}; enabled while running or a class is requested
import { isArrayDict } from "../lib/arrays";
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { h } from "../lib/dom";
import { formatPercent } from "../lib/format";
import { imageOf, type RGBAImage } from "../lib/image";
import type {
  AnyModel, DashboardScrubber, DashboardTraits, DisplayTraits, MethodInfo, Panel, Prediction, RenderProps,
} from "../lib/model";
import { drawImage } from "../lib/overlay";
import { createPanelView, type PanelView } from "../lib/panel";
import { createRequests, type Request } from "../lib/requests";
import { createScrubber, type Scrubber } from "../lib/scrubber";
import { createJobLine, type JobState } from "../lib/status";
import { attachViewStyles } from "../lib/styles";

const CSS = `
.xw-panel-actions { display: inline-flex; align-items: center; gap: 4px; }
.xw-frames-toggle, .xw-frames-close {
  font: inherit; font-size: 11px; padding: 0 6px; border-radius: 3px; cursor: pointer;
  color: var(--xw-fg2); background: var(--xw-bg); border: 1px solid var(--xw-border);
}
.xw-frames-toggle.xw-on { color: var(--xw-bg); background: var(--xw-accent); border-color: var(--xw-accent); }
.xw-params { display: flex; flex-direction: column; gap: 2px; font-size: 12px; }
.xw-param-control { display: grid; grid-template-columns: auto minmax(0, 1fr) auto; }
.xw-param { width: 100%; min-width: 60px; margin: 0; accent-color: var(--xw-accent); }
.xw-figure.xw-busy { opacity: .45; transition: opacity .2s; }
.xw-pending.xw-pending-inline { aspect-ratio: auto; padding: 2px; background: none; justify-content: flex-start; }
.xw-frames { display: flex; flex-direction: column; gap: 6px; padding-top: 8px; border-top: 1px solid var(--xw-border); }
.xw-frames-head { display: flex; align-items: baseline; gap: 10px; }
.xw-frames-title { font-weight: 600; }
.xw-frames-state { color: var(--xw-fg2); font-size: 12px; flex: 1; }
.xw-frames.xw-stale .xw-scrubber { opacity: .5; }
.xw-method-desc { font-size: 12px; color: var(--xw-fg2); flex-basis: 100%; }
.xw-gap-badge { font-size: 11px; padding: 0 5px; border-radius: 8px; white-space: nowrap;
  color: var(--xw-ok); border: 1px solid currentColor; }
.xw-gap-badge.xw-bad { color: #fff; background: var(--xw-error); border-color: var(--xw-error); }
.xw-recompute { font: inherit; font-size: 12px; padding: 1px 8px; border-radius: 3px; cursor: pointer;
  color: var(--xw-fg); background: var(--xw-bg); border: 1px solid var(--xw-border); }
`;

const FAMILY_LABELS: Record<string, string> = {
  gradient: "Gradients (pixel level)", cam: "CAM (layer maps)", relevance: "Relevance propagation",
  perturbation: "Perturbation (model-agnostic)", transformer: "Transformers (attention)",
};
const FAMILY_ORDER = ["gradient", "cam", "relevance", "perturbation", "transformer"];

const FRAME_STATES: Record<string, string> = {
  pending: "waiting for the kernel…", running: "computing…", cancelled: "cancelled", error: "", done: "",
};

function render({ model, el }: RenderProps<DashboardTraits>): () => void {
  const extra = attachViewStyles(el, CSS);
  const display: AnyModel<DisplayTraits> = model;
  const requests = createRequests(model);
  const controls = createControls(display);
  const job = createJobLine(model, {
    requests,
    progress: shownProgress,
    hidden: () => false,
    cancellable: (state) => state.status === "running" || requested.size > 0,
    onCancel: () => {
      stoppedSeen = true;
    },
    onRender: followJob,
  });

  const thumb = h("canvas", "xw-input-canvas", { role: "img", "aria-label": "input image" });
  const predictions = h("div", "xw-predictions", { role: "listbox", "aria-label": "top predictions" });
  const panels = h("div", "xw-panels");
  const heading = h("div", "xw-heading");
  const addSelect = h("select", "xw-add-method", { "aria-label": "method to add" });
  const addButton = h("button", "xw-add", { type: "button", title: "add a panel for this method" }, ["Add"]);
  const methodDesc = h("div", "xw-method-desc", { "aria-live": "polite" });
  const pickerError = h("span", "xw-picker-error xw-error", { role: "alert" });
  const framesTitle = h("span", "xw-frames-title");
  const framesState = h("span", "xw-frames-state", { "aria-live": "polite" });
  const framesClose = h("button", "xw-frames-close", { type: "button", title: "close the frames", "aria-label": "close the frames" }, ["×"]);
  const framesError = h("div", "xw-error xw-frames-error");
  const frames = h("div", "xw-frames", { role: "region", "aria-label": "frames" }, [
    h("div", "xw-frames-head", {}, [framesTitle, framesState, framesClose]),
    framesError,
  ]);
  frames.hidden = true;
  const picker = h("div", "xw-method-picker xw-controls", {}, [
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Method"]), addSelect]),
    addButton,
    pickerError,
    methodDesc,
  ]);

  const root = h("div", "xw-widget xw-dashboard", {}, [
    h("div", "xw-side", {}, [
      h("div", "xw-input", {}, [thumb]),
      h("div", "xw-section-title", {}, ["Predictions"]),
      predictions,
    ]),
    h("div", "xw-main", {}, [
      h("div", "xw-topbar", {}, [heading, job.el]),
      panels,
      frames,
      picker,
      controls.el,
    ]),
  ]);
  job.mark(root);
  el.append(root);

  // --- input image ---------------------------------------------------------------------------
  let image: RGBAImage | null = null;
  function renderImage(): void {
    const dict = model.get("image");
    try {
      image = isArrayDict(dict) ? imageOf(dict) : null;
    } catch {
      image = null;
    }
    thumb.hidden = image === null;
    if (image) drawImage(thumb, image);
  }

  // --- predictions ---------------------------------------------------------------------------
  const rows = new Map<number, HTMLElement>();
  const requested = new Set<number>();

  function renderPredictions(): void {
    rows.clear();
    const items: Prediction[] = model.get("predictions") ?? [];
    predictions.replaceChildren(
      ...items.map((p) => {
        const row = h("div", "xw-prediction", { "data-index": p.index, role: "option", tabindex: 0, title: `class ${p.index}` }, [
          h("span", "xw-pred-label", {}, [p.label || String(p.index)]),
          h("span", "xw-prob-text", {}, [formatPercent(p.prob)]),
          h("span", "xw-prob-bar", {}, [h("span", "xw-prob-fill", { style: `width: ${formatPercent(p.prob)}` })]),
        ]);
        rows.set(p.index, row);
        return row;
      }),
    );
    renderSelection();
  }

  function renderSelection(): void {
    const target = model.get("target");
    for (const [index, row] of rows) {
      row.classList.toggle("xw-selected", index === target);
      row.setAttribute("aria-selected", String(index === target));
      row.classList.toggle("xw-requested", requested.has(index));
    }
    const label = (model.get("predictions") ?? []).find((p) => p.index === target)?.label;
    heading.textContent = `Explaining: ${label ?? `class ${target}`}`;
  }

  function compute(index: number): void {
    // The kernel sets `target`; the browser only asks.
    const req = requests.send("compute", { target: index });
    requested.add(index);
    renderSelection();
    job.render();
    void req.done.then(() => {
      requested.delete(index);
      renderSelection();
      job.render();
    });
  }

  const rowIndex = (ev: Event): number | null => {
    const row = (ev.target as Element | null)?.closest<HTMLElement>(".xw-prediction");
    return row ? Number(row.dataset.index) : null;
  };
  const onClick = (ev: MouseEvent): void => {
    const i = rowIndex(ev);
    if (i !== null) compute(i);
  };
  const onKey = (ev: KeyboardEvent): void => {
    if (ev.key !== "Enter" && ev.key !== " ") return;
    const i = rowIndex(ev);
    if (i === null) return;
    ev.preventDefault();
    compute(i);
  };
  predictions.addEventListener("click", onClick);
  predictions.addEventListener("keydown", onKey);

  // --- method picker, per-panel requests --------------------------------------------------------
  const currentMethods = (): string[] => {
    const methods = model.get("methods");
    return methods?.length ? [...methods] : (model.get("panels") ?? []).map((p) => p.method);
  };

  // A kernel refusal (unknown method, no such panel) shows next to the picker; errors of a
  // computation show in their panel.
  function track(req: Request): void {
    pickerError.textContent = "";
    void req.done.then((msg) => {
      if (msg.status === "error") pickerError.textContent = String(msg.error ?? "request failed");
    });
  }

  function setMethods(methods: string[]): void {
    track(requests.send("set_methods", { methods }));
  }

  // Grouped by family; methods that cannot run on this model are disabled with the reason; nothing is
  // preselected (a placeholder asks for a choice), the chosen method's description and cost show below.
  let methodsKey = "";
  function renderPicker(): void {
    const infos: MethodInfo[] = model.get("available_methods") ?? [];
    const shown = currentMethods();
    const key = JSON.stringify([infos, shown]);
    if (key === methodsKey) return;
    methodsKey = key;
    const previous = addSelect.value;
    const families = new Map<string, MethodInfo[]>();
    const rank = (f: string): number => (FAMILY_ORDER.includes(f) ? FAMILY_ORDER.indexOf(f) : FAMILY_ORDER.length);
    for (const info of [...infos].sort((a, b) => rank(a.family) - rank(b.family))) {
      if (!families.has(info.family)) families.set(info.family, []);
      families.get(info.family)!.push(info);
    }
    addSelect.replaceChildren(
      h("option", "", { value: "" }, ["choose a method…"]),
      ...Array.from(families, ([family, list]) =>
        h("optgroup", "", { label: FAMILY_LABELS[family] ?? family }, list.map((m) => {
          const why = m.unavailable ? ` (n/a: ${m.unavailable})` : shown.includes(m.name) ? " (shown)" : "";
          return h("option", "", {
            value: m.name, disabled: shown.includes(m.name) || Boolean(m.unavailable),
            title: m.unavailable || [m.description, m.cost].filter(Boolean).join(" · "),
            "data-unavailable": m.unavailable || undefined,
          }, [`${m.name}${m.cost ? ` · ${m.cost}` : ""}${why}`]);
        })),
      ),
    );
    const usable = Array.from(addSelect.options).filter((o) => !o.disabled && o.value);
    addSelect.value = usable.some((o) => o.value === previous) ? previous : "";
    picker.hidden = infos.length === 0;
    renderChoice();
  }

  function renderChoice(): void {
    const info = infoOf(addSelect.value);
    addButton.disabled = !info || Boolean(info.unavailable) || currentMethods().includes(info.name);
    methodDesc.textContent = info ? [info.description, info.cost && `cost: ${info.cost}`].filter(Boolean).join(" · ") : "";
  }
  addSelect.addEventListener("change", renderChoice);

  const onAdd = (): void => {
    const name = addSelect.value;
    const methods = currentMethods();
    if (!name || methods.includes(name)) return;
    setMethods([...methods, name]);
    addSelect.value = "";
  };
  addButton.addEventListener("click", onAdd);

  const infoOf = (method: string): MethodInfo | undefined =>
    (model.get("available_methods") ?? []).find((m) => m.name === method);

  // The layer list is computed in the kernel on request, once; asked when a CAM panel first shows.
  let layersAsked = false;
  function askLayers(): void {
    if (layersAsked || (model.get("layers") ?? []).length) return;
    layersAsked = true;
    track(requests.send("list_layers"));
  }

  // --- panels --------------------------------------------------------------------------------
  const views = new Map<string, PanelView>();

  function renderPanels(): void {
    const list: Panel[] = model.get("panels") ?? [];
    const byMethod = new Map(list.map((p) => [p.method, p]));
    const methods = currentMethods();
    const disp = readDisplay(display);
    const target = model.get("target");
    const layers = model.get("layers") ?? [];
    const camLayers = model.get("cam_layers") ?? [];
    const params = model.get("method_params") ?? {};
    const stopped = isStopped();
    const order: HTMLElement[] = [];
    for (const method of methods) {
      let view = views.get(method);
      if (!view) {
        view = createPanelView(method, {
          onRemove: () => setMethods(currentMethods().filter((m) => m !== method)),
          onLayer: (layer) => track(requests.send("set_params", { method, params: { layer: layer || null } })),
          onParam: (name, value) => track(requests.send("set_params", { method, params: { [name]: value } })),
          onFrames: (open) => track(requests.send("frames", { method: open ? method : null })),
          // set_params with nothing changed queues this panel alone (served from the cache if computed)
          onRecompute: () => {
            stoppedSeen = false;
            track(requests.send("set_params", { method, params: {} }));
            renderPanels();
          },
        });
        views.set(method, view);
      }
      const info = infoOf(method);
      const cam = Boolean(info?.cam);
      if (cam) askLayers();
      const layer = params[method]?.layer;
      view.update({
        panel: byMethod.get(method), image, display: disp, target, cam, layers, camLayers,
        defaults: info?.display, stopped,
        layer: typeof layer === "string" ? layer : "",
        frames: Boolean(info?.frames), framesOpen: framesMethod === method, tunable: info?.tunable,
        params: params[method],
      });
      order.push(view.el);
    }
    for (const [method, view] of views) {
      if (!methods.includes(method)) {
        view.destroy();
        view.el.remove();
        views.delete(method);
      }
    }
    // Re-append only when the order changed (keeps canvases in place otherwise).
    const current = Array.from(panels.children);
    if (current.length !== order.length || order.some((e, i) => current[i] !== e)) panels.replaceChildren(...order);
  }

  // --- frames: the scrubber over one panel's frames (created when opened) ------------------------
  let scrubber: Scrubber | null = null;
  let framesMethod = "";
  let framesKey = "";
  let framesShown: unknown = null;

  function renderFrames(): void {
    const raw = model.get("scrubber");
    const s = raw && typeof raw.method === "string" && raw.method ? (raw as DashboardScrubber) : null;
    const method = s?.method ?? "";
    const changed = method !== framesMethod;
    framesMethod = method;
    frames.hidden = s === null;
    if (s === null) {
      if (scrubber) {
        scrubber.destroy();
        scrubber.el.remove();
        scrubber = null;
      }
      framesKey = "";
      framesShown = null;
      if (changed) renderPanels();
      return;
    }
    if (!scrubber) {
      scrubber = createScrubber({ display: () => readDisplay(display) });
      frames.append(scrubber.el);
    }
    const label = (model.get("predictions") ?? []).find((p) => p.index === s.target)?.label;
    framesTitle.textContent = `Frames · ${s.method} · ${label ?? `class ${s.target}`}`;
    framesState.textContent = FRAME_STATES[s.state] ?? s.state;
    frames.dataset.method = s.method;
    frames.dataset.state = s.state;
    frames.classList.toggle("xw-stale", s.target !== model.get("target"));
    framesError.textContent = s.error ?? "";
    // Another panel, class or parameters: follow the newest frame again.
    const key = JSON.stringify([s.method, s.target, s.params]);
    if (key !== framesKey) {
      framesKey = key;
      scrubber.goTo(-1);
    }
    if (s.frames !== framesShown) {
      framesShown = s.frames;
      scrubber.load(s.frames, scrubber.current());
    }
    if (changed) renderPanels();
  }

  const onCloseFrames = (): void => {
    track(requests.send("frames", { method: null }));
  };
  framesClose.addEventListener("click", onCloseFrames);

  // --- job: progress, status, cancel ---------------------------------------------------------
  // After a cancel, pending panels will not be computed by any job: they show "cancelled" with a
  // Recompute button until a job runs again (also after later jobs that only computed other panels).
  let stoppedSeen = false;
  function isStopped(): boolean {
    return stoppedSeen && job.state().status !== "running" && requested.size === 0;
  }

  /** Outside a job the bar shows the share of panels that have a result, never a stale job fraction. */
  function shownProgress(state: JobState): number {
    if (state.status === "running") return state.progress;
    const list = model.get("panels") ?? [];
    if (!list.length) return 0;
    return list.filter((p) => p.state === "done" || p.state === "error").length / list.length;
  }

  let lastStatus = "";
  function followJob(state: JobState): void {
    if (state.status === "cancelled") stoppedSeen = true;
    const open = (model.get("panels") ?? []).some((x) => x.state === "pending" || x.state === "running");
    if (!open) stoppedSeen = false;
    if (state.status !== lastStatus) {
      lastStatus = state.status;
      renderPanels();
    }
  }

  // --- wiring --------------------------------------------------------------------------------
  const onImage = (): void => {
    renderImage();
    renderPanels();
  };
  const onTarget = (): void => {
    renderSelection();
    renderPanels();
    renderFrames();
  };
  const onMethods = (): void => {
    renderPicker();
    renderPanels();
  };
  const onDisplay = (): void => {
    controls.sync();
    renderPanels();
    scrubber?.restyle();
  };
  const listeners: [string, () => void][] = [
    ["change:image", onImage],
    ["change:predictions", renderPredictions],
    ["change:target", onTarget],
    ["change:methods", onMethods],
    ["change:panels", () => {
      onMethods();
      job.render();
    }],
    ["change:available_methods", onMethods],
    ["change:layers", renderPanels],
    ["change:cam_layers", renderPanels],
    ["change:method_params", renderPanels],
    ["change:scrubber", renderFrames],
    ...DISPLAY_TRAITS.map((t): [string, () => void] => [`change:${t}`, onDisplay]),
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);

  renderImage();
  renderPredictions();
  renderPicker();
  renderFrames();
  renderPanels();
  job.render();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    requests.dispose();
    controls.destroy();
    predictions.removeEventListener("click", onClick);
    predictions.removeEventListener("keydown", onKey);
    job.destroy();
    addButton.removeEventListener("click", onAdd);
    addSelect.removeEventListener("change", renderChoice);
    framesClose.removeEventListener("click", onCloseFrames);
    scrubber?.destroy();
    for (const view of views.values()) view.destroy();
    root.remove();
    extra.remove();
  };
}

export default { render };
