/**
 * Canonical JSON for hashing: object keys sorted by code unit, no whitespace, `undefined`
 * members dropped (as JSON.stringify does). Two records with the same content hash the same no
 * matter how they were built or re-parsed, which is what makes the chain verifiable from a file.
 */
// Characters JSON.stringify would escape (controls, quote, backslash, surrogates for lone halves).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') {
    // Fast path for the common case (prompt text without quotes or controls): same output as JSON.stringify.
    return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  }
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalJson(value[i]);
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += `${canonicalJson(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}
