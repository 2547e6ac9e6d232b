// The scrubber component: three overlay panels (path input / noisy sample, the frame's gradient, the
// accumulated map), a slider with play/pause and speed, and the line plot of the path (IG) or of the
// running mean's convergence (SmoothGrad). Used by the ScrubberView and, inline, by the dashboard.
// It draws a frames dict (docs/widget-protocol.md, "ScrubberView"); it never talks to the kernel.
//
// Selectors (stable, used by tests), inside `el` (.xw-scrubber):
//   .xw-scrubber                     data-kind = ig_path | noise, data-state = ok | empty | error,
//                                    data-frame = shown frame index, data-playing = "true" while playing,
//                                    data-draw-ms = last draw
//   canvas.xw-path-input             IG: the path input at alpha (blend of input and baseline);
//                                    noise: the noisy sample
//   canvas.xw-frame-gradient         the gradient at the frame, own range, over the path input / sample
//   canvas.xw-frame-accumulated      IG partial integral / SmoothGrad running mean, final map's range, over the input
//   .xw-scrubber-panel[data-panel=input|gradient|accumulated], .xw-legend in the last two
//   input.xw-frame-slider            range 0..count-1
//   button.xw-play                   play/pause (aria-pressed); select.xw-speed  frames per second
//   .xw-frame-label                  "α = 0.420 · step 12/50" or "sample 3/50"
//   .xw-lineplot (svg)               IG: F along the path (polyline.xw-series-f), F(x') + Σ attribution so far
//                                    (polyline.xw-series-sum), refs F(x) and F(x'), bracket = completeness gap;
//                                    noise: distance of the running mean to the final one. circle.xw-lineplot-marker
//   .xw-gap                          completeness text (IG) / convergence text (noise)
import { h } from "./dom";
import { formatPercent, formatValue } from "./format";
import { blendRGBA, decodeFrames, frameLabel, isFramesPayload, nextFrame, resolveFrame, type FrameSet } from "./frames";
import type { RGBAImage } from "./image";
import { createLegend, type Legend } from "./legend";
import { createLinePlot, type PlotSpec } from "./lineplot";
import type { DisplayTraits } from "./model";
import { drawImage, drawOverlay, overlayStyle, type OverlayStyle } from "./overlay";

// The sum series (orange) and the completeness gap (red) have no JupyterLab theme variable of their own,
// so each theme gets its own shade, every one at least 4.5:1 (WCAG AA) against that theme's backgrounds:
// the light shades on white and --jp-layout-color2 (also the fallback for VS Code, which defines no --jp-*
// variables and paints widget outputs white), the dark ones on JupyterLab's dark layout colours.
const CSS = `
.xw-scrubber { --xw-series2: #9a4f00; --xw-gap-color: #b3261e; }
body[data-jp-theme-light="false"] .xw-scrubber { --xw-series2: #f0a35e; --xw-gap-color: #ff8a80; }
.xw-scrubber { display: inline-flex; flex-direction: column; gap: 8px; max-width: 100%; }
.xw-scrubber-panels { display: grid; grid-template-columns: repeat(3, 200px); gap: 12px; }
.xw-scrubber-panel { display: flex; flex-direction: column; gap: 4px; min-width: 0; }
.xw-scrubber-panel canvas { width: 200px; image-rendering: auto; border-radius: 3px; display: block; }
.xw-scrubber-bar { display: flex; align-items: center; gap: 8px; font-size: 12px; }
.xw-frame-slider { flex: 1; min-width: 160px; accent-color: var(--xw-accent); }
.xw-frame-label { min-width: 13em; flex: none; font-variant-numeric: tabular-nums; color: var(--xw-fg2); }
.xw-play, .xw-scrubber .xw-cancel { font: inherit; padding: 2px 10px; border: 1px solid var(--xw-border); border-radius: 4px;
  background: var(--xw-bg2); color: inherit; cursor: pointer; width: 6.4em; flex: none; text-align: center; white-space: nowrap; }
.xw-scrubber-plot { display: flex; align-items: flex-start; gap: 12px; flex-wrap: wrap; }
.xw-lineplot svg { display: block; overflow: visible; font-size: 9px; }
.xw-lineplot-frame { fill: none; stroke: var(--xw-border); }
.xw-lineplot-line { fill: none; stroke-width: 1.6; }
.xw-series-f { stroke: var(--xw-accent); }
.xw-series-sum { stroke: var(--xw-series2); stroke-dasharray: 4 2; }
.xw-series-conv { stroke: var(--xw-accent); }
.xw-lineplot-ref { stroke: var(--xw-fg2); stroke-dasharray: 2 3; stroke-width: 1; }
.xw-lineplot-tick, .xw-lineplot-axis, .xw-lineplot-label { fill: var(--xw-fg2); }
.xw-lineplot-bracket { fill: none; stroke: var(--xw-gap-color); stroke-width: 1.4; }
.xw-gap-label { fill: var(--xw-gap-color); }
.xw-lineplot-marker { fill: var(--xw-gap-color); stroke: var(--xw-bg); stroke-width: 1; }
.xw-lineplot-cursor { stroke: var(--xw-fg2); stroke-width: .6; }
.xw-gap { font-size: 12px; color: var(--xw-fg2); white-space: pre-line; font-variant-numeric: tabular-nums; max-width: 22em; }
.xw-legend-key { font-size: 11px; color: var(--xw-fg2); }
.xw-key-f { color: var(--xw-accent); } .xw-key-sum { color: var(--xw-series2); }
`;

const SPEEDS = [2, 5, 10, 20, 30];

export interface ScrubberOptions {
  /** The display options (colour map, opacity, ...) at draw time. */
  display(): DisplayTraits;
  /** The user released the slider on frame `k` (the ScrubberView writes its `frame` trait). */
  onFrameCommit?(k: number): void;
  /** Nodes placed before / after the scrubber's own content inside `el` (a title bar, display controls). */
  before?: Node[];
  after?: Node[];
}

export interface Scrubber {
  /** The root (.xw-scrubber). */
  el: HTMLElement;
  /** Show a frames dict (anything else: empty). `requested` is the frame to show (-1 = the newest); while
   *  following (no slider move since the last `goTo(-1)`) the newest frame is shown. */
  load(payload: unknown, requested?: number): void;
  /** Show frame `requested` (-1 = the newest and follow streamed frames). */
  goTo(requested: number): void;
  /** The display options changed: resolve the overlay styles again and redraw. */
  restyle(): void;
  /** The frame shown. */
  current(): number;
  destroy(): void;
}

interface OverlayPanel {
  el: HTMLElement;
  canvas: HTMLCanvasElement;
  title: HTMLElement;
  legend: Legend | null;
}

function overlayPanel(name: string, canvasClass: string, withLegend: boolean): OverlayPanel {
  const title = h("div", "xw-panel-title");
  const canvas = h("canvas", canvasClass, { role: "img", "aria-label": name });
  const legend = withLegend ? createLegend() : null;
  const el = h("div", "xw-scrubber-panel", { "data-panel": name }, [title, canvas, ...(legend ? [legend.el] : [])]);
  return { el, canvas, title, legend };
}

export function createScrubber(options: ScrubberOptions): Scrubber {
  const style = h("style");
  style.textContent = CSS;
  const input = overlayPanel("input", "xw-path-input", false);
  const gradient = overlayPanel("gradient", "xw-frame-gradient", true);
  const accumulated = overlayPanel("accumulated", "xw-frame-accumulated", true);
  const slider = h("input", "xw-frame-slider", { type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "frame" });
  const play = h("button", "xw-play", { type: "button", "aria-pressed": "false" }, ["▶ Play"]);
  const speed = h("select", "xw-speed", { "aria-label": "frames per second" },
    SPEEDS.map((fps) => h("option", "", { value: fps }, [`${fps} fps`])));
  speed.value = "10";
  const label = h("span", "xw-frame-label");
  const plot = createLinePlot();
  const gap = h("div", "xw-gap");
  const key = h("div", "xw-legend-key");
  const error = h("div", "xw-error");
  const el = h("div", "xw-scrubber", {}, [
    style,
    ...(options.before ?? []),
    h("div", "xw-scrubber-panels", {}, [input.el, gradient.el, accumulated.el]),
    h("div", "xw-scrubber-bar", {}, [play, slider, label, speed]),
    h("div", "xw-scrubber-plot", {}, [plot.el, h("div", "", {}, [key, gap])]),
    error,
    ...(options.after ?? []),
  ]);

  // --- state decoded once per frames dict ---------------------------------------------------------
  let set: FrameSet | null = null;
  let shown = 0;
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
      st = overlayStyle(set!.gradients[k], options.display(), set!.gradientsSigned, true);
      gradStyles[k] = st;
    }
    return st;
  }

  function accumulatedStyle(): OverlayStyle {
    // One style for every frame, resolved against the final (last) map: the growth stays visible.
    if (!accStyle) accStyle = overlayStyle(set!.accumulated[set!.count - 1], options.display(), set!.accumulatedSigned, true);
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
    shown = resolveFrame(k, set.count);
    const img = pathImage(shown);
    drawImage(input.canvas, img);
    const gs = gradStyle(shown);
    drawOverlay(gradient.canvas, img, set.gradients[shown], gs);
    drawOverlay(accumulated.canvas, set.image, set.accumulated[shown], accumulatedStyle());
    gradient.legend?.update(gs, options.display().clip_percentile);
    slider.value = String(shown);
    label.textContent = frameLabel(set, shown, set.payload.done ? 0 : set.payload.expected);
    plot.mark(shown);
    noiseSummary();
    el.dataset.frame = String(shown);
    el.dataset.drawMs = (performance.now() - t0).toFixed(2);
  }

  function describe(): void {
    const s = set!;
    const p = s.payload;
    const ig = s.kind === "ig_path";
    input.title.textContent = ig ? "path input x' + α(x − x')" : "noisy sample";
    gradient.title.textContent = ig ? "gradient at α" : "its gradient";
    accumulated.title.textContent = ig ? "partial integral to α" : "running mean";
    slider.max = String(Math.max(0, s.count - 1));
    accumulated.legend?.update(accumulatedStyle(), options.display().clip_percentile);
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
      spec = { series, refs, marker: shown, bracket, xLabel: "α", xDomain: [0, 1] };
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
        marker: shown,
        bracket: null,
        xLabel: "samples",
        xDomain: [1, Math.max(2, s.count)],
      };
      key.replaceChildren(h("span", "xw-key-f", {}, ["— ‖mean after s samples − final mean‖ / ‖final mean‖"]));
      noiseSummary();
    }
    plot.draw(spec);
  }

  /** SmoothGrad's summary follows the slider: how far the running mean at the shown sample is from the final one. */
  function noiseSummary(): void {
    const s = set;
    if (!s || s.kind !== "noise") return;
    const conv = s.convergence;
    const k = Math.min(shown, s.count - 1);
    gap.textContent = conv && s.count > 1 && k >= 0 && k < conv.length
      ? `after ${k + 1} of ${s.count} samples the running mean is ${formatPercent(conv[k])} from the final one`
      : s.payload.done ? "" : `computing… ${s.count}/${s.payload.expected} samples`;
  }

  function load(payload: unknown, requested = -1): void {
    error.textContent = "";
    if (!isFramesPayload(payload)) {
      stop();
      set = null;
      el.dataset.state = "empty";
      label.textContent = "no frames yet";
      return;
    }
    try {
      set = decodeFrames(payload);
      blend = null;
      resetStyles();
      shown = following || requested < 0 ? set.count - 1 : resolveFrame(requested, set.count);
      describe();
      drawFrame(shown);
      el.dataset.kind = set.kind;
      el.dataset.state = "ok";
    } catch (e) {
      stop();
      set = null;
      el.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  function goTo(requested: number): void {
    following = requested < 0;
    if (set && resolveFrame(requested, set.count) !== shown) drawFrame(requested);
  }

  function restyle(): void {
    if (!set) return;
    resetStyles();
    accumulated.legend?.update(accumulatedStyle(), options.display().clip_percentile);
    drawFrame(shown);
  }

  // --- playback -----------------------------------------------------------------------------------
  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
    play.setAttribute("aria-pressed", "false");
    el.dataset.playing = "false";
  }

  function start(): void {
    if (!set || set.count < 2) return;
    if (shown >= set.count - 1) drawFrame(0);
    following = false;
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-pressed", "true");
    el.dataset.playing = "true";
    const fps = Number(speed.value) || 10;
    timer = setInterval(() => {
      const k = set ? nextFrame(shown, set.count) : -1;
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
  const onSlideEnd = (): void => options.onFrameCommit?.(shown);
  play.addEventListener("click", onPlay);
  speed.addEventListener("change", onSpeed);
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideEnd);
  el.dataset.state = "empty";
  label.textContent = "no frames yet";
  stop();

  function destroy(): void {
    stop();
    play.removeEventListener("click", onPlay);
    speed.removeEventListener("change", onSpeed);
    slider.removeEventListener("input", onSlide);
    slider.removeEventListener("change", onSlideEnd);
  }

  return { el, load, goTo, restyle, current: () => shown, destroy };
}
