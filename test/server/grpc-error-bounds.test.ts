/**
 * The bounds on a gRPC error's trailers (server/grpc-error-bounds.ts): a message cut on a
 * character boundary, details whose short members survive a long list, and a value that is not a
 * list of strings replaced by its size rather than cut into broken JSON.
 */
import { describe, expect, it } from 'vitest';
import { boundedErrorMetadata, boundedStatusMessage, DETAILS_MAX_BYTES, MESSAGE_MAX_BYTES } from '../../src/server/grpc-error-bounds.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('boundedStatusMessage', () => {
  it('keeps a message that fits as it is', () => {
    const message = 'é'.repeat(MESSAGE_MAX_BYTES / 2);
    expect(boundedStatusMessage(message)).toBe(message);
  });

  it('cuts a longer one on a character boundary (2-, 3- and 4-byte characters), saying how long it was', () => {
    for (const ch of ['é', '€', '😀']) {
      const message = `denied by policy: ${ch.repeat(5000)}`;
      const cut = boundedStatusMessage(message);
      expect(bytes(cut), ch).toBeLessThanOrEqual(MESSAGE_MAX_BYTES);
      expect(cut, ch).not.toContain('\uFFFD');
      expect(message.startsWith(cut.slice(0, cut.indexOf(' ... (')))).toBe(true);
      expect(cut, ch).toMatch(new RegExp(` \\.\\.\\. \\(${bytes(message)} bytes; a gRPC status message keeps ${MESSAGE_MAX_BYTES}\\)$`));
    }
  });
});

describe('boundedErrorMetadata', () => {
  it('passes small details through (strings as they are, the rest as JSON)', () => {
    expect(boundedErrorMetadata({ reason: 'pii_in_id', status: 400, entities: ['EMAIL_ADDRESS'], skipped: undefined })).toEqual({
      reason: 'pii_in_id',
      status: '400',
      entities: '["EMAIL_ADDRESS"]',
    });
    expect(boundedErrorMetadata(undefined)).toEqual({});
  });

  it('keeps the short members whole and a long list of strings in order with a count of the rest, within the bound', () => {
    const reasons = Array.from({ length: 500 }, (_, i) => `reason ${i} ${'ü'.repeat(20)}`);
    const out = boundedErrorMetadata({ reasons, decision_id: 'd-1' });
    expect(Object.keys(out)).toEqual(['reasons', 'decision_id']);
    expect(out.decision_id).toBe('d-1');
    const kept = JSON.parse(out.reasons!) as string[];
    expect(kept.slice(0, -1)).toEqual(reasons.slice(0, kept.length - 1));
    expect(kept.at(-1)).toBe(`(${reasons.length - kept.length + 1} more item(s) not shown: gRPC error details keep ${DETAILS_MAX_BYTES} bytes)`);
    expect(Object.values(out).reduce((n, v) => n + bytes(v), 0)).toBeLessThanOrEqual(DETAILS_MAX_BYTES);
  });

  it('replaces another value that does not fit by its size (never a cut JSON text)', () => {
    const out = boundedErrorMetadata({ profile: 'p'.repeat(5000), nested: { a: 'x'.repeat(5000) } });
    expect(out.profile).toBe(`(5000 bytes not shown: gRPC error details keep ${DETAILS_MAX_BYTES} bytes)`);
    expect(out.nested).toMatch(/^\(\d+ bytes not shown: gRPC error details keep 2048 bytes\)$/);
  });
});
