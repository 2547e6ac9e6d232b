// Scrubber frames (docs/widget-protocol.md, "ScrubberView"): the `frames` trait decoded once into
// per-frame scalar maps and images, plus the pure helpers the view uses on every frame change.
import { decodeArray, isArrayDict } from "./arrays";
import { toRGBAImage, type RGBAImage } from "./image";
import type { ArrayDict, DisplayTraits, JobTraits } from "./model";
import { toScalarMap, type ScalarMap } from "./scalarmap";

export type FrameKind = "ig_path" | "noise";

/** A quantised stack (K, h, w): per-frame ranges (`vmins`/`vmaxs`) or one range (`vmin`/`vmax`). */
export interface StackDict extends ArrayDict {
  vmins?: number[];
  vmaxs?: number[];
}

/** The `frames` trait as the kernel sends it. */
export interface FramesPayload {
  kind: FrameKind;
  count: number;
  expected: number;
  done: boolean;
  frame_index: number[];
  source_shape: [number, number];
  shape: [number, number];
  image: ArrayDict;
  baseline?: ArrayDict;
  noisy?: ArrayDict;
  gradients: StackDict;
  gradients_signed: boolean;
  accumulated: StackDict;
  accumulated_signed: boolean;
  partial_sums: ArrayDict;
  alphas?: ArrayDict;
  path_scores?: ArrayDict;
  convergence?: ArrayDict;
  f_input: number | null;
  f_baseline: number | null;
  delta: number | null;
  gap: number | null;
  attribution_sum: number | null;
  bytes: number;
}

export interface ScrubberTraits extends DisplayTraits, JobTraits {
  kind: string;
  frames: FramesPayload | Record<string, never>;
  frame: number;
  title: string;
}

/** Everything a frame change needs, decoded once per `frames` trait value. */
export interface FrameSet {
  kind: FrameKind;
  count: number;
  width: number;
  height: number;
  image: RGBAImage;
  baseline: RGBAImage | null;
  noisy: RGBAImage[];
  gradients: ScalarMap[];
  accumulated: ScalarMap[];
  gradientsSigned: boolean;
  accumulatedSigned: boolean;
  alphas: Float32Array | null;
  pathScores: Float32Array | null;
  partialSums: Float32Array;
  convergence: Float32Array | null;
  payload: FramesPayload;
}

export function isFramesPayload(x: unknown): x is FramesPayload {
  if (!x || typeof x !== "object") return false;
  const p = x as Partial<FramesPayload>;
  return typeof p.count === "number" && p.count > 0 && isArrayDict(p.gradients) && isArrayDict(p.accumulated) && isArrayDict(p.image);
}

/** Frame `k` of a (K, ...) array dict as its own array dict: a view into the same bytes (no copy). */
export function sliceFrame(stack: ArrayDict, k: number, vmin?: number, vmax?: number): ArrayDict {
  const arr = decodeArray({ dtype: stack.dtype, shape: stack.shape, data: stack.data });
  const [count, ...rest] = arr.shape;
  if (!(k >= 0 && k < count)) throw new Error(`xaiwidgets: frame ${k} out of range (0..${count - 1})`);
  const size = rest.reduce((a, b) => a * b, 1);
  const data = arr.data.subarray(k * size, (k + 1) * size);
  const out: ArrayDict = { dtype: arr.dtype, shape: rest, data };
  if (vmin !== undefined) out.vmin = vmin;
  if (vmax !== undefined) out.vmax = vmax;
  return out;
}

/** Frame k's range in a stack: its own (`vmins[k]`, `vmaxs[k]`) or the stack's global one. */
export function frameRange(stack: StackDict, k: number): [number, number] {
  if (Array.isArray(stack.vmins) && Array.isArray(stack.vmaxs)) return [Number(stack.vmins[k]), Number(stack.vmaxs[k])];
  if (typeof stack.vmin === "number" && typeof stack.vmax === "number") return [stack.vmin, stack.vmax];
  throw new Error("xaiwidgets: a quantised frame stack needs vmin/vmax or vmins/vmaxs");
}

export function stackMaps(stack: StackDict): ScalarMap[] {
  const count = stack.shape[0];
  const maps: ScalarMap[] = [];
  for (let k = 0; k < count; k++) {
    const [lo, hi] = frameRange(stack, k);
    maps.push(toScalarMap(sliceFrame(stack, k, lo, hi)));
  }
  return maps;
}

const floats = (d: ArrayDict | undefined): Float32Array | null =>
  isArrayDict(d) ? Float32Array.from(decodeArray(d).data) : null;

/** Decode the whole payload once (maps dequantised, images expanded to RGBA). */
export function decodeFrames(p: FramesPayload): FrameSet {
  const gradients = stackMaps(p.gradients);
  const accumulated = stackMaps(p.accumulated);
  const image = toRGBAImage(p.image);
  const count = Math.min(p.count, gradients.length, accumulated.length);
  const noisy: RGBAImage[] = [];
  if (p.kind === "noise" && isArrayDict(p.noisy)) {
    for (let k = 0; k < count; k++) noisy.push(toRGBAImage(sliceFrame(p.noisy, k)));
  }
  return {
    kind: p.kind === "noise" ? "noise" : "ig_path",
    count,
    width: image.width,
    height: image.height,
    image,
    baseline: isArrayDict(p.baseline) ? toRGBAImage(p.baseline) : null,
    noisy,
    gradients,
    accumulated,
    gradientsSigned: Boolean(p.gradients_signed),
    accumulatedSigned: Boolean(p.accumulated_signed),
    alphas: floats(p.alphas),
    pathScores: floats(p.path_scores),
    partialSums: floats(p.partial_sums) ?? new Float32Array(count),
    convergence: floats(p.convergence),
    payload: p,
  };
}

/** The path input at `alpha`: baseline + alpha * (input - baseline), per channel, into `out` (RGBA). */
export function blendRGBA(
  input: ArrayLike<number>,
  baseline: ArrayLike<number>,
  alpha: number,
  out: Uint8ClampedArray,
): Uint8ClampedArray {
  const n = Math.min(input.length, baseline.length, out.length);
  for (let i = 0; i < n; i += 4) {
    out[i] = baseline[i] + alpha * (input[i] - baseline[i]);
    out[i + 1] = baseline[i + 1] + alpha * (input[i + 1] - baseline[i + 1]);
    out[i + 2] = baseline[i + 2] + alpha * (input[i + 2] - baseline[i + 2]);
    out[i + 3] = 255;
  }
  return out;
}

/** The frame shown after `current` while playing; -1 when playback should stop (end, no loop). */
export function nextFrame(current: number, count: number, loop = false): number {
  if (count <= 0) return -1;
  if (current + 1 < count) return Math.max(0, current + 1);
  return loop ? 0 : -1;
}

/** Clamp a requested frame; negative (the `frame` trait's -1) means "the latest". */
export function resolveFrame(requested: number, count: number): number {
  if (count <= 0) return 0;
  if (!Number.isFinite(requested) || requested < 0) return count - 1;
  return Math.min(count - 1, Math.floor(requested));
}

/** Label of frame k: "α = 0.42 · step 12/50" (IG) or "sample 3/50" (noise). */
export function frameLabel(set: Pick<FrameSet, "kind" | "alphas" | "count">, k: number, expected = 0): string {
  const total = Math.max(set.count, expected);
  if (set.kind === "ig_path" && set.alphas) return `α = ${set.alphas[k].toFixed(3)} · step ${k + 1}/${total}`;
  return `sample ${k + 1}/${total}`;
}
