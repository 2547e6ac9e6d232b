// Text layout for TokenView and AnchorView (pure): the text cut into feature spans and the gaps
// between them, or (no text/spans) the features joined the way the tokenizer split them.

export interface TextSegment {
  text: string;
  /** Feature index, or -1 for text between features. */
  feature: number;
}

const MARKERS = ["▁", "Ġ"];

/** A token's surface text without its "##" / "▁" / "Ġ" marker. */
export function surface(token: string): string {
  if (token.startsWith("##") && token.length > 2) return token.slice(2);
  if (MARKERS.includes(token.charAt(0))) return token.slice(1);
  return token;
}

/** Whether spans are n in-bounds, ordered, non-overlapping [start, end] pairs. */
export function validSpans(spans: unknown, n: number, length: number): spans is [number, number][] {
  if (!Array.isArray(spans) || spans.length !== n) return false;
  let end = 0;
  for (const s of spans) {
    if (!Array.isArray(s) || s.length !== 2) return false;
    const [a, b] = s as number[];
    if (!(Number.isInteger(a) && Number.isInteger(b) && a >= end && a <= b && b <= length)) return false;
    end = b;
  }
  return true;
}

/** The text cut at the feature spans; without valid spans, the features joined ("##" pieces glued on). */
export function textSegments(text: string, features: string[], spans: unknown): TextSegment[] {
  const out: TextSegment[] = [];
  if (text && validSpans(spans, features.length, text.length)) {
    let cursor = 0;
    spans.forEach(([a, b], i) => {
      if (a > cursor) out.push({ text: text.slice(cursor, a), feature: -1 });
      out.push({ text: text.slice(a, b) || surface(features[i]), feature: i });
      cursor = b;
    });
    if (cursor < text.length) out.push({ text: text.slice(cursor), feature: -1 });
    return out;
  }
  features.forEach((f, i) => {
    const glued = f.startsWith("##") && f.length > 2;
    if (i > 0 && !glued) out.push({ text: " ", feature: -1 });
    out.push({ text: surface(f), feature: i });
  });
  return out;
}

/** Indices of the k largest |values| (ties: lower index first); k <= 0 gives none. */
export function topFeatures(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i).filter((i) => Number.isFinite(values[i]));
  idx.sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  return idx.slice(0, Math.max(0, k));
}

/**
 * Labels for the top list: a feature whose text occurs more than once in the input gets its position
 * (1-based, among all features) so "the" at word 3 and "the" at word 9 can be told apart.
 */
export function positionedLabels(features: string[]): string[] {
  const key = (f: string): string => surface(f).trim().toLowerCase();
  const count = new Map<string, number>();
  for (const f of features) count.set(key(f), (count.get(key(f)) ?? 0) + 1);
  return features.map((f, i) => ((count.get(key(f)) ?? 0) > 1 ? `${f} (pos ${i + 1})` : f));
}
