// Per-method display defaults (docs/decisions.md, "Legible gradient maps"): the shared controls left on
// "auto" (clip_percentile null, alpha "auto", smoothing null) take the method's defaults from
// `available_methods[].display`; a value the user sets applies to every panel. Smoothing is for display
// only: the legend's range is always the unsmoothed map's.
import type { DisplayTraits } from "./model";
import type { ScalarMap } from "./scalarmap";
import { percentile, percentileAbs } from "./quantize";

export type AlphaMode = "linear" | "sqrt" | "flat";
export type Layout = "overlay" | "map" | "side";

export interface DisplayDefaults {
  clip_percentile?: number;
  alpha?: string;
  /** Gaussian sigma as a fraction of the map's side. */
  smoothing?: number;
  /** What the values are (the colour bar's label). */
  quantity?: string;
}

export interface ResolvedDisplay {
  colormap: string;
  opacity: number;
  absolute: boolean;
  clip_percentile: number;
  alpha: AlphaMode;
  smoothing: number;
  layout: Layout;
}

const ALPHAS: readonly string[] = ["linear", "sqrt", "flat"];
const LAYOUTS: readonly string[] = ["overlay", "map", "side"];

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

/** The display a panel draws with: the traits where set, else the method's defaults, else the plain rule. */
export function resolveDisplay(d: DisplayTraits, defaults?: DisplayDefaults): ResolvedDisplay {
  const alpha = d.alpha && d.alpha !== "auto" ? d.alpha : defaults?.alpha;
  const smoothing = finite(d.smoothing) ? d.smoothing : defaults?.smoothing;
  const clip = finite(d.clip_percentile) ? d.clip_percentile : defaults?.clip_percentile;
  return {
    colormap: d.colormap,
    opacity: d.opacity,
    absolute: d.absolute,
    clip_percentile: finite(clip) ? Math.min(100, Math.max(0, clip)) : 99.5,
    alpha: alpha && ALPHAS.includes(alpha) ? (alpha as AlphaMode) : "linear",
    smoothing: finite(smoothing) && smoothing > 0 ? smoothing : 0,
    layout: d.map_layout && LAYOUTS.includes(d.map_layout) ? (d.map_layout as Layout) : "overlay",
  };
}

/** A normalised 1-D Gaussian kernel of standard deviation `sigma` (in samples), radius 3 sigma. */
export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** Separable Gaussian blur with edge clamping; NaN stays NaN. */
export function blur(values: ArrayLike<number>, width: number, height: number, sigma: number): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(width * height);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let j = -r; j <= r; j++) s += k[j + r] * values[y * width + Math.min(width - 1, Math.max(0, x + j))];
      tmp[y * width + x] = s;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let j = -r; j <= r; j++) s += k[j + r] * tmp[Math.min(height - 1, Math.max(0, y + j)) * width + x];
      out[y * width + x] = s;
    }
  }
  return out;
}

const smoothed = new WeakMap<ScalarMap, Map<number, ScalarMap>>();

/**
 * The map blurred with sigma = `fraction` x its longer side (memoised). Below half a pixel it is the map
 * itself. The blurred map keeps the original's range (`min`, `max`) for the legend's "range" line; its
 * percentiles are its own, so the colour saturates where the displayed values do.
 */
export function smoothMap(map: ScalarMap, fraction: number): ScalarMap {
  const sigma = fraction * Math.max(map.width, map.height);
  if (!(sigma >= 0.5)) return map;
  let cache = smoothed.get(map);
  if (!cache) smoothed.set(map, (cache = new Map()));
  let m = cache.get(sigma);
  if (!m) {
    const values = blur(map.values, map.width, map.height, sigma);
    const pct = new Map<string, number>();
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    m = {
      width: map.width, height: map.height, values, step: 0, min, max,
      percentile(p, abs) {
        const key = `${abs ? "a" : "v"}${p}`;
        let v = pct.get(key);
        if (v === undefined) pct.set(key, (v = abs ? percentileAbs(values, p) : percentile(values, p)));
        return v;
      },
    };
    cache.set(sigma, m);
  }
  return m;
}
