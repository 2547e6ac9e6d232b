import { describe, expect, it } from "vitest";
import { dequantize, levelValues, percentile, percentileAbs, percentileOfCodes, quantize } from "../src/lib/quantize";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe("quantize / dequantize", () => {
  it("round trip error <= (vmax - vmin) / 255 / 2", () => {
    const rnd = lcg(1);
    const values = Float64Array.from({ length: 2000 }, () => (rnd() - 0.3) * 7);
    const q = quantize(values);
    expect(q.vmin).toBeCloseTo(-q.vmax, 12); // both signs → symmetric range
    const back = dequantize(q.data, q.vmin, q.vmax);
    const bound = (q.vmax - q.vmin) / 255 / 2 + 1e-6;
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(back[i] - values[i]));
    expect(worst).toBeLessThanOrEqual(bound);
  });

  it("non-negative maps use [min, max]", () => {
    const q = quantize([0.5, 1, 2]);
    expect([q.vmin, q.vmax]).toEqual([0.5, 2]);
    expect(Array.from(q.data)).toEqual([0, 85, 255]);
  });

  it("clips to [0, 255] with an explicit range", () => {
    expect(Array.from(quantize([-5, 0, 5], -1, 1).data)).toEqual([0, 128, 255]);
  });

  it("constant map: vmin == vmax and q = 0, dequantised back to the constant", () => {
    const q = quantize([3, 3, 3]);
    expect(q.vmin).toBe(3);
    expect(q.vmax).toBe(3);
    expect(Array.from(q.data)).toEqual([0, 0, 0]);
    expect(Array.from(dequantize(q.data, q.vmin, q.vmax))).toEqual([3, 3, 3]);
  });

  it("levelValues spans [vmin, vmax]", () => {
    const l = levelValues(-2, 2);
    expect(l[0]).toBe(-2);
    expect(l[255]).toBe(2);
  });
});

describe("percentiles", () => {
  it("linear interpolation between order statistics (numpy default)", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    expect(percentile([1, 2, 3, 4], 0)).toBe(1);
    expect(percentileAbs([-10, 1, 2, 3], 100)).toBe(10);
    expect(percentileAbs([-4, 1, -2, 3], 50)).toBe(2.5);
    expect(percentile([], 50)).toBe(0);
  });

  it("histogram percentile of codes equals the sorted percentile of the levels", () => {
    const rnd = lcg(7);
    const codes = Uint8Array.from({ length: 999 }, () => Math.floor(rnd() * 256));
    const levels = levelValues(-1.5, 1.5);
    const values = Array.from(codes, (q) => levels[q]);
    for (const p of [50, 90, 99.5, 100]) {
      expect(percentileOfCodes(codes, levels, p, true)).toBeCloseTo(percentileAbs(values, p), 6);
      expect(percentileOfCodes(codes, levels, p, false)).toBeCloseTo(percentile(values, p), 6);
    }
  });
});
