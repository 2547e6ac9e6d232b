import { describe, expect, it } from "vitest";
import { bandPoints, markerPoint, plotScales, polylinePoints, type PlotSpec } from "../src/lib/lineplot";

const box = { width: 300, height: 150, left: 44, right: 56, top: 10, bottom: 26 };

// an estimate's error history: the first entry is NaN (no standard error yet), one x is infinite
const spec: PlotSpec = {
  series: [{ xs: [10, 20, Infinity, 40], ys: [NaN, 0.5, 0.4, 0.3], className: "s", label: "" }],
  bands: [{ xs: [10, 20, 30, 40], lo: [NaN, 0.4, 0.3, 0.2], hi: [NaN, 0.6, 0.5, 0.4], className: "b" }],
  refs: [{ y: NaN, label: "", className: "r" }],
  marker: 0,
  bracket: null,
  xLabel: "samples",
};

describe("line plot at non-finite values", () => {
  const scales = plotScales(spec, box);

  it("has finite scales", () => {
    for (const d of [...scales.sx.domain, ...scales.sy.domain]) expect(Number.isFinite(d)).toBe(true);
  });

  it("places no marker at a NaN or infinite point, and a finite one elsewhere", () => {
    expect(markerPoint(spec.series[0], scales, 0)).toBeNull(); // y is NaN
    expect(markerPoint(spec.series[0], scales, 2)).toBeNull(); // x is infinite
    expect(markerPoint(spec.series[0], scales, 7)).toBeNull(); // out of range
    const p = markerPoint(spec.series[0], scales, 1);
    expect(p && Number.isFinite(p.x) && Number.isFinite(p.y)).toBe(true);
  });

  it("writes no NaN into polyline or polygon points", () => {
    const line = polylinePoints(spec.series[0].xs, spec.series[0].ys, scales.sx, scales.sy);
    const band = bandPoints(spec.bands![0], scales.sx, scales.sy);
    for (const text of [line, band]) {
      expect(text).not.toMatch(/NaN|Infinity/);
      expect(text.split(" ").length).toBeGreaterThan(1);
    }
  });

  it("keeps finite scales when every value is NaN", () => {
    const empty = plotScales({ ...spec, series: [{ xs: [NaN], ys: [NaN], className: "s", label: "" }], bands: [] }, box);
    expect(markerPoint({ xs: [NaN], ys: [NaN], className: "s", label: "" }, empty, 0)).toBeNull();
    for (const d of [...empty.sx.domain, ...empty.sy.domain]) expect(Number.isFinite(d)).toBe(true);
  });
});
