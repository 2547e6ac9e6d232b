import { describe, expect, it } from "vitest";
import { featureColor, outputOrder, PointIndex, swarmOffsets, waterfallLayout } from "../src/lib/shapplots";

describe("waterfallLayout (analysis.shapplots.waterfall's rule)", () => {
  it("sorts by |value|, folds the rest and walks from the base to base + sum", () => {
    const row = [0.1, -0.5, 0.3, 0.05, -0.02];
    const w = waterfallLayout(row, 1, 3);
    expect(w.bars.map((b) => b.feature)).toEqual([1, 2, -1]);
    expect(w.folded).toBe(3);
    expect(w.bars[2].value).toBeCloseTo(0.1 + 0.05 - 0.02, 12);
    expect(w.bars[2].start).toBe(1);
    expect(w.total).toBeCloseTo(1 + 0.1 - 0.5 + 0.3 + 0.05 - 0.02, 12);
    expect(w.bars[0].end).toBeCloseTo(w.total, 12);
    for (let k = 0; k < w.bars.length - 1; k++) expect(w.bars[k].start).toBeCloseTo(w.bars[k + 1].end, 12);
  });
  it("keeps every feature when they fit, skips absent (NaN) ones, breaks ties by index", () => {
    const w = waterfallLayout([0.2, NaN, -0.2, 0.1], 0, 3);
    expect(w.bars.map((b) => b.feature)).toEqual([0, 2, 3]);
    expect(w.folded).toBe(0);
  });
});

describe("orders, swarm and colours", () => {
  it("orders rows by output, largest first", () => {
    expect(outputOrder([0.5, 2, -1, 2])).toEqual([1, 3, 0, 2]);
  });
  it("stacks equal x alternately above and below", () => {
    expect(Array.from(swarmOffsets([0, 0, 0, 0, 1]))).toEqual([0, 1, -1, 2, 0]);
  });
  it("colours low values blue, high red, missing grey", () => {
    expect(featureColor(0, 0, 1)).toEqual([30, 136, 229]);
    expect(featureColor(5, 0, 1)).toEqual([255, 13, 87]);
    expect(featureColor(NaN, 0, 1)).toEqual([150, 150, 150]);
  });
  it("finds the nearest point and the points in a rectangle", () => {
    const idx = new PointIndex(Float32Array.from([10, 50, 52]), Float32Array.from([10, 50, 50]));
    expect(idx.nearest(51.5, 50)).toBe(2);
    expect(idx.nearest(100, 100)).toBe(-1);
    expect(idx.within(0, 0, 51, 60)).toEqual([0, 1]);
  });
});
