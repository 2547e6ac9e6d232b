import { describe, expect, it } from "vitest";
import { getLUT } from "../src/lib/colormaps";
import { blur, gaussianKernel, resolveDisplay, smoothMap } from "../src/lib/display";
import { legendNote } from "../src/lib/legend";
import type { DisplayTraits } from "../src/lib/model";
import { alphaOf, overlayStyle, pixelRGBA, type OverlayStyle } from "../src/lib/overlay";
import { gapBadge } from "../src/lib/panel";
import { toScalarMap } from "../src/lib/scalarmap";

const traits = (over: Partial<DisplayTraits> = {}): DisplayTraits => ({
  colormap: "auto", opacity: 0.6, absolute: false, clip_percentile: null, alpha: "auto", smoothing: null,
  map_layout: "overlay", ...over,
});
const pixel = { clip_percentile: 98, alpha: "sqrt", smoothing: 0.007, quantity: "|d score / d pixel|" };

function floatMap(values: number[], width: number, height: number) {
  const data = Float32Array.from(values);
  return toScalarMap({ dtype: "float32", shape: [height, width], data: new DataView(data.buffer) });
}

describe("resolveDisplay: traits where set, else the method's defaults, else the plain rule", () => {
  it("auto takes the method's defaults", () => {
    const d = resolveDisplay(traits(), pixel);
    expect([d.clip_percentile, d.alpha, d.smoothing, d.layout]).toEqual([98, "sqrt", 0.007, "overlay"]);
  });
  it("a value the user set wins over the defaults", () => {
    const d = resolveDisplay(traits({ clip_percentile: 99.9, alpha: "flat", smoothing: 0, map_layout: "side" }), pixel);
    expect([d.clip_percentile, d.alpha, d.smoothing, d.layout]).toEqual([99.9, "flat", 0, "side"]);
  });
  it("no defaults: the old rule (99.5, linear, no blur); unknown names fall back", () => {
    const d = resolveDisplay(traits({ alpha: "cubic", map_layout: "grid" }));
    expect([d.clip_percentile, d.alpha, d.smoothing, d.layout]).toEqual([99.5, "linear", 0, "overlay"]);
  });
});

describe("alpha mappings", () => {
  it("linear, sqrt and flat of the normalised magnitude; zero stays transparent", () => {
    expect(alphaOf(0.25, "linear")).toBe(0.25);
    expect(alphaOf(0.25, "sqrt")).toBe(0.5);
    expect(alphaOf(0.25, "flat")).toBe(1);
    for (const mode of ["linear", "sqrt", "flat"] as const) expect(alphaOf(0, mode)).toBe(0);
  });
  it("pixelRGBA applies the style's mapping; the colour does not change", () => {
    const st: OverlayStyle = { lut: getLUT("diverging"), mode: "signed", clip: 4, lo: 0, t0: 0, t1: 1, opacity: 1, deadZone: 0, opaque: false };
    const a = new Uint8ClampedArray(4);
    const b = new Uint8ClampedArray(4);
    pixelRGBA(1, st, a, 0);
    pixelRGBA(1, { ...st, alpha: "sqrt" }, b, 0);
    expect(a[3]).toBe(Math.round(255 * 0.25));
    expect(b[3]).toBe(Math.round(255 * 0.5));
    expect(Array.from(a.slice(0, 3))).toEqual(Array.from(b.slice(0, 3)));
  });
  it("overlayStyle takes the alpha and a null clip percentile as 99.5", () => {
    const map = floatMap(Array.from({ length: 1000 }, (_, i) => i), 100, 10);
    const st = overlayStyle(map, { ...traits(), alpha: "sqrt" }, false, true);
    expect(st.alpha).toBe("sqrt");
    expect(st.clip).toBeCloseTo(map.percentile(99.5, false));
  });
});

describe("display-only smoothing", () => {
  it("a normalised Gaussian kernel of radius 3 sigma", () => {
    const k = gaussianKernel(2);
    expect(k.length).toBe(13);
    expect(k.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(k[6]).toBeGreaterThan(k[5]);
  });
  it("blur keeps a constant map and the sum of an impulse (away from the edges)", () => {
    expect(Array.from(blur(new Float32Array(25).fill(3), 5, 5, 1)).every((v) => Math.abs(v - 3) < 1e-5)).toBe(true);
    const impulse = new Float32Array(21 * 21);
    impulse[10 * 21 + 10] = 1;
    const out = blur(impulse, 21, 21, 1.5);
    expect(out.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    expect(out[10 * 21 + 10]).toBeLessThan(0.1);
    expect(out[10 * 21 + 11]).toBeCloseTo(out[10 * 21 + 9], 6);
  });
  it("smoothMap: the map itself below half a pixel, memoised otherwise, with its own range", () => {
    const values = Array.from({ length: 64 * 64 }, (_, i) => (i === 32 * 64 + 32 ? 10 : 0));
    const map = floatMap(values, 64, 64);
    expect(smoothMap(map, 0)).toBe(map);
    expect(smoothMap(map, 0.005)).toBe(map); // sigma 0.32 px
    const s = smoothMap(map, 0.02);
    expect(smoothMap(map, 0.02)).toBe(s);
    expect(s.max).toBeLessThan(10);
    expect(s.max).toBe(Math.max(...s.values));
    expect(map.max).toBe(10); // the original (the legend's range) is untouched
  });
});

describe("legend and badge texts", () => {
  it("the note states the real range, where colour saturates, and the blur", () => {
    const st: OverlayStyle = { lut: getLUT("viridis"), mode: "sequential", clip: 0.05, lo: 0, t0: 0, t1: 1, opacity: 0.6, deadZone: 0, opaque: false };
    expect(legendNote(st, 98, { range: [0.0001, 0.26], smoothingPx: 1.57 }))
      .toBe("range 1.0e-4 to 0.26 · saturates at 0.05 (98th pct of v) · display blur 1.6 px");
    expect(legendNote({ ...st, mode: "signed" }, 99.5)).toBe("saturates at 0.05 (99.5th pct of |v|)");
  });
  it("the IG badge turns bad above the tolerance", () => {
    expect(gapBadge(undefined)).toBeNull();
    expect(gapBadge({ completeness_gap: 0.004, tolerance: 0.01 })).toMatchObject({ text: "gap 0.40%", bad: false });
    expect(gapBadge({ completeness_gap: 0.117, tolerance: 0.01, n_steps: 50 })).toMatchObject({ text: "gap 11.7%", bad: true });
    expect(gapBadge({ completeness_gap: 0.117, tolerance: 0.2 })!.bad).toBe(false);
  });
});
