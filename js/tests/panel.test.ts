import { describe, expect, it } from "vitest";
import type { TunableSpec } from "../src/lib/model";
import { sliderValue, stepDecimals } from "../src/lib/panel";

const gamma: TunableSpec = { min: 0, max: 1, step: 0.05, integer: false, default: 0.8 };

describe("parameter sliders", () => {
  it("shows as many decimals as the step needs", () => {
    expect(stepDecimals(0.05)).toBe(2);
    expect(stepDecimals(0.1)).toBe(1);
    expect(stepDecimals(1)).toBe(0);
    expect(stepDecimals(1e-7)).toBe(7);
    expect(stepDecimals(0)).toBe(0);
  });

  it("shows the set number, else the default", () => {
    expect(sliderValue(gamma, 0.3)).toBe(0.3);
    expect(sliderValue(gamma, undefined)).toBe(0.8);
    expect(sliderValue(gamma, "auto")).toBe(0.8);
    expect(sliderValue(gamma, Number.NaN)).toBe(0.8);
    expect(sliderValue({ ...gamma, default: null }, undefined)).toBeNull();
  });
});
