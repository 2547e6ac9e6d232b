import { describe, expect, it } from "vitest";
import { COLORMAPS, getLUT, resolveColormap } from "../src/lib/colormaps";

const rgb = (lut: Uint8Array, i: number): number[] => [lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2]];
// Relative luminance weights (Rec. 709) on the 0..255 values.
const luminance = (lut: Uint8Array, i: number): number => 0.2126 * lut[i * 3] + 0.7152 * lut[i * 3 + 1] + 0.0722 * lut[i * 3 + 2];

describe("colormaps", () => {
  it("every LUT has 256 RGB entries", () => {
    for (const name of COLORMAPS) expect(getLUT(name).length).toBe(256 * 3);
  });

  it("endpoints", () => {
    expect(rgb(getLUT("gray"), 0)).toEqual([0, 0, 0]);
    expect(rgb(getLUT("gray"), 255)).toEqual([255, 255, 255]);
    expect(rgb(getLUT("viridis"), 0)).toEqual([68, 1, 84]);
    expect(rgb(getLUT("viridis"), 255)).toEqual([253, 231, 37]);
    const d = getLUT("diverging");
    const [r0, , b0] = rgb(d, 0);
    const [r1, , b1] = rgb(d, 255);
    expect(b0).toBeGreaterThan(r0); // blue end
    expect(r1).toBeGreaterThan(b1); // red end
  });

  it("diverging midpoint is near white", () => {
    const d = getLUT("diverging");
    for (const i of [127, 128]) for (const c of rgb(d, i)) expect(c).toBeGreaterThanOrEqual(250);
  });

  it("viridis, inferno and gray have monotone luminance (up to uint8 rounding)", () => {
    for (const name of ["viridis", "inferno", "gray"]) {
      const lut = getLUT(name);
      for (let i = 1; i < 256; i++) expect(luminance(lut, i)).toBeGreaterThanOrEqual(luminance(lut, i - 1) - 0.75);
      expect(luminance(lut, 255) - luminance(lut, 0)).toBeGreaterThan(150);
    }
  });

  it("auto resolves to diverging for signed maps, viridis otherwise", () => {
    expect(resolveColormap("auto", true)).toBe("diverging");
    expect(resolveColormap("auto", false)).toBe("viridis");
    expect(resolveColormap("inferno", true)).toBe("inferno");
    expect(resolveColormap("no-such-map", false)).toBe("viridis");
    expect(getLUT("auto", true)).toBe(getLUT("diverging"));
  });
});
