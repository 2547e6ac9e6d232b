// Force-plot geometry (pure; xaiwidgets/widgets/forcefallback.py holds the same rule).
//
// One instance with base value b and contributions c: end = b + sum(c). Positive contributions stack
// leftwards from `end` (largest nearest), negative ones rightwards, so on the value axis
//   sum(widths of up arrows) - sum(widths of down arrows) = end - b.
// For SHAP values end = f(x) (efficiency); when the output given differs (e.g. an IG completeness gap)
// both are marked.

export interface Segment {
  /** Feature index. */
  index: number;
  /** Contribution (signed). */
  value: number;
  /** Left and right ends on the value axis. */
  x0: number;
  x1: number;
}

export interface ForceLayout {
  base: number;
  /** base + sum of contributions: where the up and down arrows meet. */
  end: number;
  /** The model output as given (NaN when unknown). */
  output: number;
  up: Segment[];
  down: Segment[];
  /** Value-axis extent covering every arrow, the base and the output. */
  lo: number;
  hi: number;
}

export function forceLayout(values: ArrayLike<number>, base: number, output = NaN): ForceLayout {
  let sum = 0;
  const pos: number[] = [];
  const neg: number[] = [];
  for (let j = 0; j < values.length; j++) {
    const v = values[j];
    if (!Number.isFinite(v)) continue;
    sum += v;
    if (v > 0) pos.push(j);
    else if (v < 0) neg.push(j);
  }
  pos.sort((a, b) => values[b] - values[a] || a - b);
  neg.sort((a, b) => values[a] - values[b] || a - b);
  const end = base + sum;
  const up: Segment[] = [];
  let x = end;
  for (const j of pos) {
    up.push({ index: j, value: values[j], x0: x - values[j], x1: x });
    x -= values[j];
  }
  const left = x;
  const down: Segment[] = [];
  x = end;
  for (const j of neg) {
    down.push({ index: j, value: values[j], x0: x, x1: x - values[j] });
    x -= values[j];
  }
  const right = x;
  const marks = [left, right, base, end, ...(Number.isFinite(output) ? [output] : [])];
  return { base, end, output, up, down, lo: Math.min(...marks), hi: Math.max(...marks) };
}

export interface LabelItem {
  /** Centre (px). */
  x: number;
  /** Width (px). */
  width: number;
}

/**
 * Greedy label placement, items in priority order: each goes to the first of `rows` rows where it
 * overlaps no label already there (with `gap` px between); -1 when none has room. Centres are clamped
 * so labels stay inside [minX, maxX]; the returned `x` is the clamped centre.
 */
export function placeLabels(
  items: LabelItem[],
  minX: number,
  maxX: number,
  rows = 2,
  gap = 6,
): { row: number; x: number }[] {
  const taken: [number, number][][] = Array.from({ length: rows }, () => []);
  return items.map((it) => {
    const half = it.width / 2;
    const x = Math.max(minX + half, Math.min(maxX - half, it.x));
    const a = x - half;
    const b = x + half;
    if (it.width > maxX - minX) return { row: -1, x };
    for (let r = 0; r < rows; r++) {
      if (taken[r].every(([p, q]) => b + gap <= p || a >= q + gap)) {
        taken[r].push([a, b]);
        return { row: r, x };
      }
    }
    return { row: -1, x };
  });
}

export type OrderKind = "similarity" | "output" | "original";

/** Display order of instances: the kernel's similarity order, by output (ascending), or as given. */
export function instanceOrder(kind: string, output: ArrayLike<number>, similarity: ArrayLike<number> | null): number[] {
  const n = output.length;
  const plain = Array.from({ length: n }, (_, i) => i);
  if (kind === "output") return plain.sort((a, b) => output[a] - output[b] || a - b);
  if (kind === "similarity" && similarity && similarity.length === n) {
    const seen = new Set<number>();
    const out = Array.from(similarity, Number);
    if (out.every((i) => Number.isInteger(i) && i >= 0 && i < n && !seen.has(i) && seen.add(i))) return out;
  }
  return plain;
}

/** Features by mean |contribution| over the instances, largest first (they stack nearest the output). */
export function featureOrder(values: ArrayLike<number>, n: number, d: number): number[] {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += Math.abs(values[i * d + j]) || 0;
  return Array.from({ length: d }, (_, j) => j).sort((a, b) => mean[b] - mean[a] || a - b);
}

export interface Band {
  feature: number;
  /** "up": a positive contribution, drawn below the output line; "down": above it. */
  kind: "up" | "down";
  /** Per display position: the band's two edges on the value axis (lo <= hi). */
  lo: Float64Array;
  hi: Float64Array;
}

/**
 * The stacked (multi-instance) form: for each display position k (instance order[k]) the up stack runs
 * from end_k down to end_k - P_k and the down stack from end_k up to end_k + N_k, features in the order
 * `features`; end_k = base_k + sum of contributions. Bands with no thickness anywhere are dropped.
 */
export function stackBands(
  values: ArrayLike<number>,
  d: number,
  base: ArrayLike<number>,
  order: number[],
  features: number[],
): { bands: Band[]; end: Float64Array; lo: number; hi: number } {
  const m = order.length;
  const end = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const i = order[k];
    let s = Number(base[i]) || 0;
    for (let j = 0; j < d; j++) s += Number.isFinite(values[i * d + j]) ? values[i * d + j] : 0;
    end[k] = s;
  }
  const upEdge = Float64Array.from(end);
  const downEdge = Float64Array.from(end);
  const bands: Band[] = [];
  for (const j of features) {
    const up: Band = { feature: j, kind: "up", lo: new Float64Array(m), hi: new Float64Array(m) };
    const down: Band = { feature: j, kind: "down", lo: new Float64Array(m), hi: new Float64Array(m) };
    let anyUp = false;
    let anyDown = false;
    for (let k = 0; k < m; k++) {
      const v = values[order[k] * d + j];
      const p = v > 0 ? v : 0;
      const q = v < 0 ? -v : 0;
      up.hi[k] = upEdge[k];
      up.lo[k] = upEdge[k] - p;
      upEdge[k] -= p;
      down.lo[k] = downEdge[k];
      down.hi[k] = downEdge[k] + q;
      downEdge[k] += q;
      anyUp ||= p > 0;
      anyDown ||= q > 0;
    }
    if (anyUp) bands.push(up);
    if (anyDown) bands.push(down);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < m; k++) {
    lo = Math.min(lo, upEdge[k], Number(base[order[k]]));
    hi = Math.max(hi, downEdge[k], Number(base[order[k]]));
  }
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  return { bands, end, lo, hi };
}
