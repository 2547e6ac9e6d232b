// The overlay rule (docs/widget-protocol.md, "Rendering") as pure functions, plus canvas drawing.
//   colour = LUT(position of v), alpha = opacity * m, m = normalised magnitude in [0, 1]:
//   |v| / clip for signed or absolute display, (v - lo) / (clip - lo) for sequential maps.
import { getLUT, resolveColormap, type LUT } from "./colormaps";
import type { RGBAImage } from "./image";
import type { AlphaMode } from "./display";
import type { DisplayTraits } from "./model";
import type { ScalarMap } from "./scalarmap";

export type Mode = "signed" | "absolute" | "sequential";

export interface OverlayStyle {
  lut: LUT;
  mode: Mode;
  /** Saturation point: |v| (signed, absolute) or v (sequential) where m reaches 1. */
  clip: number;
  /** Sequential floor, m = 0 (the map's minimum). */
  lo: number;
  /** Part of the LUT in use: position = t0 + (t1 - t0) * s. */
  t0: number;
  t1: number;
  opacity: number;
  /** |v| at or below this is zero. Zero is not on the symmetric uint8 grid; the nearest level is. */
  deadZone: number;
  /** Heatmap alone (no image): alpha 255. */
  opaque: boolean;
  /** alpha = opacity x m ("linear"), x sqrt(m) ("sqrt"), or opacity wherever m > 0 ("flat"); default linear. */
  alpha?: AlphaMode;
}

/** The overlay's alpha factor for a normalised magnitude m in [0, 1]. */
export function alphaOf(m: number, mode: AlphaMode): number {
  if (mode === "sqrt") return Math.sqrt(m);
  if (mode === "flat") return m > 0 ? 1 : 0;
  return m;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Write the RGBA of one value into out[o..o+3]. */
export function pixelRGBA(v: number, st: OverlayStyle, out: Uint8ClampedArray, o: number): void {
  let m = 0;
  let s = 0;
  if (Number.isNaN(v)) {
    out[o] = out[o + 1] = out[o + 2] = out[o + 3] = 0;
    return;
  }
  if (st.mode === "sequential") {
    const span = st.clip - st.lo;
    m = span > 0 ? clamp01((v - st.lo) / span) : 0;
    s = m;
  } else {
    const a = Math.abs(v);
    const zero = a <= st.deadZone || !(st.clip > 0);
    m = zero ? 0 : clamp01(a / st.clip);
    s = st.mode === "absolute" ? m : zero ? 0.5 : 0.5 + 0.5 * Math.max(-1, Math.min(1, v / st.clip));
  }
  const i = Math.round((st.t0 + (st.t1 - st.t0) * s) * 255) * 3;
  out[o] = st.lut[i];
  out[o + 1] = st.lut[i + 1];
  out[o + 2] = st.lut[i + 2];
  out[o + 3] = st.opaque ? 255 : Math.round(255 * clamp01(st.opacity) * alphaOf(m, st.alpha ?? "linear"));
}

/** Per-pixel RGBA of a whole map. */
export function colorize(values: ArrayLike<number>, st: OverlayStyle): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) pixelRGBA(values[i], st, out, i * 4);
  return out;
}

/** Reference "source-over" blend of an RGBA overlay onto an opaque RGBA image of the same size. */
export function composite(image: ArrayLike<number>, overlay: ArrayLike<number>): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(image.length);
  for (let i = 0; i < image.length; i += 4) {
    const a = overlay[i + 3] / 255;
    for (let c = 0; c < 3; c++) out[i + c] = Math.round(overlay[i + c] * a + image[i + c] * (1 - a));
    out[i + 3] = 255;
  }
  return out;
}

/** Resolve the display traits against one map into an OverlayStyle. */
export function overlayStyle(map: ScalarMap, d: DisplayTraits, signed: boolean, hasImage: boolean): OverlayStyle {
  const p = typeof d.clip_percentile === "number" && Number.isFinite(d.clip_percentile)
    ? Math.min(100, Math.max(0, d.clip_percentile)) : 99.5;
  const name = resolveColormap(d.colormap, signed && !d.absolute);
  const mode: Mode = d.absolute ? "absolute" : signed ? "signed" : "sequential";
  const deadZone = map.step * 0.51;
  let clip: number;
  let lo = 0;
  if (mode === "sequential") {
    lo = map.min;
    clip = map.percentile(p, false);
    if (!(clip > lo)) clip = map.max;
  } else {
    clip = map.percentile(p, true);
    if (!(clip > deadZone)) clip = Math.max(Math.abs(map.min), Math.abs(map.max));
  }
  // |v| on a diverging map uses its white-to-red half.
  const half = mode === "absolute" && name === "diverging";
  return {
    lut: getLUT(name),
    mode,
    clip,
    lo,
    t0: half ? 0.5 : 0,
    t1: 1,
    opacity: Number.isFinite(d.opacity) ? d.opacity : 0.6,
    deadZone,
    opaque: !hasImage,
    alpha: d.alpha === "sqrt" || d.alpha === "flat" ? d.alpha : "linear",
  };
}

function scratchCanvas(width: number, height: number, rgba: Uint8ClampedArray<ArrayBuffer>): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height;
  c.getContext("2d")!.putImageData(new ImageData(rgba, width, height), 0, 0);
  return c;
}

/**
 * Draw `image` (if any) and the map over it. The canvas takes the image size (else the map size);
 * a map of another size is scaled with the canvas' bilinear smoothing.
 */
export function drawOverlay(
  canvas: HTMLCanvasElement,
  image: RGBAImage | null,
  map: ScalarMap,
  style: OverlayStyle,
): void {
  const width = image ? image.width : map.width;
  const height = image ? image.height : map.height;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const heat = colorize(map.values, style);
  if (image) ctx.putImageData(new ImageData(image.rgba, width, height), 0, 0);
  else ctx.clearRect(0, 0, width, height);
  if (!image) {
    ctx.putImageData(new ImageData(heat, width, height), 0, 0);
    return;
  }
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "low"; // bilinear
  ctx.drawImage(scratchCanvas(map.width, map.height, heat), 0, 0, width, height);
}

/** Draw an image alone (dashboard thumbnail). */
export function drawImage(canvas: HTMLCanvasElement, image: RGBAImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d")?.putImageData(new ImageData(image.rgba, image.width, image.height), 0, 0);
}
