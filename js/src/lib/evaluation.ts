// EvaluationView payloads (docs/widget-protocol.md, "EvaluationView") decoded, and the pure pieces of
// the view: the curve point nearest the cursor, the thumbnail of a curve point, the leaderboard's best
// cells and sort order.
import { decodeArray, isArrayDict } from "./arrays";
import type { ArrayDict, JobTraits } from "./model";

export interface ModePayload {
  scores: ArrayDict;
  fractions: ArrayDict;
  auc: ArrayDict;
  output: string;
  thumbs: ArrayDict | null;
}

export interface CurvesPayload {
  methods: string[];
  modes: string[];
  n_inputs: number;
  labels: string[];
  thumb_steps: ArrayDict;
  state: string[];
  [mode: string]: unknown;
}

export interface Column {
  key: string;
  label: string;
  higher_is_better: boolean;
  description: string;
}

export interface LeaderboardPayload {
  methods: string[];
  columns: Column[];
  values: ArrayDict;
  errors: Record<string, string>;
}

export interface SanityPayload {
  methods: string[];
  steps: string[];
  kind: string;
  order: string;
  measure: string;
  maps: ArrayDict;
  peaks: ArrayDict;
  similarity: ArrayDict;
  threshold: number;
  score: ArrayDict;
  passed: boolean[];
}

export interface SweepPayload {
  method: string;
  param: string;
  metric: string;
  higher_is_better: boolean;
  labels: string[];
  x: ArrayDict | null;
  mean: ArrayDict;
  q25: ArrayDict;
  q75: ArrayDict;
  best: number;
}

export interface EvaluationTraits extends JobTraits {
  curves: CurvesPayload | Record<string, never>;
  leaderboard: LeaderboardPayload | Record<string, never>;
  sanity: SanityPayload | Record<string, never>;
  sweeps: SweepPayload[];
  sample: number;
  sort_column: string;
  sort_reverse: boolean;
  title: string;
  phase: string;
}

export interface Curve {
  xs: Float32Array;
  ys: Float32Array;
}

export interface Thumbs {
  data: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export interface ModeCurves {
  mode: string;
  output: string;
  /** points per curve (L + 1) */
  points: number;
  scores: Float32Array;
  fractions: Float32Array;
  auc: Float32Array;
  thumbs: Thumbs | null;
}

export interface Curves {
  methods: string[];
  nInputs: number;
  labels: string[];
  state: string[];
  thumbSteps: Int32Array;
  modes: ModeCurves[];
}

export function isCurvesPayload(x: unknown): x is CurvesPayload {
  return Boolean(x && typeof x === "object" && Array.isArray((x as CurvesPayload).methods) &&
    Array.isArray((x as CurvesPayload).modes));
}

function floats(dict: ArrayDict): Float32Array {
  const d = decodeArray(dict);
  if (!(d.data instanceof Float32Array)) throw new Error(`xaiwidgets: expected float32, got ${d.dtype}`);
  return d.data;
}

export function decodeCurves(p: CurvesPayload): Curves {
  const m = p.methods.length;
  const n = p.n_inputs;
  const modes = p.modes.map((mode): ModeCurves => {
    const mp = p[mode] as ModePayload;
    const s = decodeArray(mp.scores);
    if (s.shape.length !== 3 || s.shape[0] !== m || s.shape[1] !== n) {
      throw new Error(`xaiwidgets: ${mode} scores have shape [${s.shape.join(", ")}], expected [${m}, ${n}, K]`);
    }
    let thumbs: Thumbs | null = null;
    if (isArrayDict(mp.thumbs)) {
      const t = decodeArray(mp.thumbs); // (M, N, T, h, w, 3)
      if (t.shape.length !== 6 || t.shape[5] !== 3) throw new Error("xaiwidgets: thumbnails must be (M, N, T, h, w, 3)");
      thumbs = { data: t.data as Uint8Array, count: t.shape[2], height: t.shape[3], width: t.shape[4] };
    }
    return {
      mode, output: mp.output, points: s.shape[2], scores: s.data as Float32Array,
      fractions: floats(mp.fractions), auc: floats(mp.auc), thumbs,
    };
  });
  const steps = decodeArray(p.thumb_steps).data;
  return {
    methods: p.methods, nInputs: n, labels: p.labels ?? [], state: p.state ?? [],
    thumbSteps: steps instanceof Int32Array ? steps : Int32Array.from(steps), modes,
  };
}

/** The curve of method `m` on input `i` (views into the decoded arrays). */
export function curveOf(c: Curves, mc: ModeCurves, m: number, i: number): Curve {
  const k = mc.points;
  const o = (m * c.nInputs + i) * k;
  return { xs: mc.fractions.subarray(o, o + k), ys: mc.scores.subarray(o, o + k) };
}

export interface Hit {
  series: number;
  index: number;
  /** distance in pixels */
  distance: number;
}

/** The point nearest (px, py) over all curves (in pixels through `sx`, `sy`), or null when there is none
 * within `radius` pixels. Non-finite points are skipped. */
export function nearestPoint(
  curves: Curve[], sx: (v: number) => number, sy: (v: number) => number, px: number, py: number, radius = Infinity,
): Hit | null {
  let best: Hit | null = null;
  curves.forEach((c, s) => {
    const n = Math.min(c.xs.length, c.ys.length);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(c.xs[i]) || !Number.isFinite(c.ys[i])) continue;
      const d = Math.hypot(sx(c.xs[i]) - px, sy(c.ys[i]) - py);
      if (d <= radius && (best === null || d < best.distance)) best = { series: s, index: i, distance: d };
    }
  });
  return best;
}

/** Index into the thumbnail strip of curve point `k`: the thumbnail whose step is nearest (exact when every
 * point has one). -1 when there are none. */
export function thumbIndex(steps: ArrayLike<number>, k: number): number {
  let best = -1;
  let dist = Infinity;
  for (let t = 0; t < steps.length; t++) {
    const d = Math.abs(steps[t] - k);
    if (d < dist) {
      dist = d;
      best = t;
    }
  }
  return best;
}

/** RGB bytes (h * w * 3) of thumbnail `t` of method `m`, input `i`. */
export function thumbPixels(th: Thumbs, nInputs: number, m: number, i: number, t: number): Uint8Array {
  const size = th.height * th.width * 3;
  const o = ((m * nInputs + i) * th.count + t) * size;
  return th.data.subarray(o, o + size);
}

export function rgbToRGBA(rgb: Uint8Array, width: number, height: number): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    out[p * 4] = rgb[p * 3];
    out[p * 4 + 1] = rgb[p * 3 + 1];
    out[p * 4 + 2] = rgb[p * 3 + 2];
    out[p * 4 + 3] = 255;
  }
  return out;
}

// ----- leaderboard

export interface Board {
  methods: string[];
  columns: Column[];
  /** values[row][col], NaN where not computed */
  values: number[][];
  errors: Record<string, string>;
}

export function isLeaderboard(x: unknown): x is LeaderboardPayload {
  return Boolean(x && typeof x === "object" && Array.isArray((x as LeaderboardPayload).columns) &&
    isArrayDict((x as LeaderboardPayload).values));
}

export function decodeLeaderboard(p: LeaderboardPayload): Board {
  const d = decodeArray(p.values);
  const rows = p.methods.length;
  const cols = p.columns.length;
  if (d.data.length !== rows * cols) throw new Error(`xaiwidgets: leaderboard needs ${rows} x ${cols} values`);
  const values = p.methods.map((_, r) => Array.from(d.data.subarray(r * cols, (r + 1) * cols), Number));
  return { methods: p.methods, columns: p.columns, values, errors: p.errors ?? {} };
}

/** Decimals the leaderboard shows; values equal at this precision are ties. */
export const BOARD_DECIMALS = 3;

/** Per column, the rows holding the best finite value (by the column's direction): every row whose value,
 * as shown (BOARD_DECIMALS), equals the best one's (ties are all marked); [] when none is finite. */
export function bestRows(board: Board): number[][] {
  const shown = (v: number): number => Number(v.toFixed(BOARD_DECIMALS));
  return board.columns.map((col, c) => {
    let best = NaN;
    for (const row of board.values) {
      const v = row[c];
      if (!Number.isFinite(v)) continue;
      if (Number.isNaN(best) || (col.higher_is_better ? v > best : v < best)) best = v;
    }
    if (Number.isNaN(best)) return [];
    const target = shown(best);
    return board.values.flatMap((row, r) => (Number.isFinite(row[c]) && shown(row[c]) === target ? [r] : []));
  });
}

/** Row order for sorting by `column` (key): best first by the column's direction, `reverse` worst first;
 * NaN rows always last; stable. An unknown or empty column keeps the given order. */
export function sortRows(board: Board, column: string, reverse: boolean): number[] {
  const order = board.methods.map((_, r) => r);
  const c = board.columns.findIndex((col) => col.key === column);
  if (c < 0) return order;
  const sign = (board.columns[c].higher_is_better ? -1 : 1) * (reverse ? -1 : 1);
  return order.sort((a, b) => {
    const va = board.values[a][c];
    const vb = board.values[b][c];
    const fa = Number.isFinite(va);
    const fb = Number.isFinite(vb);
    if (!fa || !fb) return fa === fb ? a - b : fa ? -1 : 1;
    return va === vb ? a - b : sign * (va - vb);
  });
}

/** The next sort state after a click on `column`'s header: a new column sorts best first, the same one
 * flips. */
export function nextSort(current: string, reverse: boolean, column: string): { column: string; reverse: boolean } {
  return current === column ? { column, reverse: !reverse } : { column, reverse: false };
}

// ----- sanity strip

export interface Sanity {
  methods: string[];
  steps: string[];
  nInputs: number;
  height: number;
  width: number;
  maps: Uint8Array;
  similarity: Float32Array;
  score: Float32Array;
  passed: boolean[];
  threshold: number;
  measure: string;
  order: string;
}

export function isSanity(x: unknown): x is SanityPayload {
  return Boolean(x && typeof x === "object" && isArrayDict((x as SanityPayload).maps));
}

export function decodeSanity(p: SanityPayload): Sanity {
  const maps = decodeArray(p.maps); // (M, S, N, h, w)
  if (maps.shape.length !== 5) throw new Error("xaiwidgets: sanity maps must be (M, S, N, h, w)");
  const [m, s, n, height, width] = maps.shape;
  const sim = floats(p.similarity);
  if (sim.length !== m * s * n) throw new Error("xaiwidgets: sanity similarity must be (M, S, N)");
  return {
    methods: p.methods, steps: p.steps, nInputs: n, height, width, maps: maps.data as Uint8Array,
    similarity: sim, score: floats(p.score), passed: p.passed, threshold: p.threshold, measure: p.measure,
    order: p.order,
  };
}

export function sanityMap(s: Sanity, m: number, step: number, i: number): Uint8Array {
  const size = s.height * s.width;
  const o = ((m * s.steps.length + step) * s.nInputs + i) * size;
  return s.maps.subarray(o, o + size);
}

export function sanitySimilarity(s: Sanity, m: number, step: number, i: number): number {
  return s.similarity[(m * s.steps.length + step) * s.nInputs + i];
}

/** Short labels for randomised layers: the last two dotted parts ("block3.conv"). */
export function shortLayer(name: string): string {
  const parts = name.split(".");
  return parts.length <= 2 ? name : parts.slice(-2).join(".");
}
