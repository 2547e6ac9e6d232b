// SVG element helper and axis ticks (own code, no library).

export const SVG_NS = "http://www.w3.org/2000/svg";

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** About `count` round tick values (1, 2, 5 times a power of ten) inside [lo, hi]; at least two when the
 * range is not degenerate. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || count < 1) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10].map((m) => m * power);
  const ticks = (step: number): number[] => {
    const out: number[] = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
    }
    return out;
  };
  let best: number[] = [];
  for (const step of steps) {
    const t = ticks(step);
    if (t.length >= 2) best = t;
    if (step >= raw && t.length >= 2) return t;
  }
  return best;
}
