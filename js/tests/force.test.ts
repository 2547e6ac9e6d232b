import { describe, expect, it } from "vitest";
import { featureOrder, forceLayout, instanceOrder, placeLabels, stackBands } from "../src/lib/force";
import { niceTicks } from "../src/lib/svg";

const width = (s: { x0: number; x1: number }): number => s.x1 - s.x0;

describe("forceLayout: additive arrows meeting at base + sum", () => {
  const values = [0.21, -0.08, 0.34, 0.015, -0.12, 0.004, 0];
  const base = 0.373;
  const lay = forceLayout(values, base);

  it("up widths minus down widths = end - base (efficiency)", () => {
    const up = lay.up.reduce((a, s) => a + width(s), 0);
    const down = lay.down.reduce((a, s) => a + width(s), 0);
    expect(lay.end).toBeCloseTo(base + 0.369, 12);
    expect(up - down).toBeCloseTo(lay.end - base, 12);
    expect(lay.up.map((s) => s.index)).toEqual([2, 0, 3, 5]); // largest nearest the output
    expect(lay.down.map((s) => s.index)).toEqual([4, 1]);
  });

  it("arrows are contiguous: red ends at the output, blue starts there", () => {
    expect(lay.up[0].x1).toBe(lay.end);
    expect(lay.down[0].x0).toBe(lay.end);
    for (let k = 1; k < lay.up.length; k++) expect(lay.up[k].x1).toBeCloseTo(lay.up[k - 1].x0, 12);
    for (let k = 1; k < lay.down.length; k++) expect(lay.down[k].x0).toBeCloseTo(lay.down[k - 1].x1, 12);
    expect(lay.lo).toBeCloseTo(lay.up[lay.up.length - 1].x0, 12);
    expect(lay.hi).toBeCloseTo(lay.down[lay.down.length - 1].x1, 12);
  });

  it("zero contributions draw nothing; an output away from base + sum widens the extent", () => {
    expect([...lay.up, ...lay.down].some((s) => s.index === 6)).toBe(false);
    const gap = forceLayout([0.1, -0.05], 0, 2);
    expect(gap.end).toBeCloseTo(0.05, 12);
    expect(gap.hi).toBe(2);
    const empty = forceLayout([0, 0], 1.5);
    expect(empty.up.length + empty.down.length).toBe(0);
    expect([empty.lo, empty.hi, empty.end]).toEqual([1.5, 1.5, 1.5]);
  });
});

describe("stackBands: the multi-instance form", () => {
  // 3 instances x 2 features
  const values = [0.3, -0.1, -0.2, 0.45, 0.0, 0.0];
  const base = [1, 1, 1];
  it("up thickness - down thickness = sum of contributions at every instance", () => {
    const order = [2, 0, 1];
    const { bands, end } = stackBands(values, 2, base, order, [0, 1]);
    order.forEach((i, k) => {
      const up = bands.filter((b) => b.kind === "up").reduce((a, b) => a + b.hi[k] - b.lo[k], 0);
      const down = bands.filter((b) => b.kind === "down").reduce((a, b) => a + b.hi[k] - b.lo[k], 0);
      expect(up - down).toBeCloseTo(values[i * 2] + values[i * 2 + 1], 12);
      expect(end[k]).toBeCloseTo(1 + values[i * 2] + values[i * 2 + 1], 12);
    });
    // both features change sign somewhere: an up and a down band each
    expect(bands.map((b) => `${b.feature}${b.kind}`).sort()).toEqual(["0down", "0up", "1down", "1up"]);
  });

  it("features order by mean |value|; instances by output or the similarity permutation", () => {
    expect(featureOrder(values, 3, 2)).toEqual([1, 0]);
    expect(instanceOrder("output", [3, 1, 2], null)).toEqual([1, 2, 0]);
    expect(instanceOrder("similarity", [3, 1, 2], [2, 0, 1])).toEqual([2, 0, 1]);
    expect(instanceOrder("similarity", [3, 1, 2], [2, 2, 1])).toEqual([0, 1, 2]); // not a permutation
    expect(instanceOrder("original", [3, 1, 2], [2, 0, 1])).toEqual([0, 1, 2]);
  });
});

describe("placeLabels", () => {
  it("greedy rows, no overlaps, clamped inside, -1 when full", () => {
    const placed = placeLabels([{ x: 50, width: 40 }, { x: 60, width: 40 }, { x: 55, width: 40 }, { x: 2, width: 20 }], 0, 200, 2);
    expect(placed.map((p) => p.row)).toEqual([0, 1, -1, 0]); // the last is clamped to [0, 20], clear of [30, 70]
    expect(placeLabels([{ x: 2, width: 20 }], 0, 200)[0]).toEqual({ row: 0, x: 10 });
    expect(placeLabels([{ x: 50, width: 500 }], 0, 200)[0].row).toBe(-1);
  });
});

describe("niceTicks", () => {
  it("round steps inside the range, at least two", () => {
    expect(niceTicks(0.143, 0.972, 3)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(-1, 1, 4)).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(niceTicks(0.14, 0.97, 1).length).toBeGreaterThanOrEqual(2);
    expect(niceTicks(2, 2)).toEqual([2]);
  });
});
