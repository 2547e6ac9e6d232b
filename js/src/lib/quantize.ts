// uint8 quantisation of heatmaps (the JS half of xaiwidgets/widgets/buffers.py) and percentiles.
//   q = round((v - vmin) / (vmax - vmin) * 255), clipped;  v = vmin + q / 255 * (vmax - vmin)

export interface Quantized {
  data: Uint8Array;
  vmin: number;
  vmax: number;
}

/** The value each of the 256 levels stands for. */
export function levelValues(vmin: number, vmax: number): Float32Array {
  const out = new Float32Array(256);
  const span = vmax - vmin;
  for (let q = 0; q < 256; q++) out[q] = vmin + (q / 255) * span;
  return out;
}

export function dequantize(q: ArrayLike<number>, vmin: number, vmax: number): Float32Array {
  const levels = levelValues(vmin, vmax);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = levels[q[i] & 255];
  return out;
}

/**
 * Quantise to uint8. Without an explicit range, a map with both signs gets the symmetric range
 * [-max|v|, max|v|] and any other map [min, max]. A constant map gets vmin == vmax and q = 0.
 */
export function quantize(values: ArrayLike<number>, vmin?: number, vmax?: number): Quantized {
  let lo = vmin;
  let hi = vmax;
  if (lo === undefined || hi === undefined) {
    let mn = Infinity;
    let mx = -Infinity;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (!Number.isFinite(mn)) mn = mx = 0;
    if (mn < 0 && mx > 0) {
      const m = Math.max(-mn, mx);
      [mn, mx] = [-m, m];
    }
    lo ??= mn;
    hi ??= mx;
  }
  const data = new Uint8Array(values.length);
  const span = hi - lo;
  if (span > 0) {
    for (let i = 0; i < values.length; i++) {
      const q = Math.round(((values[i] - lo) / span) * 255);
      data[i] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
  }
  return { data, vmin: lo, vmax: hi };
}

/** Percentile (0..100) of sorted values, linear interpolation between order statistics (numpy default). */
function fromSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const pos = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const i = Math.floor(pos);
  const j = Math.min(n - 1, i + 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (pos - i);
}

export function percentile(values: ArrayLike<number>, p: number): number {
  return fromSorted(Float64Array.from(values).sort(), p);
}

export function percentileAbs(values: ArrayLike<number>, p: number): number {
  return fromSorted(Float64Array.from(values, Math.abs).sort(), p);
}

/**
 * Same as `percentile` over `levels[q]` for every q in `codes`, via a 256-bin histogram
 * (exact, O(n)); `abs` takes |levels[q]|.
 */
export function percentileOfCodes(codes: Uint8Array, levels: Float32Array, p: number, abs: boolean): number {
  const n = codes.length;
  if (n === 0) return 0;
  const counts = new Uint32Array(256);
  for (let i = 0; i < n; i++) counts[codes[i]]++;
  const value = (q: number): number => (abs ? Math.abs(levels[q]) : levels[q]);
  const order = Array.from({ length: 256 }, (_, q) => q)
    .filter((q) => counts[q] > 0)
    .sort((a, b) => value(a) - value(b));
  // Value of the k-th order statistic (0-based).
  const at = (k: number): number => {
    let seen = 0;
    for (const q of order) {
      seen += counts[q];
      if (k < seen) return value(q);
    }
    return value(order[order.length - 1]);
  };
  const pos = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const i = Math.floor(pos);
  const lo = at(i);
  const hi = at(Math.min(n - 1, i + 1));
  return lo + (hi - lo) * (pos - i);
}
