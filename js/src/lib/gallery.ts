// FeatureGallery payloads (docs/widget-protocol.md, "FeatureGallery") decoded into images and numbers,
// plus the pure helpers the view needs (activation colouring, the activation grid's layout, the
// dissection table's rows). No DOM here, so it is unit-tested in node.
import { decodeArray, isArrayDict } from "./arrays";
import { getLUT, type LUT } from "./colormaps";
import { sliceFrame } from "./frames";
import { toRGBAImage, type RGBAImage } from "./image";
import type { ArrayDict, JobTraits } from "./model";

export interface DetailPayload {
  channel: number;
  index: number;
  n_steps: number;
  done: boolean;
  value: number | null;
  frames: ArrayDict;
  frame_steps: ArrayDict;
  curve: ArrayDict;
  patches: ArrayDict | null;
  patch_values: ArrayDict | null;
  patch_images: ArrayDict | null;
  patch_boxes: ArrayDict | null;
  receptive_field: [number, number] | null;
  bytes: number;
}

export interface ActivationsPayload {
  index: number;
  image: ArrayDict;
  maps: ArrayDict;
  ranges: ArrayDict;
  mean: ArrayDict;
  signed: boolean;
}

export interface ThumbnailsPayload {
  count: number;
  images: ArrayDict;
}

export interface DissectionPayload {
  layer: string;
  concepts: string[];
  iou: ArrayDict;
  thresholds: ArrayDict;
  quantile: number;
}

export interface ConceptTest {
  index: number;
  score: number;
  p_value: number;
  significant: boolean;
  n_members: number;
  n_images: number;
}

export interface ConceptsPayload {
  layer: string;
  target: number;
  target_label: string;
  alpha: number;
  n_images: number;
  concepts: (ConceptTest & { patches: ArrayDict; images: ArrayDict })[];
  random: ConceptTest[];
}

type Empty = Record<string, never>;

export interface GalleryTraits extends JobTraits {
  layer: string;
  title: string;
  channels: number[];
  tiles: ArrayDict | Empty;
  objective: ArrayDict | Empty;
  step: number;
  n_steps: number;
  selected: number;
  detail: DetailPayload | Empty;
  frame: number;
  thumbnails: ThumbnailsPayload | Empty;
  activations: ActivationsPayload | Empty;
  dissection: DissectionPayload | Empty;
  concepts: ConceptsPayload | Empty;
  tab: string;
  phase: string;
}

/** A (K, h, w, 3) uint8 stack as K RGBA images (an empty list for anything else). */
export function decodeStack(dict: unknown): RGBAImage[] {
  if (!isArrayDict(dict) || dict.shape.length !== 4) return [];
  const out: RGBAImage[] = [];
  for (let k = 0; k < dict.shape[0]; k++) out.push(toRGBAImage(sliceFrame(dict, k)));
  return out;
}

/** A 1-D numeric array dict as numbers (empty when absent). */
export function decodeNumbers(dict: unknown): number[] {
  return isArrayDict(dict) ? Array.from(decodeArray(dict).data, Number) : [];
}

export interface Detail {
  channel: number;
  index: number;
  nSteps: number;
  done: boolean;
  value: number | null;
  frames: RGBAImage[];
  steps: number[];
  curve: Float32Array;
  patches: RGBAImage[];
  patchValues: number[];
  patchImages: number[];
  /** (x0, y0, x1, y1) per patch, in the data-set image's pixels. */
  patchBoxes: number[][];
  receptiveField: [number, number] | null;
}

export function isDetail(x: unknown): x is DetailPayload {
  if (!x || typeof x !== "object") return false;
  const d = x as Partial<DetailPayload>;
  return typeof d.channel === "number" && isArrayDict(d.frames) && isArrayDict(d.curve);
}

export function decodeDetail(p: DetailPayload): Detail {
  const boxes = isArrayDict(p.patch_boxes) ? decodeArray(p.patch_boxes).data : new Int32Array(0);
  const patchBoxes: number[][] = [];
  for (let i = 0; i + 3 < boxes.length; i += 4) patchBoxes.push([boxes[i], boxes[i + 1], boxes[i + 2], boxes[i + 3]]);
  return {
    channel: p.channel,
    index: p.index,
    nSteps: p.n_steps,
    done: Boolean(p.done),
    value: typeof p.value === "number" ? p.value : null,
    frames: decodeStack(p.frames),
    steps: decodeNumbers(p.frame_steps),
    curve: Float32Array.from(decodeNumbers(p.curve)),
    patches: decodeStack(p.patches),
    patchValues: decodeNumbers(p.patch_values),
    patchImages: decodeNumbers(p.patch_images),
    patchBoxes,
    receptiveField: Array.isArray(p.receptive_field) ? [p.receptive_field[0], p.receptive_field[1]] : null,
  };
}

/** Index into the objective curve (one value per step, step s at s - 1) of the frame taken at `step`. */
export function curveIndex(step: number, length: number): number {
  if (length <= 0) return -1;
  return Math.max(0, Math.min(length - 1, step - 1));
}

// ----- activation grid ------------------------------------------------------------------------------

export interface Activations {
  index: number;
  image: RGBAImage;
  /** Channel c's uint8 codes: codes.subarray(c * h * w, (c + 1) * h * w). */
  codes: Uint8Array;
  channels: number;
  height: number;
  width: number;
  ranges: Float32Array;
  mean: number[];
  signed: boolean;
}

export function isActivations(x: unknown): x is ActivationsPayload {
  if (!x || typeof x !== "object") return false;
  const a = x as Partial<ActivationsPayload>;
  return isArrayDict(a.maps) && isArrayDict(a.image) && isArrayDict(a.ranges);
}

export function decodeActivations(p: ActivationsPayload): Activations {
  const maps = decodeArray(p.maps);
  if (maps.dtype !== "uint8" || maps.shape.length !== 3) {
    throw new Error(`xaiwidgets: activation maps must be uint8 (C, h, w), got ${maps.dtype} [${maps.shape.join(", ")}]`);
  }
  const [channels, height, width] = maps.shape;
  return {
    index: p.index,
    image: toRGBAImage(p.image),
    codes: maps.data as Uint8Array,
    channels,
    height,
    width,
    ranges: Float32Array.from(decodeArray(p.ranges).data),
    mean: decodeNumbers(p.mean),
    signed: Boolean(p.signed),
  };
}

/** Value of a uint8 code of channel c (the protocol's dequantisation with the channel's range). */
export function activationValue(a: Activations, c: number, code: number): number {
  const lo = a.ranges[2 * c];
  const hi = a.ranges[2 * c + 1];
  return lo + (code / 255) * (hi - lo);
}

/** The colour map of an activation grid: diverging (white at 0) for signed layers, viridis otherwise. */
export function activationLUT(signed: boolean): LUT {
  return getLUT(signed ? "diverging" : "viridis");
}

/** RGBA of channel c's map: each code looked up directly (the map's own range spans the colour map). */
export function colourMap(a: Activations, c: number, lut: LUT): Uint8ClampedArray<ArrayBuffer> {
  const n = a.height * a.width;
  const src = a.codes.subarray(c * n, (c + 1) * n);
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const j = src[i] * 3;
    out[i * 4] = lut[j];
    out[i * 4 + 1] = lut[j + 1];
    out[i * 4 + 2] = lut[j + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

export interface GridLayout {
  cols: number;
  rows: number;
  cell: number;
  gap: number;
  width: number;
  height: number;
}

/** Square cells of side `cell` (at least the map's side) in `cols` columns filling about `width` px. */
export function gridLayout(count: number, mapSide: number, width = 480, gap = 2): GridLayout {
  const cols = Math.max(1, Math.ceil(Math.sqrt(count * 1.5)));
  const rows = Math.max(1, Math.ceil(count / cols));
  const cell = Math.max(mapSide, Math.floor((width - (cols - 1) * gap) / cols));
  return { cols, rows, cell, gap, width: cols * cell + (cols - 1) * gap, height: rows * cell + (rows - 1) * gap };
}

/** The channel under canvas point (x, y), or -1 in a gutter or past the last map. */
export function cellAt(layout: GridLayout, count: number, x: number, y: number): number {
  const pitch = layout.cell + layout.gap;
  const col = Math.floor(x / pitch);
  const row = Math.floor(y / pitch);
  if (x < 0 || y < 0 || col >= layout.cols || x - col * pitch >= layout.cell || y - row * pitch >= layout.cell) return -1;
  const c = row * layout.cols + col;
  return c < count ? c : -1;
}

// ----- dissection table -----------------------------------------------------------------------------

export interface DissectionRow {
  unit: number;
  best: number;
  iou: number;
  values: number[];
}

export function isDissection(x: unknown): x is DissectionPayload {
  if (!x || typeof x !== "object") return false;
  const d = x as Partial<DissectionPayload>;
  return Array.isArray(d.concepts) && isArrayDict(d.iou);
}

/** One row per unit with its best concept, sorted by that IoU (highest first; ties by unit). */
export function dissectionRows(p: DissectionPayload): DissectionRow[] {
  const iou = decodeArray(p.iou);
  const [units, concepts] = iou.shape;
  if (iou.shape.length !== 2 || concepts !== p.concepts.length) {
    throw new Error(`xaiwidgets: dissection IoU must be (units, ${p.concepts.length}), got [${iou.shape.join(", ")}]`);
  }
  const rows: DissectionRow[] = [];
  for (let u = 0; u < units; u++) {
    const values = Array.from(iou.data.subarray(u * concepts, (u + 1) * concepts), Number);
    let best = 0;
    for (let k = 1; k < concepts; k++) if (values[k] > values[best]) best = k;
    rows.push({ unit: u, best, iou: concepts ? values[best] : 0, values });
  }
  return rows.sort((a, b) => b.iou - a.iou || a.unit - b.unit);
}

export function isConcepts(x: unknown): x is ConceptsPayload {
  if (!x || typeof x !== "object") return false;
  const d = x as Partial<ConceptsPayload>;
  return Array.isArray(d.concepts) && Array.isArray(d.random);
}

export interface ConceptCard extends ConceptTest {
  patches: RGBAImage[];
  images: number[];
}

/** Each concept's example patches and source-image indices, in the kernel's order (its ranking). */
export function conceptCards(p: ConceptsPayload): ConceptCard[] {
  return p.concepts.map((c) => {
    const patches = decodeStack(c.patches);
    const images = decodeNumbers(c.images);
    if (images.length !== patches.length) {
      throw new Error(`xaiwidgets: concept ${c.index} has ${patches.length} patches but ${images.length} image indices`);
    }
    const { patches: _p, images: _i, ...test } = c;
    return { ...test, patches, images };
  });
}

/** "p = 0.0012" with 2 significant digits (scientific below 1e-3). */
export function formatP(p: number): string {
  return p < 1e-3 ? `p = ${p.toExponential(1)}` : `p = ${p.toPrecision(2)}`;
}
