import { describe, expect, it } from "vitest";
import { padded } from "./buffers";
import {
  blendRGBA,
  decodeFrames,
  frameLabel,
  frameRange,
  isFramesPayload,
  nextFrame,
  resolveFrame,
  sliceFrame,
  stackMaps,
  type FramesPayload,
  type StackDict,
} from "../src/lib/frames";
import { extent, linearScale, plotScales, polylinePoints } from "../src/lib/lineplot";

const floats = (xs: number[]) => ({ dtype: "float32", shape: [xs.length], data: new Uint8Array(Float32Array.from(xs).buffer) });

// 3 frames of 2x2: frame k has codes k*10 + [0, 1, 2, 3]
const codes = Uint8Array.from([0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);

describe("frame stacks", () => {
  it("slices frame k as a view into the same bytes, honouring the byte offset", () => {
    const stack = { dtype: "uint8", shape: [3, 2, 2], data: padded(codes) };
    const f1 = sliceFrame(stack, 1, -1, 1);
    expect(f1.shape).toEqual([2, 2]);
    expect(Array.from(f1.data as Uint8Array)).toEqual([10, 11, 12, 13]);
    expect(f1.vmin).toBe(-1);
    expect(() => sliceFrame(stack, 3)).toThrow(/out of range/);
  });

  it("uses per-frame ranges (vmins/vmaxs) or the stack's global range", () => {
    const per: StackDict = { dtype: "uint8", shape: [3, 2, 2], data: codes, vmins: [0, -2, -4], vmaxs: [1, 2, 4] };
    expect(frameRange(per, 2)).toEqual([-4, 4]);
    const maps = stackMaps(per);
    expect(maps).toHaveLength(3);
    // v = vmin + q / 255 * (vmax - vmin)
    expect(maps[1].values[0]).toBeCloseTo(-2 + (10 / 255) * 4, 6);
    const glob: StackDict = { dtype: "uint8", shape: [3, 2, 2], data: codes, vmin: 0, vmax: 255 };
    expect(Array.from(stackMaps(glob)[2].values)).toEqual([20, 21, 22, 23]);
    expect(() => frameRange({ dtype: "uint8", shape: [1, 1, 1], data: codes }, 0)).toThrow(/vmin/);
  });
});

describe("decodeFrames", () => {
  const image = Uint8Array.from({ length: 12 }, (_, i) => i * 20); // 2x2x3
  const payload: FramesPayload = {
    kind: "ig_path", count: 3, expected: 3, done: true, frame_index: [0, 1, 2], source_shape: [4, 4], shape: [2, 2],
    image: { dtype: "uint8", shape: [2, 2, 3], data: padded(image) },
    baseline: { dtype: "uint8", shape: [2, 2, 3], data: new Uint8Array(12) },
    gradients: { dtype: "uint8", shape: [3, 2, 2], data: padded(codes), vmins: [-1, -1, -1], vmaxs: [1, 1, 1] },
    gradients_signed: true,
    accumulated: { dtype: "uint8", shape: [3, 2, 2], data: codes, vmin: 0, vmax: 2 },
    accumulated_signed: false,
    partial_sums: floats([0.1, 0.2, 0.3]),
    alphas: floats([0.25, 0.5, 1]),
    path_scores: floats([1, 2, 3]),
    f_input: 3, f_baseline: 0, delta: 0.1, gap: 0.033, attribution_sum: 3.1, bytes: 100,
  };

  it("decodes maps, images and vectors once", () => {
    expect(isFramesPayload(payload)).toBe(true);
    expect(isFramesPayload({})).toBe(false);
    const set = decodeFrames(payload);
    expect(set.count).toBe(3);
    expect([set.width, set.height]).toEqual([2, 2]);
    expect(Array.from(set.image.rgba.slice(0, 8))).toEqual([0, 20, 40, 255, 60, 80, 100, 255]);
    expect(set.gradients).toHaveLength(3);
    expect(set.accumulated[2].values[3]).toBeCloseTo((23 / 255) * 2, 6);
    expect(Array.from(set.alphas!)).toEqual([0.25, 0.5, 1]);
    expect(set.partialSums[2]).toBeCloseTo(0.3, 6);
    expect(set.baseline).not.toBeNull();
  });

  it("labels frames by alpha (IG) or sample (noise)", () => {
    const set = decodeFrames(payload);
    expect(frameLabel(set, 1)).toBe("α = 0.500 · step 2/3");
    expect(frameLabel({ kind: "noise", alphas: null, count: 4 }, 0, 10)).toBe("sample 1/10");
  });
});

describe("path input and playback", () => {
  it("blends input and baseline linearly: alpha 0 = baseline, 1 = input", () => {
    const input = Uint8ClampedArray.from([200, 100, 0, 255]);
    const base = Uint8ClampedArray.from([0, 100, 100, 255]);
    const out = new Uint8ClampedArray(4);
    expect(Array.from(blendRGBA(input, base, 0, out))).toEqual([0, 100, 100, 255]);
    expect(Array.from(blendRGBA(input, base, 1, out))).toEqual([200, 100, 0, 255]);
    expect(Array.from(blendRGBA(input, base, 0.5, out))).toEqual([100, 100, 50, 255]);
  });

  it("advances, stops or loops at the end", () => {
    expect(nextFrame(0, 3)).toBe(1);
    expect(nextFrame(2, 3)).toBe(-1);
    expect(nextFrame(2, 3, true)).toBe(0);
    expect(nextFrame(0, 0)).toBe(-1);
  });

  it("resolves the frame trait: -1 is the latest, others clamped", () => {
    expect(resolveFrame(-1, 5)).toBe(4);
    expect(resolveFrame(9, 5)).toBe(4);
    expect(resolveFrame(2.7, 5)).toBe(2);
    expect(resolveFrame(0, 0)).toBe(0);
  });
});

describe("line plot geometry", () => {
  it("maps domains linearly and widens a degenerate one", () => {
    const s = linearScale(0, 1, 10, 110);
    expect(s(0.5)).toBe(60);
    const flat = linearScale(2, 2, 0, 100);
    expect(flat(2)).toBe(50);
    expect(extent([1, NaN, 3], [-2])).toEqual([-2, 3]);
    expect(extent([])).toEqual([0, 1]);
  });

  it("puts points inside the box with y growing upwards, refs and bracket included in the range", () => {
    const box = { width: 200, height: 100, left: 20, right: 10, top: 5, bottom: 15 };
    const spec = {
      series: [{ xs: [0, 0.5, 1], ys: [0, 1, 2], className: "a", label: "F" }],
      refs: [{ y: 4, label: "F(x)", className: "r" }],
      marker: 1, bracket: { y0: 2, y1: -1, label: "gap" }, xLabel: "α", xDomain: [0, 1] as [number, number],
    };
    const { sx, sy } = plotScales(spec, box);
    expect(sx(0)).toBe(20);
    expect(sx(1)).toBe(190);
    expect(sy(4)).toBeGreaterThan(5 - 1e-9);
    expect(sy(-1)).toBeLessThan(85 + 1e-9);
    expect(sy(2)).toBeLessThan(sy(0));
    const pts = polylinePoints([0, 1, NaN], [0, 2, 1], sx, sy).split(" ");
    expect(pts).toHaveLength(2);
    expect(pts[0].startsWith("20.0,")).toBe(true);
  });
});
