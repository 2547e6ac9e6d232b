import { describe, expect, it } from "vitest";
import { getLUT } from "../src/lib/colormaps";
import { colorize, composite, overlayStyle, pixelRGBA, type OverlayStyle } from "../src/lib/overlay";
import { quantize } from "../src/lib/quantize";
import { toScalarMap } from "../src/lib/scalarmap";

const base: OverlayStyle = {
  lut: getLUT("diverging"),
  mode: "signed",
  clip: 2,
  lo: 0,
  t0: 0,
  t1: 1,
  opacity: 0.5,
  deadZone: 0,
  opaque: false,
};

const px = (v: number, st: OverlayStyle): number[] => {
  const out = new Uint8ClampedArray(4);
  pixelRGBA(v, st, out, 0);
  return Array.from(out);
};

describe("overlay alpha rule: alpha = opacity * m", () => {
  it("signed: m = |v| / clip, saturating; colour from the two ends", () => {
    expect(px(0, base)[3]).toBe(0);
    expect(px(1, base)[3]).toBe(Math.round(255 * 0.5 * 0.5));
    expect(px(-1, base)[3]).toBe(Math.round(255 * 0.5 * 0.5));
    expect(px(10, base)[3]).toBe(Math.round(255 * 0.5));
    const lut = base.lut;
    expect(px(2, base).slice(0, 3)).toEqual([lut[765], lut[766], lut[767]]);
    expect(px(-2, base).slice(0, 3)).toEqual([lut[0], lut[1], lut[2]]);
  });

  it("absolute: sign is ignored", () => {
    const st = { ...base, mode: "absolute" as const, lut: getLUT("gray") };
    expect(px(-1.5, st)).toEqual(px(1.5, st));
    expect(px(2, st)).toEqual([255, 255, 255, 128]);
  });

  it("sequential: m = (v - lo) / (clip - lo)", () => {
    const st = { ...base, mode: "sequential" as const, lo: 1, clip: 3, opacity: 1, lut: getLUT("gray") };
    expect(px(1, st)).toEqual([0, 0, 0, 0]);
    expect(px(2, st)).toEqual([128, 128, 128, 128]);
    expect(px(5, st)).toEqual([255, 255, 255, 255]);
  });

  it("values within the dead zone are zero; opaque mode ignores opacity", () => {
    expect(px(0.01, { ...base, deadZone: 0.02 })[3]).toBe(0);
    const zero = px(0, { ...base, opaque: true });
    expect(zero[3]).toBe(255);
    for (const c of zero.slice(0, 3)) expect(c).toBeGreaterThanOrEqual(250); // diverging middle
  });

  it("cold pixels leave the image visible after compositing", () => {
    const overlay = colorize([0, 2], { ...base, opacity: 1 });
    const image = Uint8ClampedArray.from([100, 110, 120, 255, 100, 110, 120, 255]);
    const out = composite(image, overlay);
    expect(Array.from(out.slice(0, 4))).toEqual([100, 110, 120, 255]);
    expect(Array.from(out.slice(4, 7))).toEqual(Array.from(overlay.slice(4, 7)));
  });

  it("overlayStyle: the quantised zero level is cold, clip comes from the percentile", () => {
    const values = [1, 1, 0, 0, -0.5, 0];
    const q = quantize(values, -1, 1);
    const map = toScalarMap({ dtype: "uint8", shape: [2, 3], data: q.data, vmin: q.vmin, vmax: q.vmax });
    const st = overlayStyle(map, { colormap: "auto", opacity: 0.6, absolute: false, clip_percentile: 100 }, true, true);
    expect(st.mode).toBe("signed");
    expect(st.clip).toBeCloseTo(1, 6);
    const rgba = colorize(map.values, st);
    expect(rgba[3]).toBe(Math.round(255 * 0.6));
    expect(rgba[2 * 4 + 3]).toBe(0); // q = 128 stands for 1/255, treated as zero
    const abs = overlayStyle(map, { colormap: "auto", opacity: 0.6, absolute: true, clip_percentile: 100 }, true, true);
    expect(abs.mode).toBe("absolute");
    expect(abs.lut).toBe(getLUT("viridis"));
  });
});
