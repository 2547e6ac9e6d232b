import { describe, expect, it } from "vitest";
import { padded } from "./buffers";
import {
  bestRows,
  curveOf,
  decodeCurves,
  decodeLeaderboard,
  decodeSanity,
  nearestPoint,
  nextSort,
  rgbToRGBA,
  sanityMap,
  sanitySimilarity,
  shortLayer,
  sortRows,
  thumbIndex,
  thumbPixels,
  type CurvesPayload,
  type LeaderboardPayload,
  type SanityPayload,
} from "../src/lib/evaluation";
import { linearScale } from "../src/lib/lineplot";

const f32 = (shape: number[], xs: number[]) => ({ dtype: "float32", shape, data: padded(new Uint8Array(Float32Array.from(xs).buffer)) });
const u8 = (shape: number[], xs: number[]) => ({ dtype: "uint8", shape, data: padded(Uint8Array.from(xs)) });
const i32 = (xs: number[]) => ({ dtype: "int32", shape: [xs.length], data: padded(new Uint8Array(Int32Array.from(xs).buffer)) });

// 2 methods x 1 input x 3 points; thumbnails 1x1 px at steps 0 and 2 only
function curves(): CurvesPayload {
  const thumbs = [10, 11, 12, 20, 21, 22, /* method 1 */ 30, 31, 32, 40, 41, 42];
  return {
    methods: ["a", "b"], modes: ["deletion"], n_inputs: 1, labels: ["cat"], state: ["done", "done"],
    thumb_steps: i32([0, 2]),
    deletion: {
      scores: f32([2, 1, 3], [0.9, 0.5, 0.1, 0.9, 0.8, 0.7]),
      fractions: f32([2, 1, 3], [0, 0.5, 1, 0, 0.5, 1]),
      auc: f32([2, 1], [0.5, 0.8]),
      output: "probability",
      thumbs: u8([2, 1, 2, 1, 1, 3], thumbs),
    },
  };
}

describe("curves", () => {
  it("decodes offset views and slices per method and input", () => {
    const c = decodeCurves(curves());
    const mc = c.modes[0];
    expect(mc.points).toBe(3);
    const b = curveOf(c, mc, 1, 0);
    expect(Array.from(b.ys)).toEqual([0.9, 0.8, 0.7].map(Math.fround));
    expect(Array.from(b.xs)).toEqual([0, 0.5, 1]);
    expect(Array.from(mc.auc)).toEqual([0.5, 0.8].map(Math.fround));
  });

  it("rejects scores whose shape does not match the methods", () => {
    const p = curves();
    (p.deletion as { scores: unknown }).scores = f32([1, 1, 3], [1, 2, 3]);
    expect(() => decodeCurves(p)).toThrow(/expected \[2, 1, K\]/);
  });

  it("finds the thumbnail of a point: exact step, else the nearest kept", () => {
    expect(thumbIndex([0, 2], 0)).toBe(0);
    expect(thumbIndex([0, 2], 2)).toBe(1);
    expect(thumbIndex([0, 5, 10], 7)).toBe(1);
    expect(thumbIndex([], 3)).toBe(-1);
    const c = decodeCurves(curves());
    expect(Array.from(thumbPixels(c.modes[0].thumbs!, 1, 1, 0, 1))).toEqual([40, 41, 42]);
    expect(Array.from(rgbToRGBA(Uint8Array.from([1, 2, 3]), 1, 1))).toEqual([1, 2, 3, 255]);
  });

  it("picks the curve point nearest the cursor, within a radius", () => {
    const sx = linearScale(0, 1, 0, 100);
    const sy = linearScale(0, 1, 100, 0);
    const c = decodeCurves(curves());
    const all = [curveOf(c, c.modes[0], 0, 0), curveOf(c, c.modes[0], 1, 0)];
    expect(nearestPoint(all, sx, sy, 52, 48)).toMatchObject({ series: 0, index: 1 }); // (50, 50) is a's point
    expect(nearestPoint(all, sx, sy, 52, 22)).toMatchObject({ series: 1, index: 1 }); // (50, 20) is b's
    expect(nearestPoint(all, sx, sy, 30, 70, 5)).toBeNull();
    const withNaN = [{ xs: Float32Array.from([0, 1]), ys: Float32Array.from([NaN, 0.5]) }];
    expect(nearestPoint(withNaN, sx, sy, 0, 50)).toMatchObject({ index: 1 });
  });
});

function board(values: number[]): LeaderboardPayload {
  return {
    methods: ["a", "b", "c"],
    columns: [
      { key: "deletion", label: "deletion AUC", higher_is_better: false, description: "" },
      { key: "insertion", label: "insertion AUC", higher_is_better: true, description: "" },
    ],
    values: f32([3, 2], values),
    errors: {},
  };
}

describe("leaderboard", () => {
  it("marks the best finite value of each column by its direction", () => {
    const b = decodeLeaderboard(board([0.3, 0.6, 0.1, NaN, 0.2, 0.9]));
    expect(bestRows(b)).toEqual([[1], [2]]);
    expect(bestRows(decodeLeaderboard(board([NaN, NaN, NaN, NaN, NaN, NaN])))).toEqual([[], []]);
  });

  it("marks every tie, at the precision shown", () => {
    // deletion (lower is better): a and c tie at 0.300 (4e-7 apart, both shown as 0.300); insertion: a and c
    const b = decodeLeaderboard(board([0.3, 0.5, 0.6, 0.2, 0.3000004, 0.5]));
    expect(bestRows(b)).toEqual([[0, 2], [0, 2]]);
  });

  it("sorts best first, reverses on request and keeps NaN rows last", () => {
    const b = decodeLeaderboard(board([0.3, 0.6, 0.1, NaN, 0.2, 0.9]));
    expect(sortRows(b, "deletion", false)).toEqual([1, 2, 0]);
    expect(sortRows(b, "deletion", true)).toEqual([0, 2, 1]);
    expect(sortRows(b, "insertion", false)).toEqual([2, 0, 1]);
    expect(sortRows(b, "insertion", true)).toEqual([0, 2, 1]);
    expect(sortRows(b, "", false)).toEqual([0, 1, 2]);
  });

  it("a click on a new column sorts it best first, on the same column flips", () => {
    expect(nextSort("", false, "deletion")).toEqual({ column: "deletion", reverse: false });
    expect(nextSort("deletion", false, "deletion")).toEqual({ column: "deletion", reverse: true });
    expect(nextSort("deletion", true, "insertion")).toEqual({ column: "insertion", reverse: false });
  });

  it("rejects a value array that does not match methods x columns", () => {
    const p = board([1, 2, 3, 4, 5, 6]);
    p.values = f32([2, 2], [1, 2, 3, 4]);
    expect(() => decodeLeaderboard(p)).toThrow(/3 x 2/);
  });
});

describe("sanity", () => {
  it("slices maps and similarities by method, step and input", () => {
    // 1 method, 2 steps, 2 inputs, 1x2 maps
    const p: SanityPayload = {
      methods: ["a"], steps: ["trained", "fc"], kind: "model randomisation", order: "cascading",
      measure: "spearman_abs", maps: u8([1, 2, 2, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
      peaks: f32([1, 2, 2], [1, 1, 1, 1]), similarity: f32([1, 2, 2], [1, 1, 0.25, -0.5]), threshold: 0.5,
      score: f32([1], [0.3]), passed: [true],
    };
    const s = decodeSanity(p);
    expect(Array.from(sanityMap(s, 0, 1, 0))).toEqual([5, 6]);
    expect(Array.from(sanityMap(s, 0, 0, 1))).toEqual([3, 4]);
    expect(sanitySimilarity(s, 0, 1, 1)).toBe(-0.5);
    expect(shortLayer("features.block3.conv")).toBe("block3.conv");
    expect(shortLayer("fc")).toBe("fc");
  });
});
