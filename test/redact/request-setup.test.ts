/**
 * What a request reuses instead of building again must never change its outcome: the plan of the
 * last decision (recognised field by field, not by object), the shared guard of requests with no
 * secret, lazily made vault maps, and the findings cache's per-configuration key tags.
 */
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../../src/pipeline/errors.js';
import type { ChatMessage, RedactionDecision } from '../../src/pipeline/types.js';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { LeakGuard } from '../../src/redact/leak-guard.js';
import { buildPlan, BUILTIN_PROFILES } from '../../src/redact/profiles.js';
import { decision } from './helpers.js';

const KNOWN = new Set(BUILTIN_ENTITIES);

/**
 * A plan in comparable form. Its scan options are the plan's own entities, thresholds and
 * fail-open flag (plus, from a Redactor, the detectors that emit them).
 */
function comparable(p: ReturnType<typeof buildPlan>): unknown {
  const { scan, ...rest } = p;
  expect(scan.entities).toBe(p.entities);
  expect(scan.thresholds).toBe(p.thresholds);
  expect(scan.failOpen).toBe(p.failOpen);
  return { ...rest, entities: [...p.entities].sort(), modes: [...p.modes].sort(), thresholds: [...p.thresholds].sort() };
}

/** The plan as built from scratch (no cache of any kind), in comparable form. */
function freshPlan(d: RedactionDecision): unknown {
  return comparable(buildPlan(d, BUILTIN_PROFILES, 'standard', KNOWN));
}

describe('plan of a repeated decision', () => {
  it('reuses the plan for an equal decision in a new object', () => {
    const r = createRedactor({});
    const a = r.plan(decision({ mode: 'tokenize' }));
    expect(r.plan(decision({ mode: 'tokenize' }))).toBe(a);
  });

  it('carries the detectors of its entities, in the scanner order', () => {
    const r = createRedactor({});
    const names = (p: ReturnType<typeof r.plan>): string[] => (p.scan.detectors ?? []).map((d) => d.name);
    expect(names(r.plan(decision({ entities: ['EMAIL_ADDRESS', 'GITHUB_TOKEN'] })))).toEqual(['email', 'secrets']);
    expect(names(r.plan(decision({ entities: ['URL_CREDENTIALS'] })))).toEqual(['url']);
    expect(names(r.plan(decision({ entities: ['EMAIL_ADDRESS'], modes: { EMAIL_ADDRESS: 'allow' } })))).toEqual([]);
  });

  it('plans anew when any field differs, in sequence, each as built from scratch', () => {
    const r = createRedactor({ hashKey: Buffer.from('k'.repeat(32)) });
    const variants: RedactionDecision[] = [
      decision(),
      decision({ profile: 'strict' }),
      decision({ entities: ['EMAIL_ADDRESS'] }),
      decision({ entities: ['EMAIL_ADDRESS', 'PHONE_NUMBER'] }),
      decision({ entities: ['PHONE_NUMBER', 'EMAIL_ADDRESS', 'IBAN_CODE'] }),
      decision({ mode: 'hash' }),
      decision({ mode: 'allow' }),
      decision({ modes: { EMAIL_ADDRESS: 'block' } }),
      decision({ modes: { EMAIL_ADDRESS: 'allow' } }),
      decision({ modes: { EMAIL_ADDRESS: 'allow', PHONE_NUMBER: 'hash' } }),
      // Same keys, other order: a later key for the same entity wins in buildPlan.
      decision({ modes: { email_address: 'mask', EMAIL_ADDRESS: 'allow' } }),
      decision({ modes: { EMAIL_ADDRESS: 'allow', email_address: 'mask' } }),
      decision({ fail_open: true }),
      decision({ reidentify: false }),
    ];
    // Each variant after every other one, so each is compared with a different last decision.
    for (const a of variants) {
      for (const b of variants) {
        r.plan(a);
        expect(comparable(r.plan(b))).toEqual(freshPlan(b));
      }
    }
  });

  it('sees a decision object changed after it was planned', () => {
    const r = createRedactor({});
    const d = decision({ entities: ['EMAIL_ADDRESS'] });
    expect([...r.plan(d).entities]).toEqual(['EMAIL_ADDRESS']);
    d.entities.push('PHONE_NUMBER');
    expect([...r.plan(d).entities].sort()).toEqual(['EMAIL_ADDRESS', 'PHONE_NUMBER']);
    d.modes['PHONE_NUMBER'] = 'allow';
    expect([...r.plan(d).entities]).toEqual(['EMAIL_ADDRESS']);
    d.fail_open = true;
    expect(r.plan(d).failOpen).toBe(true);
  });

  it('still refuses a hash plan without a key, every time', () => {
    const r = createRedactor({});
    for (let i = 0; i < 2; i++) expect(() => r.plan(decision({ mode: 'hash' }))).toThrow(/hmac_key/);
  });
});

describe('sessions', () => {
  it('without secrets share nothing that carries over: tokens restart, counts are per request', () => {
    const r = createRedactor({});
    const d = decision({ mode: 'tokenize' });
    for (const mail of ['ann@example.com', 'bob@example.com']) {
      const s = r.session(d, []);
      const out = s.redactMessages([{ role: 'user', content: `mail ${mail} now` }]);
      expect(out[0]!.content).toBe('mail <EMAIL_ADDRESS_1> now');
      expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1 });
      const back = s.processOutputText('Wrote to <EMAIL_ADDRESS_1>.', false);
      expect(back).toBe(`Wrote to ${mail}.`);
    }
  });

  it('with a secret still refuse it, right after a request with none', () => {
    const r = createRedactor({});
    r.session(decision(), []).redactMessages([{ role: 'user', content: 'hello' }]);
    const s = r.session(decision(), ['hunter2-very-secret']);
    const msgs: ChatMessage[] = [{ role: 'user', content: 'the password is hunter2-very-secret' }];
    let code = '';
    try {
      s.redactMessages(msgs);
    } catch (err) {
      if (isWardenError(err)) code = err.code;
    }
    expect(code).toBe('redaction_blocked');
    expect(r.session(decision(), []).redactMessages(msgs)[0]!.content).toBe('the password is hunter2-very-secret');
  });

  it('share the guard of the same secrets, and never one of other secrets', () => {
    expect(LeakGuard.for(['hunter2-very-secret'])).toBe(LeakGuard.for(['hunter2-very-secret']));
    expect(LeakGuard.for(['a-secret-one', 'b-secret-two'])).toBe(LeakGuard.for(['a-secret-one', 'b-secret-two']));
    const other = LeakGuard.for(['hunter3-very-secret']);
    expect(other).not.toBe(LeakGuard.for(['hunter2-very-secret']));
    expect(other.find('hunter2-very-secret', [])).toBe(0);
    expect(other.find('hunter3-very-secret', [])).toBe(1);
    // No list of secrets shares the key of another: one secret holding a NUL is not two secrets.
    const joined = LeakGuard.for(['secretAAAA\u0000secretBBBB']);
    const pair = LeakGuard.for(['secretAAAA', 'secretBBBB']);
    expect(pair).not.toBe(joined);
    expect(pair.find('only secretAAAA here', [])).toBe(1);
    // Past the cache's bound the oldest are built again, never mixed up.
    for (let i = 0; i < 200; i++) expect(LeakGuard.for([`secret-number-${i}`]).find(`x secret-number-${i} y`, [])).toBe(1);
  });

  it('leave answers without a placeholder as they are, and restore only minted ones', () => {
    const r = createRedactor({});
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(s.processOutputText('Three bullet points.', false)).toBe('Three bullet points.');
    expect(s.processOutputText('a <EMAIL_ADDRESS_1> b', false)).toBe('a <EMAIL_ADDRESS_1> b');
    s.redactMessages([{ role: 'user', content: 'x@example.com' }]);
    expect(s.processOutputText('a <EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2> b', false)).toBe('a x@example.com <EMAIL_ADDRESS_2> b');
  });
});

describe('findings cache keys', () => {
  it('start over past the bound on scan configurations, with results unchanged', () => {
    const r = createRedactor({});
    const uncached = createRedactor({}, { findingsCache: false });
    const text = `${'Support policy prose, nothing to find here at all. '.repeat(12)}Mail ops@example.com or call +1 415 555 0132.`;
    // 300 distinct entity lists, so 300 scan configurations, each seen three times. The first
    // 256 leave phones alone, the rest mask them: were a tag reused while its entries remained,
    // configuration 256 would get configuration 0's findings (no phone) and the result would differ.
    const pool = BUILTIN_ENTITIES.filter((e) => e !== 'EMAIL_ADDRESS' && e !== 'PHONE_NUMBER');
    const lists: string[][] = [];
    for (let i = 0; i < 300; i++) {
      const list = ['EMAIL_ADDRESS'];
      for (let b = 0; b < 8; b++) if ((i >> b) & 1) list.push(pool[b]!);
      if (i >= 256) list.push('PHONE_NUMBER');
      lists.push(list);
    }
    for (const entities of lists) {
      const d = decision({ entities });
      const want = uncached.session(d, []).redactMessages([{ role: 'system', content: text }]);
      for (let k = 0; k < 3; k++) expect(r.session(d, []).redactMessages([{ role: 'system', content: text }])).toEqual(want);
    }
    expect(r.findingsCache!.stats().hits).toBe(300);
  });
});
