// 256-entry RGB lookup tables built from a few control points by linear interpolation.

export type LUT = Uint8Array; // 256 * 3 bytes, RGB

type Stop = readonly [position: number, r: number, g: number, b: number];

const STOPS: Record<string, readonly Stop[]> = {
  // blue - white - red, white exactly at the middle
  diverging: [
    [0.0, 28, 58, 148],
    [0.25, 102, 150, 218],
    [0.5, 255, 255, 255],
    [0.75, 232, 122, 98],
    [1.0, 160, 18, 34],
  ],
  viridis: [
    [0.0, 68, 1, 84],
    [0.25, 59, 82, 139],
    [0.5, 33, 145, 140],
    [0.75, 94, 201, 98],
    [1.0, 253, 231, 37],
  ],
  inferno: [
    [0.0, 0, 0, 4],
    [0.25, 87, 16, 110],
    [0.5, 188, 55, 84],
    [0.75, 249, 142, 9],
    [1.0, 252, 255, 164],
  ],
  jet: [
    [0.0, 0, 0, 128],
    [0.125, 0, 0, 255],
    [0.375, 0, 255, 255],
    [0.625, 255, 255, 0],
    [0.875, 255, 0, 0],
    [1.0, 128, 0, 0],
  ],
  gray: [
    [0.0, 0, 0, 0],
    [1.0, 255, 255, 255],
  ],
};

export const COLORMAPS = ["auto", "diverging", "viridis", "inferno", "jet", "gray"] as const;

export function buildLUT(stops: readonly Stop[]): LUT {
  const lut = new Uint8Array(256 * 3);
  let s = 0;
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    while (s < stops.length - 2 && t > stops[s + 1][0]) s++;
    const [t0, r0, g0, b0] = stops[s];
    const [t1, r1, g1, b1] = stops[s + 1];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    lut[i * 3] = Math.round(r0 + (r1 - r0) * f);
    lut[i * 3 + 1] = Math.round(g0 + (g1 - g0) * f);
    lut[i * 3 + 2] = Math.round(b0 + (b1 - b0) * f);
  }
  return lut;
}

const cache = new Map<string, LUT>();

/** Resolve a colormap name; "auto" (and anything unknown) is diverging for signed maps, viridis otherwise. */
export function resolveColormap(name: string, signed: boolean): string {
  if (name in STOPS) return name;
  return signed ? "diverging" : "viridis";
}

export function getLUT(name: string, signed = false): LUT {
  const key = resolveColormap(name, signed);
  let lut = cache.get(key);
  if (!lut) {
    lut = buildLUT(STOPS[key]);
    cache.set(key, lut);
  }
  return lut;
}
