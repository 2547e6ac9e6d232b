// DatasetExplorer's data side, pure functions: per-item metadata decoded from binary arrays, filtering and
// sorting into an order of rows, the virtual grid's visible range, the scatter's projection and brush.
import { decodeArray, isArrayDict } from "./arrays";
import type { ArrayDict } from "./model";

/** Per-item arrays, row order (`index[r]` is row r's dataset index). */
export interface Meta {
  n: number;
  total: number;
  index: Int32Array;
  label: Int32Array;
  pred: Int32Array;
  conf: Float32Array;
  correct: Uint8Array;
  loss: Float32Array;
  stat: Float32Array;
}

const EMPTY: Meta = {
  n: 0, total: 0, index: new Int32Array(0), label: new Int32Array(0), pred: new Int32Array(0),
  conf: new Float32Array(0), correct: new Uint8Array(0), loss: new Float32Array(0), stat: new Float32Array(0),
};

function column<T>(raw: Record<string, unknown>, key: string, n: number, ctor: { new (n: number): T }): T {
  const d = raw[key];
  if (!isArrayDict(d)) return new ctor(n);
  return decodeArray(d as ArrayDict).data as unknown as T;
}

/** The `meta` trait decoded (an empty Meta before the kernel filled it). */
export function decodeMeta(raw: unknown): Meta {
  if (!raw || typeof raw !== "object" || typeof (raw as { n?: unknown }).n !== "number") return EMPTY;
  const r = raw as Record<string, unknown>;
  const n = r.n as number;
  return {
    n, total: typeof r.total === "number" ? r.total : n,
    index: column(r, "index", n, Int32Array), label: column(r, "label", n, Int32Array),
    pred: column(r, "pred", n, Int32Array), conf: column(r, "conf", n, Float32Array),
    correct: column(r, "correct", n, Uint8Array), loss: column(r, "loss", n, Float32Array),
    stat: column(r, "stat", n, Float32Array),
  };
}

export type SortKey = "index" | "conf_asc" | "conf_desc" | "loss_desc" | "stat_desc" | "cluster";

export interface Filters {
  label: number; // -1: any
  pred: number; // -1: any
  correct: "any" | "correct" | "wrong";
  confMin: number;
  confMax: number;
  cluster: number; // -1: any
  /** Keep only these dataset indices (the brushed/selected items), or null. */
  only: Set<number> | null;
  sort: SortKey;
}

export const DEFAULT_FILTERS: Filters = {
  label: -1, pred: -1, correct: "any", confMin: 0, confMax: 1, cluster: -1, only: null, sort: "index",
};

/** Cluster of each row from a SpRAy result over some rows (-1 elsewhere). */
export function clusterOfRows(meta: Meta, indices: Int32Array | null, labels: ArrayLike<number> | null): Int16Array {
  const out = new Int16Array(meta.n).fill(-1);
  if (!indices || !labels) return out;
  const rowOf = rowLookup(meta);
  for (let i = 0; i < indices.length; i++) {
    const r = rowOf.get(indices[i]);
    if (r !== undefined) out[r] = labels[i];
  }
  return out;
}

/** Dataset index -> row. */
export function rowLookup(meta: Meta): Map<number, number> {
  const m = new Map<number, number>();
  for (let r = 0; r < meta.n; r++) m.set(meta.index[r], r);
  return m;
}

/** Whether row r passes every filter except `skip` (for the counts next to a filter's options). */
function passes(meta: Meta, cluster: Int16Array, f: Filters, r: number, skip = ""): boolean {
  if (skip !== "label" && f.label >= 0 && meta.label[r] !== f.label) return false;
  if (skip !== "pred" && f.pred >= 0 && meta.pred[r] !== f.pred) return false;
  if (skip !== "correct" && f.correct !== "any" && (meta.correct[r] === 1) !== (f.correct === "correct")) return false;
  const c = meta.conf[r];
  if (skip !== "conf" && (c < f.confMin || c > f.confMax)) return false;
  if (skip !== "cluster" && f.cluster >= 0 && cluster[r] !== f.cluster) return false;
  if (skip !== "only" && f.only && !f.only.has(meta.index[r])) return false;
  return true;
}

/** Rows passing the filters, in the chosen order (ties by dataset index; NaN last). */
export function filterRows(meta: Meta, cluster: Int16Array, f: Filters): Int32Array {
  const rows = new Int32Array(meta.n);
  let k = 0;
  for (let r = 0; r < meta.n; r++) if (passes(meta, cluster, f, r)) rows[k++] = r;
  const out = rows.slice(0, k);
  const key = sortKey(meta, cluster, f.sort);
  if (key) {
    const keys = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      const v = key(out[i]);
      keys[i] = Number.isNaN(v) ? Infinity : v;
    }
    const order = Array.from({ length: k }, (_, i) => i);
    order.sort((a, b) => keys[a] - keys[b] || meta.index[out[a]] - meta.index[out[b]]);
    return Int32Array.from(order, (i) => out[i]);
  }
  return out;
}

function sortKey(meta: Meta, cluster: Int16Array, sort: SortKey): ((r: number) => number) | null {
  switch (sort) {
    case "conf_asc": return (r) => meta.conf[r];
    case "conf_desc": return (r) => -meta.conf[r];
    case "loss_desc": return (r) => -meta.loss[r];
    case "stat_desc": return (r) => -meta.stat[r];
    case "cluster": return (r) => (cluster[r] < 0 ? NaN : cluster[r]);
    default: return null;
  }
}

/** How many rows pass every filter but `skip`, per value of `value(r)` (counts next to a filter's options). */
export function countBy(meta: Meta, cluster: Int16Array, f: Filters, skip: string, value: (r: number) => number): Map<number, number> {
  const out = new Map<number, number>();
  for (let r = 0; r < meta.n; r++) {
    if (!passes(meta, cluster, f, r, skip)) continue;
    const v = value(r);
    out.set(v, (out.get(v) ?? 0) + 1);
  }
  return out;
}

/** Grid geometry: which positions of the ordered rows are on screen (plus `overscan` rows each side). */
export interface GridRange {
  columns: number;
  first: number; // first position drawn
  last: number; // one past the last position drawn
  height: number; // total scroll height
}

export function gridRange(count: number, width: number, scrollTop: number, viewHeight: number,
  tileW: number, rowH: number, overscan = 1): GridRange {
  const columns = Math.max(1, Math.floor(width / tileW));
  const rows = Math.ceil(count / columns);
  const r0 = Math.max(0, Math.floor(scrollTop / rowH) - overscan);
  const r1 = Math.min(rows, Math.ceil((scrollTop + viewHeight) / rowH) + overscan);
  return { columns, first: Math.min(count, r0 * columns), last: Math.min(count, r1 * columns), height: rows * rowH };
}

/** Points of a 2-D embedding scaled into a `size` x `size` canvas with a margin. */
export function projectPoints(xy: Float32Array, size: number, margin = 8): Float32Array {
  const n = xy.length / 2;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i], y = xy[2 * i + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const sx = (size - 2 * margin) / (x1 - x0 || 1);
  const sy = (size - 2 * margin) / (y1 - y0 || 1);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    out[2 * i] = margin + (xy[2 * i] - x0) * sx;
    out[2 * i + 1] = size - margin - (xy[2 * i + 1] - y0) * sy;
  }
  return out;
}

/** Point numbers inside the rectangle spanned by two corners. */
export function pointsInRect(px: Float32Array, ax: number, ay: number, bx: number, by: number): number[] {
  const x0 = Math.min(ax, bx), x1 = Math.max(ax, bx), y0 = Math.min(ay, by), y1 = Math.max(ay, by);
  const out: number[] = [];
  for (let i = 0; i < px.length / 2; i++) {
    const x = px[2 * i], y = px[2 * i + 1];
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i);
  }
  return out;
}

/** The nearest point within `radius` px, or -1. */
export function nearestPoint(px: Float32Array, x: number, y: number, radius = 6): number {
  let best = -1;
  let bd = radius * radius;
  for (let i = 0; i < px.length / 2; i++) {
    const dx = px[2 * i] - x, dy = px[2 * i + 1] - y;
    const d = dx * dx + dy * dy;
    if (d <= bd) {
      bd = d;
      best = i;
    }
  }
  return best;
}

/** Categorical colours for clusters (readable on light and dark backgrounds). */
export const CLUSTER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];

export function clusterColour(c: number): string {
  return c < 0 ? "#999999" : CLUSTER_COLOURS[c % CLUSTER_COLOURS.length];
}
