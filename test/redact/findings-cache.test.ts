/**
 * The prompt findings cache must be invisible in results: a cached and an uncached session give
 * byte-identical prompts, reports and refusals for every mode; a cached system prompt still meets
 * each request's own leak guard; findings never cross profiles; failed scans are never kept; and
 * the cache holds digests and findings only, never text.
 */
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/pipeline/errors.js';
import type { ChatMessage, RedactionDecision, RedactionMode } from '../../src/pipeline/types.js';
import { createRedactor, type WardenRedactor } from '../../src/redact/index.js';
import type { Detector } from '../../src/redact/types.js';
import { generateRedactCorpus } from '../../scripts/gen-redact-corpus.js';
import { decision } from './helpers.js';

const CANARY = 'CANARY-SECRET-9f8e7d';
const HASH_KEY = Buffer.from('tenant-key-0123456789');

/** What a request yields: the redacted prompt and report, or the refusal (code, message, details). */
function outcome(r: WardenRedactor, d: RedactionDecision, messages: ChatMessage[], secrets: string[] = []): unknown {
  const s = r.session(d, secrets);
  try {
    const out = s.redactMessages(messages);
    return { out, report: s.report(), failures: s.detectorFailures };
  } catch (err) {
    if (!isWardenError(err)) throw err;
    return { code: err.code, message: err.message, details: err.details };
  }
}

/** The LRU's entries, serialised: what the cache keeps in memory. */
function cacheDump(r: WardenRedactor): string {
  const lru = (r.findingsCache as unknown as { lru: { dump(): unknown } }).lru;
  return JSON.stringify(lru.dump());
}

const SYSTEM = `${'You are the support assistant of Example Corp. Answer in the customer language, stay factual, never promise refunds. '.repeat(8)}Escalation contact: ops@example.com, phone +1 415 555 0132.`;

const corpus = generateRedactCorpus({ perEntity: 12, perLookalike: 6, perPhoneContext: 4 }).map((c) => c.text);

/** Corpus texts joined into prompts long enough to be cached, plus the short ones as they are. */
function corpusRequests(): ChatMessage[][] {
  const requests: ChatMessage[][] = [];
  for (let i = 0; i < corpus.length; i += 10) {
    const block = corpus.slice(i, i + 10);
    requests.push([
      { role: 'system', content: `${SYSTEM}\n${block.join('\n')}` },
      { role: 'user', content: block[0]! },
      { role: 'user', content: [{ type: 'text', text: block.slice(1).join(' ') }] },
    ]);
  }
  return requests;
}

const MODES: RedactionMode[] = ['mask', 'hash', 'tokenize', 'block', 'allow'];

describe('findings cache', () => {
  it('gives byte-identical prompts, reports and refusals to the uncached path, in every mode', () => {
    const requests = corpusRequests();
    expect(requests.length).toBeGreaterThan(20);
    const uncached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: false });
    const cached = createRedactor({ hashKey: HASH_KEY });
    // minChars 1: every corpus text, however short, goes through the cache too.
    const cachedAll = createRedactor({ hashKey: HASH_KEY }, { findingsCache: { minChars: 1 } });
    expect(uncached.findingsCache).toBeUndefined();
    const decisions: RedactionDecision[] = [
      ...MODES.map((mode) => decision({ mode })),
      ...MODES.map((mode) => decision({ profile: 'strict', mode })),
      decision({ profile: 'strict' }), // strict blocks SECRETS, masks the rest
      decision({ modes: { EMAIL_ADDRESS: 'tokenize', PHONE_NUMBER: 'hash', SECRETS: 'block' } }),
    ];
    let compared = 0;
    for (const d of decisions) {
      for (const msgs of requests) {
        const want = JSON.stringify(outcome(uncached, d, msgs));
        // Three times: the first remembers the digest, the second keeps the findings, the third
        // is served from the cache.
        for (let pass = 0; pass < 3; pass++) {
          expect(JSON.stringify(outcome(cached, d, msgs))).toBe(want);
          expect(JSON.stringify(outcome(cachedAll, d, msgs))).toBe(want);
          compared++;
        }
      }
    }
    expect(compared).toBe(decisions.length * requests.length * 3);
    // The comparison is worth something only if the cache actually served findings.
    expect(cached.findingsCache!.stats().hits).toBeGreaterThan(requests.length);
    expect(cachedAll.findingsCache!.stats().hits).toBeGreaterThan(requests.length * 3);
  });

  it('still catches a leaked secret when the same system prompt was cached by an earlier request', () => {
    const r = createRedactor({});
    const prompt: ChatMessage[] = [
      { role: 'system', content: `${SYSTEM}\nInternal note: the deploy token is ${CANARY}.` },
      { role: 'user', content: 'Hello' },
    ];
    // Requests 1 and 2 may see that value (no secret guarded): they pass, and fill the cache.
    for (let i = 0; i < 2; i++) {
      const first = outcome(r, decision(), prompt, ['other-secret-value']) as { out?: ChatMessage[] };
      expect(first.out?.[0]?.content).toContain(CANARY);
    }
    expect(r.findingsCache!.stats()).toEqual({ hits: 0, misses: 2, entries: 1 });
    // Request 3: same system prompt, served from the cache, but its secret is the canary: refused.
    const second = outcome(r, decision(), prompt, [CANARY]) as { code?: string; message?: string; details?: unknown };
    expect(r.findingsCache!.stats().hits).toBe(1);
    expect(second.code).toBe('redaction_blocked');
    expect(second.details).toMatchObject({ reason: 'secret_leak' });
    expect(JSON.stringify(second)).not.toContain(CANARY);
    // And its base64 form too.
    const b64 = Buffer.from(CANARY).toString('base64');
    const third = outcome(r, decision(), [{ role: 'system', content: `${SYSTEM}\nblob ${b64}` }], [CANARY]) as { code?: string };
    expect(third.code).toBe('redaction_blocked');
  });

  it('never mixes findings of plans that detect differently', () => {
    const config = {
      profiles: {
        phoneStrict: { entities: ['PHONE_NUMBER', 'EMAIL_ADDRESS'], settings: { PHONE_NUMBER: { threshold: 0.9 } } },
        phoneLoose: { entities: ['PHONE_NUMBER', 'EMAIL_ADDRESS'] },
      },
    };
    const r = createRedactor(config);
    const plain = createRedactor(config, { findingsCache: false });
    const text = `${SYSTEM}\nSee https://status.example.com/incidents?id=42 and code 020 7946 0018, born 1984-03-12.`;
    const msgs: ChatMessage[] = [{ role: 'system', content: text }];
    const ds = [
      decision({ profile: 'standard' }),
      decision({ profile: 'strict' }),
      decision({ profile: 'phoneStrict' }),
      decision({ profile: 'phoneLoose' }),
      decision({ entities: ['URL'] }),
      decision({ modes: { EMAIL_ADDRESS: 'allow' } }),
    ];
    for (const d of ds) outcome(r, d, msgs); // first sight of each (plan, text): digest only
    const outs = ds.map((d) => JSON.stringify(outcome(r, d, msgs)));
    for (const [i, d] of ds.entries()) expect(outs[i]).toBe(JSON.stringify(outcome(plain, d, msgs)));
    // The plans really differ (else this test proves nothing): URL only under strict, the
    // weakly scored phone only under the loose threshold, the email left alone in allow mode.
    expect(outs[1]).toContain('[URL]');
    expect(outs[0]).not.toContain('[URL]');
    expect(outs[3]).not.toContain('020 7946 0018');
    expect(outs[2]).toContain('020 7946 0018');
    expect(outs[5]).toContain('ops@example.com');
    expect(outs[0]).not.toContain('ops@example.com');
    // Once more each: every plan is served its own findings from the cache, still identical.
    const before = r.findingsCache!.stats();
    expect(before).toEqual({ hits: 0, misses: 2 * ds.length, entries: ds.length });
    for (const [i, d] of ds.entries()) expect(JSON.stringify(outcome(r, d, msgs))).toBe(outs[i]);
    expect(r.findingsCache!.stats().hits).toBe(ds.length);
  });

  it('never caches a failed scan: fail closed every time, fail open rescans', () => {
    let broken = true;
    const flaky: Detector = {
      name: 'flaky',
      entities: ['FLAKY'],
      detect(text, _ctx, out) {
        if (broken) throw new Error(`boom ${CANARY}`);
        const i = text.indexOf('flaky');
        if (i >= 0) out.push({ entity: 'FLAKY', start: i, end: i + 5, score: 0.9 });
      },
    };
    const r = createRedactor({ profiles: { withFlaky: { entities: ['FLAKY', 'EMAIL_ADDRESS'] } } }, { detectors: [flaky] });
    const msgs: ChatMessage[] = [{ role: 'system', content: `${SYSTEM} a flaky word` }];
    for (let i = 0; i < 2; i++) {
      const res = outcome(r, decision({ profile: 'withFlaky' }), msgs) as { code?: string; message?: string };
      expect(res.code).toBe('redaction_failed');
      expect(res.message).not.toContain(CANARY);
    }
    const open = outcome(r, decision({ profile: 'withFlaky', fail_open: true }), msgs) as { failures?: number };
    expect(open.failures).toBe(1);
    expect(r.findingsCache!.stats().entries).toBe(0);
    broken = false;
    for (let i = 0; i < 3; i++) {
      const ok = outcome(r, decision({ profile: 'withFlaky' }), msgs) as { out: ChatMessage[] };
      expect(ok.out[0]!.content).toContain('a [FLAKY] word');
    }
    expect(r.findingsCache!.stats()).toEqual({ hits: 1, misses: 5, entries: 1 });
  });

  it('keeps digests and findings only, within its bounds', () => {
    const r = createRedactor({}, { findingsCache: { maxEntries: 3 } });
    for (let i = 0; i < 6; i++) {
      const msgs: ChatMessage[] = [{ role: 'system', content: `${SYSTEM} ${i} mail ${CANARY.toLowerCase()}${i}@example.com` }];
      outcome(r, decision(), msgs);
      outcome(r, decision(), msgs);
    }
    const stats = r.findingsCache!.stats();
    expect(stats.misses).toBe(12);
    expect(stats.entries).toBe(3);
    const dump = cacheDump(r);
    expect(dump).toContain('EMAIL_ADDRESS');
    expect(dump.toLowerCase()).not.toContain(CANARY.toLowerCase());
    expect(dump).not.toContain('support assistant');
    expect(dump).not.toContain('example.com');
  });

  it('skips short texts and keys texts that differ only in lone surrogates apart', () => {
    const r = createRedactor({});
    outcome(r, decision(), [{ role: 'user', content: 'short mail a@example.com' }]);
    expect(r.findingsCache!.stats()).toEqual({ hits: 0, misses: 0, entries: 0 });
    // "\uD800" and "\uFFFD" have the same UTF-8 encoding; they must not share a key.
    outcome(r, decision(), [{ role: 'user', content: `${SYSTEM}\uD800` }]);
    outcome(r, decision(), [{ role: 'user', content: `${SYSTEM}\uFFFD` }]);
    expect(r.findingsCache!.stats()).toEqual({ hits: 0, misses: 2, entries: 2 });
  });
});
