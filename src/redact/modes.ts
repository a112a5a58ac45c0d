/**
 * What replaces a finding: `mask` → `[EMAIL_ADDRESS]`, `hash` → `<EMAIL_ADDRESS:3fa2c1d0>`
 * (HMAC-SHA256 under the tenant key, so equal values hash equally across requests),
 * `tokenize` → `<EMAIL_ADDRESS_1>` (reversible within the request only), `allow` → unchanged.
 * `block` is decided by the session before any replacement happens.
 */
import { createHmac } from 'node:crypto';
import type { RedactionMode } from '../pipeline/types.js';
import { jsonEdits, type JsonEdit, type JsonEditPart, type JsonLexState } from './json-literals.js';
import type { Finding } from './types.js';

/**
 * Per-request token vault: value ↔ placeholder. Dies with the session. Its maps are made on the
 * first token: most requests mint none, and every request has a vault.
 */
export class TokenVault {
  private byValue: Map<string, string> | null = null;
  private byToken: Map<string, string> | null = null;
  private counters: Map<string, number> | null = null;
  /** Placeholder-shaped text the request's own input holds: never minted, never restored. */
  private reserved: Set<string> | null = null;

  tokenFor(entity: string, value: string): string {
    const byValue = (this.byValue ??= new Map());
    const byToken = (this.byToken ??= new Map());
    const counters = (this.counters ??= new Map());
    const key = `${entity}\u0000${value}`;
    const existing = byValue.get(key);
    if (existing) return existing;
    let n = counters.get(entity) ?? 0;
    let token: string;
    // Skip numbers the input already uses: a literal `<EMAIL_ADDRESS_1>` the caller typed must
    // never come back as the value Warden minted that token for.
    do token = `<${entity}_${++n}>`;
    while (this.reserved?.has(token));
    counters.set(entity, n);
    byValue.set(key, token);
    byToken.set(token, value);
    return token;
  }

  /**
   * `token` occurs in the request's input as text. It is not minted from now on, and if it was
   * minted already (the input came in a later call: tools, parameters) it is no longer restored:
   * in the answer it could stand for either, so it stays as it is.
   */
  reserve(token: string): void {
    (this.reserved ??= new Set()).add(token);
    this.byToken?.delete(token);
  }

  original(token: string): string | undefined {
    return this.byToken?.get(token);
  }

  get size(): number {
    return this.byToken?.size ?? 0;
  }
}

export function maskOf(entity: string): string {
  return `[${entity}]`;
}

export function hashOf(key: Buffer, entity: string, value: string): string {
  const h = createHmac('sha256', key).update(entity).update('\u0000').update(value).digest('hex');
  return `<${entity}:${h.slice(0, 8)}>`;
}

export interface Replacer {
  /** Replacement text for a finding whose original value is `value`. */
  replace(entity: string, value: string, mode: RedactionMode): string;
}

export function createReplacer(vault: TokenVault, hashKey: Buffer | undefined): Replacer {
  return {
    replace(entity, value, mode) {
      switch (mode) {
        case 'allow':
          return value;
        case 'tokenize':
          return vault.tokenFor(entity, value);
        case 'hash':
          // The plan refuses hash mode without a key, so this is unreachable; mask to stay safe.
          return hashKey ? hashOf(hashKey, entity, value) : maskOf(entity);
        case 'mask':
        case 'block':
        default:
          return maskOf(entity);
      }
    },
  };
}

/**
 * Rebuilds `text` with findings (sorted, non-overlapping) replaced. `between` transforms the text
 * between findings (placeholder restoration in responses); `counts` is incremented per entity.
 */
export function applyFindings(
  text: string,
  findings: readonly Finding[],
  modeOf: (entity: string) => RedactionMode,
  replacer: Replacer,
  counts: Record<string, number>,
  between?: (segment: string) => string,
): string {
  if (findings.length === 0) return between ? between(text) : text;
  const parts: string[] = [];
  let pos = 0;
  for (const f of findings) {
    if (f.start < pos) continue;
    const seg = text.slice(pos, f.start);
    parts.push(between ? between(seg) : seg);
    const mode = modeOf(f.entity);
    parts.push(replacer.replace(f.entity, text.slice(f.start, f.end), mode));
    if (mode !== 'allow') counts[f.entity] = (counts[f.entity] ?? 0) + 1;
    pos = f.end;
  }
  const tail = text.slice(pos);
  parts.push(between ? between(tail) : tail);
  return parts.join('');
}

/**
 * applyFindings for JSON text (tool-call arguments in an answer), read from `at` (where a streamed
 * piece begins): a finding in a string is replaced there, one in a bare value (a number) turns the
 * value into a JSON string of its redaction, so JSON stays JSON (see jsonEdits). A finding is
 * counted once, however many parts it was split into.
 */
export function applyJsonFindings(
  text: string,
  findings: readonly Finding[],
  modeOf: (entity: string) => RedactionMode,
  replacer: Replacer,
  counts: Record<string, number>,
  at: JsonLexState,
  between?: (segment: string) => string,
): string {
  if (findings.length === 0) return between ? between(text) : text;
  const parts: string[] = [];
  let pos = 0;
  let counted: Finding | undefined;
  for (const edit of jsonEdits(text, findings, at)) {
    const seg = text.slice(pos, edit.start);
    parts.push(between ? between(seg) : seg);
    parts.push(edit.bare ? quotedValue(text, edit, modeOf, replacer) : replacementOf(text, edit.parts[0]!, modeOf, replacer));
    for (const p of edit.parts) {
      if (p.finding === counted) continue;
      counted = p.finding;
      if (modeOf(p.finding.entity) !== 'allow') counts[p.finding.entity] = (counts[p.finding.entity] ?? 0) + 1;
    }
    pos = edit.end;
  }
  const tail = text.slice(pos);
  parts.push(between ? between(tail) : tail);
  return parts.join('');
}

/** A part's replacement: of the whole finding's value (a split one hashes alike in every part). */
function replacementOf(text: string, p: JsonEditPart, modeOf: (entity: string) => RedactionMode, replacer: Replacer): string {
  const mode = modeOf(p.finding.entity);
  if (mode === 'allow') return text.slice(p.start, p.end);
  return replacer.replace(p.finding.entity, text.slice(p.finding.start, p.finding.end), mode);
}

/**
 * A bare value with its findings replaced, as a JSON string; unchanged (byte for byte) when they
 * all are allowed. Placeholders in it are not restored: valid JSON has none outside strings.
 */
function quotedValue(text: string, edit: JsonEdit, modeOf: (entity: string) => RedactionMode, replacer: Replacer): string {
  const raw = text.slice(edit.start, edit.end);
  let out = '';
  let pos = edit.start;
  for (const p of edit.parts) {
    out += text.slice(pos, p.start) + replacementOf(text, p, modeOf, replacer);
    pos = p.end;
  }
  out += text.slice(pos, edit.end);
  return out === raw ? raw : JSON.stringify(out);
}
