// A decoded 2-D heatmap with cached statistics (range, percentiles) for the overlay.
import { decodeArray } from "./arrays";
import type { ArrayDict } from "./model";
import { levelValues, percentile, percentileAbs, percentileOfCodes } from "./quantize";

export interface ScalarMap {
  width: number;
  height: number;
  /** Values, row-major (dequantised when the map came as uint8 with vmin/vmax). */
  values: Float32Array;
  /** Quantisation step (vmax - vmin) / 255, or 0 for float maps. */
  step: number;
  min: number;
  max: number;
  /** Cached percentile (0..100) of v, or of |v| when `abs`. */
  percentile(p: number, abs: boolean): number;
}

/** (H, W), (1, H, W) or (H, W, 1) → [H, W]. */
function planeShape(shape: number[]): [number, number] {
  if (shape.length === 2) return [shape[0], shape[1]];
  if (shape.length === 3 && shape[0] === 1) return [shape[1], shape[2]];
  if (shape.length === 3 && shape[2] === 1) return [shape[0], shape[1]];
  throw new Error(`xaiwidgets: heatmap must be 2-D, got shape [${shape.join(", ")}]`);
}

export function toScalarMap(dict: ArrayDict): ScalarMap {
  const arr = decodeArray(dict);
  const [height, width] = planeShape(arr.shape);
  const quantised = arr.dtype === "uint8" && arr.vmin !== undefined && arr.vmax !== undefined;
  let values: Float32Array;
  let step = 0;
  let pct: (p: number, abs: boolean) => number;
  if (quantised) {
    const codes = arr.data as Uint8Array;
    const levels = levelValues(arr.vmin!, arr.vmax!);
    values = new Float32Array(codes.length);
    for (let i = 0; i < codes.length; i++) values[i] = levels[codes[i]];
    step = (arr.vmax! - arr.vmin!) / 255;
    pct = (p, abs) => percentileOfCodes(codes, levels, p, abs);
  } else {
    values = Float32Array.from(arr.data);
    pct = (p, abs) => (abs ? percentileAbs(values, p) : percentile(values, p));
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min)) min = max = 0;
  const cache = new Map<string, number>();
  return {
    width,
    height,
    values,
    step,
    min,
    max,
    percentile(p, abs) {
      const key = `${abs ? "a" : "v"}${p}`;
      let v = cache.get(key);
      if (v === undefined) {
        v = pct(p, abs);
        cache.set(key, v);
      }
      return v;
    },
  };
}

const maps = new WeakMap<object, ScalarMap>();

/** `toScalarMap`, memoised on the array dict object (a trait value is immutable until replaced). */
export function scalarMapOf(dict: ArrayDict): ScalarMap {
  let m = maps.get(dict);
  if (!m) {
    m = toScalarMap(dict);
    maps.set(dict, m);
  }
  return m;
}
