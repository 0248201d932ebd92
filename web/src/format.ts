// Display formatting. Unknown values (null) show as an em dash, never 0.

export const DASH = "—";

// Formatters are costly to create: one per option set, reused (a 100-row
// table formats several hundred numbers).
const formatters = new Map<string, Intl.NumberFormat>();
function nf(min: number, max: number): Intl.NumberFormat {
  const key = min + ":" + max;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.NumberFormat(undefined, { minimumFractionDigits: min, maximumFractionDigits: max })));
  return f;
}

export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return DASH;
  return nf(0, digits).format(n);
}

export function compact(n: number | null | undefined): string {
  if (n === null || n === undefined) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(0) + "k";
  return num(n, a < 10 ? 2 : 0);
}

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  if (v < 1) return v.toFixed(2) + " ms";
  if (v < 1000) return v.toFixed(v < 10 ? 1 : 0) + " ms";
  if (v < 60000) return (v / 1000).toFixed(2) + " s";
  return (v / 60000).toFixed(1) + " min";
}

export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  if (v === 0) return "$0";
  const a = Math.abs(v);
  if (a < 0.01) return "$" + v.toPrecision(2);
  return "$" + nf(2, a < 100 ? 4 : 2).format(v);
}

export function pct(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  return (v * 100).toFixed(v < 0.1 ? 2 : 1) + "%";
}

export function time(ns: number | string | null | undefined): string {
  if (ns === null || ns === undefined) return DASH;
  const d = typeof ns === "string" ? new Date(ns) : new Date(ns / 1e6);
  if (Number.isNaN(d.getTime())) return DASH;
  const p = (x: number, n = 2) => String(x).padStart(n, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function ago(ns: number): string {
  const s = (Date.now() - ns / 1e6) / 1000;
  if (s < 60) return Math.max(0, Math.round(s)) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : DASH;
}

// Time ranges offered everywhere, as [label, milliseconds].
export const RANGES: Array<[string, number]> = [
  ["15m", 15 * 60e3],
  ["1h", 3600e3],
  ["6h", 6 * 3600e3],
  ["24h", 24 * 3600e3],
  ["7d", 7 * 86400e3],
  ["30d", 30 * 86400e3],
];

// The API takes integer nanoseconds; milliseconds are exact enough here.
export function nsString(msSinceEpoch: number): string {
  return String(Math.floor(msSinceEpoch)) + "000000";
}

export function rangeFrom(label: string | null, fallback = "24h"): string {
  const r = RANGES.find(([l]) => l === label) || RANGES.find(([l]) => l === fallback)!;
  return nsString(Date.now() - r[1]);
}
