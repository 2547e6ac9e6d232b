// Test helpers for binary payloads (not a test file: vitest collects *.test.ts only).

/** Bytes inside a larger junk-filled buffer at an odd offset, as the widget protocol allows. */
export function padded(bytes: Uint8Array): DataView {
  const buf = new ArrayBuffer(bytes.length + 16);
  const all = new Uint8Array(buf);
  all.fill(0xee);
  all.set(bytes, 7);
  return new DataView(buf, 7, bytes.length);
}
