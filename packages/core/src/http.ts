/**
 * Milliseconds an HTTP Retry-After header asks to wait (RFC 9110 §10.2.3: delta-seconds or an HTTP date, the
 * latter against `nowMs`); undefined when absent or unreadable. Used by the AMD KDS and Intel PCS clients.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - nowMs);
}
