import { describe, expect, it } from "vitest";
import { asBytes, decodeArray, isArrayDict } from "../src/lib/arrays";

/** `payload` placed at `offset` inside a bigger buffer filled with junk (0xEE). */
function embedded(payload: Uint8Array, offset: number, tail = 7): ArrayBuffer {
  const buf = new ArrayBuffer(offset + payload.byteLength + tail);
  const all = new Uint8Array(buf);
  all.fill(0xee);
  all.set(payload, offset);
  return buf;
}

describe("decodeArray", () => {
  const payload = Uint8Array.from([1, 2, 3, 4, 5, 6]);

  it("reads a DataView at its byteOffset, not from 0", () => {
    const buf = embedded(payload, 9);
    const a = decodeArray({ dtype: "uint8", shape: [2, 3], data: new DataView(buf, 9, 6) });
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("reads a Uint8Array view (Colab) at its byteOffset", () => {
    const buf = embedded(payload, 13);
    const a = decodeArray({ dtype: "uint8", shape: [6], data: new Uint8Array(buf, 13, 6) });
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("accepts a bare ArrayBuffer", () => {
    const a = decodeArray({ dtype: "uint8", shape: [3, 2], data: payload.slice().buffer });
    expect(a.data).toBeInstanceOf(Uint8Array);
    expect(a.data.length).toBe(6);
  });

  it("decodes float32 at an aligned and a misaligned offset", () => {
    const values = Float32Array.from([0.5, -1.25, 3e-7, 1e6]);
    const bytes = new Uint8Array(values.buffer);
    for (const offset of [8, 5]) {
      const a = decodeArray({
        dtype: "float32",
        shape: [2, 2],
        data: new DataView(embedded(bytes, offset), offset, bytes.byteLength),
      });
      expect(a.data).toBeInstanceOf(Float32Array);
      expect(Array.from(a.data)).toEqual(Array.from(values));
    }
  });

  it("decodes int32 and float64, and numpy dtype spellings", () => {
    const ints = Int32Array.from([-7, 0, 2147483647]);
    const a = decodeArray({ dtype: "int32", shape: [3], data: new Uint8Array(embedded(new Uint8Array(ints.buffer), 4), 4, 12) });
    expect(a.data).toBeInstanceOf(Int32Array);
    expect(Array.from(a.data)).toEqual([-7, 0, 2147483647]);
    const f8 = decodeArray({ dtype: "<f8", shape: [1], data: Float64Array.from([Math.PI]) });
    expect(f8.dtype).toBe("float64");
    expect(f8.data[0]).toBe(Math.PI);
  });

  it("keeps vmin/vmax", () => {
    const a = decodeArray({ dtype: "uint8", shape: [1], data: new Uint8Array([9]), vmin: -2, vmax: 2 });
    expect([a.vmin, a.vmax]).toEqual([-2, 2]);
  });

  it("fails clearly on a length that does not match the shape", () => {
    expect(() => decodeArray({ dtype: "uint8", shape: [2, 4], data: payload })).toThrow(/shape \[2, 4\] needs 8 bytes, got 6/);
    expect(() => decodeArray({ dtype: "float32", shape: [2], data: payload })).toThrow(/needs 8 bytes/);
  });

  it("fails clearly on an unknown dtype", () => {
    expect(() => decodeArray({ dtype: "complex64", shape: [1], data: payload })).toThrow(/unsupported dtype "complex64"/);
    expect(() => decodeArray({ dtype: ">f4", shape: [1], data: new Uint8Array(4) })).toThrow(/unsupported dtype/);
  });

  it("asBytes does not copy", () => {
    const buf = embedded(payload, 3);
    const view = new DataView(buf, 3, 6);
    const bytes = asBytes(view);
    expect(bytes.buffer).toBe(buf);
    expect(bytes.byteOffset).toBe(3);
  });
});

describe("isArrayDict", () => {
  it("rejects the empty defaults of unset traits", () => {
    expect(isArrayDict({})).toBe(false);
    expect(isArrayDict(null)).toBe(false);
    expect(isArrayDict({ dtype: "uint8", shape: [1] })).toBe(false);
    expect(isArrayDict({ dtype: "uint8", shape: [1], data: new DataView(new ArrayBuffer(1)) })).toBe(true);
  });
});
