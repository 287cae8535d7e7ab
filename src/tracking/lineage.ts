/**
 * Lineage: `configHash()` gives any JSON-able configuration a stable identity (sha256 of canonical
 * JSON: keys sorted, no whitespace), tagged on runs as `runwarden.config_hash` and used for dedup.
 */
import { createHash } from 'node:crypto';

/** Canonical JSON: object keys sorted recursively; `undefined` members dropped, as JSON does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortDeep(x)));
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortDeep(x);
    }
    return out;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new TypeError(`configHash: non-finite number ${v} has no canonical JSON form`);
  }
  if (typeof v === 'bigint') throw new TypeError('configHash: bigint has no canonical JSON form');
  return v;
}

/** Hex sha256 of the canonical JSON of `value`. */
export function configHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
