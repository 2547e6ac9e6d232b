// EstimateView: a sampling method's running estimate refining and its standard error shrinking
// (docs/widget-protocol.md, "EstimateView").
//
// Selectors (stable, used by tests):
//   .xw-estimate                  root; data-state = ok | empty | error, data-status = idle | running | done |
//                                 cancelled | error, data-frame (stack index shown), data-count,
//                                 data-n-samples and data-mean-stderr (of the frame shown), data-done
//   .xw-title                     caption (trait `title`)
//   canvas.xw-estimate-map        the estimate over the image (style resolved on the newest frame)
//   canvas.xw-stderr-map          the standard error, one fixed scale [0, max] for every frame (inferno)
//   .xw-track-marker[data-rank]   the top features' positions on the estimate
//   input.xw-frame-slider         range 0..count-1 (follows the newest estimate until moved)
//   .xw-frame-label               "n = 480 / 1000 samples"
//   .xw-plot-tracks (svg)         the top features' estimates vs samples with +-2 SE bands
//                                 (polyline.xw-series-track, polygon.xw-lineplot-band)
//   .xw-plot-error (svg)          mean standard error vs samples (polyline.xw-series-se) and the
//                                 1/sqrt(n) guide (polyline.xw-series-guide); without a standard error
//                                 (LIME) the relative change between estimates (polyline.xw-series-change)
//   .xw-estimate-summary          "mean standard error … (…% of mean |estimate|)"
//   .xw-progress[role=progressbar]  .xw-status  button.xw-cancel (sends {type: "cancel", id})
//   select.xw-colormap  input.xw-opacity  input.xw-absolute  input.xw-clip   shared display controls
import { createControls, DISPLAY_TRAITS, readDisplay } from "../lib/controls";
import { h } from "../lib/dom";
import {
  band,
  decodeEstimate,
  errorLabel,
  historyIndex,
  isEstimatePayload,
  samplesLabel,
  sqrtGuide,
  stderrStyle,
  type EstimateSet,
  type EstimateTraits,
} from "../lib/estimate";
import { resolveFrame } from "../lib/frames";
import { createLegend } from "../lib/legend";
import { createLinePlot, type Band, type Series } from "../lib/lineplot";
import type { AnyModel, DisplayTraits, RenderProps } from "../lib/model";
import { drawOverlay, overlayStyle, type OverlayStyle } from "../lib/overlay";
import { createRequests } from "../lib/requests";
import { createJobLine } from "../lib/status";
import { attachViewStyles } from "../lib/styles";

const CSS = `
.xw-estimate { display: inline-flex; flex-direction: column; gap: 8px; max-width: 100%; }
.xw-estimate-panels { display: grid; grid-template-columns: repeat(2, 220px); gap: 12px; }
.xw-estimate .xw-panel canvas { width: 220px; display: block; border-radius: 3px; }
.xw-estimate-canvas { position: relative; width: 220px; }
.xw-track-marker { position: absolute; transform: translate(-50%, -50%); min-width: 15px; height: 15px; padding: 0 3px;
  border-radius: 8px; font-size: 10px; line-height: 15px; text-align: center; color: var(--xw-bg); font-weight: 600;
  border: 1px solid rgba(255,255,255,.9); pointer-events: none; }
.xw-estimate-bar { display: flex; align-items: center; gap: 8px; font-size: 12px; }
.xw-estimate .xw-frame-slider { flex: 1; min-width: 160px; accent-color: var(--xw-accent); }
.xw-estimate .xw-frame-label { min-width: 13em; font-variant-numeric: tabular-nums; color: var(--xw-fg2); }
.xw-estimate-plots { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
.xw-estimate .xw-plot-caption { font-size: 11px; color: var(--xw-fg2); margin-bottom: 2px; }
.xw-lineplot svg { display: block; overflow: visible; font-size: 9px; }
.xw-lineplot-frame { fill: none; stroke: var(--xw-border); }
.xw-lineplot-line { fill: none; stroke-width: 1.6; }
.xw-lineplot-band { stroke: none; opacity: .18; }
.xw-lineplot-tick, .xw-lineplot-axis, .xw-lineplot-label { fill: var(--xw-fg2); }
.xw-lineplot-marker { fill: var(--xw-mark); stroke: var(--xw-bg); stroke-width: 1; }
.xw-lineplot-cursor { stroke: var(--xw-fg2); stroke-width: .6; }
polyline.xw-track-1 { stroke: var(--xw-track1); } polygon.xw-track-1 { fill: var(--xw-track1); } span.xw-track-1 { background: var(--xw-track1); }
polyline.xw-track-2 { stroke: var(--xw-track2); } polygon.xw-track-2 { fill: var(--xw-track2); } span.xw-track-2 { background: var(--xw-track2); }
polyline.xw-track-3 { stroke: var(--xw-track3); } polygon.xw-track-3 { fill: var(--xw-track3); } span.xw-track-3 { background: var(--xw-track3); }
.xw-ref-zero { stroke-dasharray: 1 3; }
.xw-series-se, .xw-series-change { stroke: var(--xw-accent); }
.xw-series-guide { stroke: var(--xw-fg2); stroke-dasharray: 3 3; stroke-width: 1; }
.xw-estimate-summary { font-size: 12px; color: var(--xw-fg2); font-variant-numeric: tabular-nums; }
.xw-estimate-summary[data-cancelled="true"] { color: #b9770e; }
`;

function render({ model, el }: RenderProps<EstimateTraits>): () => void {
  const extra = attachViewStyles(el, CSS);
  const display: AnyModel<DisplayTraits> = model;
  const controls = createControls(display);
  const requests = createRequests(model);

  const title = h("div", "xw-title");
  const estCanvas = h("canvas", "xw-estimate-map", { role: "img", "aria-label": "estimate" });
  const markers = h("div", "xw-track-markers");
  const estTitle = h("div", "xw-panel-title", {}, ["estimate"]);
  const estLegend = createLegend();
  const estPanel = h("div", "xw-panel", { "data-panel": "estimate" }, [
    estTitle, h("div", "xw-estimate-canvas", {}, [estCanvas, markers]), estLegend.el,
  ]);
  const seCanvas = h("canvas", "xw-stderr-map", { role: "img", "aria-label": "standard error" });
  const seTitle = h("div", "xw-panel-title", {}, ["standard error"]);
  const seLegend = createLegend();
  const seNote = h("div", "xw-pending");
  const sePanel = h("div", "xw-panel", { "data-panel": "stderr" }, [seTitle, seCanvas, seLegend.el, seNote]);
  const slider = h("input", "xw-frame-slider", { type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "estimate" });
  const label = h("span", "xw-frame-label");
  const trackPlot = createLinePlot();
  trackPlot.el.classList.add("xw-plot-tracks");
  const errorPlot = createLinePlot();
  errorPlot.el.classList.add("xw-plot-error");
  const trackCaption = h("div", "xw-plot-caption", {}, ["top features: estimate ± 2 SE"]);
  const errorCaption = h("div", "xw-plot-caption");
  const summary = h("div", "xw-estimate-summary", { "aria-live": "polite" });
  const job = createJobLine(model, { requests });
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-estimate", {}, [
    h("div", "xw-topbar", {}, [title, job.el]),
    h("div", "xw-estimate-panels", {}, [estPanel, sePanel]),
    h("div", "xw-estimate-bar", {}, [slider, label]),
    h("div", "xw-estimate-plots", {}, [
      h("div", "", {}, [trackCaption, trackPlot.el]),
      h("div", "", {}, [errorCaption, errorPlot.el]),
    ]),
    summary,
    error,
    controls.el,
  ]);
  job.mark(root);
  el.append(root);

  let set: EstimateSet | null = null;
  let current = 0;
  let following = true; // show the newest estimate as they stream in, until the user moves the slider
  let estStyle: OverlayStyle | null = null;

  function style(): OverlayStyle {
    // One style for every frame, resolved against the newest estimate: the refinement stays visible.
    estStyle ??= overlayStyle(set!.values[set!.count - 1], readDisplay(display), set!.payload.signed, set!.image !== null);
    return estStyle;
  }

  function drawFrame(k: number): void {
    if (!set) return;
    const s = set;
    current = resolveFrame(k, s.count);
    drawOverlay(estCanvas, s.image, s.values[current], style());
    if (s.stderr) drawOverlay(seCanvas, null, s.stderr[current], stderrStyle(s.stderrMax, readDisplay(display)));
    const n = s.nSamples[current];
    const hi = historyIndex(s.history.nSamples, n);
    const se = hi >= 0 ? s.history.meanStderr[hi] : NaN;
    label.textContent = samplesLabel(n, s.payload.expected);
    summary.textContent = (s.payload.cancelled ? "cancelled: best estimate so far · " : "") +
      errorLabel(se, hi >= 0 ? s.history.meanAbs[hi] : NaN, hi >= 0 ? s.history.change[hi] : NaN);
    summary.dataset.cancelled = String(Boolean(s.payload.cancelled));
    slider.value = String(current);
    trackPlot.mark(historyIndex(s.tracks.nSamples, n));
    errorPlot.mark(hi);
    root.dataset.frame = String(current);
    root.dataset.nSamples = String(n);
    root.dataset.meanStderr = Number.isFinite(se) ? String(se) : "";
  }

  function describe(): void {
    const s = set!;
    slider.max = String(Math.max(0, s.count - 1));
    estLegend.update(style(), readDisplay(display).clip_percentile);
    sePanel.dataset.empty = String(!s.stderr);
    seCanvas.hidden = !s.stderr;
    seLegend.el.hidden = !s.stderr;
    seNote.hidden = Boolean(s.stderr);
    seNote.textContent = s.stderr ? "" : `${s.payload.method} reports no standard error`;
    if (s.stderr) seLegend.update(stderrStyle(s.stderrMax, readDisplay(display)), 100);

    markers.replaceChildren(...s.tracks.items.map((t) =>
      h("span", `xw-track-marker xw-track-${t.rank}`, {
        "data-rank": t.rank,
        style: `left: ${((t.x + 0.5) / s.width) * 100}%; top: ${((t.y + 0.5) / s.height) * 100}%`,
      }, [String(t.rank)])));

    const xs = s.tracks.nSamples;
    const series: Series[] = s.tracks.items.map((t) => ({
      xs, ys: t.values, className: `xw-series-track xw-track-${t.rank}`, label: `#${t.rank}`,
    }));
    const bands: Band[] = s.tracks.items.map((t) => ({ xs, ...band(t.values, t.stderr), className: `xw-track-${t.rank}` }));
    const xDomain: [number, number] = [0, Math.max(1, s.payload.expected ?? 0, s.history.nSamples[s.history.nSamples.length - 1] ?? 1)];
    trackPlot.draw({ series, bands, refs: [{ y: 0, label: "", className: "xw-ref-zero" }], marker: -1, bracket: null, xLabel: "samples", xDomain });

    trackCaption.textContent = s.stderr ? "top features: estimate ± 2 SE" : "top features: estimate";
    const hx = s.history.nSamples;
    if (s.stderr) {
      errorCaption.textContent = "mean standard error (- - ∝ 1/√n)";
      errorPlot.draw({
        series: [
          { xs: hx, ys: s.history.meanStderr, className: "xw-series-se", label: "mean SE" },
          { xs: hx, ys: sqrtGuide(hx, s.history.meanStderr), className: "xw-series-guide", label: "1/√n" },
        ],
        refs: [], marker: -1, bracket: null, xLabel: "samples", xDomain,
      });
    } else {
      errorCaption.textContent = "relative change since the previous estimate";
      errorPlot.draw({
        series: [{ xs: hx, ys: s.history.change, className: "xw-series-change", label: "change" }],
        refs: [], marker: -1, bracket: null, xLabel: "samples", xDomain,
      });
    }
    root.dataset.count = String(s.count);
    root.dataset.done = String(Boolean(s.payload.done));
  }

  function load(): void {
    const payload = model.get("estimate");
    error.textContent = "";
    if (!isEstimatePayload(payload)) {
      set = null;
      root.dataset.state = "empty";
      label.textContent = "no estimate yet";
      return;
    }
    try {
      set = decodeEstimate(payload);
      estStyle = null;
      const requested = model.get("frame");
      describe();
      drawFrame(following || requested < 0 ? set.count - 1 : requested);
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
    estStyle = null;
    describe();
    drawFrame(current);
  }

  const onSlide = (): void => {
    following = Number(slider.value) >= Number(slider.max);
    drawFrame(Number(slider.value));
  };
  const onSlideEnd = (): void => {
    model.set("frame", following ? -1 : current);
    model.save_changes();
  };
  const onFrameTrait = (): void => {
    const f = model.get("frame");
    following = f < 0;
    if (set) drawFrame(f);
  };
  slider.addEventListener("input", onSlide);
  slider.addEventListener("change", onSlideEnd);

  const renderTitle = (): void => {
    title.textContent = model.get("title") ?? "";
  };

  const listeners: [string, () => void][] = [
    ["change:estimate", load],
    ["change:frame", onFrameTrait],
    ["change:title", renderTitle],
    ...DISPLAY_TRAITS.map((t): [string, () => void] => [`change:${t}`, redrawStyles]),
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  following = !(model.get("frame") >= 0);
  renderTitle();
  job.render();
  load();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    slider.removeEventListener("input", onSlide);
    slider.removeEventListener("change", onSlideEnd);
    job.destroy();
    controls.destroy();
    requests.dispose();
    root.remove();
    extra.remove();
  };
}

export default { render };
