import { describe, expect, it } from "vitest";
import {
  clusterOfRows, countBy, decodeMeta, DEFAULT_FILTERS, filterRows, gridRange, nearestPoint, pointsInRect,
  projectPoints, type Meta,
} from "../src/lib/explorer";

function meta(): Meta {
  // 6 items, dataset indices 10..15; labels, predictions, confidences chosen by hand
  return {
    n: 6, total: 6,
    index: Int32Array.from([10, 11, 12, 13, 14, 15]),
    label: Int32Array.from([0, 0, 1, 1, 2, -1]),
    pred: Int32Array.from([0, 1, 1, 0, 2, 2]),
    conf: Float32Array.from([0.9, 0.4, 0.8, 0.55, 0.99, 0.7]),
    correct: Uint8Array.from([1, 0, 1, 0, 1, 0]),
    loss: Float32Array.from([0.1, 2, 0.2, 1.5, 0.01, NaN]),
    stat: Float32Array.from([0.5, NaN, 0.2, 0.9, 0.1, 0.3]),
  };
}

describe("filterRows", () => {
  const m = meta();
  const none = new Int16Array(6).fill(-1);

  it("keeps everything in dataset order by default", () => {
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS }))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("combines class, correctness and confidence filters", () => {
    const f = { ...DEFAULT_FILTERS, correct: "wrong" as const, confMin: 0.5 };
    expect(Array.from(filterRows(m, none, f))).toEqual([3, 5]);
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS, pred: 2 }))).toEqual([4, 5]);
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS, label: 1 }))).toEqual([2, 3]);
  });

  it("sorts by confidence, loss and the map statistic, NaN last", () => {
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS, sort: "conf_asc" }))).toEqual([1, 3, 5, 2, 0, 4]);
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS, sort: "loss_desc" }))).toEqual([1, 3, 2, 0, 4, 5]);
    expect(Array.from(filterRows(m, none, { ...DEFAULT_FILTERS, sort: "stat_desc" }))).toEqual([3, 0, 5, 2, 4, 1]);
  });

  it("filters by cluster and by a selection of dataset indices", () => {
    const clusters = clusterOfRows(m, Int32Array.from([11, 12, 15]), Int16Array.from([1, 0, 1]));
    expect(Array.from(clusters)).toEqual([-1, 1, 0, -1, -1, 1]);
    expect(Array.from(filterRows(m, clusters, { ...DEFAULT_FILTERS, cluster: 1 }))).toEqual([1, 5]);
    expect(Array.from(filterRows(m, clusters, { ...DEFAULT_FILTERS, only: new Set([14, 10]) }))).toEqual([0, 4]);
  });

  it("counts each option given the other filters", () => {
    const f = { ...DEFAULT_FILTERS, pred: 0, correct: "wrong" as const };
    const byCorrect = countBy(m, none, f, "correct", (r) => m.correct[r]);
    expect(byCorrect.get(1)).toBe(1);
    expect(byCorrect.get(0)).toBe(1);
  });
});

describe("grid and scatter geometry", () => {
  it("draws only the visible rows plus one each side", () => {
    const r = gridRange(10_000, 520, 140 * 100, 460, 104, 140);
    expect(r.columns).toBe(5);
    expect(r.first).toBe(99 * 5);
    expect(r.last).toBe(105 * 5);
    expect(r.height).toBe(2000 * 140);
    expect(gridRange(3, 520, 0, 460, 104, 140).last).toBe(3);
  });

  it("projects into the canvas and brushes a rectangle", () => {
    const px = projectPoints(Float32Array.from([0, 0, 1, 1, 0.5, 0.2]), 100, 10);
    expect(Array.from(px)).toEqual([10, 90, 90, 10, 50, 74]);
    expect(pointsInRect(px, 0, 0, 60, 80)).toEqual([2]);
    expect(pointsInRect(px, 100, 100, 0, 0)).toEqual([0, 1, 2]);
    expect(nearestPoint(px, 52, 73)).toBe(2);
    expect(nearestPoint(px, 30, 30)).toBe(-1);
  });

  it("decodes an empty or missing meta trait as no items", () => {
    expect(decodeMeta({}).n).toBe(0);
    expect(decodeMeta(null).n).toBe(0);
  });
});
