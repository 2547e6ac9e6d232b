// One method's result in the dashboard: title, frames toggle (IG / SmoothGrad), remove button, (CAM)
// layer picker, sliders over the method's tunable parameters, state (pending/running/error) or overlay +
// legend. While a panel recomputes, its last map stays, dimmed. The controls only call back; the
// dashboard asks the kernel.
import { isArrayDict } from "./arrays";
import { h } from "./dom";
import { formatSeconds } from "./format";
import type { RGBAImage } from "./image";
import { resolveDisplay, smoothMap, type DisplayDefaults } from "./display";
import { formatPercent } from "./format";
import { createLegend } from "./legend";
import type { DisplayTraits, Panel, PanelNotes, TunableSpec } from "./model";
import { drawImage, drawOverlay, overlayStyle } from "./overlay";
import { scalarMapOf } from "./scalarmap";

export interface PanelInput {
  panel: Panel | undefined;
  image: RGBAImage | null;
  display: DisplayTraits;
  target: number;
  /** The method is a CAM (method info `cam`): the panel shows the layer picker. */
  cam?: boolean;
  /** The model's spatial layers (`layers` trait). */
  layers?: string[];
  /** The layers offered first (block outputs); the rest of `layers` behind the "all modules" filter. */
  camLayers?: string[];
  /** The method's display defaults (when the shared controls are on auto). */
  defaults?: DisplayDefaults;
  /** No job will finish this pending panel (the job was cancelled): say so and offer to recompute. */
  stopped?: boolean;
  /** The layer set in `method_params` ("" = automatic). */
  layer?: string;
  /** The method records scrubber frames (shows the frames toggle). */
  frames?: boolean;
  /** The dashboard's scrubber shows this method's frames. */
  framesOpen?: boolean;
  /** The method's tunable parameters (one slider each). */
  tunable?: Record<string, TunableSpec>;
  /** The method's parameters (`method_params[method]`). */
  params?: Record<string, unknown>;
}

export interface PanelCallbacks {
  /** The user chose a layer ("" = automatic). */
  onLayer?(layer: string): void;
  onRemove?(): void;
  /** The user opened (true) or closed (false) the frames. */
  onFrames?(open: boolean): void;
  /** The user released a parameter slider at `value`. */
  onParam?(name: string, value: number): void;
  /** The user asked to compute a cancelled panel again. */
  onRecompute?(): void;
}

/** The completeness badge of an IG panel: text, and whether the gap is above its tolerance. */
export function gapBadge(notes: PanelNotes | undefined): { text: string; bad: boolean; title: string } | null {
  const gap = notes?.completeness_gap;
  if (typeof gap !== "number" || !Number.isFinite(gap)) return null;
  const tol = typeof notes?.tolerance === "number" ? notes.tolerance : 0.01;
  const bad = gap > tol;
  const steps = typeof notes?.n_steps === "number" ? ` with ${notes.n_steps} steps` : "";
  return {
    text: `gap ${formatPercent(gap)}`,
    bad,
    title: `completeness gap |sum(IG) - (F(x) - F(baseline))| / |F(x) - F(baseline)| = ${formatPercent(gap)}${steps}; ` +
      (bad ? `above the ${formatPercent(tol)} tolerance: the map is not converged (more steps)` : `within the ${formatPercent(tol)} tolerance`),
  };
}

export interface PanelView {
  el: HTMLElement;
  destroy(): void;
  /** Redraw if anything in `input` differs from the last call; returns whether it redrew. */
  update(input: PanelInput): boolean;
}

const same = (a: PanelInput, b: PanelInput): boolean =>
  a.panel === b.panel &&
  a.image === b.image &&
  a.target === b.target &&
  a.display.colormap === b.display.colormap &&
  a.display.opacity === b.display.opacity &&
  a.display.absolute === b.display.absolute &&
  a.display.clip_percentile === b.display.clip_percentile &&
  a.display.alpha === b.display.alpha &&
  a.display.smoothing === b.display.smoothing &&
  a.display.map_layout === b.display.map_layout &&
  a.defaults === b.defaults &&
  a.camLayers === b.camLayers &&
  a.stopped === b.stopped &&
  a.cam === b.cam &&
  a.layers === b.layers &&
  a.layer === b.layer &&
  a.frames === b.frames &&
  a.framesOpen === b.framesOpen &&
  a.tunable === b.tunable &&
  a.params === b.params;

/** Decimals that show every value on a slider of this step (0.05 -> 2). */
export function stepDecimals(step: number): number {
  if (!(step > 0) || Number.isInteger(step)) return 0;
  const text = String(step);
  const exp = text.match(/e-(\d+)$/);
  if (exp) return Number(exp[1]);
  return text.split(".")[1]?.length ?? 0;
}

/** The value a parameter slider shows: the set parameter when it is a number, else the default. */
export function sliderValue(spec: TunableSpec, value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return spec.default;
}

interface ParamSlider {
  row: HTMLElement;
  input: HTMLInputElement;
  out: HTMLElement;
  spec: TunableSpec;
}

export function createPanelView(method: string, callbacks: PanelCallbacks = {}): PanelView {
  // Break long names after underscores rather than truncating them ("input_x_gra…").
  const title = h("span", "xw-panel-title", { title: method }, method.split("_").flatMap((part, i) =>
    i === 0 ? [part] : [h("wbr", ""), `_${part}`]));
  const seconds = h("span", "xw-seconds");
  const badge = h("span", "xw-gap-badge");
  badge.hidden = true;
  const remove = h("button", "xw-remove", { type: "button", title: `remove ${method}`, "aria-label": `remove ${method}` }, ["×"]);
  const layerSelect = h("select", "xw-layer", { "aria-label": `${method} layer` });
  const allLayers = h("input", "xw-layer-all", { type: "checkbox", "aria-label": `${method}: list every module` });
  const layerRow = h("div", "xw-layer-row", {}, [
    h("label", "xw-control xw-layer-control", { title: "the layer this CAM explains" }, [
      h("span", "xw-control-name", {}, ["Layer"]),
      layerSelect,
    ]),
    h("label", "xw-control xw-layer-filter", { title: "list every spatial module, not only block outputs" }, [
      allLayers, h("span", "xw-control-name", {}, ["all"]),
    ]),
  ]);
  layerRow.hidden = true;
  const framesToggle = h("button", "xw-frames-toggle", {
    type: "button", "aria-pressed": "false", title: `scrub through ${method}'s frames`,
  }, ["Frames"]);
  framesToggle.hidden = true;
  const paramRows = h("div", "xw-params");
  const canvas = h("canvas", "xw-heatmap-canvas", { role: "img", "aria-label": method });
  const photo = h("canvas", "xw-photo-canvas", { role: "img", "aria-label": "input image" });
  photo.hidden = true;
  const legend = createLegend();
  const recompute = h("button", "xw-recompute", { type: "button", title: `compute ${method} again` }, ["Recompute"]);
  const pending = h("div", "xw-pending", {}, [
    h("span", "xw-spinner", { "aria-hidden": "true" }), h("span", "xw-pending-text"), recompute,
  ]);
  const error = h("div", "xw-panel-error");
  const figure = h("div", "xw-figure", {}, [h("div", "xw-canvases", {}, [photo, canvas]), legend.el]);
  const el = h("div", "xw-panel", { "data-method": method }, [
    h("div", "xw-panel-head", {}, [title, h("span", "xw-panel-actions", {}, [badge, seconds, framesToggle, remove])]),
    figure,
    pending,
    error,
    layerRow, // layer and sliders below the map, so the maps of a row of panels stay aligned
    paramRows,
  ]);
  let last: PanelInput | null = null;
  let drawn = false; // a map was drawn: it stays (dimmed) while the panel recomputes

  const onRemove = (): void => callbacks.onRemove?.();
  const onLayer = (): void => callbacks.onLayer?.(layerSelect.value);
  const onFrames = (): void => callbacks.onFrames?.(framesToggle.getAttribute("aria-pressed") !== "true");
  const onRecompute = (): void => callbacks.onRecompute?.();
  const onAllLayers = (): void => {
    layersKey = "";
    if (last) renderLayers(last);
  };
  recompute.addEventListener("click", onRecompute);
  allLayers.addEventListener("change", onAllLayers);
  remove.addEventListener("click", onRemove);
  layerSelect.addEventListener("change", onLayer);
  framesToggle.addEventListener("click", onFrames);

  // --- parameter sliders: rebuilt when the spec changes, values follow `params` ---------------
  let sliders: ParamSlider[] = [];
  let tunableKey = "";
  let dragging: HTMLInputElement | null = null;
  const onPointerDown = (ev: Event): void => {
    dragging = ev.target instanceof HTMLInputElement ? ev.target : null;
  };
  const onPointerUp = (): void => {
    dragging = null;
  };
  const onSliderInput = (ev: Event): void => {
    const slider = sliders.find((s) => s.input === ev.target);
    if (slider) slider.out.textContent = Number(slider.input.value).toFixed(stepDecimals(slider.spec.step));
  };
  const onSliderChange = (ev: Event): void => {
    const slider = sliders.find((s) => s.input === ev.target);
    if (slider) callbacks.onParam?.(slider.input.dataset.param!, Number(slider.input.value));
  };
  paramRows.addEventListener("pointerdown", onPointerDown);
  window.addEventListener("pointerup", onPointerUp);
  paramRows.addEventListener("input", onSliderInput);
  paramRows.addEventListener("change", onSliderChange);

  function renderParams(input: PanelInput): void {
    const tunable = input.tunable ?? {};
    const key = JSON.stringify(tunable);
    if (key !== tunableKey) {
      tunableKey = key;
      sliders = Object.entries(tunable).map(([name, spec]) => {
        const slider = h("input", "xw-param", {
          type: "range", min: spec.min, max: spec.max, step: spec.step, "data-param": name,
          "aria-label": `${method} ${name}`,
        });
        const out = h("span", "xw-value xw-param-value");
        const row = h("label", "xw-control xw-param-control", { title: `${name}: ${spec.min} to ${spec.max}` }, [
          h("span", "xw-control-name", {}, [name]), slider, out,
        ]);
        return { row, input: slider, out, spec };
      });
      paramRows.replaceChildren(...sliders.map((s) => s.row));
    }
    paramRows.hidden = sliders.length === 0;
    for (const s of sliders) {
      if (s.input === dragging) continue; // the user is moving it
      const name = s.input.dataset.param!;
      const value = sliderValue(s.spec, input.params?.[name]);
      const raw = input.params?.[name];
      if (value !== null) s.input.value = String(value);
      s.out.textContent = value === null
        ? String(raw ?? "")
        : typeof raw === "number" || raw === undefined
          ? value.toFixed(stepDecimals(s.spec.step))
          : String(raw); // a non-numeric setting such as n_steps="auto"
    }
  }

  let layersKey = "";
  function renderLayers(input: PanelInput): void {
    layerRow.hidden = !input.cam;
    if (layerRow.hidden) return;
    const chosen = input.layer ?? "";
    // "auto" names the layer the last automatic result used (the panel's `layer`).
    const resolved = !chosen && input.panel?.layer ? input.panel.layer : "";
    const all = input.layers ?? [];
    const blocks = input.camLayers?.length ? input.camLayers : all;
    const filter = allLayers.parentElement as HTMLElement;
    filter.hidden = blocks.length >= all.length;
    const every = allLayers.checked || filter.hidden;
    // Rebuild only when something shown changed (an open menu would otherwise close on redraws).
    const key = JSON.stringify([chosen, resolved, all, blocks, every]);
    if (key === layersKey) return;
    layersKey = key;
    const names = [...(every ? all : blocks)];
    if (chosen && !names.includes(chosen)) names.push(chosen);
    const options = [
      h("option", "", { value: "" }, [resolved ? `auto (${resolved})` : "auto"]),
      ...names.map((n) => h("option", "", { value: n }, [n])),
    ];
    layerSelect.replaceChildren(...options);
    layerSelect.value = chosen;
    layerSelect.title = chosen || (resolved ? `auto (${resolved})` : "auto");
  }

  function show(state: string): void {
    const busy = state === "pending" || state === "running";
    el.dataset.state = state;
    figure.hidden = !(state === "done" || ((busy || state === "cancelled") && drawn));
    figure.classList.toggle("xw-busy", busy || state === "cancelled");
    pending.hidden = !busy && state !== "cancelled";
    recompute.hidden = state !== "cancelled";
    pending.classList.toggle("xw-pending-inline", drawn);
    error.hidden = state !== "error";
  }

  function update(input: PanelInput): boolean {
    if (last && same(last, input)) return false;
    last = input;
    renderLayers(input);
    renderParams(input);
    framesToggle.hidden = !input.frames;
    framesToggle.setAttribute("aria-pressed", String(Boolean(input.framesOpen)));
    framesToggle.classList.toggle("xw-on", Boolean(input.framesOpen));
    const p = input.panel;
    let state: string = p?.state ?? "pending";
    if ((state === "pending" || state === "running") && input.stopped) state = "cancelled";
    seconds.textContent = state === "done" && p ? formatSeconds(p.seconds) : "";
    const gap = state === "done" ? gapBadge(p?.notes) : null;
    badge.hidden = gap === null;
    badge.textContent = gap?.text ?? "";
    badge.title = gap?.title ?? "";
    badge.classList.toggle("xw-bad", Boolean(gap?.bad));
    el.classList.toggle("xw-stale", state === "done" && p !== undefined && p.target !== input.target);
    el.title = p && p.target !== input.target ? `computed for class ${p.target}` : "";
    if (state === "pending" || state === "running" || state === "cancelled") {
      show(state);
      pending.querySelector(".xw-pending-text")!.textContent =
        state === "running" ? "running…" : state === "cancelled" ? "cancelled: not computed" : "pending";
      return true;
    }
    if (state === "error" || !isArrayDict(p?.heatmap)) {
      drawn = false;
      show("error");
      error.textContent = p?.error || (state === "error" ? "error" : "no heatmap");
      return true;
    }
    try {
      const raw = scalarMapOf(p.heatmap);
      const d = resolveDisplay(input.display, input.defaults);
      const map = smoothMap(raw, d.smoothing);
      const overImage = d.layout === "overlay" ? input.image : null;
      const style = overlayStyle(map, d, Boolean(p.signed), overImage !== null);
      drawOverlay(canvas, overImage, map, style);
      photo.hidden = !(d.layout === "side" && input.image);
      if (!photo.hidden && input.image) drawImage(photo, input.image);
      figure.dataset.layout = d.layout;
      legend.update(style, d.clip_percentile, {
        quantity: input.defaults?.quantity, range: [raw.min, raw.max],
        smoothingPx: map === raw ? 0 : d.smoothing * Math.max(raw.width, raw.height),
      });
      drawn = true;
      show("done");
    } catch (e) {
      show("error");
      error.textContent = e instanceof Error ? e.message : String(e);
    }
    return true;
  }

  function destroy(): void {
    remove.removeEventListener("click", onRemove);
    recompute.removeEventListener("click", onRecompute);
    allLayers.removeEventListener("change", onAllLayers);
    layerSelect.removeEventListener("change", onLayer);
    framesToggle.removeEventListener("click", onFrames);
    paramRows.removeEventListener("pointerdown", onPointerDown);
    window.removeEventListener("pointerup", onPointerUp);
    paramRows.removeEventListener("input", onSliderInput);
    paramRows.removeEventListener("change", onSliderChange);
  }

  return { el, update, destroy };
}
