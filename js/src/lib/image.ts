// Input images (uint8 H x W x 3, also grey H x W and RGBA H x W x 4) as RGBA pixels.
import { decodeArray } from "./arrays";
import type { ArrayDict } from "./model";

export interface RGBAImage {
  width: number;
  height: number;
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

export function toRGBAImage(dict: ArrayDict): RGBAImage {
  const arr = decodeArray(dict);
  const [height, width, channels = 1] = arr.shape;
  if (arr.shape.length < 2 || arr.shape.length > 3 || ![1, 3, 4].includes(channels)) {
    throw new Error(`xaiwidgets: image must be H x W x 3, got shape [${arr.shape.join(", ")}]`);
  }
  const src = arr.data;
  const n = width * height;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    rgba[i * 4] = src[s];
    rgba[i * 4 + 1] = src[channels >= 3 ? s + 1 : s];
    rgba[i * 4 + 2] = src[channels >= 3 ? s + 2 : s];
    rgba[i * 4 + 3] = channels === 4 ? src[s + 3] : 255;
  }
  return { width, height, rgba };
}

const images = new WeakMap<object, RGBAImage>();

export function imageOf(dict: ArrayDict): RGBAImage {
  let img = images.get(dict);
  if (!img) {
    img = toRGBAImage(dict);
    images.set(dict, img);
  }
  return img;
}
