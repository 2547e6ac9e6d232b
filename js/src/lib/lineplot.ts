// A small SVG line plot (own code, no library): one or two series, horizontal reference lines, a
// marker at the current point and an optional bracket on the right edge (IG completeness gap).
import { h } from "./dom";
import { formatValue } from "./format";

export interface Series {
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  className: string;
  label: string;
}

export interface RefLine {
  y: number;
  label: string;
  className: string;
}

/** A shaded area between two curves over the same xs (e.g. an estimate +- 2 standard errors). */
export interface Band {
  xs: ArrayLike<number>;
  lo: ArrayLike<number>;
  hi: ArrayLike<number>;
  className: string;
}

export interface Bracket {
  y0: number;
  y1: number;
  label: string;
}

export interface PlotSpec {
  series: Series[];
  refs: RefLine[];
  /** Index into series[0] of the current point, or -1. */
  marker: number;
  bracket: Bracket | null;
  /** Shaded areas drawn under the series (optional). */
  bands?: Band[];
  xLabel: string;
  /** Fixed x domain (e.g. [0, 1] for alphas); default: the data's. */
  xDomain?: [number, number];
}

export interface Box {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface Scale {
  (v: number): number;
  domain: [number, number];
}

/** Linear map of [d0, d1] onto [r0, r1]; a degenerate domain is widened around its value. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  let lo = d0;
  let hi = d1;
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) [lo, hi] = [0, 1];
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.05 || 0.5;
    lo -= pad;
    hi += pad;
  }
  const f = ((v: number) => r0 + ((v - lo) / (hi - lo)) * (r1 - r0)) as Scale;
  f.domain = [lo, hi];
  return f;
}

/** [min, max] over finite values of several arrays; [0, 1] when there are none. */
export function extent(...arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

/** "x,y x,y ..." for an SVG polyline (non-finite points skipped). */
export function polylinePoints(xs: ArrayLike<number>, ys: ArrayLike<number>, sx: Scale, sy: Scale): string {
  const parts: string[] = [];
  const n = Math.min(xs.length, ys.length);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
    parts.push(`${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`);
  }
  return parts.join(" ");
}

/** "x,y ..." of a band's outline: along `hi` left to right, back along `lo` (non-finite points skipped). */
export function bandPoints(band: Band, sx: Scale, sy: Scale): string {
  const upper = polylinePoints(band.xs, band.hi, sx, sy);
  const n = Math.min(band.xs.length, band.lo.length);
  const lower: string[] = [];
  for (let i = n - 1; i >= 0; i--) {
    if (!Number.isFinite(band.xs[i]) || !Number.isFinite(band.lo[i]) || !Number.isFinite(band.hi[i])) continue;
    lower.push(`${sx(band.xs[i]).toFixed(1)},${sy(band.lo[i]).toFixed(1)}`);
  }
  return upper && lower.length ? `${upper} ${lower.join(" ")}` : "";
}

/**
 * Where the marker of point `index` of `series` goes, or null when there is no such point or either
 * coordinate is not finite (a NaN estimate early in a run): the marker is then hidden, never drawn at NaN.
 */
export function markerPoint(series: Series, scales: { sx: Scale; sy: Scale }, index: number): { x: number; y: number } | null {
  if (!(index >= 0 && index < Math.min(series.xs.length, series.ys.length))) return null;
  const x = scales.sx(series.xs[index]);
  const y = scales.sy(series.ys[index]);
  return Number.isFinite(x) && Number.isFinite(y) ? { x, y } : null;
}

/** The x and y scales of a spec in a box (y grows upwards; 6% headroom). */
export function plotScales(spec: PlotSpec, box: Box): { sx: Scale; sy: Scale } {
  const xd = spec.xDomain ?? extent(...spec.series.map((s) => s.xs));
  const extra = spec.refs.map((r) => r.y);
  if (spec.bracket) extra.push(spec.bracket.y0, spec.bracket.y1);
  const bands = (spec.bands ?? []).flatMap((b) => [b.lo, b.hi]);
  let [y0, y1] = extent(...spec.series.map((s) => s.ys), ...bands, extra);
  const pad = (y1 - y0) * 0.06;
  y0 = y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad; // non-negative data keeps 0 as its floor
  y1 += pad;
  return {
    sx: linearScale(xd[0], xd[1], box.left, box.width - box.right),
    sy: linearScale(y0, y1, box.height - box.bottom, box.top),
  };
}

const SVG = "http://www.w3.org/2000/svg";

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export interface LinePlot {
  el: HTMLElement;
  /** Redraw everything (data changed). */
  draw(spec: PlotSpec): void;
  /** Move the marker only (frame changed). */
  mark(index: number): void;
}

export function createLinePlot(box: Box = { width: 300, height: 150, left: 44, right: 56, top: 10, bottom: 26 }): LinePlot {
  const svg = s("svg", { viewBox: `0 0 ${box.width} ${box.height}`, width: box.width, height: box.height, role: "img" });
  const el = h("div", "xw-lineplot");
  el.append(svg);
  let current: PlotSpec | null = null;
  let scales: { sx: Scale; sy: Scale } | null = null;
  const marker = s("circle", { class: "xw-lineplot-marker", r: 4, cx: -10, cy: -10 });
  const cursor = s("line", { class: "xw-lineplot-cursor", x1: -10, x2: -10, y1: box.top, y2: box.height - box.bottom });

  function draw(spec: PlotSpec): void {
    current = spec;
    svg.replaceChildren();
    scales = plotScales(spec, box);
    const { sx, sy } = scales;
    const [x0, x1] = sx.domain;
    const [y0, y1] = sy.domain;
    const bottom = box.height - box.bottom;
    const right = box.width - box.right;
    svg.append(
      s("rect", { class: "xw-lineplot-frame", x: box.left, y: box.top, width: right - box.left, height: bottom - box.top }),
      s("text", { class: "xw-lineplot-tick", x: box.left, y: bottom + 12, "text-anchor": "start" }, formatValue(x0)),
      s("text", { class: "xw-lineplot-tick", x: right, y: bottom + 12, "text-anchor": "end" }, formatValue(x1)),
      s("text", { class: "xw-lineplot-axis", x: (box.left + right) / 2, y: bottom + 22, "text-anchor": "middle" }, spec.xLabel),
      s("text", { class: "xw-lineplot-tick", x: box.left - 3, y: box.top + 8, "text-anchor": "end" }, formatValue(y1)),
      s("text", { class: "xw-lineplot-tick", x: box.left - 3, y: bottom, "text-anchor": "end" }, formatValue(y0)),
      cursor,
    );
    for (const r of spec.refs) {
      if (!Number.isFinite(r.y)) continue;
      const y = sy(r.y);
      svg.append(
        s("line", { class: `xw-lineplot-ref ${r.className}`, x1: box.left, x2: right, y1: y, y2: y }),
        s("text", { class: "xw-lineplot-label", x: box.left + 3, y: y - 3 }, r.label),
      );
    }
    for (const band of spec.bands ?? []) {
      svg.append(s("polygon", { class: `xw-lineplot-band ${band.className}`, points: bandPoints(band, sx, sy) }));
    }
    for (const series of spec.series) {
      svg.append(s("polyline", { class: `xw-lineplot-line ${series.className}`, points: polylinePoints(series.xs, series.ys, sx, sy) }));
    }
    if (spec.bracket && Number.isFinite(spec.bracket.y0) && Number.isFinite(spec.bracket.y1)) {
      const b = spec.bracket;
      const x = right + 6;
      const ya = sy(b.y0);
      const yb = sy(b.y1);
      svg.append(
        s("path", { class: "xw-lineplot-bracket", d: `M${x - 4},${ya} H${x} V${yb} H${x - 4}` }),
        s("text", { class: "xw-lineplot-label xw-gap-label", x: x + 3, y: (ya + yb) / 2 + 3 }, b.label),
      );
    }
    svg.append(marker);
    mark(spec.marker);
  }

  function mark(index: number): void {
    if (!current || !scales || current.series.length === 0) return;
    const point = markerPoint(current.series[0], scales, index);
    if (!point) {
      marker.setAttribute("cx", "-10");
      cursor.setAttribute("x1", "-10");
      cursor.setAttribute("x2", "-10");
      return;
    }
    marker.setAttribute("cx", point.x.toFixed(1));
    marker.setAttribute("cy", point.y.toFixed(1));
    cursor.setAttribute("x1", point.x.toFixed(1));
    cursor.setAttribute("x2", point.x.toFixed(1));
    el.dataset.marker = String(index);
  }

  return { el, draw, mark };
}
