// Running estimates (docs/widget-protocol.md, "EstimateView"): the `estimate` trait decoded once into
// per-frame maps, plus the pure helpers the view uses (stderr scale, bands, guides, labels).
import { decodeArray, isArrayDict } from "./arrays";
import { getLUT } from "./colormaps";
import { formatPercent, formatValue } from "./format";
import { stackMaps, type StackDict } from "./frames";
import { toRGBAImage, type RGBAImage } from "./image";
import type { ArrayDict, DisplayTraits, JobTraits } from "./model";
import type { OverlayStyle } from "./overlay";
import type { ScalarMap } from "./scalarmap";

export interface TrackDict {
  rank: number;
  x: number;
  y: number;
  values: ArrayDict;
  stderr: ArrayDict;
}

/** The `estimate` trait as the kernel sends it. */
export interface EstimatePayload {
  method: string;
  count: number;
  expected: number | null;
  done: boolean;
  cancelled: boolean;
  shape: [number, number];
  image: ArrayDict | null;
  values: StackDict;
  signed: boolean;
  n_samples: ArrayDict;
  has_stderr: boolean;
  stderr: StackDict | null;
  history: { n_samples: ArrayDict; mean_stderr: ArrayDict; mean_abs: ArrayDict; change: ArrayDict };
  tracks: { n_samples: ArrayDict; items: TrackDict[] };
  bytes: number;
}

export interface EstimateTraits extends DisplayTraits, JobTraits {
  estimate: EstimatePayload | Record<string, never>;
  frame: number;
  title: string;
}

export interface Track {
  rank: number;
  x: number;
  y: number;
  values: Float32Array;
  stderr: Float32Array;
}

/** Everything a frame change needs, decoded once per `estimate` value. */
export interface EstimateSet {
  count: number;
  width: number;
  height: number;
  image: RGBAImage | null;
  values: ScalarMap[];
  stderr: ScalarMap[] | null;
  /** Top of the standard-error scale, shared by every frame (so the map fades as the error shrinks). */
  stderrMax: number;
  nSamples: Float32Array;
  history: { nSamples: Float32Array; meanStderr: Float32Array; meanAbs: Float32Array; change: Float32Array };
  tracks: { nSamples: Float32Array; items: Track[] };
  payload: EstimatePayload;
}

export function isEstimatePayload(x: unknown): x is EstimatePayload {
  if (!x || typeof x !== "object") return false;
  const p = x as Partial<EstimatePayload>;
  return typeof p.count === "number" && p.count > 0 && isArrayDict(p.values) && isArrayDict(p.n_samples);
}

const floats = (d: ArrayDict | undefined | null): Float32Array =>
  isArrayDict(d) ? Float32Array.from(decodeArray(d).data) : new Float32Array(0);

export function decodeEstimate(p: EstimatePayload): EstimateSet {
  const values = stackMaps(p.values);
  const stderr = p.has_stderr && isArrayDict(p.stderr) ? stackMaps(p.stderr) : null;
  const [height, width] = p.shape;
  const count = Math.min(p.count, values.length, stderr ? stderr.length : Infinity);
  return {
    count,
    width,
    height,
    image: isArrayDict(p.image) ? toRGBAImage(p.image) : null,
    values,
    stderr,
    stderrMax: stderr && typeof p.stderr?.vmax === "number" ? p.stderr.vmax : 0,
    nSamples: floats(p.n_samples),
    history: {
      nSamples: floats(p.history?.n_samples),
      meanStderr: floats(p.history?.mean_stderr),
      meanAbs: floats(p.history?.mean_abs),
      change: floats(p.history?.change),
    },
    tracks: {
      nSamples: floats(p.tracks?.n_samples),
      items: (p.tracks?.items ?? []).map((t) => ({
        rank: t.rank, x: t.x, y: t.y, values: floats(t.values), stderr: floats(t.stderr),
      })),
    },
    payload: p,
  };
}

/** The standard-error map's style: sequential, one fixed scale [0, max] for every frame, drawn opaque. */
export function stderrStyle(max: number, d: Pick<DisplayTraits, "opacity">): OverlayStyle {
  return {
    lut: getLUT("inferno"),
    mode: "sequential",
    clip: max > 0 ? max : 1,
    lo: 0,
    t0: 0,
    t1: 1,
    opacity: Number.isFinite(d.opacity) ? d.opacity : 0.6,
    deadZone: 0,
    opaque: true,
  };
}

/** `values +- k * stderr` (NaN where the standard error is unknown). */
export function band(values: ArrayLike<number>, stderr: ArrayLike<number>, k = 2): { lo: Float32Array; hi: Float32Array } {
  const n = Math.min(values.length, stderr.length);
  const lo = new Float32Array(n);
  const hi = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    lo[i] = values[i] - k * stderr[i];
    hi[i] = values[i] + k * stderr[i];
  }
  return { lo, hi };
}

/** The Monte-Carlo rate through the first finite point: se_0 * sqrt(n_0 / n). */
export function sqrtGuide(ns: ArrayLike<number>, se: ArrayLike<number>): Float32Array {
  const out = new Float32Array(ns.length).fill(NaN);
  let i0 = -1;
  for (let i = 0; i < Math.min(ns.length, se.length); i++) {
    if (Number.isFinite(se[i]) && ns[i] > 0) {
      i0 = i;
      break;
    }
  }
  if (i0 < 0) return out;
  for (let i = i0; i < ns.length; i++) out[i] = se[i0] * Math.sqrt(ns[i0] / ns[i]);
  return out;
}

/** Index into the history of the estimate made after `n` samples (the last one with that count), or -1. */
export function historyIndex(history: ArrayLike<number>, n: number): number {
  for (let i = history.length - 1; i >= 0; i--) if (history[i] === n) return i;
  return -1;
}

/** "n = 480 / 1000 samples" (the total while it is known and not reached). */
export function samplesLabel(n: number, expected: number | null): string {
  return expected && expected > n ? `n = ${n} / ${expected} samples` : `n = ${n} samples`;
}

/** "mean standard error 0.0123 (4.1% of mean |estimate|)", or the LIME wording without one. */
export function errorLabel(meanStderr: number, meanAbs: number, change: number): string {
  if (Number.isFinite(meanStderr)) {
    const rel = meanAbs > 0 ? ` (${formatPercent(meanStderr / meanAbs)} of mean |estimate|)` : "";
    return `mean standard error ${formatValue(meanStderr)}${rel}`;
  }
  return Number.isFinite(change)
    ? `no standard error for this method; the last estimate moved ${formatPercent(change)}`
    : "no standard error for this method";
}
