// Geometry of SHAP's plot family (pure). The orders, folds and colour ranges come precomputed from the
// kernel (xaiwidgets/analysis/shapplots.py); what depends on the row shown or on the pixels is here:
// the waterfall of one row (the same rule as analysis.shapplots.waterfall), the f(x) order of the
// heatmap, the swarm offsets of the beeswarm and the feature-value colours.
import { NEGATIVE, POSITIVE } from "./signed";

export interface WaterfallBar {
  /** Feature index; -1 for the "N other features" bar. */
  feature: number;
  value: number;
  start: number;
  end: number;
}

export interface Waterfall {
  bars: WaterfallBar[];
  /** Features folded into the last bar. */
  folded: number;
  base: number;
  /** base + sum of the row (where the top bar ends). */
  total: number;
}

/** One row: features by |value| (ties: lower index first), the smallest folded into one bar when there are
 * more than `maxDisplay`; the bottom bar starts at the base value, each bar starts where the one below ends. */
export function waterfallLayout(row: ArrayLike<number>, base: number, maxDisplay: number): Waterfall {
  const present: number[] = [];
  for (let j = 0; j < row.length; j++) if (Number.isFinite(row[j])) present.push(j);
  present.sort((a, b) => Math.abs(row[b]) - Math.abs(row[a]) || a - b);
  const foldAt = present.length > maxDisplay ? maxDisplay - 1 : present.length;
  const bars: WaterfallBar[] = present.slice(0, foldAt).map((j) => ({ feature: j, value: row[j], start: 0, end: 0 }));
  if (foldAt < present.length) {
    let rest = 0;
    for (const j of present.slice(foldAt)) rest += row[j];
    bars.push({ feature: -1, value: rest, start: 0, end: 0 });
  }
  let x = base;
  for (let k = bars.length - 1; k >= 0; k--) {
    bars[k].start = x;
    x += bars[k].value;
    bars[k].end = x;
  }
  return { bars, folded: present.length - foldAt, base, total: x };
}

/** Rows by output, largest first (ties: lower index first). */
export function outputOrder(output: ArrayLike<number>): number[] {
  return Array.from({ length: output.length }, (_, i) => i).sort((a, b) => output[b] - output[a] || a - b);
}

/**
 * Vertical offsets (in units of one dot step, centred on 0) that stack dots with nearby x into a swarm:
 * x is cut into `bins` bins over its range; within a bin, dots (in index order) go 0, +1, -1, +2, -2, ...
 * (shap's beeswarm layering, without its random order).
 */
export function swarmOffsets(xs: ArrayLike<number>, bins = 100): Int32Array {
  const n = xs.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(xs[i])) continue;
    lo = Math.min(lo, xs[i]);
    hi = Math.max(hi, xs[i]);
  }
  const out = new Int32Array(n);
  const layer = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(xs[i])) continue;
    const q = Math.round((bins * (xs[i] - lo)) / (hi - lo + 1e-8));
    const l = layer.get(q) ?? 0;
    layer.set(q, l + 1);
    out[i] = Math.ceil(l / 2) * (l % 2 ? 1 : -1);
  }
  return out;
}

/** Colour of a feature value in [lo, hi] (clamped): shap's blue (low) to red (high) through purple; grey
 * for a missing value or range. */
export function featureColor(v: number, lo: number, hi: number): [number, number, number] {
  if (!Number.isFinite(v) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [150, 150, 150];
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0.5;
  return [0, 1, 2].map((c) => Math.round(NEGATIVE[c] + (POSITIVE[c] - NEGATIVE[c]) * t)) as [number, number, number];
}

/** Signed colour of an attribution for the heatmap: blue below zero, red above, mixed with the background
 * `bg` by |v| / clip. */
export function signedCell(v: number, clip: number, bg: readonly [number, number, number]): [number, number, number] {
  if (!Number.isFinite(v) || !(clip > 0)) return [bg[0], bg[1], bg[2]];
  const c = v < 0 ? NEGATIVE : POSITIVE;
  const a = Math.min(1, Math.abs(v) / clip);
  return [0, 1, 2].map((k) => Math.round(bg[k] + (c[k] - bg[k]) * a)) as [number, number, number];
}

/** A linear map from [d0, d1] to [r0, r1] (a degenerate domain maps to the middle). */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return (v) => (span ? r0 + ((v - d0) / span) * (r1 - r0) : (r0 + r1) / 2);
}

/** [lo, hi] of finite values with a 5% pad (and around 0 +-0.5 when degenerate). */
export function paddedExtent(...arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) { lo = Math.min(lo, a[i]); hi = Math.max(hi, a[i]); }
  if (!Number.isFinite(lo)) return [-0.5, 0.5];
  const pad = (hi - lo) * 0.05 || Math.max(Math.abs(lo) * 0.05, 0.5);
  return [lo - pad, hi + pad];
}

/** Index of the point nearest to (px, py) within `radius` px, or -1 (points in a uniform grid of cells). */
export class PointIndex {
  private cells = new Map<number, number[]>();
  constructor(private xs: Float32Array, private ys: Float32Array, private cell = 8) {
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i])) continue;
      const key = this.key(Math.floor(xs[i] / cell), Math.floor(ys[i] / cell));
      const list = this.cells.get(key);
      if (list) list.push(i);
      else this.cells.set(key, [i]);
    }
  }
  private key(cx: number, cy: number): number {
    return cx * 100003 + cy;
  }
  nearest(px: number, py: number, radius = 6): number {
    const cx = Math.floor(px / this.cell);
    const cy = Math.floor(py / this.cell);
    let best = -1;
    let bestD = radius * radius;
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      for (const i of this.cells.get(this.key(cx + dx, cy + dy)) ?? []) {
        const d = (this.xs[i] - px) ** 2 + (this.ys[i] - py) ** 2;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }
  /** Points inside the rectangle. */
  within(x0: number, y0: number, x1: number, y1: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.xs.length; i++) {
      if (this.xs[i] >= x0 && this.xs[i] <= x1 && this.ys[i] >= y0 && this.ys[i] <= y1) out.push(i);
    }
    return out;
  }
}
