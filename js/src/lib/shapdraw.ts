// The six plots of the SHAP family (views/shapplots.ts). Each draws from the decoded traits and the shared
// selection; canvases carry `xwPoints` (the drawn dots: pixel x, y and the row, feature and value each
// stands for) so tests and hover read the same numbers.
import { h } from "./dom";
import { formatValue } from "./format";
import { featureColor, linear, outputOrder, paddedExtent, PointIndex, signedCell, swarmOffsets, waterfallLayout } from "./shapplots";
import { NEGATIVE, POSITIVE, rgb } from "./signed";
import { niceTicks, svg } from "./svg";
import type { Tooltip } from "./tooltip";

export interface Cohorts {
  names: string[];
  sizes: number[];
  order: ArrayLike<number>;
  bars: ArrayLike<number>;
  foldCount: number;
}

/** The decoded traits: `n` rows x `d` features (row-major `values`, `featureValues`), base and output per row. */
export interface PlotData {
  n: number;
  d: number;
  base: ArrayLike<number>;
  output: ArrayLike<number>;
  values: ArrayLike<number>;
  featureValues: ArrayLike<number> | null;
  /** Features shown in the summary plots, most important first; the fold (if any) comes after them. */
  order: number[];
  fold: ArrayLike<number> | null;
  foldCount: number;
  colorRange: ArrayLike<number> | null;
  clustering: ArrayLike<number> | null;
  interactions: ArrayLike<number> | null;
  cohorts: Cohorts | null;
  decisionOrder: number[];
  decisionPaths: ArrayLike<number> | null;
}

export interface Ctx {
  data: PlotData;
  names: string[];
  rowNames: string[];
  outputName: string;
  maxDisplay: number;
  width: number;
  tooltip: Tooltip;
  selection: Set<number>;
  row: number;
  rowOrder: string;
  dependenceFeature: number;
  colorFeature: number;
  /** Select rows (replacing the selection unless `add`); the first becomes the waterfall's row. */
  select(rows: number[], add: boolean): void;
  set(key: "row_order" | "dependence_feature" | "color_feature", value: string | number): void;
  background: [number, number, number];
  /** The theme's text colour (selection rings). */
  foreground: string;
}

export interface DrawnPoints {
  x: Float32Array;
  y: Float32Array;
  row: Int32Array;
  feature: Int32Array;
  value: Float32Array;
}

const RED = rgb(POSITIVE);
const BLUE = rgb(NEGATIVE);
const LABEL_W = 170;
const signText = (v: number): string => (v > 0 ? "+" : "") + formatValue(v);
/** A label cut to the label column (about 6.3 px per character at 11 px); the full text is in the tooltip. */
const fit = (text: string): string => (text.length > 26 ? text.slice(0, 25) + "…" : text);

function name(ctx: Ctx, j: number, fold = ctx.data.foldCount): string {
  return j >= 0 ? ctx.names[j] ?? `feature ${j}` : `Sum of ${fold} other features`;
}

function rowName(ctx: Ctx, i: number): string {
  return ctx.rowNames[i] ?? `row ${i}`;
}

function fv(ctx: Ctx, i: number, j: number): number {
  const f = ctx.data.featureValues;
  return f && j >= 0 ? f[i * ctx.data.d + j] : NaN;
}

function attr(ctx: Ctx, i: number, j: number): number {
  return j >= 0 ? ctx.data.values[i * ctx.data.d + j] : ctx.data.fold ? ctx.data.fold[i] : NaN;
}

function range(ctx: Ctx, j: number): [number, number] {
  const r = ctx.data.colorRange;
  return r && j >= 0 ? [r[2 * j], r[2 * j + 1]] : [NaN, NaN];
}

/** A horizontal value axis at `y` with ticks (`.xw-sp-tick`, data-value, x1 = position) and a label. */
function axisX(parent: SVGElement, x: (v: number) => number, lo: number, hi: number, y: number, label: string, x0: number, x1: number): void {
  const g = svg("g", { class: "xw-sp-axis" });
  g.append(svg("line", { x1: x0, x2: x1, y1: y, y2: y }));
  for (const t of niceTicks(lo, hi, Math.max(2, Math.floor((x1 - x0) / 80)))) {
    g.append(
      svg("line", { class: "xw-sp-tick", "data-value": t, x1: x(t), x2: x(t), y1: y, y2: y + 4 }),
      svg("text", { class: "xw-muted", x: x(t), y: y + 15, "text-anchor": "middle" }, formatValue(t)),
    );
  }
  g.append(svg("text", { class: "xw-muted xw-sp-axis-label", x: (x0 + x1) / 2, y: y + 30, "text-anchor": "middle" }, label));
  parent.append(g);
}

function frame(kind: string, title: string, ...children: Node[]): HTMLElement {
  return h("section", "xw-sp-panel", { "data-kind": kind }, [h("div", "xw-sp-title", {}, [title]), ...children]);
}

function hover(el: Element, ctx: Ctx, lines: () => string[]): void {
  el.addEventListener("mouseenter", () => { el.classList.add("xw-hot"); ctx.tooltip.show(lines(), el); });
  el.addEventListener("mouseleave", () => { el.classList.remove("xw-hot"); ctx.tooltip.hide(); });
}

// --- waterfall ------------------------------------------------------------------------------------

export function waterfallPlot(ctx: Ctx): HTMLElement {
  const { data } = ctx;
  const i = Math.max(0, Math.min(data.n - 1, ctx.row));
  const row = Array.from({ length: data.d }, (_, j) => data.values[i * data.d + j]);
  const w = waterfallLayout(row, data.base[i], ctx.maxDisplay);
  const rowH = 26;
  const top = 34;
  const height = top + w.bars.length * rowH + 48;
  const width = Math.max(420, Math.min(ctx.width, 860));
  const x0 = LABEL_W + 56; // room for a negative bar's value left of it
  const x1 = width - 60;
  const out = data.output[i];
  const [lo, hi] = paddedExtent(w.bars.map((b) => b.start), w.bars.map((b) => b.end), [w.base, out]);
  const x = linear(lo, hi, x0, x1);
  const root = svg("svg", { class: "xw-sp-svg xw-sp-waterfall", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "data-row": i });
  root.setAttribute("aria-label", `waterfall of ${rowName(ctx, i)}: base ${formatValue(w.base)}, ${ctx.outputName} ${formatValue(out)}`);
  const bottom = top + w.bars.length * rowH;
  root.append(
    svg("line", { class: "xw-sp-base-line", x1: x(w.base), x2: x(w.base), y1: top - 6, y2: bottom + 4 }),
    svg("line", { class: "xw-sp-out-line", x1: x(w.total), x2: x(w.total), y1: top - 14, y2: bottom }),
    svg("text", { class: "xw-sp-output", "data-value": out, x: x(w.total), y: top - 18, "text-anchor": "middle" }, `${ctx.outputName} = ${formatValue(out)}`),
  );
  w.bars.forEach((b, k) => {
    const y = top + k * rowH + 4;
    const hgt = rowH - 8;
    const a = x(Math.min(b.start, b.end));
    const e = x(Math.max(b.start, b.end));
    const tip = Math.min(6, e - a);
    const up = b.value >= 0;
    const pts = up
      ? [[a, y], [e - tip, y], [e, y + hgt / 2], [e - tip, y + hgt], [a, y + hgt]]
      : [[e, y], [a + tip, y], [a, y + hgt / 2], [a + tip, y + hgt], [e, y + hgt]];
    const poly = svg("polygon", {
      class: "xw-sp-bar", "data-feature": b.feature, "data-value": b.value, "data-start": b.start, "data-end": b.end,
      points: pts.map(([px, py]) => `${px.toFixed(3)},${py}`).join(" "),
    });
    poly.style.fill = up ? RED : BLUE;
    const value = fv(ctx, i, b.feature);
    const label = b.feature < 0 ? `${w.folded} other features` : Number.isFinite(value) ? `${formatValue(value)} = ${name(ctx, b.feature)}` : name(ctx, b.feature);
    hover(poly, ctx, () => [
      b.feature < 0 ? `${w.folded} other features (summed)` : name(ctx, b.feature),
      ...(Number.isFinite(value) ? [`value ${formatValue(value)}`] : []),
      `contribution ${signText(b.value)}`,
      `${formatValue(b.start)} → ${formatValue(b.end)}`,
    ]);
    const text = up ? [e + 4, "start"] : [a - 4, "end"];
    root.append(
      poly,
      svg("text", { class: "xw-sp-label", x: LABEL_W, y: y + hgt / 2 + 4, "text-anchor": "end", "data-feature": b.feature }, fit(label)),
      svg("text", { class: `xw-sp-value ${up ? "xw-sp-pos" : "xw-sp-neg"}`, x: text[0], y: y + hgt / 2 + 4, "text-anchor": text[1] as string }, signText(b.value)),
    );
  });
  axisX(root, x, lo, hi, bottom + 4, `base value E[f(X)] = ${formatValue(w.base)} (dashed) · ${ctx.outputName} (model output units)`, x0, x1);
  const panel = frame("waterfall", `Waterfall · ${rowName(ctx, i)}`, root);
  if (Number.isFinite(out) && Math.abs(out - w.total) > 1e-5 * Math.max(1, Math.abs(out))) {
    panel.append(h("div", "xw-caption xw-sp-gap", { "data-gap": out - w.total }, [
      `The bars end at base + Σ = ${formatValue(w.total)}; ${ctx.outputName} = ${formatValue(out)}: the attributions miss the output by ${formatValue(out - w.total)}.`,
    ]));
  }
  return panel;
}

// --- canvas helpers -------------------------------------------------------------------------------

interface CanvasPlot {
  wrap: HTMLElement;
  canvas: HTMLCanvasElement;
  g: CanvasRenderingContext2D;
  overlay: SVGSVGElement;
}

function canvasPlot(cls: string, width: number, height: number): CanvasPlot {
  const canvas = h("canvas", `xw-sp-canvas ${cls}`, { width, height });
  const overlay = svg("svg", { class: "xw-sp-svg xw-sp-overlay", width, height, viewBox: `0 0 ${width} ${height}` });
  const wrap = h("div", "xw-sp-canvas-wrap", { style: `width:${width}px;height:${height}px` }, [canvas, overlay]);
  return { wrap, canvas, g: canvas.getContext("2d") as CanvasRenderingContext2D, overlay };
}

/** Hover (tooltip), click (select a row; shift adds) and drag (select every dot in the rectangle). */
function pointInteraction(ctx: Ctx, p: CanvasPlot, pts: DrawnPoints, lines: (k: number) => string[]): void {
  (p.canvas as HTMLCanvasElement & { xwPoints?: DrawnPoints }).xwPoints = pts;
  const index = new PointIndex(pts.x, pts.y);
  const brush = svg("rect", { class: "xw-sp-brush", x: 0, y: 0, width: 0, height: 0 });
  brush.style.display = "none";
  p.overlay.append(brush);
  let start: [number, number] | null = null;
  const local = (ev: MouseEvent): [number, number] => {
    const r = p.canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  p.canvas.addEventListener("mousedown", (ev) => { start = local(ev); });
  p.canvas.addEventListener("mousemove", (ev) => {
    const [px, py] = local(ev);
    if (start && (Math.abs(px - start[0]) > 3 || Math.abs(py - start[1]) > 3)) {
      brush.style.display = "";
      brush.setAttribute("x", String(Math.min(px, start[0])));
      brush.setAttribute("y", String(Math.min(py, start[1])));
      brush.setAttribute("width", String(Math.abs(px - start[0])));
      brush.setAttribute("height", String(Math.abs(py - start[1])));
      ctx.tooltip.hide();
      return;
    }
    const k = index.nearest(px, py);
    p.canvas.dataset.hover = String(k >= 0 ? pts.row[k] : -1);
    if (k >= 0) ctx.tooltip.show(lines(k), { x: ev.clientX, y: ev.clientY });
    else ctx.tooltip.hide();
  });
  p.canvas.addEventListener("mouseleave", () => { ctx.tooltip.hide(); });
  p.canvas.addEventListener("mouseup", (ev) => {
    const [px, py] = local(ev);
    const s = start;
    start = null;
    brush.style.display = "none";
    if (!s) return;
    if (Math.abs(px - s[0]) > 3 || Math.abs(py - s[1]) > 3) {
      const inside = index.within(Math.min(px, s[0]), Math.min(py, s[1]), Math.max(px, s[0]), Math.max(py, s[1]));
      ctx.select([...new Set(Array.from(inside, (k) => pts.row[k]))].sort((a, b) => a - b), ev.shiftKey);
      return;
    }
    const k = index.nearest(px, py);
    ctx.select(k >= 0 ? [pts.row[k]] : [], ev.shiftKey);
  });
}

const LEVELS = 64;

/** Coverage (0..1) of a disc of radius r centred in a (2k+1)^2 pixel stamp, 4x4 supersampled. */
function discMask(r: number): { k: number; cover: Float32Array } {
  const k = Math.ceil(r + 0.5);
  const side = 2 * k + 1;
  const cover = new Float32Array(side * side);
  for (let py = 0; py < side; py++) for (let px = 0; px < side; px++) {
    let hit = 0;
    for (let sy = 0; sy < 4; sy++) for (let sx = 0; sx < 4; sx++) {
      const dx = px - k + (sx + 0.5) / 4 - 0.5;
      const dy = py - k + (sy + 0.5) / 4 - 0.5;
      if (dx * dx + dy * dy <= r * r) hit++;
    }
    cover[py * side + px] = hit / 16;
  }
  return { k, cover };
}

/** Dots coloured by a value in [lo, hi] (grey when missing), stamped into the canvas' pixels with an
 * antialiased disc mask (a canvas path per dot costs ~0.5 s for the 50,000 dots of a 5,000-row beeswarm). */
function dots(
  g: CanvasRenderingContext2D, xs: Float32Array, ys: Float32Array, r: number, value: (i: number) => number, lo: number, hi: number,
): void {
  const { width, height } = g.canvas;
  const img = g.getImageData(0, 0, width, height);
  const px = img.data;
  const { k, cover } = discMask(r);
  const side = 2 * k + 1;
  const palette: [number, number, number][] = Array.from({ length: LEVELS }, (_, l) => featureColor(l, 0, LEVELS - 1));
  const known = Number.isFinite(lo) && Number.isFinite(hi);
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
    const v = value(i);
    const c = !known || !Number.isFinite(v) ? [150, 150, 150] : palette[hi > lo ? Math.round(Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * (LEVELS - 1)) : LEVELS >> 1];
    const cx = Math.round(xs[i]);
    const cy = Math.round(ys[i]);
    for (let dy = -k; dy <= k; dy++) {
      const y = cy + dy;
      if (y < 0 || y >= height) continue;
      for (let dx = -k; dx <= k; dx++) {
        const x = cx + dx;
        const a = cover[(dy + k) * side + dx + k];
        if (a === 0 || x < 0 || x >= width) continue;
        const o = (y * width + x) * 4;
        const keep = (1 - a) * (px[o + 3] / 255);
        const alpha = a + keep;
        px[o] = (c[0] * a + px[o] * keep) / alpha;
        px[o + 1] = (c[1] * a + px[o + 1] * keep) / alpha;
        px[o + 2] = (c[2] * a + px[o + 2] * keep) / alpha;
        px[o + 3] = alpha * 255;
      }
    }
  }
  g.putImageData(img, 0, 0);
}

function ring(g: CanvasRenderingContext2D, x: number, y: number, r: number, colour: string): void {
  g.strokeStyle = colour;
  g.lineWidth = 1.5;
  g.beginPath();
  g.arc(x, y, r + 2, 0, 2 * Math.PI);
  g.stroke();
}

/** A "low → high" colour bar for feature values at (x, y). */
function colourBar(parent: SVGElement, x: number, y: number, height: number, label: string): void {
  const id = `xw-sp-grad-${Math.random().toString(36).slice(2)}`;
  const grad = svg("linearGradient", { id, x1: 0, x2: 0, y1: 1, y2: 0 });
  grad.append(svg("stop", { offset: 0, "stop-color": BLUE }), svg("stop", { offset: 1, "stop-color": RED }));
  const defs = svg("defs");
  defs.append(grad);
  parent.append(
    defs,
    svg("rect", { class: "xw-sp-colourbar", x, y, width: 8, height, fill: `url(#${id})` }),
    svg("text", { class: "xw-muted", x: x + 12, y: y + 9 }, "high"),
    svg("text", { class: "xw-muted", x: x + 12, y: y + height }, "low"),
    svg("text", { class: "xw-muted", x: x - 4, y: y + height / 2, transform: `rotate(-90 ${x - 4} ${y + height / 2})`, "text-anchor": "middle" }, label),
  );
}

// --- beeswarm -------------------------------------------------------------------------------------

export function beeswarmPlot(ctx: Ctx): HTMLElement {
  const { data } = ctx;
  const rows = [...data.order, ...(data.fold ? [-1] : [])];
  const rowH = 30;
  const top = 8;
  const width = Math.max(480, Math.min(ctx.width, 900));
  const height = top + rows.length * rowH + 44;
  const x0 = LABEL_W + 10;
  const x1 = width - 50;
  const cols = rows.map((j) => Array.from({ length: data.n }, (_, i) => attr(ctx, i, j)));
  const [lo, hi] = paddedExtent(...cols);
  const x = linear(lo, hi, x0, x1);
  const p = canvasPlot("xw-sp-beeswarm", width, height);
  const radius = data.n > 2000 ? 1.6 : data.n > 500 ? 2.2 : 3;
  const total = rows.length * data.n;
  const pts: DrawnPoints = { x: new Float32Array(total), y: new Float32Array(total), row: new Int32Array(total), feature: new Int32Array(total), value: new Float32Array(total) };
  const g = p.g;
  g.strokeStyle = "rgba(128,128,128,.5)";
  g.beginPath();
  g.moveTo(Math.round(x(0)) + 0.5, top);
  g.lineTo(Math.round(x(0)) + 0.5, top + rows.length * rowH);
  g.stroke();
  let k = 0;
  rows.forEach((j, r) => {
    const col = cols[r];
    const offsets = swarmOffsets(col);
    let maxOff = 1;
    for (const o of offsets) maxOff = Math.max(maxOff, Math.abs(o));
    const step = Math.min(radius * 1.6, (0.45 * rowH) / maxOff);
    const mid = top + r * rowH + rowH / 2;
    const [clo, chi] = range(ctx, j);
    for (let i = 0; i < data.n; i++) {
      pts.row[k] = i;
      pts.feature[k] = j;
      pts.value[k] = col[i];
      pts.x[k] = Number.isFinite(col[i]) ? x(col[i]) : NaN;
      pts.y[k] = mid + offsets[i] * step;
      k++;
    }
    const first = r * data.n;
    dots(g, pts.x.subarray(first, first + data.n), pts.y.subarray(first, first + data.n), radius, (i) => fv(ctx, i, j), clo, chi);
    p.overlay.append(svg("text", { class: "xw-sp-label", x: LABEL_W, y: mid + 4, "text-anchor": "end", "data-feature": j }, fit(name(ctx, j))));
    p.overlay.append(svg("line", { class: "xw-sp-gridline", x1: x0, x2: x1, y1: mid, y2: mid }));
  });
  for (let q = 0; q < total; q++) if (ctx.selection.has(pts.row[q]) && Number.isFinite(pts.x[q])) ring(g, pts.x[q], pts.y[q], radius, ctx.foreground);
  axisX(p.overlay, x, lo, hi, top + rows.length * rowH + 2, `attribution (impact on ${ctx.outputName})`, x0, x1);
  if (data.featureValues) colourBar(p.overlay, width - 40, top + 10, Math.min(120, rows.length * rowH - 20), "feature value");
  pointInteraction(ctx, p, pts, (q) => {
    const i = pts.row[q];
    const j = pts.feature[q];
    const v = fv(ctx, i, j);
    return [rowName(ctx, i), name(ctx, j), ...(Number.isFinite(v) ? [`value ${formatValue(v)}`] : []), `attribution ${signText(pts.value[q])}`, "click: show this row"];
  });
  p.canvas.dataset.rows = String(data.n);
  return frame("beeswarm", `Beeswarm · ${data.n} rows, features by mean |attribution|`, p.wrap);
}

// --- bar ------------------------------------------------------------------------------------------

const COHORT_COLOURS = [RED, BLUE, "rgb(46, 160, 67)", "rgb(230, 145, 0)", "rgb(142, 68, 173)", "rgb(120, 120, 120)"];

export function barPlot(ctx: Ctx): HTMLElement {
  const c = ctx.data.cohorts;
  if (!c) return frame("bar", "Bar", h("div", "xw-empty", {}, ["no data"]));
  const order = Array.from(c.order, Number);
  const rows = [...order, ...(c.foldCount ? [-1] : [])];
  const m = c.names.length;
  const barH = Math.max(6, Math.min(16, 22 / m));
  const rowH = m * barH + 10;
  const top = 6;
  const width = Math.max(420, Math.min(ctx.width, 800));
  const x0 = LABEL_W + 10;
  const x1 = width - 70;
  let max = 0;
  for (let q = 0; q < c.bars.length; q++) max = Math.max(max, c.bars[q]);
  const x = linear(0, max * 1.05 || 1, x0, x1);
  const height = top + rows.length * rowH + 44;
  const root = svg("svg", { class: "xw-sp-svg xw-sp-bars", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  rows.forEach((j, r) => {
    const y = top + r * rowH + 5;
    root.append(svg("text", { class: "xw-sp-label", x: LABEL_W, y: y + (m * barH) / 2 + 4, "text-anchor": "end", "data-feature": j }, fit(name(ctx, j, c.foldCount))));
    for (let k = 0; k < m; k++) {
      const v = c.bars[k * rows.length + r];
      const rect = svg("rect", { class: "xw-sp-cbar", "data-feature": j, "data-cohort": k, "data-value": v, x: x0, y: y + k * barH, width: Math.max(0, x(v) - x0), height: barH - 1 });
      rect.style.fill = COHORT_COLOURS[k % COHORT_COLOURS.length];
      hover(rect, ctx, () => [name(ctx, j, c.foldCount), `${c.names[k]} (${c.sizes[k]} rows)`, `mean |attribution| ${formatValue(v)}`]);
      root.append(rect, svg("text", { class: "xw-sp-value xw-muted", x: x(v) + 4, y: y + k * barH + barH - 2 }, formatValue(v)));
    }
  });
  axisX(root, x, 0, max * 1.05 || 1, top + rows.length * rowH + 2, `mean |attribution| (impact on ${ctx.outputName})`, x0, x1);
  const legend = h("div", "xw-sp-legend", {}, c.names.map((nm, k) => h("span", "xw-sp-legend-item", { "data-cohort": k }, [
    h("span", "xw-sp-swatch", { style: `background:${COHORT_COLOURS[k % COHORT_COLOURS.length]}` }), `${nm} (${c.sizes[k]})`,
  ])));
  legend.hidden = m < 2;
  return frame("bar", m > 1 ? `Bar · mean |attribution| in ${m} cohorts` : "Bar · mean |attribution|", legend, root);
}

// --- heatmap --------------------------------------------------------------------------------------

export function heatmapOrder(ctx: Ctx): number[] {
  const { data } = ctx;
  if (ctx.rowOrder === "output") return outputOrder(data.output);
  if (ctx.rowOrder === "clustering" && data.clustering && data.clustering.length === data.n) return Array.from(data.clustering, Number);
  return Array.from({ length: data.n }, (_, i) => i);
}

export function heatmapPlot(ctx: Ctx, clip: number): HTMLElement {
  const { data } = ctx;
  const rows = [...data.order, ...(data.fold ? [-1] : [])];
  const order = heatmapOrder(ctx);
  const width = Math.max(480, Math.min(ctx.width, 900));
  const x0 = LABEL_W + 10;
  const x1 = width - 40;
  const lineTop = 10;
  const lineH = 60;
  const top = lineTop + lineH + 10;
  const rowH = 18;
  const height = top + rows.length * rowH + 44;
  const p = canvasPlot("xw-sp-heatmap", width, height);
  const cw = (x1 - x0) / data.n;
  const img = p.g.createImageData(Math.round(x1 - x0), rows.length * rowH);
  const W = img.width;
  for (let px = 0; px < W; px++) {
    const i = order[Math.min(data.n - 1, Math.floor(px / cw))];
    rows.forEach((j, r) => {
      const [cr, cg, cb] = signedCell(attr(ctx, i, j), clip, ctx.background);
      for (let py = r * rowH; py < (r + 1) * rowH - 1; py++) {
        const o = (py * W + px) * 4;
        img.data[o] = cr; img.data[o + 1] = cg; img.data[o + 2] = cb; img.data[o + 3] = 255;
      }
    });
  }
  p.g.putImageData(img, Math.round(x0), top);
  rows.forEach((j, r) => p.overlay.append(svg("text", { class: "xw-sp-label", x: LABEL_W, y: top + r * rowH + 13, "text-anchor": "end", "data-feature": j }, fit(name(ctx, j)))));
  // f(x) above, on its own axis
  const outs = order.map((i) => data.output[i]);
  const [olo, ohi] = paddedExtent(outs);
  const y = linear(olo, ohi, lineTop + lineH, lineTop);
  const cx = (k: number): number => x0 + (k + 0.5) * cw;
  p.overlay.append(
    svg("polyline", { class: "xw-sp-fx", points: outs.map((v, k) => `${cx(k).toFixed(2)},${y(v).toFixed(2)}`).join(" ") }),
    svg("text", { class: "xw-sp-label", x: LABEL_W, y: lineTop + lineH / 2 + 4, "text-anchor": "end" }, ctx.outputName),
    svg("text", { class: "xw-muted", x: x1 + 4, y: lineTop + 8 }, formatValue(ohi)),
    svg("text", { class: "xw-muted", x: x1 + 4, y: lineTop + lineH }, formatValue(olo)),
  );
  order.forEach((i, k) => {
    if (ctx.selection.has(i)) p.overlay.append(svg("rect", { class: "xw-sp-colsel", "data-row": i, x: x0 + k * cw, y: lineTop, width: Math.max(1.5, cw), height: top - lineTop + rows.length * rowH }));
  });
  const axisY = top + rows.length * rowH + 2;
  p.overlay.append(svg("text", { class: "xw-muted xw-sp-axis-label", x: (x0 + x1) / 2, y: axisY + 16, "text-anchor": "middle" },
    `${data.n} rows (${ctx.rowOrder === "output" ? `by ${ctx.outputName}` : ctx.rowOrder === "clustering" ? "clustered" : "original order"}) · colour: attribution, ±${formatValue(clip)}`));
  // the drawn cells as points (one per row and feature) for hover and tests
  const total = rows.length * data.n;
  const pts: DrawnPoints = { x: new Float32Array(total), y: new Float32Array(total), row: new Int32Array(total), feature: new Int32Array(total), value: new Float32Array(total) };
  let q = 0;
  rows.forEach((j, r) => order.forEach((i, k) => {
    pts.x[q] = cx(k); pts.y[q] = top + r * rowH + rowH / 2; pts.row[q] = i; pts.feature[q] = j; pts.value[q] = attr(ctx, i, j); q++;
  }));
  p.canvas.dataset.order = order.join(",");
  p.canvas.dataset.clip = String(clip);
  pointInteraction(ctx, p, pts, (k) => [rowName(ctx, pts.row[k]), `${ctx.outputName} = ${formatValue(data.output[pts.row[k]])}`, `${name(ctx, pts.feature[k])}: ${signText(pts.value[k])}`, "click: show this row"]);
  const select = h("select", "xw-sp-roworder", { "aria-label": "order of the rows" }, [
    h("option", "", { value: "clustering" }, ["clustered"]), h("option", "", { value: "output" }, [`by ${ctx.outputName}`]), h("option", "", { value: "original" }, ["original order"]),
  ]);
  select.value = ctx.rowOrder;
  select.addEventListener("change", () => ctx.set("row_order", select.value));
  return frame("heatmap", "Heatmap · rows x features", h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Rows"]), select]), p.wrap);
}

// --- dependence -----------------------------------------------------------------------------------

export function dependencePlot(ctx: Ctx): HTMLElement {
  const { data } = ctx;
  if (!data.featureValues) return frame("dependence", "Dependence", h("div", "xw-empty", {}, ["needs the features' values (tabular rows)"]));
  const j = ctx.dependenceFeature >= 0 ? ctx.dependenceFeature : data.order[0];
  const auto = data.interactions ? Number(data.interactions[j]) : -1;
  const c = ctx.colorFeature >= 0 ? ctx.colorFeature : auto;
  const width = Math.max(420, Math.min(ctx.width, 720));
  const height = 300;
  const box = { left: 60, right: width - 50, top: 10, bottom: height - 46 };
  const xs = Array.from({ length: data.n }, (_, i) => fv(ctx, i, j));
  const ys = Array.from({ length: data.n }, (_, i) => attr(ctx, i, j));
  const [xlo, xhi] = paddedExtent(xs);
  const [ylo, yhi] = paddedExtent(ys);
  const x = linear(xlo, xhi, box.left, box.right);
  const y = linear(ylo, yhi, box.bottom, box.top);
  const p = canvasPlot("xw-sp-dependence", width, height);
  const radius = data.n > 2000 ? 2 : 3;
  const pts: DrawnPoints = { x: new Float32Array(data.n), y: new Float32Array(data.n), row: new Int32Array(data.n), feature: new Int32Array(data.n).fill(j), value: new Float32Array(data.n) };
  const [clo, chi] = range(ctx, c);
  for (let i = 0; i < data.n; i++) {
    pts.x[i] = Number.isFinite(xs[i]) ? x(xs[i]) : NaN;
    pts.y[i] = y(ys[i]);
    pts.row[i] = i;
    pts.value[i] = ys[i];
  }
  dots(p.g, pts.x, pts.y, radius, (i) => fv(ctx, i, c), clo, chi);
  for (let i = 0; i < data.n; i++) if (ctx.selection.has(i) && Number.isFinite(pts.x[i])) ring(p.g, pts.x[i], pts.y[i], radius, ctx.foreground);
  axisX(p.overlay, x, xlo, xhi, box.bottom, `${name(ctx, j)} (feature value)`, box.left, box.right);
  const g = svg("g", { class: "xw-sp-axis" });
  g.append(svg("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom }));
  for (const t of niceTicks(ylo, yhi, 5)) {
    g.append(svg("line", { class: "xw-sp-ytick", "data-value": t, x1: box.left - 4, x2: box.left, y1: y(t), y2: y(t) }),
      svg("text", { class: "xw-muted", x: box.left - 6, y: y(t) + 3, "text-anchor": "end" }, formatValue(t)));
  }
  g.append(svg("text", { class: "xw-muted", x: 12, y: (box.top + box.bottom) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(box.top + box.bottom) / 2})` }, `attribution of ${name(ctx, j)}`));
  p.overlay.append(g);
  if (c >= 0) colourBar(p.overlay, width - 40, box.top + 10, 120, name(ctx, c));
  pointInteraction(ctx, p, pts, (i) => [rowName(ctx, pts.row[i]), `${name(ctx, j)} = ${formatValue(xs[pts.row[i]])}`, `attribution ${signText(ys[pts.row[i]])}`,
    ...(c >= 0 ? [`${name(ctx, c)} = ${formatValue(fv(ctx, pts.row[i], c))}`] : [])]);
  p.canvas.dataset.feature = String(j);
  p.canvas.dataset.colorFeature = String(c);
  const byImportance = [...data.order, ...Array.from({ length: data.d }, (_, k) => k).filter((k) => !data.order.includes(k))];
  const fsel = h("select", "xw-sp-feature", { "aria-label": "feature" }, byImportance.map((k) => h("option", "", { value: k }, [name(ctx, k)])));
  fsel.value = String(j);
  fsel.addEventListener("change", () => ctx.set("dependence_feature", Number(fsel.value)));
  const csel = h("select", "xw-sp-colour", { "aria-label": "colour by" }, [
    h("option", "", { value: -1 }, [`auto: ${auto >= 0 ? name(ctx, auto) : "none"} (strongest interaction)`]),
    ...byImportance.map((k) => h("option", "", { value: k }, [name(ctx, k)])),
  ]);
  csel.value = String(ctx.colorFeature);
  csel.addEventListener("change", () => ctx.set("color_feature", Number(csel.value)));
  const controls = h("div", "xw-row", {}, [
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Feature"]), fsel]),
    h("label", "xw-control", {}, [h("span", "xw-control-name", {}, ["Colour"]), csel]),
  ]);
  return frame("dependence", `Dependence · ${name(ctx, j)}`, controls, p.wrap);
}

// --- decision -------------------------------------------------------------------------------------

const MAX_PATHS = 2000;

export function decisionPlot(ctx: Ctx): HTMLElement {
  const { data } = ctx;
  const order = ctx.data.decisionOrder;
  const paths = data.decisionPaths;
  if (!paths) return frame("decision", "Decision", h("div", "xw-empty", {}, ["no data"]));
  const k = order.length;
  const rowH = 22;
  const top = 24;
  const width = Math.max(480, Math.min(ctx.width, 860));
  const height = top + k * rowH + 50;
  const x0 = LABEL_W + 10;
  const x1 = width - 30;
  const [lo, hi] = paddedExtent(paths);
  const x = linear(lo, hi, x0, x1);
  // feature j (drawn bottom to top) sits between y(j) and y(j + 1); column c of a path is at y(c)
  const y = (col: number): number => top + (k - col) * rowH;
  const root = svg("svg", { class: "xw-sp-svg xw-sp-decision", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  order.forEach((j, r) => {
    root.append(svg("line", { class: "xw-sp-gridline", x1: x0, x2: x1, y1: y(r + 0.5), y2: y(r + 0.5) }),
      svg("text", { class: "xw-sp-label", x: LABEL_W, y: y(r + 0.5) + 4, "text-anchor": "end", "data-feature": j }, fit(name(ctx, j))));
  });
  const ends = Array.from({ length: data.n }, (_, i) => paths[i * (k + 1) + k]);
  const [elo, ehi] = paddedExtent(ends);
  const shown = data.n > MAX_PATHS ? Array.from({ length: MAX_PATHS }, (_, q) => Math.floor((q * data.n) / MAX_PATHS)) : Array.from({ length: data.n }, (_, i) => i);
  const g = svg("g", { class: "xw-sp-paths" });
  const sel = svg("g", { class: "xw-sp-paths-selected" });
  for (const i of shown) {
    const pts: string[] = [];
    for (let col = 0; col <= k; col++) pts.push(`${x(paths[i * (k + 1) + col]).toFixed(2)},${y(col).toFixed(2)}`);
    const line = svg("polyline", { class: "xw-sp-path", "data-row": i, points: pts.join(" ") });
    line.style.stroke = rgb(featureColor(ends[i], elo, ehi));
    hover(line, ctx, () => [rowName(ctx, i), `${ctx.outputName} = ${formatValue(data.output[i])}`, `base ${formatValue(data.base[i])}`, "click: show this row"]);
    line.addEventListener("click", (ev) => ctx.select([i], ev.shiftKey));
    (ctx.selection.has(i) ? sel : g).append(line);
  }
  sel.querySelectorAll("polyline").forEach((l) => l.classList.add("xw-sp-path-selected"));
  root.append(g, sel, svg("line", { class: "xw-sp-base-line", x1: x(data.base[0]), x2: x(data.base[0]), y1: top, y2: y(0) }));
  axisX(root, x, lo, hi, y(0) + 2, `${ctx.outputName}: base value (bottom) + attributions, least important first`, x0, x1);
  const note = data.n > MAX_PATHS ? ` (${MAX_PATHS} of ${data.n} rows drawn)` : "";
  return frame("decision", `Decision · ${data.n} paths from the base value${note}`, root);
}

