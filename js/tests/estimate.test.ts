import { describe, expect, it } from "vitest";
import { padded } from "./buffers";
import {
  band,
  decodeEstimate,
  errorLabel,
  historyIndex,
  isEstimatePayload,
  samplesLabel,
  sqrtGuide,
  stderrStyle,
  type EstimatePayload,
} from "../src/lib/estimate";
import { bandPoints, linearScale } from "../src/lib/lineplot";

const floats = (xs: number[]) => ({ dtype: "float32", shape: [xs.length], data: padded(new Uint8Array(Float32Array.from(xs).buffer)) });

// two frames of 1x2: estimate codes [0, 255] then [64, 191] on [-1, 1]; stderr codes on [0, 0.5]
function payload(hasStderr = true): EstimatePayload {
  return {
    method: "kernel_shap",
    count: 2,
    expected: 100,
    done: false,
    cancelled: false,
    shape: [1, 2],
    image: null,
    values: { dtype: "uint8", shape: [2, 1, 2], data: padded(Uint8Array.from([0, 255, 64, 191])), vmin: -1, vmax: 1 },
    signed: true,
    n_samples: floats([20, 40]),
    has_stderr: hasStderr,
    stderr: hasStderr ? { dtype: "uint8", shape: [2, 1, 2], data: padded(Uint8Array.from([255, 255, 128, 0])), vmin: 0, vmax: 0.5 } : null,
    history: { n_samples: floats([10, 20, 40]), mean_stderr: floats([NaN, 0.5, 0.3]), mean_abs: floats([1, 1, 0.6]), change: floats([NaN, 0.5, 0.2]) },
    tracks: { n_samples: floats([20, 40]), items: [{ rank: 1, x: 1, y: 0, values: floats([1, 0.5]), stderr: floats([0.5, 0.25]) }] },
    bytes: 0,
  };
}

describe("estimate payload", () => {
  it("recognises and decodes the payload offset-correctly", () => {
    expect(isEstimatePayload({})).toBe(false);
    const set = decodeEstimate(payload());
    expect(set.count).toBe(2);
    expect([set.width, set.height]).toEqual([2, 1]);
    expect(Array.from(set.values[0].values)).toEqual([-1, 1]);
    expect(set.stderr![0].values[0]).toBeCloseTo(0.5);
    expect(set.stderrMax).toBe(0.5);
    expect(Array.from(set.nSamples)).toEqual([20, 40]);
    expect(Array.from(set.tracks.items[0].stderr)).toEqual([0.5, 0.25]);
  });

  it("has no stderr maps without a standard error", () => {
    const set = decodeEstimate(payload(false));
    expect(set.stderr).toBeNull();
    expect(set.stderrMax).toBe(0);
  });

  it("keeps one stderr scale for every frame", () => {
    const st = stderrStyle(0.5, { opacity: 0.6 });
    expect([st.mode, st.lo, st.clip, st.opaque]).toEqual(["sequential", 0, 0.5, true]);
    expect(stderrStyle(0, { opacity: 0.6 }).clip).toBe(1);
  });
});

describe("estimate helpers", () => {
  it("bands are value +- k stderr", () => {
    const { lo, hi } = band([1, 2], [0.5, 0.25]);
    expect(Array.from(lo)).toEqual([0, 1.5]);
    expect(Array.from(hi)).toEqual([2, 2.5]);
  });

  it("the 1/sqrt(n) guide starts at the first finite error", () => {
    const g = sqrtGuide([10, 20, 80], [NaN, 0.4, 0.1]);
    expect(Number.isNaN(g[0])).toBe(true);
    expect(g[1]).toBeCloseTo(0.4);
    expect(g[2]).toBeCloseTo(0.2);
  });

  it("finds the history entry of a frame and labels it", () => {
    expect(historyIndex(Float32Array.from([10, 20, 40]), 20)).toBe(1);
    expect(historyIndex(Float32Array.from([10]), 30)).toBe(-1);
    expect(samplesLabel(40, 100)).toBe("n = 40 / 100 samples");
    expect(samplesLabel(100, 100)).toBe("n = 100 samples");
    expect(errorLabel(0.3, 0.6, NaN)).toBe("mean standard error 0.3 (50.0% of mean |estimate|)");
    expect(errorLabel(NaN, 1, 0.2)).toContain("moved 20.0%");
  });

  it("band outlines go along hi and back along lo", () => {
    const sx = linearScale(0, 1, 0, 10);
    const sy = linearScale(0, 1, 10, 0);
    expect(bandPoints({ xs: [0, 1], lo: [0, 0], hi: [1, 1], className: "" }, sx, sy)).toBe("0.0,0.0 10.0,0.0 10.0,10.0 0.0,10.0");
    expect(bandPoints({ xs: [0], lo: [NaN], hi: [NaN], className: "" }, sx, sy)).toBe("");
  });
});
