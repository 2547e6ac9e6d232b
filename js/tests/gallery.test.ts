import { describe, expect, it } from "vitest";
import { getLUT } from "../src/lib/colormaps";
import {
  activationValue, cellAt, colourMap, conceptCards, curveIndex, decodeActivations, decodeDetail, decodeStack,
  dissectionRows, formatP, gridLayout, isConcepts, type DetailPayload,
} from "../src/lib/gallery";
import type { ArrayDict } from "../src/lib/model";

/** An array dict whose bytes sit at an odd offset inside a junk-filled buffer (as ipywidgets may deliver). */
function dict(dtype: string, shape: number[], values: ArrayLike<number>, view: "dataview" | "uint8" = "dataview"): ArrayDict {
  const typed =
    dtype === "float32" ? Float32Array.from(values) : dtype === "int32" ? Int32Array.from(values) : Uint8Array.from(values);
  const bytes = new Uint8Array(typed.buffer);
  const pad = dtype === "uint8" ? 7 : 8;
  const buf = new ArrayBuffer(pad + bytes.length + 3);
  const all = new Uint8Array(buf);
  all.fill(0xee);
  all.set(bytes, pad);
  const data = view === "uint8" ? new Uint8Array(buf, pad, bytes.length) : new DataView(buf, pad, bytes.length);
  return { dtype, shape, data };
}

describe("gallery payloads", () => {
  it("splits a (K, h, w, 3) stack into RGBA images, offset-correctly, for both deliveries", () => {
    const values = Array.from({ length: 2 * 2 * 3 * 3 }, (_, i) => i);
    for (const view of ["dataview", "uint8"] as const) {
      const imgs = decodeStack(dict("uint8", [2, 2, 3, 3], values, view));
      expect(imgs.length).toBe(2);
      expect([imgs[1].width, imgs[1].height]).toEqual([3, 2]);
      expect(Array.from(imgs[1].rgba.slice(0, 8))).toEqual([18, 19, 20, 255, 21, 22, 23, 255]);
    }
    expect(decodeStack({})).toEqual([]);
  });

  it("decodes a channel's detail and maps a snapshot's step to its point on the objective curve", () => {
    const p: DetailPayload = {
      channel: 12, index: 3, n_steps: 8, done: true, value: 4.5,
      frames: dict("uint8", [3, 1, 1, 3], [0, 0, 0, 9, 9, 9, 200, 100, 50]),
      frame_steps: dict("int32", [3], [0, 4, 8]),
      curve: dict("float32", [8], [1, 2, 3, 4, 5, 6, 7, 8]),
      patches: dict("uint8", [2, 1, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
      patch_values: dict("float32", [2], [3.5, 2.25]),
      patch_images: dict("int32", [2], [7, 1]),
      patch_boxes: dict("int32", [2, 4], [0, 1, 10, 11, 5, 6, 15, 16]),
      receptive_field: [10, 10],
      bytes: 0,
    };
    const d = decodeDetail(p);
    expect(d.frames.length).toBe(3);
    expect(Array.from(d.frames[2].rgba)).toEqual([200, 100, 50, 255]);
    expect(d.steps).toEqual([0, 4, 8]);
    expect(d.patchValues).toEqual([3.5, 2.25]);
    expect(d.patchImages).toEqual([7, 1]);
    expect(d.patchBoxes).toEqual([[0, 1, 10, 11], [5, 6, 15, 16]]);
    expect(d.patches[1].width).toBe(2);
    // step s is the s-th ascent step: curve[s - 1]; the initial snapshot (step 0) sits on the first point
    expect(d.steps.map((s) => curveIndex(s, d.curve.length))).toEqual([0, 3, 7]);
    expect(curveIndex(5, 0)).toBe(-1);
  });

  it("colours each activation map by its own codes and dequantises with its own range", () => {
    const a = decodeActivations({
      index: 2,
      image: dict("uint8", [1, 1, 3], [1, 2, 3]),
      maps: dict("uint8", [2, 1, 2], [0, 255, 128, 128]),
      ranges: dict("float32", [2, 2], [-2, 2, 0, 10]),
      mean: dict("float32", [2], [0, 5]),
      signed: true,
    });
    expect([a.channels, a.height, a.width, a.index]).toEqual([2, 1, 2, 2]);
    expect(activationValue(a, 0, 0)).toBe(-2);
    expect(activationValue(a, 0, 255)).toBe(2);
    expect(activationValue(a, 1, 255)).toBeCloseTo(10);
    const lut = getLUT("diverging");
    const rgba = colourMap(a, 0, lut);
    expect(Array.from(rgba.slice(0, 4))).toEqual([lut[0], lut[1], lut[2], 255]);
    expect(Array.from(rgba.slice(4, 8))).toEqual([lut[765], lut[766], lut[767], 255]);
  });

  it("lays out the activation grid and finds the cell under a point", () => {
    const L = gridLayout(32, 8, 480, 2);
    expect(L.cols).toBe(7);
    expect(L.rows).toBe(5);
    expect(L.cell).toBe(Math.floor((480 - 12) / 7));
    expect(L.width).toBe(7 * L.cell + 12);
    const centre = (c: number): [number, number] => [
      (c % L.cols) * (L.cell + L.gap) + L.cell / 2,
      Math.floor(c / L.cols) * (L.cell + L.gap) + L.cell / 2,
    ];
    for (const c of [0, 6, 7, 20, 31]) expect(cellAt(L, 32, ...centre(c))).toBe(c);
    expect(cellAt(L, 32, L.cell + 1, 3)).toBe(-1); // gutter
    expect(cellAt(L, 32, ...centre(33))).toBe(-1); // past the last map
    expect(cellAt(L, 32, -1, 3)).toBe(-1);
    expect(gridLayout(4, 56, 100).cell).toBe(56); // never below the map's own size
  });

  it("sorts dissection rows by each unit's best IoU", () => {
    const rows = dissectionRows({
      layer: "l", concepts: ["a", "b"], quantile: 0.99,
      iou: dict("float32", [3, 2], [0.1, 0.3, 0.5, 0.2, 0.3, 0.1]),
      thresholds: dict("float32", [3], [0, 0, 0]),
    });
    expect(rows.map((r) => [r.unit, r.best])).toEqual([[1, 0], [0, 1], [2, 0]]);
    expect(rows[0].iou).toBeCloseTo(0.5);
    expect(() => dissectionRows({ layer: "l", concepts: ["a"], quantile: 0.9, iou: dict("float32", [1, 2], [0, 0]), thresholds: dict("float32", [1], [0]) }))
      .toThrow(/units, 1/);
  });

  it("decodes ACE concept cards in the kernel's order and checks patches against image indices", () => {
    const test = { score: 1, p_value: 0.0004, significant: true, n_members: 9, n_images: 9 };
    const payload = {
      layer: "features.4", target: 1, target_label: "square", alpha: 0.01, n_images: 24,
      concepts: [
        { ...test, index: 6, patches: dict("uint8", [2, 1, 1, 3], [1, 2, 3, 4, 5, 6]), images: dict("int32", [2], [3, 17]) },
        { ...test, index: 2, significant: false, patches: dict("uint8", [1, 1, 1, 3], [7, 8, 9]), images: dict("int32", [1], [0]) },
      ],
      random: [{ ...test, index: -1, significant: false, p_value: 0.4 }],
    };
    expect(isConcepts(payload)).toBe(true);
    expect(isConcepts({})).toBe(false);
    const cards = conceptCards(payload);
    expect(cards.map((c) => [c.index, c.images, c.patches.length, c.significant])).toEqual([[6, [3, 17], 2, true], [2, [0], 1, false]]);
    expect(Array.from(cards[0].patches[1].rgba)).toEqual([4, 5, 6, 255]);
    const bad = { ...payload, concepts: [{ ...payload.concepts[0], images: dict("int32", [1], [3]) }] };
    expect(() => conceptCards(bad)).toThrow(/2 patches but 1 image/);
    expect([formatP(0.0004), formatP(0.25)]).toEqual(["p = 4.0e-4", "p = 0.25"]);
  });
});
