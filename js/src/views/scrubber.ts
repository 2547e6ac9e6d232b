// ScrubberView: slider + play/pause over Integrated-Gradients path frames or SmoothGrad noise samples
// (docs/widget-protocol.md, "ScrubberView").
//
// Selectors (stable, used by tests):
//   .xw-scrubber                     root; data-kind = ig_path | noise, data-state = ok | empty | error,
//                                    data-status = idle | computing | cancelled | error, data-frame = shown
//                                    frame index, data-playing = "true" while playing, data-draw-ms = last draw
//   .xw-title                        caption (trait `title`)
//   canvas.xw-path-input             IG: the path input at alpha (blend of input and baseline);
//                                    noise: the noisy sample
//   canvas.xw-frame-gradient         the gradient at the frame, own range, over the path input / sample
//   canvas.xw-frame-accumulated      IG partial integral / SmoothGrad running mean, final map's range, over the input
//   .xw-legend (one per overlay panel; [data-panel=gradient|accumulated] on the panel)
//   input.xw-frame-slider            range 0..count-1
//   button.xw-play                   play/pause (aria-pressed); select.xw-speed  frames per second
//   .xw-frame-label                  "α = 0.420 · step 12/50" or "sample 3/50"
//   .xw-lineplot (svg)               IG: F along the path (polyline.xw-series-f), F(x') + Σ attribution so far
//                                    (polyline.xw-series-sum), refs F(x) and F(x'), bracket = completeness gap;
//                                    noise: distance of the running mean to the final one. circle.xw-lineplot-marker
//   .xw-gap                          completeness text (IG) / convergence text (noise)
//   .xw-progress[role=progressbar]  .xw-status  button.xw-cancel (sends {type: "cancel", id})
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip   shared display controls
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { h } from "../lib/dom";
import { formatPercent, formatValue } from "../lib/format";
import { blendRGBA, decodeFrames, frameLabel, isFramesPayload, nextFrame, resolveFrame, type FrameSet, type ScrubberTraits } from "../lib/frames";
import type { RGBAImage } from "../lib/image";
import { createLegend, type Legend } from "../lib/legend";
import { createLinePlot, type PlotSpec } from "../lib/lineplot";
import type { AnyModel, DisplayTraits, RenderProps } from "../lib/model";
import { drawImage, drawOverlay, overlayStyle, type OverlayStyle } from "../lib/overlay";
import { createRequests } from "../lib/requests";
import { attachStyles } from "../lib/styles";

const CSS = `
.xw-scrubber { display: inline-flex; flex-direction: column; gap: 8px; max-width: 100%; }
.xw-scrubber-panels { display: grid; grid-template-columns: repeat(3, 200px); gap: 12px; }
.xw-scrubber .xw-panel canvas { width: 200px; image-rendering: auto; border-radius: 3px; display: block; }
.xw-scrubber-bar { display: flex; align-items: center; gap: 8px; font-size: 12px; }
.xw-frame-slider { flex: 1; min-width: 160px; accent-color: var(--xw-accent); }
.xw-frame-label { min-width: 13em; font-variant-numeric: tabular-nums; color: var(--xw-fg2); }
.xw-play, .xw-scrubber .xw-cancel { font: inherit; padding: 2px 10px; border: 1px solid var(--xw-border); border-radius: 4px;
  background: var(--xw-bg2); color: inherit; cursor: pointer; min-width: 4.8em; }
.xw-scrubber-plot { display: flex; align-items: flex-start; gap: 12px; flex-wrap: wrap; }
.xw-lineplot svg { display: block; overflow: visible; font-size: 9px; }
.xw-lineplot-frame { fill: none; stroke: var(--xw-border); }
.xw-lineplot-line { fill: none; stroke-width: 1.6; }
.xw-series-f { stroke: var(--xw-accent); }
.xw-series-sum { stroke: #d9822b; stroke-dasharray: 4 2; }
.xw-series-conv { stroke: var(--xw-accent); }
.xw-lineplot-ref { stroke: var(--xw-fg2); stroke-dasharray: 2 3; stroke-width: 1; }
.xw-lineplot-tick, .xw-lineplot-axis, .xw-lineplot-label { fill: var(--xw-fg2); }
.xw-lineplot-bracket { fill: none; stroke: #c0392b; stroke-width: 1.4; }
.xw-gap-label { fill: #c0392b; }
.xw-lineplot-marker { fill: #c0392b; stroke: white; stroke-width: 1; }
.xw-lineplot-cursor { stroke: var(--xw-fg2); stroke-width: .6; }
.xw-gap { font-size: 12px; color: var(--xw-fg2); white-space: pre-line; font-variant-numeric: tabular-nums; max-width: 22em; }
.xw-legend-key { font-size: 11px; color: var(--xw-fg2); }
.xw-key-f { color: var(--xw-accent); } .xw-key-sum { color: #d9822b; }
`;

const SPEEDS = [2, 5, 10, 20, 30];

interface OverlayPanel {
  el: HTMLElement;
  canvas: HTMLCanvasElement;
  title: HTMLElement;
  legend: Legend | null;
}

function panel(name: string, canvasClass: string, withLegend: boolean): OverlayPanel {
  const title = h("div", "xw-panel-title");
  const canvas = h("canvas", canvasClass, { role: "img", "aria-label": name });
  const legend = withLegend ? createLegend() : null;
  const el = h("div", "xw-panel", { "data-panel": name }, [title, canvas, ...(legend ? [legend.el] : [])]);
  return { el, canvas, title, legend };
}

function render({ model, el }: RenderProps<ScrubberTraits>): () => void {
  attachStyles(el);
  const extra = document.createElement("style");
  extra.textContent = CSS;
  el.append(extra);
  const display: AnyModel<DisplayTraits> = model;
  const controls = createControls(display);
  const requests = createRequests(model);

  const title = h("div", "xw-title");
  const input = panel("input", "xw-path-input", false);
  const gradient = panel("gradient", "xw-frame-gradient", true);
  const accumulated = panel("accumulated", "xw-frame-accumulated", true);
  const slider = h("input", "xw-frame-slider", { type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "frame" });
  const play = h("button", "xw-play", { type: "button", "aria-pressed": "false" }, ["▶ Play"]);
  const speed = h("select", "xw-speed", { "aria-label": "frames per second" },
    SPEEDS.map((fps) => h("option", "", { value: fps }, [`${fps} fps`])));
  speed.value = "10";
  const label = h("span", "xw-frame-label");
  const plot = createLinePlot();
  const gap = h("div", "xw-gap");
  const key = h("div", "xw-legend-key");
  const fill = h("div", "xw-progress-fill");
  const progress = h("div", "xw-progress", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 1 }, [fill]);
  const status = h("span", "xw-status", { "aria-live": "polite" });
  const cancel = h("button", "xw-cancel", { type: "button" }, ["Cancel"]);
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-scrubber", {}, [
    h("div", "xw-topbar", {}, [title, h("div", "xw-job", {}, [progress, status, cancel])]),
    h("div", "xw-scrubber-panels", {}, [input.el, gradient.el, accumulated.el]),
    h("div", "xw-scrubber-bar", {}, [play, slider, label, speed]),
    h("div", "xw-scrubber-plot", {}, [plot.el, h("div", "", {}, [key, gap])]),
    error,
    controls.el,
  ]);
  el.append(root);

  // --- state decoded once per `frames` value -------------------------------------------------------
  let set: FrameSet | null = null;
  let current = 0;
  let following = true; // show the newest frame as frames stream in, until the user moves the slider
  let blend: Uint8ClampedArray<ArrayBuffer> | null = null;
  let gradStyles: (OverlayStyle | undefined)[] = [];
  let accStyle: OverlayStyle | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;

  function resetStyles(): void {
    gradStyles = [];
    accStyle = null;
  }

  function gradStyle(k: number): OverlayStyle {
    let st = gradStyles[k];
    if (!st) {
      st = overlayStyle(set!.gradients[k], readDisplay(display), set!.gradientsSigned, true);
      gradStyles[k] = st;
    }
    return st;
  }

  function accumulatedStyle(): OverlayStyle {
    // One style for every frame, resolved against the final (last) map: the growth stays visible.
    if (!accStyle) accStyle = overlayStyle(set!.accumulated[set!.count - 1], readDisplay(display), set!.accumulatedSigned, true);
    return accStyle;
  }

  function pathImage(k: number): RGBAImage {
    const s = set!;
    if (s.kind === "noise") return s.noisy[k] ?? s.image;
    if (!s.baseline || !s.alphas) return s.image;
    blend ??= new Uint8ClampedArray(s.image.rgba.length);
    blendRGBA(s.image.rgba, s.baseline.rgba, s.alphas[k], blend);
    return { width: s.width, height: s.height, rgba: blend };
  }

  /** Draw frame k: the three panels, the slider, the label and the plot marker. */
  function drawFrame(k: number): void {
    if (!set) return;
    const t0 = performance.now();
    current = resolveFrame(k, set.count);
    const img = pathImage(current);
    drawImage(input.canvas, img);
    const gs = gradStyle(current);
    drawOverlay(gradient.canvas, img, set.gradients[current], gs);
    drawOverlay(accumulated.canvas, set.image, set.accumulated[current], accumulatedStyle());
    gradient.legend?.update(gs, readDisplay(display).clip_percentile);
    slider.value = String(current);
    label.textContent = frameLabel(set, current, set.payload.done ? 0 : set.payload.expected);
    plot.mark(current);
    root.dataset.frame = String(current);
    root.dataset.drawMs = (performance.now() - t0).toFixed(2);
  }

  function describe(): void {
    const s = set!;
    const p = s.payload;
    const ig = s.kind === "ig_path";
    input.title.textContent = ig ? "path input x' + α(x − x')" : "noisy sample";
    gradient.title.textContent = ig ? "gradient at α" : "its gradient";
    accumulated.title.textContent = ig ? "partial integral to α" : "running mean";
    slider.max = String(Math.max(0, s.count - 1));
    accumulated.legend?.update(accumulatedStyle(), readDisplay(display).clip_percentile);
    let spec: PlotSpec;
    if (ig && s.alphas && s.pathScores) {
      const fb = p.f_baseline;
      const series = [{ xs: s.alphas, ys: s.pathScores, className: "xw-series-f", label: "F" }];
      if (fb !== null) {
        series.push({ xs: s.alphas, ys: s.partialSums.map((v) => v + fb), className: "xw-series-sum", label: "F(x') + Σ attr" });
      }
      const refs: { y: number; label: string; className: string }[] = [];
      if (p.f_input !== null) refs.push({ y: p.f_input, label: "F(x)", className: "xw-ref-input" });
      if (fb !== null) refs.push({ y: fb, label: "F(x')", className: "xw-ref-baseline" });
      const bracket = p.f_input !== null && fb !== null && p.attribution_sum !== null
        ? { y0: fb + p.attribution_sum, y1: p.f_input, label: "gap" }
        : null;
      spec = { series, refs, marker: current, bracket, xLabel: "α", xDomain: [0, 1] };
      key.replaceChildren(
        h("span", "xw-key-f", {}, ["— F(x' + α(x − x'))"]), h("br"),
        ...(fb !== null ? [h("span", "xw-key-sum", {}, ["- - F(x') + Σ attribution up to α"])] : []),
      );
      if (p.delta !== null && p.f_input !== null && fb !== null && p.attribution_sum !== null) {
        const rel = p.gap ?? Math.abs(p.delta) / Math.max(1e-12, Math.abs(p.f_input - fb));
        gap.textContent =
          `Σ attribution = ${formatValue(p.attribution_sum)}\nF(x) − F(x') = ${formatValue(p.f_input - fb)}\n` +
          `completeness gap = ${formatValue(p.delta)} (${formatPercent(Math.abs(rel))})`;
      } else {
        gap.textContent = p.done ? "" : `computing… ${s.count}/${p.expected} steps`;
      }
    } else {
      const xs = Float32Array.from({ length: s.count }, (_, i) => i + 1);
      spec = {
        series: [{ xs, ys: s.convergence ?? new Float32Array(s.count), className: "xw-series-conv", label: "distance" }],
        refs: [],
        marker: current,
        bracket: null,
        xLabel: "samples",
        xDomain: [1, Math.max(2, s.count)],
      };
      key.replaceChildren(h("span", "xw-key-f", {}, ["— ‖mean after s samples − final mean‖ / ‖final mean‖"]));
      const conv = s.convergence;
      gap.textContent = conv && s.count > 1
        ? `after ${s.count - 1} samples the running mean is ${formatPercent(conv[s.count - 2])} from the final one`
        : p.done ? "" : `computing… ${s.count}/${p.expected} samples`;
    }
    plot.draw(spec);
  }

  function loadFrames(): void {
    const payload = model.get("frames");
    error.textContent = "";
    if (!isFramesPayload(payload)) {
      set = null;
      root.dataset.state = "empty";
      label.textContent = "no frames yet";
      return;
    }
    try {
      set = decodeFrames(payload);
      blend = null;
      resetStyles();
      const requested = model.get("frame");
      current = following || requested < 0 ? set.count - 1 : resolveFrame(requested, set.count);
      describe();
      drawFrame(current);
      root.dataset.kind = set.kind;
      root.dataset.state = "ok";
    } catch (e) {
      set = null;
      root.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  function redrawStyles(): void {
    controls.sync();
    if (!set) return;
    resetStyles();
    accumulated.legend?.update(accumulatedStyle(), readDisplay(display).clip_percentile);
    drawFrame(current);
  }

  // --- playback -----------------------------------------------------------------------------------
  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
    play.setAttribute("aria-pressed", "false");
    root.dataset.playing = "false";
  }

  function start(): void {
    if (!set || set.count < 2) return;
    if (current >= set.count - 1) drawFrame(0);
    following = false;
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-pressed", "true");
    root.dataset.playing = "true";
    const fps = Number(speed.value) || 10;
    timer = setInterval(() => {
      const k = set ? nextFrame(current, set.count) : -1;
      if (k < 0) stop();
      else drawFrame(k);
    }, 1000 / fps);
  }

  const onPlay = (): void => (timer === null ? start() : stop());
  const onSpeed = (): void => {
    if (timer !== null) {
      stop();
      start();
    }
  };
  const onSlide = (): void => {
    following = false;
    if (timer !== null) stop();
    drawFrame(Number(slider.value));
  };
  const onSlideEnd = (): void => {
    model.set("frame", current);
    model.save_changes();
  };
  const onFrameTrait = (): void => {
    const f = model.get("frame");
    following = f < 0;
    if (set && resolveFrame(f, set.count) !== current) drawFrame(f);
  };
  play.addEventListener("click", onPlay);
  speed.addEventListener("change", onSpeed);
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideEnd);

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
  following = !(model.get("frame") >= 0);
  renderTitle();
  renderJob();
  loadFrames();
  stop();

  return () => {
    stop();
    for (const [ev, cb] of listeners) model.off(ev, cb);
    play.removeEventListener("click", onPlay);
    speed.removeEventListener("change", onSpeed);
    slider.removeEventListener("input", onSlide);
    slider.removeEventListener("change", onSlideEnd);
    cancel.removeEventListener("click", onCancel);
    controls.destroy();
    requests.dispose();
    root.remove();
    extra.remove();
  };
}

export default { render };
