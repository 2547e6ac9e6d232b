// Decode array dicts `{dtype, shape, data}` into typed arrays, offset-correctly.
import type { ArrayDict, Bytes } from "./model";

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

export type DType = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";

export interface Decoded {
  dtype: DType;
  shape: number[];
  data: TypedArray;
  vmin?: number;
  vmax?: number;
}

type Ctor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

const CTORS: Record<DType, Ctor> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

// numpy spellings ("<f4", "u1", "bool") mapped to canonical names; little-endian assumed.
const ALIASES: Record<string, DType> = {
  bool: "uint8", u1: "uint8", i1: "int8", u2: "uint16", i2: "int16",
  u4: "uint32", i4: "int32", f4: "float32", f8: "float64",
};

export function canonicalDType(dtype: string): DType {
  const bare = dtype.replace(/^[<|=]/, "");
  if (bare in CTORS) return bare as DType;
  const alias = ALIASES[bare];
  if (alias && !dtype.startsWith(">")) return alias;
  throw new Error(`xaiwidgets: unsupported dtype "${dtype}" (expected one of ${Object.keys(CTORS).join(", ")})`);
}

/** A usable array dict (traits default to `{}` or `null` before the kernel fills them). */
export function isArrayDict(x: unknown): x is ArrayDict {
  if (!x || typeof x !== "object") return false;
  const d = x as Partial<ArrayDict>;
  return typeof d.dtype === "string" && Array.isArray(d.shape) && (d.data instanceof ArrayBuffer || ArrayBuffer.isView(d.data));
}

/** The exact bytes of `data` as a Uint8Array view (no copy), honouring byteOffset/byteLength. */
export function asBytes(data: Bytes): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  throw new Error("xaiwidgets: array data must be a DataView, an ArrayBuffer or a typed array");
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Decode an array dict; throws on unknown dtype or a byte length that does not match the shape. */
export function decodeArray(dict: ArrayDict): Decoded {
  const dtype = canonicalDType(dict.dtype);
  const shape = Array.from(dict.shape, Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`xaiwidgets: invalid shape [${shape.join(", ")}]`);
  }
  const ctor = CTORS[dtype];
  const bytes = asBytes(dict.data);
  const count = product(shape);
  if (bytes.byteLength !== count * ctor.BYTES_PER_ELEMENT) {
    throw new Error(
      `xaiwidgets: ${dtype} array of shape [${shape.join(", ")}] needs ${count * ctor.BYTES_PER_ELEMENT} bytes, got ${bytes.byteLength}`,
    );
  }
  // Typed arrays need an aligned offset; copy the bytes when the view is misaligned.
  const aligned = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  const data = new ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, count);
  const out: Decoded = { dtype, shape, data };
  if (typeof dict.vmin === "number") out.vmin = dict.vmin;
  if (typeof dict.vmax === "number") out.vmax = dict.vmax;
  return out;
}
