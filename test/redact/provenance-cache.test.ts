/**
 * The findings cache keyed by render provenance (templates/provenance.ts) instead of the text's
 * SHA-256 must be invisible in results: on generated templates and values (PII in the fixed text,
 * in the values, and split across the two; placeholder-like text, unicode, surrogate pairs, empty
 * values; several value sets per template, interleaved) a session given the provenance returns
 * exactly what an uncached session returns, on first sight and from the cache. A text changed
 * after render, or a record of another render, falls back to the text's digest; the redact stage
 * passes the render stage's records; no value lives in the cache.
 */
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/pipeline/errors.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { ChatMessage, RedactionDecision, Template } from '../../src/pipeline/types.js';
import { createRedactor, createRedactStage, type WardenRedactor } from '../../src/redact/index.js';
import type { RenderedText } from '../../src/templates/provenance.js';
import { createRenderStage, renderTemplate } from '../../src/templates/index.js';
import { generateRedactCorpus } from '../../scripts/gen-redact-corpus.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { allowDecision, makeContext, makeTemplate } from '../stage-context.js';
import { decision } from './helpers.js';

const CANARY = 'CANARY-SECRET-9f8e7d';
const HASH_KEY = Buffer.from('tenant-key-0123456789');
const FILLER = 'You are the support assistant of Example Corp. Answer in the customer language, stay factual. ';
const HIGH = String.fromCharCode(0xd83d); // a lone high surrogate
const LOW = String.fromCharCode(0xde00); // a lone low surrogate

/** A request's result: redacted prompt and report, or the refusal. */
function outcome(r: WardenRedactor, d: RedactionDecision, msgs: ChatMessage[], prov?: readonly RenderedText[], secrets: string[] = []): string {
  const s = r.session(d, secrets);
  try {
    const out = s.redactMessages(msgs, prov);
    return JSON.stringify({ out, report: s.report(), failures: s.detectorFailures });
  } catch (err) {
    if (!isWardenError(err)) throw err;
    return JSON.stringify({ code: err.code, message: err.message, details: err.details });
  }
}

/** The cache's keys and entries, as it holds them. */
function cacheEntries(r: WardenRedactor): Array<[string, unknown]> {
  const lru = (r.findingsCache as unknown as { lru: { dump(): Array<[string, unknown]> } }).lru;
  return lru.dump();
}
const isProvenanceKey = (k: string): boolean => /^\d+:r:/.test(k);

const corpus = generateRedactCorpus({ perEntity: 8, perLookalike: 4, perPhoneContext: 3 }).map((c) => c.text.replaceAll('{{', '{ {'));

const TRICKY = ['', ':', '1:', '{{v0}}', '}}{{', 'é', 'e\u0301', '😀', HIGH, LOW, '日本語 ', '\u0000', `${CANARY} `, ' 0:', 'a'];

interface Case {
  template: Template;
  values: Record<string, string>;
  /** Other values for the same template: a key that ignored a value would serve stale findings. */
  others: Array<Record<string, string>>;
}

/**
 * A template of two messages with 1-3 placeholders each, fixed text from the corpus (a sentence
 * sometimes cut in two, its rest then offered as a value, so that an entity spans fixed text and
 * value), and values from the corpus and TRICKY; then three other value sets, each changing some
 * of the values (to another rest, corpus sentence or TRICKY string, or a one-character edit).
 */
function generateCase(rand: () => number, n: number): Case {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const values: Record<string, string> = {};
  const rests: string[] = [];
  const variables: Template['variables'] = {};
  let v = 0;
  const message = (long: boolean): string => {
    let content = long ? FILLER.repeat(1 + Math.floor(rand() * 7)) : '';
    const slots = 1 + Math.floor(rand() * 3);
    for (let s = 0; s < slots; s++) {
      const sentence = pick(corpus);
      const cut = Math.floor(rand() * sentence.length);
      const name = `v${v++}`;
      variables[name] = { source: 'request', type: 'string', required: false, pii: true };
      const r = rand();
      if (r < 0.35) {
        content += `${sentence.slice(0, cut)}{{${name}}}`;
        values[name] = sentence.slice(cut); // the entity spans the boundary
        rests.push(values[name]);
      } else if (r < 0.7) {
        content += `${sentence} {{${name}}} `;
        values[name] = pick(corpus);
      } else {
        content += `${sentence} {{${name}}}`;
        values[name] = pick(TRICKY) + (rand() < 0.5 ? pick(TRICKY) : '');
      }
    }
    return content;
  };
  const template = makeTemplate({
    id: `gen/t${n}`,
    variables,
    messages: [
      { role: 'system', content: message(true) },
      { role: 'user', content: message(rand() < 0.5) },
    ],
  });
  const others: Array<Record<string, string>> = [];
  for (let k = 0; k < 3; k++) {
    const o: Record<string, string> = { ...values };
    for (const name of Object.keys(o)) {
      const r = rand();
      if (r < 0.4) continue;
      const old = o[name]!;
      if (r < 0.55) o[name] = pick(rests.length > 0 ? rests : corpus);
      else if (r < 0.7) o[name] = pick(corpus);
      else if (r < 0.85) o[name] = pick(TRICKY);
      else {
        const at = Math.floor(rand() * (old.length + 1));
        o[name] = old.slice(0, at) + pick(['x', '@', '1', ' ', '😀', HIGH]) + old.slice(at + 1);
      }
    }
    others.push(o);
  }
  return { template, values, others };
}

function render(c: Case, values = c.values, stamps?: Record<string, string>): { msgs: ChatMessage[]; prov: RenderedText[] } {
  const prov: RenderedText[] = [];
  const msgs = renderTemplate(c.template, values, undefined, prov, stamps);
  return { msgs, prov };
}

function oneVariableCase(id: string, who: string): Case {
  return {
    template: makeTemplate({
      id,
      variables: { who: { source: 'request', type: 'string', required: false, pii: true } },
      messages: [{ role: 'system', content: `${FILLER.repeat(6)}Contact: {{who}}.` }],
    }),
    values: { who },
    others: [],
  };
}

const DECISIONS: RedactionDecision[] = [
  decision({ mode: 'tokenize' }),
  decision({ mode: 'hash' }),
  decision({ profile: 'strict' }), // blocks SECRETS: refusals must match too
  decision({ modes: { EMAIL_ADDRESS: 'allow', PHONE_NUMBER: 'block' } }),
];

describe('findings cache keyed by render provenance', () => {
  it('returns exactly what the uncached path returns when values are named by stamps, as cached secrets are', () => {
    // As the secret resolver does: a value gets a stamp when it is (re)fetched, and a stamp is
    // never reused; a value fetched again gets a new stamp even when it did not change.
    const rand = mulberry32(20261127);
    const stampOf = new Map<string, string>();
    let next = 0;
    const stamp = (name: string, value: string): string => {
      const k = `${name}\u0000${value}`;
      if (!stampOf.has(k) || rand() < 0.2) stampOf.set(k, `t.${(next++).toString(36)}`);
      return stampOf.get(k)!;
    };
    const uncached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: false });
    const cached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: { minChars: 1, maxEntries: 100_000 } });
    const CASES = 60;
    let compared = 0;
    for (let n = 0; n < CASES; n++) {
      const c = generateCase(rand, 1000 + n);
      const valueSets = [c.values, ...c.others];
      for (const d of [DECISIONS[0]!, DECISIONS[2]!]) {
        for (let pass = 0; pass < 3; pass++) {
          for (const values of valueSets) {
            const stamps = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, stamp(name, value)]));
            const r = render(c, values, stamps);
            expect(r.prov.every((p) => p.key().includes(':s:'))).toBe(true);
            expect(outcome(cached, d, r.msgs, r.prov)).toBe(outcome(uncached, d, render(c, values).msgs));
            compared++;
          }
        }
      }
    }
    expect(compared).toBe(CASES * 2 * 3 * 4);
    expect(cached.findingsCache!.stats().hits).toBeGreaterThan(CASES * 2);
    // CPU-bound: ~11-15 s alone on a loaded 2-core machine, 26 s beside other test files.
  }, 90_000);

  it('returns exactly what the uncached path returns, on generated templates and values', () => {
    const rand = mulberry32(20261126);
    const uncached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: false });
    const cached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: { maxEntries: 100_000 } });
    // minChars 1: short messages take the provenance path too.
    const cachedAll = createRedactor({ hashKey: HASH_KEY }, { findingsCache: { minChars: 1, maxEntries: 100_000 } });
    const CASES = 150;
    let compared = 0;
    let refused = 0;
    let distinctOutcomes = 0;
    for (let n = 0; n < CASES; n++) {
      const c = generateCase(rand, n);
      const valueSets = [c.values, ...c.others];
      for (const d of DECISIONS) {
        const wants = valueSets.map((values) => outcome(uncached, d, render(c, values).msgs));
        for (const want of wants) if (want.includes('redaction_blocked')) refused++;
        distinctOutcomes += new Set(wants).size - 1;
        // Value sets interleaved, three rounds: the second keeps findings, the third is served
        // from the cache. Each request renders anew (fresh strings and records), as the stage does.
        for (let pass = 0; pass < 3; pass++) {
          for (const [i, values] of valueSets.entries()) {
            const a = render(c, values);
            expect(outcome(cached, d, a.msgs, a.prov)).toBe(wants[i]);
            const b = render(c, values);
            expect(outcome(cachedAll, d, b.msgs, b.prov)).toBe(wants[i]);
            compared += 2;
          }
        }
      }
    }
    expect(compared).toBe(CASES * DECISIONS.length * 3 * 4 * 2);
    // Worth something only if the cases found entities, were sometimes refused, the value sets of
    // one template gave different results, and the cache served findings under provenance keys
    // (never under text digests: every text here was rendered).
    expect(refused).toBeGreaterThan(10);
    expect(refused).toBeLessThan(CASES * DECISIONS.length * 4);
    expect(distinctOutcomes).toBeGreaterThan(CASES);
    expect(cached.findingsCache!.stats().hits).toBeGreaterThan(CASES * DECISIONS.length);
    expect(cachedAll.findingsCache!.stats().hits).toBeGreaterThan(CASES * DECISIONS.length * 4);
    const keys = cacheEntries(cachedAll).map(([k]) => k);
    expect(keys.length).toBeGreaterThan(1000);
    expect(keys.every(isProvenanceKey)).toBe(true);
    // CPU-bound: ~11-15 s alone on a loaded 2-core machine, 26 s beside other test files.
  }, 90_000);

  it('gives different values their own findings under the same template', () => {
    const r = createRedactor({}, { findingsCache: { minChars: 1 } });
    const plain = createRedactor({}, { findingsCache: false });
    const c = oneVariableCase('gen/contact', '');
    const contacts = ['nobody', 'ada.lovelace@example.com', 'ada.lovelace@', 'example.com', '+1 415 555 0132', '', 'nobody '];
    for (let round = 0; round < 3; round++) {
      for (const who of contacts) {
        const { msgs, prov } = render(c, { who });
        expect(outcome(r, decision(), msgs, prov)).toBe(outcome(plain, decision(), msgs));
      }
    }
    expect(r.findingsCache!.stats().hits).toBe(contacts.length);
    const { msgs, prov } = render(c, { who: 'ada.lovelace@example.com' });
    expect(outcome(r, decision(), msgs, prov)).toContain('[EMAIL_ADDRESS]');
  });

  it('never serves a reloaded template the findings of its previous text', () => {
    const r = createRedactor({}, { findingsCache: { minChars: 1 } });
    const before = oneVariableCase('gen/reload', 'Ada');
    for (let i = 0; i < 3; i++) {
      const { msgs, prov } = render(before);
      expect(outcome(r, decision(), msgs, prov)).not.toContain('[EMAIL_ADDRESS]');
    }
    expect(r.findingsCache!.stats().hits).toBe(1);
    // A hot reload: same id, version and values, new text (new Template objects, new compile).
    const after = oneVariableCase('gen/reload', 'Ada');
    after.template.messages[0]!.content = after.template.messages[0]!.content.replace('Contact:', 'Contact ops@example.com or');
    const { msgs, prov } = render(after);
    expect(prov[0]!.key()).not.toBe(render(before).prov[0]!.key());
    expect(outcome(r, decision(), msgs, prov)).toContain('[EMAIL_ADDRESS]');
    expect(r.findingsCache!.stats().hits).toBe(1);
  });

  it('falls back to the text digest for a message changed after render, or a record of another render', () => {
    const r = createRedactor({}, { findingsCache: { minChars: 1 } });
    const plain = createRedactor({}, { findingsCache: false });
    const c = oneVariableCase('gen/changed', 'nobody at all here');
    // Fill the cache for the harmless text under its provenance key.
    for (let i = 0; i < 2; i++) {
      const { msgs, prov } = render(c);
      outcome(r, decision(), msgs, prov);
    }
    expect(cacheEntries(r).map(([k]) => k).every(isProvenanceKey)).toBe(true);
    // Same length, now an email: the record still says "rendered from 'nobody at all here'".
    const { msgs, prov } = render(c);
    const changed: ChatMessage[] = [{ ...msgs[0]!, content: (msgs[0]!.content as string).replace('nobody at all here', 'ada@example.com   ') }];
    const before = r.findingsCache!.stats().hits;
    const got = outcome(r, decision(), changed, prov);
    expect(got).toBe(outcome(plain, decision(), changed));
    expect(got).toContain('[EMAIL_ADDRESS]');
    expect(r.findingsCache!.stats().hits).toBe(before);
    expect(cacheEntries(r).some(([k]) => /^\d+:u8:/.test(k))).toBe(true);
    // A record of another render (other values) next to these messages: not used either.
    const other = render(c, { who: 'ada@example.com   ' });
    const shuffled = outcome(r, decision(), other.msgs, prov);
    expect(shuffled).toBe(outcome(plain, decision(), other.msgs));
    expect(shuffled).toContain('[EMAIL_ADDRESS]');
    // And records misaligned by index: the record names another text.
    const two = [msgs[0]!, { role: 'user' as const, content: 'mail ada@example.com please' }];
    expect(outcome(r, decision(), two, [prov[0]!, prov[0]!])).toBe(outcome(plain, decision(), two));
  });

  it('is used by the redact stage after the render stage, and keeps no value in the cache', async () => {
    const r = createRedactor({});
    const plain = createRedactor({}, { findingsCache: false });
    const template = makeTemplate({
      id: 'gen/stage',
      variables: {
        code: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/code' },
        mail: { source: 'request', type: 'string', required: true, pii: true },
      },
      messages: [
        { role: 'system', content: `${FILLER.repeat(6)}Escalation code: {{code}}. Reply to {{mail}}.` },
        { role: 'user', content: 'Ticket for {{mail}}' },
      ],
    });
    const renderStage = createRenderStage();
    const redactStage = createRedactStage(() => r);
    const plainStage = createRedactStage(() => plain);
    const request = async (stage: typeof redactStage): Promise<RequestContext> => {
      const ctx = makeContext(
        { template: { id: template.id, version: 1 }, variables: { mail: 'grace.hopper@example.com' } },
        { template, secrets: new Map([['file:secrets/code', CANARY]]), decision: allowDecision() },
      );
      await renderStage.run(ctx);
      await stage.run(ctx);
      return ctx;
    };
    const want = (await request(plainStage)).outbound;
    for (let i = 0; i < 3; i++) expect((await request(redactStage)).outbound).toEqual(want);
    expect(JSON.stringify(want)).toContain(CANARY); // placed by the template on purpose
    expect(JSON.stringify(want)).not.toContain('grace.hopper');
    expect(r.findingsCache!.stats()).toEqual({ hits: 1, misses: 2, entries: 1 });
    const entries = cacheEntries(r);
    expect(entries.every(([k]) => isProvenanceKey(k))).toBe(true);
    const dump = JSON.stringify(entries);
    expect(dump).not.toContain(CANARY);
    expect(dump).not.toContain('grace.hopper');
    expect(dump).not.toContain('support assistant');
  });
});
