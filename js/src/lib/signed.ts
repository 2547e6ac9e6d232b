// Colours of signed values in the text views and the force plot: red above zero, blue below, alpha
// growing with |v| (xaiwidgets/widgets/htmlfallback.py holds the same numbers for the static HTML).

export const POSITIVE: readonly [number, number, number] = [255, 13, 87];
export const NEGATIVE: readonly [number, number, number] = [30, 136, 229];
export const MAX_ALPHA = 0.8;

export type Sign = "pos" | "neg" | "zero";

export function signOf(v: number): Sign {
  return v > 0 ? "pos" : v < 0 ? "neg" : "zero";
}

/** Alpha of a value: MAX_ALPHA * min(1, |v| / clip); 0 for a zero range or a non-finite value. */
export function alphaOf(v: number, clip: number): number {
  if (!(clip > 0) || !Number.isFinite(v)) return 0;
  return MAX_ALPHA * Math.min(1, Math.abs(v) / clip);
}

/** CSS rgba() of a value. Unsigned results (attention) use the positive colour only. */
export function signedRGBA(v: number, clip: number, signed = true): string {
  const [r, g, b] = v < 0 && signed ? NEGATIVE : POSITIVE;
  return `rgba(${r}, ${g}, ${b}, ${alphaOf(v, clip).toFixed(3)})`;
}

export function rgb(c: readonly [number, number, number]): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** Largest |v| of finite values (0 when there are none). */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (Number.isFinite(a) && a > m) m = a;
  }
  return m;
}
