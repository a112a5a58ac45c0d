/**
 * The hand-written record writer (src/audit/record-text.ts) must produce exactly the reference
 * canonical JSON, or step aside: a record it gets wrong would hash differently from what
 * `warden audit verify` recomputes, and the chain would look tampered.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { computeRecordHash, GENESIS, linkRecordLine, verifyChain, type AuditRecordBody } from '../../src/audit/chain.js';
import { referenceCanonicalJson } from '../../src/audit/canonical.js';
import { canonicalRecordText, recordTextFrom, staticRecordText } from '../../src/audit/record-text.js';

const TRICKY = ['', 'plain', 'q"uote', 'back\\slash', 'ctl\u0001\u001f', 'nl\n\t', 'emoji 😀', 'lone \ud800', 'é', '\u2028\u2029', '</script>'];

function generator(seed: number) {
  const rnd = mulberry32(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const text = () => (rnd() < 0.5 ? pick(TRICKY) : Math.floor(rnd() * 1e9).toString(36));
  const nullable = <T,>(f: () => T): T | null => (rnd() < 0.25 ? null : f());
  const num = () => pick([0, 1, -1, 0.5, 1e21, 1.5e-7, 123456789, Math.floor(rnd() * 1000)]);
  const counts = () => {
    const out: Record<string, number> = {};
    const n = Math.floor(rnd() * 5);
    // Integer-like and mixed keys: canonical JSON sorts them by code unit, not numerically.
    for (let i = 0; i < n; i++) out[pick(['EMAIL_ADDRESS', 'PHONE_NUMBER', '10', '9', 'a', 'B', text()])] = num();
    return out;
  };
  return (): AuditRecordBody => {
    const principal: NonNullable<AuditRecordBody['principal']> = { kind: text(), subject: text() };
    if (rnd() < 0.7) principal.namespace = text();
    if (rnd() < 0.7) principal.service_account = text();
    return {
      time: text(),
      request_id: text(),
      trace_id: text(),
      span_id: text(),
      decision_id: nullable(text),
      principal: rnd() < 0.2 ? null : principal,
      action: text(),
      template: nullable(() =>
        rnd() < 0.5
          ? { id: text(), version: nullable(num), sensitivity: nullable(text) }
          : { id: text(), version: num(), sensitivity: text(), variables: Array.from({ length: Math.floor(rnd() * 3) }, text) },
      ),
      approval: nullable(text),
      environment: text(),
      policy_revision: text(),
      template_revision: nullable(text),
      decision: nullable(() => ({ allow: rnd() < 0.5, reasons: Array.from({ length: Math.floor(rnd() * 3) }, text) })),
      secret_refs: Array.from({ length: Math.floor(rnd() * 3) }, text),
      redaction: nullable(() => ({ counts: counts(), response_counts: counts(), non_text_parts: num(), leaks: num(), detector_failures: num() })),
      prompt_hmac: nullable(text),
      provider: nullable(text),
      model: nullable(text),
      usage: nullable(() => ({ prompt_tokens: num(), completion_tokens: num(), total_tokens: num() })),
      status: pick(['ok', 'error'] as const),
      error_code: nullable(text),
      upstream_failure: nullable(() => ({ kind: text(), phase: nullable(text), status: nullable(num) })),
      latency_ms: num(),
      stream: rnd() < 0.5,
    };
  };
}

describe('canonical record text', () => {
  it('equals the reference canonical JSON on 2,000 generated records', () => {
    const next = generator(7);
    for (let i = 0; i < 2000; i++) {
      const body = next();
      const prev = i % 2 ? GENESIS.hash : 'ab'.repeat(32);
      expect(canonicalRecordText(body, i + 1, prev)).toBe(referenceCanonicalJson({ ...body, seq: i + 1, prev_hash: prev }));
    }
  });

  it('writes latency_ms, whole µs as record.ts rounds it, as the reference does', () => {
    const rnd = mulberry32(29);
    const body = generator(31)();
    const latencies: number[] = [0, -0, 0.001, 0.01, 0.1, 1, 10, 999.999, 1000, 86_400_000.001, 999_999_999.999, 1e9, 1e12, 0.0005, 1 / 3, -0.25, 1.5e-7];
    for (let us = 0; us <= 5000; us++) latencies.push(us / 1000);
    // Every scale up to 10^9 ms, each computed as record.ts computes it (rounded to thousandths).
    for (let i = 0; i < 5000; i++) latencies.push(Math.round(rnd() * 10 ** Math.floor(rnd() * 13)) / 1000);
    for (const latency_ms of latencies) {
      const b = { ...body, latency_ms };
      expect(canonicalRecordText(b, 1, GENESIS.hash)).toBe(referenceCanonicalJson({ ...b, seq: 1, prev_hash: GENESIS.hash }));
    }
  });

  it('steps aside for anything but the documented shape', () => {
    const base = generator(11)();
    const cases: Array<Record<string, unknown>> = [
      { ...base, extra: 1 },
      { ...base, model: undefined },
      { ...base, latency_ms: Number.NaN },
      { ...base, stream: 'yes' },
      { ...base, principal: { kind: 'k', subject: 's', token: 'x' } },
      { ...base, upstream_failure: { kind: 'status', phase: null, status: 502, body: 'x' } },
      { ...base, upstream_failure: { kind: 'status', phase: null, status: Number.POSITIVE_INFINITY } },
      { ...base, template: { id: 'x', version: '1', sensitivity: 's' } },
      { ...base, redaction: { counts: { A: '1' }, response_counts: {}, non_text_parts: 0, leaks: 0, detector_failures: 0 } },
      { ...base, redaction: { counts: {}, response_counts: {}, non_text_parts: 0, leaks: 0 } },
      { ...base, secret_refs: [1] },
    ];
    const { time: _dropped, ...missing } = base;
    cases.push(missing);
    for (const c of cases) expect(canonicalRecordText(c as unknown as AuditRecordBody, 1, GENESIS.hash)).toBeUndefined();
  });

  it('fixed pieces written early plus the dynamic members written later equal the reference, on 2,000 pairs', () => {
    const next = generator(17);
    const DYNAMIC = ['error_code', 'latency_ms', 'redaction', 'status', 'time', 'upstream_failure', 'usage'] as const;
    for (let i = 0; i < 2000; i++) {
      // `early` gives the static members; `late` has those and its own dynamic members.
      const early = next();
      const other = next();
      const late = { ...early } as Record<string, unknown>;
      for (const k of DYNAMIC) late[k] = (other as unknown as Record<string, unknown>)[k];
      const pieces = staticRecordText(early);
      expect(pieces).toBeDefined();
      const prev = i % 2 ? GENESIS.hash : 'cd'.repeat(32);
      const expected = referenceCanonicalJson({ ...late, seq: i + 1, prev_hash: prev });
      expect(recordTextFrom(pieces!, late as unknown as AuditRecordBody, i + 1, prev)).toBe(expected);
      // Given its pieces, the linker writes the same text, and so a verifiable line.
      expect(canonicalRecordText(late as unknown as AuditRecordBody, i + 1, prev, pieces)).toBe(expected);
    }
  });

  it('a body given pieces but with a member too many, or a dynamic member of the wrong shape, falls back', () => {
    const body = generator(19)();
    const pieces = staticRecordText(body)!;
    const extra = { ...body, extra: 1 } as Record<string, unknown>;
    expect(canonicalRecordText(extra as unknown as AuditRecordBody, 1, GENESIS.hash, pieces)).toBeUndefined();
    const badLatency = { ...body, latency_ms: Number.NaN };
    expect(recordTextFrom(pieces, badLatency, 1, GENESIS.hash)).toBeUndefined();
    const badUsage = { ...body, usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, cost: 9 } };
    expect(recordTextFrom(pieces, badUsage as unknown as AuditRecordBody, 1, GENESIS.hash)).toBeUndefined();
  });

  it('links lines that parse to the record and verify, on both the fast and the generic path', () => {
    const next = generator(13);
    let head = GENESIS;
    const records: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      const body = next();
      // Every fifth body carries an extra member, which the writer refuses: the generic walk links
      // it; every tenth also carries stray chain members, which linking replaces.
      if (i % 5 === 0) (body as unknown as Record<string, unknown>).note = `n${i}`;
      if (i % 10 === 0) Object.assign(body, { seq: -1, prev_hash: 'stray', hash: 'stray' });
      const { record, line } = linkRecordLine(body, head);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(parsed).toEqual(record);
      // The line is the hashed canonical text plus the hash as its last member (README).
      const hashed = `${line.slice(0, -`,"hash":"${record.hash}"}`.length)}}`;
      expect(hashed).toBe(referenceCanonicalJson({ ...parsed, hash: undefined }));
      expect(parsed.hash).toBe(computeRecordHash(parsed));
      records.push(parsed);
      head = { seq: record.seq, hash: record.hash };
    }
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 200 });
  });
});
