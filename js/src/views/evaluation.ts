// EvaluationView: explanation methods compared by metrics (docs/widget-protocol.md, "EvaluationView").
//
// Selectors (stable, used by tests):
//   .xw-evaluation                 root; data-state = ok | empty | error, data-status = idle | running | done |
//                                  cancelled | error; while a curve point is hovered: data-hover-mode,
//                                  data-hover-method, data-hover-step (curve point), data-hover-thumb (strip index)
//   .xw-title                      caption (trait `title`)
//   select.xw-eval-sample          which input the curves and the sanity strip show (when there are several)
//   svg.xw-eval-plot[data-mode]    deletion / insertion curves: polyline.xw-eval-line[data-method],
//                                  circle.xw-eval-point[data-method][data-step] (hover: the perturbed input)
//   canvas.xw-perturbed            the perturbed input of the hovered point (thumbnail resolution)
//   .xw-perturbed-caption          method · mode · step · fraction · output
//   table.xw-leaderboard           th[data-key] (click: sort, best first, again: reversed; aria-sort),
//                                  tr[data-method], td[data-key] (td.xw-best: the column's best value, every tie)
//   .xw-sanity                     canvas.xw-sanity-map[data-method][data-step], .xw-sanity-rho under each
//   .xw-sweep svg                  metric vs hyperparameter (mean, quartile band, best value marked)
//   .xw-progress  .xw-status  button.xw-cancel (sends {type: "cancel", id})
import { getLUT } from "../lib/colormaps";
import { h } from "../lib/dom";
import {
  BOARD_DECIMALS,
  bestRows,
  curveOf,
  decodeCurves,
  decodeLeaderboard,
  decodeSanity,
  isCurvesPayload,
  isLeaderboard,
  isSanity,
  nearestPoint,
  nextSort,
  rgbToRGBA,
  sanityMap,
  sanitySimilarity,
  shortLayer,
  sortRows,
  thumbIndex,
  thumbPixels,
  type Board,
  type Curves,
  type EvaluationTraits,
  type ModeCurves,
  type Sanity,
  type SweepPayload,
} from "../lib/evaluation";
import { decodeArray, isArrayDict } from "../lib/arrays";
import { formatValue } from "../lib/format";
import { createLinePlot, linearScale, polylinePoints } from "../lib/lineplot";
import type { RenderProps } from "../lib/model";
import { createRequests } from "../lib/requests";
import { createJobLine, statusText } from "../lib/status";
import { attachViewStyles } from "../lib/styles";
import { niceTicks, svg } from "../lib/svg";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const BOX = { width: 300, height: 190, left: 40, right: 10, top: 10, bottom: 32 };

const CSS = `
.xw-evaluation { display: inline-flex; flex-direction: column; gap: 12px; max-width: 100%; padding: 10px;
  border: 1px solid var(--xw-border); border-radius: 6px; background: var(--xw-bg); position: relative; }
.xw-eval-row { display: flex; gap: 14px; flex-wrap: wrap; align-items: flex-start; }
.xw-eval-plain { text-transform: none !important; letter-spacing: 0 !important; }
.xw-eval-caption { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--xw-fg2); margin-bottom: 2px; }
.xw-eval-plot { display: block; overflow: visible; font-size: 10px; }
.xw-eval-plot text { fill: var(--xw-fg2); }
.xw-eval-frame { fill: none; stroke: var(--xw-border); }
.xw-eval-grid { stroke: var(--xw-border); stroke-width: .5; }
.xw-eval-line { fill: none; stroke-width: 1.8; }
.xw-eval-point { stroke: var(--xw-bg); stroke-width: .8; cursor: crosshair; }
.xw-eval-point.xw-hot { stroke: var(--xw-fg); stroke-width: 2; }
.xw-eval-hover { stroke: var(--xw-fg2); stroke-width: .7; stroke-dasharray: 2 2; }
.xw-eval-legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12px; }
.xw-eval-swatch { display: inline-block; width: 14px; height: 3px; border-radius: 2px; vertical-align: middle; margin-right: 4px; }
.xw-eval-preview { display: flex; flex-direction: column; gap: 4px; width: 160px; }
.xw-perturbed { width: 160px; height: 160px; image-rendering: pixelated; border-radius: 3px; background: var(--xw-bg2); }
.xw-perturbed-caption { font-size: 11px; color: var(--xw-fg2); font-variant-numeric: tabular-nums; min-height: 3em; }
.xw-leaderboard { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
.xw-leaderboard th, .xw-leaderboard td { padding: 3px 8px; border-bottom: 1px solid var(--xw-border); text-align: right; }
.xw-leaderboard th:first-child, .xw-leaderboard td:first-child { text-align: left; }
.xw-leaderboard th { font-weight: 600; color: var(--xw-fg2); white-space: nowrap; }
.xw-leaderboard th button { font: inherit; color: inherit; background: none; border: none; padding: 0; cursor: pointer; }
.xw-leaderboard th[aria-sort] button { color: var(--xw-accent); }
.xw-leaderboard td.xw-best { font-weight: 700; background: color-mix(in srgb, #2ca02c 16%, transparent); }
.xw-leaderboard td.xw-missing { color: var(--xw-fg2); }
.xw-leaderboard tr[data-error] td:first-child { color: var(--xw-error); }
.xw-sanity { display: grid; gap: 3px 4px; align-items: end; font-size: 10px; }
.xw-sanity-head { color: var(--xw-fg2); text-align: center; overflow: hidden; line-height: 1.15; }
.xw-sanity-head span { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.xw-sanity-method { font-size: 12px; align-self: center; white-space: nowrap; padding-right: 4px; }
.xw-sanity-cell { display: flex; flex-direction: column; align-items: center; }
.xw-sanity-map { width: 52px; height: 52px; image-rendering: pixelated; border-radius: 2px; }
.xw-sanity-rho { color: var(--xw-fg2); font-variant-numeric: tabular-nums; }
.xw-sanity-verdict[data-passed="true"] { color: var(--xw-ok); } .xw-sanity-verdict[data-passed="false"] { color: var(--xw-error); }
.xw-sweep .xw-lineplot svg { overflow: visible; font-size: 9px; }
.xw-sweep .xw-lineplot-frame { fill: none; stroke: var(--xw-border); }
.xw-sweep .xw-lineplot-line { fill: none; stroke: var(--xw-accent); stroke-width: 1.6; }
.xw-sweep .xw-lineplot-band { fill: var(--xw-accent); opacity: .18; }
.xw-sweep .xw-lineplot-tick, .xw-sweep .xw-lineplot-axis, .xw-sweep .xw-lineplot-label { fill: var(--xw-fg2); }
.xw-sweep .xw-lineplot-marker { fill: var(--xw-mark); stroke: var(--xw-bg); stroke-width: 1; }
.xw-sweep .xw-lineplot-cursor { stroke: none; }
.xw-sweep-labels { font-size: 11px; color: var(--xw-fg2); }
`;

function render({ model, el }: RenderProps<EvaluationTraits>): () => void {
  const extra = attachViewStyles(el, CSS);
  const requests = createRequests(model);

  const title = h("div", "xw-title");
  const sampleSelect = h("select", "xw-eval-sample", { "aria-label": "input" });
  const sampleLabel = h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["input"]), sampleSelect]);
  const job = createJobLine(model, {
    requests,
    before: [sampleLabel],
    traits: ["phase"],
    label: (state) => {
      const phase = String(model.get("phase") ?? "");
      return state.status === "running" && phase ? `running: ${phase}` : statusText(state);
    },
    hidden: (state, p) => (state.status === "idle" || state.status === "done") && (p === 0 || p === 1),
  });
  const plots = h("div", "xw-eval-row");
  const legend = h("div", "xw-eval-legend");
  const canvas = h("canvas", "xw-perturbed", { role: "img", "aria-label": "perturbed input" });
  const caption = h("div", "xw-perturbed-caption", { "aria-live": "polite" }, ["hover a curve point"]);
  const preview = h("div", "xw-eval-preview", {}, [h("div", "xw-eval-caption", {}, ["perturbed input"]), canvas, caption]);
  const table = h("table", "xw-leaderboard");
  const boardSection = h("div", "", {}, [h("div", "xw-eval-caption", {}, ["leaderboard (mean over inputs; best in bold)"]), table]);
  const sanityGrid = h("div", "xw-sanity");
  const sanityCaption = h("div", "xw-eval-caption xw-eval-plain");
  const sanitySection = h("div", "", {}, [sanityCaption, sanityGrid]);
  const sweepSection = h("div", "xw-eval-row xw-sweeps");
  const error = h("div", "xw-error");
  const root = h("div", "xw-widget xw-evaluation", {}, [
    h("div", "xw-topbar", {}, [title, job.el]),
    h("div", "xw-eval-row", {}, [plots, preview]),
    legend,
    boardSection,
    sanitySection,
    sweepSection,
    error,
  ]);
  job.mark(root);
  el.append(root);

  let curves: Curves | null = null;
  let board: Board | null = null;
  let sanity: Sanity | null = null;

  const sample = (): number => {
    const n = curves?.nInputs ?? sanity?.nInputs ?? 1;
    return Math.max(0, Math.min(n - 1, Number(model.get("sample")) || 0));
  };

  // ----- curves and the perturbed input under the cursor

  function clearHover(): void {
    for (const key of ["hoverMode", "hoverMethod", "hoverStep", "hoverThumb"]) delete root.dataset[key];
    root.querySelectorAll(".xw-eval-point.xw-hot").forEach((p) => p.classList.remove("xw-hot"));
    root.querySelectorAll<SVGLineElement>(".xw-eval-hover").forEach((l) => l.setAttribute("visibility", "hidden"));
  }

  function showPoint(mc: ModeCurves, m: number, k: number): void {
    const c = curves!;
    const i = sample();
    const curve = curveOf(c, mc, m, i);
    clearHover();
    root.dataset.hoverMode = mc.mode;
    root.dataset.hoverMethod = c.methods[m];
    root.dataset.hoverStep = String(k);
    const point = root.querySelector(`svg[data-mode="${mc.mode}"] circle[data-method="${c.methods[m]}"][data-step="${k}"]`);
    point?.classList.add("xw-hot");
    const line = root.querySelector<SVGLineElement>(`svg[data-mode="${mc.mode}"] .xw-eval-hover`);
    if (line && point) {
      line.setAttribute("x1", point.getAttribute("cx")!);
      line.setAttribute("x2", point.getAttribute("cx")!);
      line.setAttribute("visibility", "visible");
    }
    const what = mc.mode === "deletion" ? "removed" : "inserted";
    const lines = [
      `${c.methods[m]} · ${mc.mode} · step ${k}/${mc.points - 1}`,
      `${(curve.xs[k] * 100).toFixed(1)}% ${what} · ${mc.output === "logit" ? "logit" : "p"} = ${formatValue(curve.ys[k])}`,
    ];
    const th = mc.thumbs;
    const t = th ? thumbIndex(c.thumbSteps, k) : -1;
    if (th && t >= 0) {
      root.dataset.hoverThumb = String(t);
      canvas.width = th.width;
      canvas.height = th.height;
      const img = new ImageData(rgbToRGBA(thumbPixels(th, c.nInputs, m, i, t), th.width, th.height), th.width, th.height);
      canvas.getContext("2d")!.putImageData(img, 0, 0);
      if (c.thumbSteps[t] !== k) lines.push(`(image of step ${c.thumbSteps[t]}, the nearest kept)`);
    }
    caption.replaceChildren(...lines.map((l) => h("div", "", {}, [l])));
  }

  function drawPlot(mc: ModeCurves): SVGSVGElement {
    const c = curves!;
    const i = sample();
    const plot = svg("svg", { class: "xw-eval-plot", "data-mode": mc.mode, width: BOX.width, height: BOX.height,
      viewBox: `0 0 ${BOX.width} ${BOX.height}`, role: "img", "aria-label": `${mc.mode} curves` });
    const right = BOX.width - BOX.right;
    const bottom = BOX.height - BOX.bottom;
    const all = c.methods.map((_, m) => curveOf(c, mc, m, i));
    let hi = 0;
    for (const cv of all) for (const y of cv.ys) if (Number.isFinite(y) && y > hi) hi = y;
    const sx = linearScale(0, 1, BOX.left, right);
    const sy = linearScale(0, mc.output === "probability" ? Math.max(hi, 1e-6) * 1.05 : hi * 1.05 || 1, bottom, BOX.top);
    plot.append(svg("rect", { class: "xw-eval-frame", x: BOX.left, y: BOX.top, width: right - BOX.left, height: bottom - BOX.top }));
    for (const v of niceTicks(sy.domain[0], sy.domain[1], 4)) {
      plot.append(svg("line", { class: "xw-eval-grid", x1: BOX.left, x2: right, y1: sy(v), y2: sy(v) }),
        svg("text", { x: BOX.left - 4, y: sy(v) + 3, "text-anchor": "end" }, formatValue(v)));
    }
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      plot.append(svg("text", { x: sx(v), y: bottom + 12, "text-anchor": "middle" }, `${v * 100}%`));
    }
    plot.append(svg("text", { x: (BOX.left + right) / 2, y: bottom + 26, "text-anchor": "middle" },
      mc.mode === "deletion" ? "fraction removed (most relevant first)" : "fraction inserted (most relevant first)"));
    const hover = svg("line", { class: "xw-eval-hover", x1: 0, x2: 0, y1: BOX.top, y2: bottom, visibility: "hidden" });
    plot.append(hover);
    all.forEach((cv, m) => {
      const colour = PALETTE[m % PALETTE.length];
      plot.append(svg("polyline", { class: "xw-eval-line", "data-method": c.methods[m], stroke: colour,
        points: polylinePoints(cv.xs, cv.ys, sx, sy) }));
    });
    all.forEach((cv, m) => {
      const colour = PALETTE[m % PALETTE.length];
      for (let k = 0; k < cv.xs.length; k++) {
        if (!Number.isFinite(cv.xs[k]) || !Number.isFinite(cv.ys[k])) continue;
        plot.append(svg("circle", { class: "xw-eval-point", "data-method": c.methods[m], "data-step": k,
          cx: sx(cv.xs[k]).toFixed(1), cy: sy(cv.ys[k]).toFixed(1), r: 2.6, fill: colour }));
      }
    });
    plot.addEventListener("mousemove", (ev: MouseEvent) => {
      const r = plot.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * BOX.width;
      const py = ((ev.clientY - r.top) / r.height) * BOX.height;
      const hit = nearestPoint(all, sx, sy, px, py, 40);
      if (hit) showPoint(mc, hit.series, hit.index);
    });
    return plot;
  }

  function drawCurves(): void {
    plots.replaceChildren();
    legend.replaceChildren();
    clearHover();
    if (!curves) return;
    const c = curves;
    const i = sample();
    for (const mc of c.modes) {
      const aucs = c.methods.map((_, m) => mc.auc[m * c.nInputs + i]);
      const head = h("div", "xw-eval-caption", {}, [`${mc.mode} · ${mc.output} of ${c.labels[i] ?? "target"}`]);
      const plot = drawPlot(mc);
      const note = h("div", "xw-sweep-labels", {}, [
        "AUC (this input): " + c.methods.map((name, m) => `${name} ${formatValue(aucs[m])}`).join(" · "),
      ]);
      plots.append(h("div", "", { "data-mode": mc.mode }, [head, plot, note]));
    }
    c.methods.forEach((name, m) => {
      const state = c.state[m] ?? "done";
      legend.append(h("span", "", { "data-method": name, "data-state": state }, [
        h("span", "xw-eval-swatch", { style: `background: ${PALETTE[m % PALETTE.length]}` }),
        state === "done" ? name : `${name} (${state})`,
      ]));
    });
    // start on the unperturbed input of the first method
    const first = c.modes[0];
    if (first && c.state[0] === "done") showPoint(first, 0, 0);
  }

  function renderSamples(): void {
    const n = curves?.nInputs ?? sanity?.nInputs ?? 1;
    const labels = curves?.labels ?? [];
    sampleLabel.hidden = n <= 1;
    if (sampleSelect.options.length !== n) {
      sampleSelect.replaceChildren(...Array.from({ length: n }, (_, i) =>
        h("option", "", { value: i }, [`#${i}${labels[i] ? ` (${labels[i]})` : ""}`])));
    }
    sampleSelect.value = String(sample());
  }

  // ----- leaderboard

  function drawBoard(): void {
    table.replaceChildren();
    boardSection.hidden = !board;
    if (!board) return;
    const b = board;
    const best = bestRows(b);
    const sortKey = String(model.get("sort_column") ?? "");
    const reverse = Boolean(model.get("sort_reverse"));
    const head = h("tr", "", {}, [h("th", "", { scope: "col" }, ["method"])]);
    for (const col of b.columns) {
      const th = h("th", "", { scope: "col", "data-key": col.key, title: col.description }, [
        h("button", "", { type: "button" }, [`${col.label} ${col.higher_is_better ? "↑" : "↓"}`]),
      ]);
      if (col.key === sortKey) th.setAttribute("aria-sort", reverse ? "descending" : "ascending");
      th.addEventListener("click", () => {
        const next = nextSort(String(model.get("sort_column") ?? ""), Boolean(model.get("sort_reverse")), col.key);
        model.set("sort_column", next.column);
        model.set("sort_reverse", next.reverse);
        model.save_changes(); // the change:sort_* listeners redraw
      });
      head.append(th);
    }
    const body = sortRows(b, sortKey, reverse).map((r) => {
      const name = b.methods[r];
      const row = h("tr", "", { "data-method": name, "data-error": b.errors[name] ? "true" : undefined,
        title: b.errors[name] ?? undefined }, [h("td", "", {}, [name])]);
      b.columns.forEach((col, c) => {
        const v = b.values[r][c];
        const cls = !Number.isFinite(v) ? "xw-missing" : best[c].includes(r) ? "xw-best" : "";
        row.append(h("td", cls, { "data-key": col.key, "data-value": Number.isFinite(v) ? v : "" },
          [Number.isFinite(v) ? v.toFixed(BOARD_DECIMALS) : "–"]));
      });
      return row;
    });
    table.append(h("thead", "", {}, [head]), h("tbody", "", {}, body));
  }

  // ----- sanity strip

  function drawSanity(): void {
    sanityGrid.replaceChildren();
    sanitySection.hidden = !sanity;
    if (!sanity) return;
    const s = sanity;
    const i = sample();
    sanityCaption.textContent = `sanity check: ${s.steps.length - 1} layers randomised top down (${s.order}); ` +
      `ρ = Spearman of |map| with the trained model's; passes below ${s.threshold}`;
    sanityGrid.style.gridTemplateColumns = `auto repeat(${s.steps.length}, 56px) auto`;
    sanityGrid.append(h("div", ""));
    s.steps.forEach((step) => sanityGrid.append(h("div", "xw-sanity-head", { title: step },
      shortLayer(step).split(".").map((part) => h("span", "", {}, [part])))));
    sanityGrid.append(h("div", "xw-sanity-head", {}, ["final ρ"]));
    const lut = getLUT("viridis");
    s.methods.forEach((name, m) => {
      sanityGrid.append(h("div", "xw-sanity-method", {}, [name]));
      s.steps.forEach((step, k) => {
        const c = h("canvas", "xw-sanity-map", { "data-method": name, "data-step": k, title: step, width: s.width, height: s.height });
        const q = sanityMap(s, m, k, i);
        const rgba = new Uint8ClampedArray(s.width * s.height * 4);
        for (let p = 0; p < q.length; p++) {
          rgba[p * 4] = lut[q[p] * 3];
          rgba[p * 4 + 1] = lut[q[p] * 3 + 1];
          rgba[p * 4 + 2] = lut[q[p] * 3 + 2];
          rgba[p * 4 + 3] = 255;
        }
        c.getContext("2d")!.putImageData(new ImageData(rgba, s.width, s.height), 0, 0);
        const rho = sanitySimilarity(s, m, k, i);
        sanityGrid.append(h("div", "xw-sanity-cell", {}, [c, h("span", "xw-sanity-rho", {}, [`ρ ${formatValue(rho)}`])]));
      });
      sanityGrid.append(h("div", "xw-sanity-verdict", { "data-passed": String(s.passed[m]) },
        [`${formatValue(s.score[m])} ${s.passed[m] ? "✓ passes" : "✗ fails"}`]));
    });
  }

  // ----- sweeps

  function drawSweeps(): void {
    const sweeps = (model.get("sweeps") ?? []) as SweepPayload[];
    sweepSection.replaceChildren();
    sweepSection.hidden = sweeps.length === 0;
    for (const sw of sweeps) {
      const mean = decodeArray(sw.mean).data as Float32Array;
      const xs = isArrayDict(sw.x) ? (decodeArray(sw.x).data as Float32Array) : Float32Array.from(mean, (_, k) => k);
      const plot = createLinePlot({ width: 300, height: 150, left: 44, right: 14, top: 10, bottom: 26 });
      plot.draw({
        series: [{ xs, ys: mean, className: "xw-sweep-mean", label: sw.metric }],
        bands: [{ xs, lo: decodeArray(sw.q25).data as Float32Array, hi: decodeArray(sw.q75).data as Float32Array, className: "" }],
        refs: [], marker: sw.best, bracket: null, xLabel: sw.param,
      });
      const best = sw.best >= 0 ? ` · best ${sw.param} = ${sw.labels[sw.best]}` : "";
      sweepSection.append(h("div", "xw-sweep", { "data-method": sw.method, "data-param": sw.param }, [
        h("div", "xw-eval-caption", {}, [`sweep: ${sw.method} · ${sw.metric} ${sw.higher_is_better ? "↑" : "↓"} vs ${sw.param}`]),
        plot.el,
        h("div", "xw-sweep-labels", {}, [`values: ${sw.labels.join(", ")}${best}`]),
      ]));
    }
  }

  // ----- loading

  function load(): void {
    error.textContent = "";
    try {
      const cp = model.get("curves");
      curves = isCurvesPayload(cp) ? decodeCurves(cp) : null;
      const lp = model.get("leaderboard");
      board = isLeaderboard(lp) ? decodeLeaderboard(lp) : null;
      const sp = model.get("sanity");
      sanity = isSanity(sp) ? decodeSanity(sp) : null;
      renderSamples();
      drawCurves();
      drawBoard();
      drawSanity();
      drawSweeps();
      root.dataset.state = curves || board ? "ok" : "empty";
    } catch (e) {
      root.dataset.state = "error";
      error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  const onSample = (): void => {
    model.set("sample", Number(sampleSelect.value));
    model.save_changes();
  };
  const onSampleTrait = (): void => {
    renderSamples();
    drawCurves();
    drawSanity();
  };
  const renderTitle = (): void => {
    title.textContent = model.get("title") ?? "";
  };
  sampleSelect.addEventListener("change", onSample);

  const listeners: [string, () => void][] = [
    ["change:curves", load],
    ["change:leaderboard", load],
    ["change:sanity", load],
    ["change:sweeps", drawSweeps],
    ["change:sample", onSampleTrait],
    ["change:sort_column", drawBoard],
    ["change:sort_reverse", drawBoard],
    ["change:title", renderTitle],
  ];
  for (const [ev, cb] of listeners) model.on(ev, cb);
  renderTitle();
  job.render();
  load();

  return () => {
    for (const [ev, cb] of listeners) model.off(ev, cb);
    sampleSelect.removeEventListener("change", onSample);
    job.destroy();
    requests.dispose();
    root.remove();
    extra.remove();
  };
}

export default { render };
