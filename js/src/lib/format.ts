// Short number formatting for labels.

/** 3 significant digits; exponent form for very small or large magnitudes. */
export function formatValue(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e5) return x.toExponential(1).replace("e+", "e");
  return String(Number(x.toPrecision(3)));
}

export function formatPercent(p: number): string {
  const v = Math.max(0, Math.min(1, p)) * 100;
  return `${v >= 10 || v === 0 ? v.toFixed(1) : v.toFixed(2)}%`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "";
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}
