import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChatMessage, ToolDefinition } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import { fold, toOriginalSpan } from '../../src/redact/normalize.js';
import type { Detector } from '../../src/redact/types.js';
import { decision, thrown } from './helpers.js';

const CANARY = 'CANARY-SECRET-9f8e7d';

describe('normalisation', () => {
  it('folds fullwidth, zero-width, Arabic-Indic and mathematical digits with an exact offset map', () => {
    const text = 'a４\u200b٣𝟕-b';
    const f = fold(text);
    expect(f.text).toBe('a437-b');
    // '7' came from the astral 𝟕 (two UTF-16 units at 4..6).
    expect(toOriginalSpan(f, 3, 4)).toEqual([4, 6]);
    // "437" spans the fullwidth 4 through 𝟕, skipping nothing outside.
    expect(toOriginalSpan(f, 1, 4)).toEqual([1, 6]);
  });
  it('leaves ASCII text untouched and unmapped', () => {
    const f = fold('plain ascii 123');
    expect(f.starts).toBeNull();
    expect(f.text).toBe('plain ascii 123');
  });
});

describe('modes', () => {
  const r = createRedactor({ hashKey: Buffer.from('tenant-key-0123456789') });
  const msg: ChatMessage[] = [{ role: 'user', content: 'mail ann@example.com and ann@example.com, then bo@example.com' }];

  it('mask', () => {
    const out = r.session(decision({ mode: 'mask' }), []).redactMessages(msg);
    expect(out[0]!.content).toBe('mail [EMAIL_ADDRESS] and [EMAIL_ADDRESS], then [EMAIL_ADDRESS]');
  });

  it('hash is a keyed HMAC, stable across requests', () => {
    const a = r.session(decision({ mode: 'hash' }), []).redactMessages(msg)[0]!.content as string;
    const b = r.session(decision({ mode: 'hash' }), []).redactMessages(msg)[0]!.content as string;
    expect(a).toBe(b);
    const h = createHmac('sha256', Buffer.from('tenant-key-0123456789')).update('EMAIL_ADDRESS').update('\u0000').update('ann@example.com').digest('hex').slice(0, 8);
    expect(a.startsWith(`mail <EMAIL_ADDRESS:${h}> and <EMAIL_ADDRESS:${h}>, then <EMAIL_ADDRESS:`)).toBe(true);
    const other = createRedactor({ hashKey: Buffer.from('another-tenant') }).session(decision({ mode: 'hash' }), []).redactMessages(msg)[0]!.content;
    expect(other).not.toBe(a);
  });

  it('hash without a key fails closed', () => {
    const e = thrown(() => createRedactor({}).session(decision({ mode: 'hash' }), []));
    expect(e.code).toBe('redaction_failed');
  });

  it('tokenize is reversible within the request only', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(s.redactMessages(msg)[0]!.content).toBe('mail <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_1>, then <EMAIL_ADDRESS_2>');
    const back = s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Dear <EMAIL_ADDRESS_2>, cc <EMAIL_ADDRESS_1> <EMAIL_ADDRESS_9>' } }] });
    expect(back.choices[0]!.message.content).toBe('Dear bo@example.com, cc ann@example.com <EMAIL_ADDRESS_9>');
    // Another request's session knows nothing of these tokens.
    const other = r.session(decision({ mode: 'tokenize' }), []);
    const back2 = other.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: '<EMAIL_ADDRESS_1>' } }] });
    expect(back2.choices[0]!.message.content).toBe('<EMAIL_ADDRESS_1>');
  });

  it('block refuses the request naming entity types, never values', () => {
    const e = thrown(() => r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages([{ role: 'user', content: `ssn 536-90-4399 mail ${CANARY}@example.com` }]));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details?.['entities']).toEqual(['EMAIL_ADDRESS']);
    expect(e.message).not.toContain(CANARY);
    expect(JSON.stringify(e.details)).not.toContain(CANARY);
  });

  it('allow leaves the entity alone; per-entity modes win over the global mode', () => {
    const out = r.session(decision({ mode: 'mask', modes: { EMAIL_ADDRESS: 'allow' } }), []).redactMessages([{ role: 'user', content: 'ann@example.com 536-90-4399' }]);
    expect(out[0]!.content).toBe('ann@example.com [US_SSN]');
  });

  it('the strict profile blocks secrets and redacts dates of birth and URLs', () => {
    const s = r.session(decision({ profile: 'strict' }), []);
    expect(s.redactMessages([{ role: 'user', content: 'born 1984-03-12, see https://a.example.com/x' }])[0]!.content).toBe('born [DATE_OF_BIRTH], see [URL]');
    const e = thrown(() => r.session(decision({ profile: 'strict' }), []).redactMessages([{ role: 'user', content: 'key AKIAIOSFODNN7EXAMPLE' }]));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details?.['entities']).toEqual(['AWS_ACCESS_KEY_ID']);
    // The standard profile masks it instead.
    expect(r.session(decision(), []).redactMessages([{ role: 'user', content: 'key AKIAIOSFODNN7EXAMPLE' }])[0]!.content).toBe('key [AWS_ACCESS_KEY_ID]');
  });

  it('an unknown profile or entity fails closed', () => {
    expect(thrown(() => r.session(decision({ profile: 'nope' }), [])).code).toBe('redaction_failed');
    expect(thrown(() => r.session(decision({ entities: ['PERSONALITY'] }), [])).code).toBe('redaction_failed');
  });

  it('an unknown key in modes fails closed instead of dropping the mode asked for (a typo must not weaken it)', () => {
    const e = thrown(() => r.session(decision({ modes: { SECRET: 'block' } }), []));
    expect(e.code).toBe('redaction_failed');
    expect(e.message).toBe('unknown redaction entity type "SECRET" at decision.redaction.modes');
    for (const key of ['constructor', '__proto__x', 'toString']) expect(thrown(() => r.session(decision({ modes: { [key]: 'mask' } }), [])).code, key).toBe('redaction_failed');
    // Group and entity names, in any case, still work.
    const s = r.session(decision({ modes: { secrets: 'block', email_address: 'hash' } }), []);
    expect(thrown(() => s.redactMessages([{ role: 'user', content: 'ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5' }])).code).toBe('redaction_blocked');
  });
});

describe('message shapes', () => {
  const r = createRedactor({});

  it('redacts content strings, OpenAI and Anthropic part arrays, tool calls and tool results; counts non-text parts', () => {
    const s = r.session(decision(), []);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Support mail is help@corp.example.com' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'my card 4111 1111 1111 1111' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'phone (415) 555-2671' }] },
          { type: 'tool_use', id: 't2', name: 'lookup', input: { email: 'x@corp.example.com', n: 3 } },
          { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send', arguments: '{"to":"zed@corp.example.com","body":"hi \\"there\\"","n":[1,"536-90-4399"]}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'sent to zed@corp.example.com' },
    ];
    const out = s.redactMessages(messages);
    expect(out[0]!.content).toBe('Support mail is [EMAIL_ADDRESS]');
    const parts = out[1]!.content as Array<Record<string, unknown>>;
    expect(parts[0]).toEqual({ type: 'text', text: 'my card [CREDIT_CARD]' });
    expect(parts[1]).toBe((messages[1]!.content as unknown[])[1]); // untouched, same object
    expect(parts[2]).toEqual({ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'phone [PHONE_NUMBER]' }] });
    expect(parts[3]).toEqual({ type: 'tool_use', id: 't2', name: 'lookup', input: { email: '[EMAIL_ADDRESS]', n: 3 } });
    const args = out[2]!.tool_calls![0]!.function.arguments;
    expect(JSON.parse(args)).toEqual({ to: '[EMAIL_ADDRESS]', body: 'hi "there"', n: [1, '[US_SSN]'] });
    expect(out[3]!.content).toBe('sent to [EMAIL_ADDRESS]');
    const rep = s.report();
    expect(rep.nonTextParts).toBe(2);
    expect(rep.counts).toEqual({ EMAIL_ADDRESS: 4, CREDIT_CARD: 1, PHONE_NUMBER: 1, US_SSN: 1 });
    // The input is not mutated.
    expect(messages[0]!.content).toBe('Support mail is help@corp.example.com');
  });

  it('tool-call arguments that are not JSON are redacted as text', () => {
    const out = r.session(decision(), []).redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: 'to: a@corp.example.com' } }] }]);
    expect(out[0]!.tool_calls![0]!.function.arguments).toBe('to: [EMAIL_ADDRESS]');
  });

  it('redacts tool definitions', () => {
    const s = r.session(decision(), []);
    const tools: ToolDefinition[] = [{ type: 'function', function: { name: 'escalate', description: 'Escalate to oncall@corp.example.com', parameters: { type: 'object', properties: { to: { type: 'string', description: 'e.g. (415) 555-2671' } } } } }];
    const out = s.redactTools(tools);
    expect(out[0]!.function.description).toBe('Escalate to [EMAIL_ADDRESS]');
    expect(out[0]!.function.parameters).toEqual({ type: 'object', properties: { to: { type: 'string', description: 'e.g. [PHONE_NUMBER]' } } });
  });
});

describe('PII as a member name in tool schemas and pass-through parameters', () => {
  const r = createRedactor({});
  const JANE = 'jane.doe@example.com';
  const JOHN = 'john.roe@example.com';
  const schemaTool = (properties: Record<string, unknown>, required: string[]): ToolDefinition[] => [
    { type: 'function', function: { name: 'notify', parameters: { type: 'object', properties, required } } },
  ];

  it('a schema property named by PII is redacted like a value, so it still matches its `required` entry', () => {
    const out = r.session(decision(), []).redactTools(schemaTool({ [JANE]: { type: 'boolean' }, note: { type: 'string' } }, [JANE, 'note']));
    expect(out[0]!.function.parameters).toEqual({
      type: 'object',
      properties: { '[EMAIL_ADDRESS]': { type: 'boolean' }, note: { type: 'string' } },
      required: ['[EMAIL_ADDRESS]', 'note'],
    });
  });

  it('tokenize keeps two such names apart, and each matches its `required` entry', () => {
    const out = r.session(decision({ mode: 'tokenize' }), []).redactTools(schemaTool({ [JANE]: { type: 'boolean' }, [JOHN]: { type: 'boolean' } }, [JOHN, JANE]));
    expect(out[0]!.function.parameters).toEqual({
      type: 'object',
      properties: { '<EMAIL_ADDRESS_1>': { type: 'boolean' }, '<EMAIL_ADDRESS_2>': { type: 'boolean' } },
      required: ['<EMAIL_ADDRESS_2>', '<EMAIL_ADDRESS_1>'],
    });
  });

  it('two names of one object that mask alike refuse the request (duplicate_member_names), naming entity types only', () => {
    const e = thrown(() => r.session(decision(), []).redactTools(schemaTool({ [JANE]: { type: 'boolean' }, [JOHN]: { type: 'boolean' } }, [])));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details).toEqual({ reason: 'duplicate_member_names', entities: ['EMAIL_ADDRESS'] });
    expect(e.message).not.toMatch(/jane|john/);
    // In different objects they do not clash.
    const ok = r.session(decision(), []).redactParams({ metadata: { [JANE]: 'vip' }, other: { [JOHN]: 'vip' } });
    expect(ok).toEqual({ metadata: { '[EMAIL_ADDRESS]': 'vip' }, other: { '[EMAIL_ADDRESS]': 'vip' } });
  });

  it('parameters: metadata keys and a response_format schema\'s property names', () => {
    const s = r.session(decision(), []);
    const out = s.redactParams({
      metadata: { [JANE]: 'vip', '+14155552671': 'desk' },
      response_format: { type: 'json_schema', json_schema: { name: 'contacts', schema: { type: 'object', properties: { [JANE]: { type: 'string' } } } } },
    });
    expect(out).toEqual({
      metadata: { '[EMAIL_ADDRESS]': 'vip', '[PHONE_NUMBER]': 'desk' },
      response_format: { type: 'json_schema', json_schema: { name: 'contacts', schema: { type: 'object', properties: { '[EMAIL_ADDRESS]': { type: 'string' } } } } },
    });
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 2, PHONE_NUMBER: 1 });
  });
});

describe('pass-through parameters', () => {
  const r = createRedactor({});

  it('every string is redacted, wherever it sits; numbers, booleans, names and the input stay', () => {
    const params = {
      user: 'jane.doe@example.com',
      metadata: { note: 'call (415) 555-2671', tier: 'gold' },
      prediction: { type: 'content', content: 'card 4111 1111 1111 1111' },
      functions: [{ name: 'mail', description: 'writes to ops@corp.example.com', parameters: { type: 'object' } }],
      seed: 7,
      logprobs: true,
      stop: ['\n\n', 'END'],
    };
    const s = r.session(decision(), []);
    const out = s.redactParams(params);
    expect(out).toEqual({
      user: '[EMAIL_ADDRESS]',
      metadata: { note: 'call [PHONE_NUMBER]', tier: 'gold' },
      prediction: { type: 'content', content: 'card [CREDIT_CARD]' },
      functions: [{ name: 'mail', description: 'writes to [EMAIL_ADDRESS]', parameters: { type: 'object' } }],
      seed: 7,
      logprobs: true,
      stop: ['\n\n', 'END'],
    });
    expect(params.user).toBe('jane.doe@example.com');
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 2, PHONE_NUMBER: 1, CREDIT_CARD: 1 });
  });

  it('a "__proto__" member stays a member (as JSON.parse made it), not the copy\'s prototype', () => {
    const params = JSON.parse('{"__proto__": {"n": 1}, "x": "a"}') as Record<string, unknown>;
    const out = r.session(decision(), []).redactParams(params);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"n":1},"x":"a"}');
  });

  it('a secret value in a parameter refuses the request, as in the prompt', () => {
    const s = r.session(decision(), [CANARY]);
    const e = thrown(() => s.redactParams({ metadata: { k: `x ${CANARY}` } }));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details?.['reason']).toBe('secret_leak');
    expect(e.message).not.toContain(CANARY);
    // Counted as a masked one is, so the audit record and warden_redactions_total show it.
    expect(s.report()).toMatchObject({ counts: { SECRET_VALUE: 1 }, leaks: 1 });
  });
});

describe('a redaction profile the config does not have', () => {
  it('fails closed with redaction_failed naming it, also for names every object has', () => {
    const r = createRedactor({});
    for (const profile of ['nope', 'constructor', '__proto__', 'toString']) {
      const e = thrown(() => r.session(decision({ profile }), []));
      expect(e.code, profile).toBe('redaction_failed');
      expect(e.message).toBe(`unknown redaction profile "${profile}"`);
    }
    // And as the configured default, a startup error.
    expect(() => createRedactor({ defaultProfile: 'constructor' })).toThrow('redaction.default_profile "constructor" is not a profile');
  });
});

describe('fail closed', () => {
  const broken: Detector = {
    name: 'broken',
    entities: ['BROKEN_THING'],
    detect() {
      throw new Error(`boom ${CANARY}`);
    },
  };
  const r = createRedactor({ profiles: { withBroken: { entities: ['EMAIL_ADDRESS', 'BROKEN_THING'] } } }, { detectors: [broken] });

  it('a detector error refuses the request without leaking text', () => {
    const e = thrown(() => r.session(decision({ profile: 'withBroken' }), []).redactMessages([{ role: 'user', content: `hello ${CANARY}` }]));
    expect(e.code).toBe('redaction_failed');
    expect(e.message).toContain('broken');
    expect(e.message).not.toContain(CANARY);
    expect(e.cause).toBeUndefined();
  });

  it('fails closed on the response side too', () => {
    const s = r.session(decision({ profile: 'withBroken' }), []);
    expect(thrown(() => s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'hi' } }] })).code).toBe('redaction_failed');
  });

  it('only the decision may fail open, and then other detectors still run', () => {
    const s = r.session(decision({ profile: 'withBroken', fail_open: true }), []);
    expect(s.redactMessages([{ role: 'user', content: 'mail a@corp.example.com' }])[0]!.content).toBe('mail [EMAIL_ADDRESS]');
    expect(s.detectorFailures).toBe(1);
  });
});

describe('leak guard', () => {
  const r = createRedactor({});
  const forms = {
    raw: CANARY,
    base64: Buffer.from(CANARY).toString('base64'),
    base64InBlob: Buffer.from(`xy${CANARY}zz`).toString('base64'),
    base64url: Buffer.from(`?${CANARY}>>`).toString('base64url'),
    urlEncoded: encodeURIComponent(`${CANARY} &x`),
  };
  const secret = `${CANARY} &x`;

  for (const [name, form] of Object.entries(forms)) {
    it(`refuses a prompt holding the secret (${name}) without naming it`, () => {
      const e = thrown(() => r.session(decision(), [secret, CANARY]).redactMessages([{ role: 'user', content: `data: ${form} end` }]));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details?.['reason']).toBe('secret_leak');
      expect(e.message).not.toContain(CANARY);
      expect(JSON.stringify(e.details)).not.toContain(CANARY);
    });
  }

  it('masks the secret in responses (plain and restored) and counts it', () => {
    const s = r.session(decision({ mode: 'tokenize' }), [CANARY]);
    const out = s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `the key is ${CANARY} or ${Buffer.from(CANARY).toString('base64')}` } }] });
    expect(out.choices[0]!.message.content).toBe('the key is [SECRET_VALUE] or [SECRET_VALUE]');
    expect(s.report().leaks).toBe(2);
  });

  it("answer parts keep only the members it redacts; a part of another type is the provider's fault", () => {
    const s = r.session(decision(), [CANARY]);
    const answer = (content: ChatMessage['content']) =>
      s.processCompletion({ id: `id-${CANARY}`, model: CANARY, created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] });
    const out = answer([
      { type: 'output_text', text: `a ${CANARY}`, annotations: [{ url: CANARY }] } as never,
      { type: 'refusal', refusal: `no ${CANARY}`, extra: CANARY },
    ]);
    expect(out.choices[0]!.message.content).toEqual([
      { type: 'output_text', text: 'a [SECRET_VALUE]' },
      { type: 'refusal', refusal: 'no [SECRET_VALUE]' },
    ]);
    expect([out.id, out.model]).toEqual(['id-[SECRET_VALUE]', '[SECRET_VALUE]']);
    expect(s.report().leaks).toBe(4);
    const e = thrown(() => answer([{ type: 'image_url', image_url: { url: `https://e/${CANARY}` } }]));
    expect(e.code).toBe('upstream_error');
    expect(e.message).not.toContain(CANARY);
  });

  it("a compatible server's own finish_reason is passed on, with a secret in it masked, streamed or not", async () => {
    const lower = 'hunter2secretvalue';
    const s = r.session(decision(), [lower]);
    const answer = (finish: string) =>
      s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: finish, message: { role: 'assistant', content: 'hi' } }] }).choices[0]!.finish_reason;
    expect(answer('eos_token')).toBe('eos_token');
    expect(answer('stop')).toBe('stop');
    expect(answer(`x_${lower}`)).toBe('x_[SECRET_VALUE]');
    expect(s.report().leaks).toBe(1);

    const chunk = (finish: string | null, content?: string) => ({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finish }] });
    async function* upstream() {
      yield chunk(null, 'hi');
      yield chunk(`y_${lower}`);
    }
    const out: string[] = [];
    for await (const c of s.processStream(upstream())) for (const ch of c.choices) if (ch.finish_reason) out.push(ch.finish_reason);
    expect(out).toEqual(['y_[SECRET_VALUE]']);
    expect(s.report().leaks).toBe(2);
  });

  it('ignores values too short to search for safely', () => {
    const s = r.session(decision(), ['abc']);
    expect(s.redactMessages([{ role: 'user', content: 'abc abc' }])[0]!.content).toBe('abc abc');
  });
});

describe('custom entities and allow-lists', () => {
  it('runs user patterns on RE2 with validators, context and dictionaries', () => {
    const r = createRedactor({
      customEntities: [
        { name: 'EMPLOYEE_ID', pattern: 'EMP-\\d{6}', context: ['employee'] },
        { name: 'LOYALTY_CARD', pattern: '\\b\\d{4} \\d{4} \\d{4}\\b', validator: 'luhn' },
        { name: 'CUSTOMER', dictionary: ['Acme Corp', 'Globex'] },
      ],
      profiles: { custom: { entities: ['EMPLOYEE_ID', 'LOYALTY_CARD', 'CUSTOMER'] } },
    });
    const out = r.session(decision({ profile: 'custom' }), []).redactMessages([{ role: 'user', content: 'EMP-123456 of acme corp has loyalty 4242 4242 4242 and 1234 5678 9012; Globexia' }]);
    expect(out[0]!.content).toBe('[EMPLOYEE_ID] of [CUSTOMER] has loyalty [LOYALTY_CARD] and 1234 5678 9012; Globexia');
  });

  it('rejects invalid RE2 patterns (no backreferences) with a key path', () => {
    const e = thrown(() => createRedactor({ customEntities: [{ name: 'BAD', pattern: '(a+)+\\1' }] }));
    expect(e.code).toBe('invalid_request');
    expect(e.location?.path).toBe('redaction.custom_entities[0].pattern');
  });

  it('a catastrophic pattern still runs in linear time on RE2', () => {
    const r = createRedactor({ customEntities: [{ name: 'EVIL', pattern: '(a+)+$' }], profiles: { evil: { entities: ['EVIL'] } } });
    const text = 'a'.repeat(50_000) + 'b';
    expect(r.session(decision({ profile: 'evil' }), []).redactMessages([{ role: 'user', content: text }])[0]!.content).toBe(text);
  });

  it('allow-lists skip known non-PII (literals and patterns)', () => {
    const r = createRedactor({ allow: { literals: ['Support@Corp.example.com'], patterns: ['.*@noreply\\.example\\.com'] } });
    const out = r.session(decision(), []).redactMessages([{ role: 'user', content: 'support@corp.example.com bot@noreply.example.com eve@corp.example.com' }]);
    expect(out[0]!.content).toBe('support@corp.example.com bot@noreply.example.com [EMAIL_ADDRESS]');
  });
});

describe('decisions from policies', () => {
  it('entity names and mode keys are case-insensitive; groups expand', () => {
    const r = createRedactor({});
    const s = r.session(decision({ entities: ['email_address', 'secrets'], modes: { Email_Address: 'tokenize' } }), []);
    const out = s.redactMessages([{ role: 'user', content: 'a@corp.example.com 536-90-4399 AKIAIOSFODNN7EXAMPLE' }]);
    expect(out[0]!.content).toBe('<EMAIL_ADDRESS_1> 536-90-4399 [AWS_ACCESS_KEY_ID]');
  });
});

describe('configuration errors are startup errors with a key path', () => {
  it('unknown entity or mode in a profile', () => {
    const a = thrown(() => createRedactor({ profiles: { p: { entities: ['EMAIL_ADRESS'] } } }));
    expect(a.code).toBe('invalid_request');
    expect(a.location?.path).toBe('redaction.profiles.p.entities');
    const b = thrown(() => createRedactor({ profiles: { p: { entities: ['EMAIL_ADDRESS'], mode: 'shred' as never } } }));
    expect(b.location?.path).toBe('redaction.profiles.p');
    expect(thrown(() => createRedactor({ defaultProfile: 'missing' })).location?.path).toBe('redaction.default_profile');
  });
});

describe('numbers in tool-call arguments (prompt side)', () => {
  const r = createRedactor({});
  const call = (args: string): ChatMessage => ({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] });
  const argsOut = (s: ReturnType<typeof r.session>, args: string): string => s.redactMessages([call(args)])[0]!.tool_calls![0]!.function.arguments;

  it('redacts a JSON number holding PII, as the answer side does, and keeps the JSON valid', () => {
    const s = r.session(decision(), []);
    const out = argsOut(s, '{"card": 4111111111111111, "ssn": 536221234, "n": 3, "mail": "x@corp.example.com"}');
    expect(out).toBe('{"card": "[CREDIT_CARD]", "ssn": "[US_SSN]", "n": 3, "mail": "[EMAIL_ADDRESS]"}');
    expect(JSON.parse(out)).toEqual({ card: '[CREDIT_CARD]', ssn: '[US_SSN]', n: 3, mail: '[EMAIL_ADDRESS]' });
    expect(s.report().counts).toEqual({ CREDIT_CARD: 1, US_SSN: 1, EMAIL_ADDRESS: 1 });
  });

  it('leaves arguments without findings byte for byte (no precision loss, escapes and spacing kept)', () => {
    const args = '{ "big": 12345678901234567890, "f": 1.10, "e": 1E+2, "s": "caf\\u00e9 \\/ ok", "a": [ -0, 2 ] }';
    expect(argsOut(r.session(decision(), []), args)).toBe(args);
    // Only the value with a finding changes; its neighbours keep their exact text.
    expect(argsOut(r.session(decision(), []), '{"big": 12345678901234567890, "to": "a@corp.example.com", "f": 1.10}')).toBe(
      '{"big": 12345678901234567890, "to": "[EMAIL_ADDRESS]", "f": 1.10}',
    );
  });

  it('tokenizes a number and restores it (as a JSON string) in the answer', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(argsOut(s, '{"card":4111111111111111}')).toBe('{"card":"<CREDIT_CARD_1>"}');
    const back = s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'card <CREDIT_CARD_1>' } }] });
    expect(back.choices[0]!.message.content).toBe('card 4111111111111111');
  });

  it('a number in a block-mode entity refuses the request', () => {
    const e = thrown(() => r.session(decision({ modes: { CREDIT_CARD: 'block' } }), []).redactMessages([call('{"card":4111111111111111}')]));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details?.['entities']).toEqual(['CREDIT_CARD']);
  });

  it('Anthropic tool_use input: numbers are redacted too', () => {
    const s = r.session(decision(), []);
    const out = s.redactMessages([{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { card: 4111111111111111, n: 3, deep: [{ ssn: 536221234 }] } }] }]);
    expect((out[0]!.content as Array<Record<string, unknown>>)[0]!['input']).toEqual({ card: '[CREDIT_CARD]', n: 3, deep: [{ ssn: '[US_SSN]' }] });
  });
});

describe('member names in tool-call arguments', () => {
  const r = createRedactor({ hashKey: Buffer.from('tenant-key-0123456789') });
  const call = (args: string): ChatMessage => ({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] });
  const argsOut = (s: ReturnType<typeof r.session>, args: string): string => s.redactMessages([call(args)])[0]!.tool_calls![0]!.function.arguments;
  const answerArgs = (s: ReturnType<typeof r.session>, args: string): string =>
    s.processCompletion({
      id: 'x',
      model: 'm',
      created: 0,
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] } }],
    }).choices[0]!.message.tool_calls![0]!.function.arguments;

  it('PII in a member name is redacted like a value, and the JSON stays valid (a map keyed by e-mail)', () => {
    const s = r.session(decision(), []);
    const out = argsOut(s, '{"jane.doe@example.com": 1, "n": {"536-22-1234": true}}');
    expect(out).toBe('{"[EMAIL_ADDRESS]": 1, "n": {"[US_SSN]": true}}');
    expect(JSON.parse(out)).toEqual({ '[EMAIL_ADDRESS]': 1, n: { '[US_SSN]': true } });
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1, US_SSN: 1 });
  });

  it('a name is decoded before it is scanned, nested at any depth; one without a finding keeps its escapes', () => {
    const out = argsOut(r.session(decision(), []), '{"a": [{"to \\u006aane.doe@example.com": "x", "caf\\u00e9": 2}]}');
    expect(out).toBe('{"a": [{"to [EMAIL_ADDRESS]": "x", "caf\\u00e9": 2}]}');
    expect(out).not.toContain('ane.doe');
  });

  it('tokenize: each value its own name, restored in the answer (also as a name there)', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(argsOut(s, '{"jane.doe@example.com": 1, "john.roe@example.com": 2}')).toBe('{"<EMAIL_ADDRESS_1>": 1, "<EMAIL_ADDRESS_2>": 2}');
    expect(answerArgs(s, '{"<EMAIL_ADDRESS_2>": "ok"}')).toBe('{"john.roe@example.com": "ok"}');
  });

  it('Anthropic tool_use input: member names are redacted too', () => {
    const s = r.session(decision(), []);
    const out = s.redactMessages([{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { 'jane.doe@example.com': { '+14155552671': 1 } } }] }]);
    expect((out[0]!.content as Array<Record<string, unknown>>)[0]!['input']).toEqual({ '[EMAIL_ADDRESS]': { '[PHONE_NUMBER]': 1 } });
  });

  it('two names of one object that redact alike refuse the request (JSON keys must stay unique)', () => {
    const clashes = [
      '{"jane.doe@example.com": 1, "john.roe@example.com": 2}',
      '{"[EMAIL_ADDRESS]": 0, "jane.doe@example.com": 1}',
      '{"jane.doe@example.com": 1, "[EMAIL_ADDRESS]": 0}',
      '{"x": {"mail jane.doe@example.com": 1, "mail john.roe@example.com": 2}}',
    ];
    for (const args of clashes) {
      const e = thrown(() => argsOut(r.session(decision(), []), args));
      expect(e.code, args).toBe('redaction_blocked');
      expect(e.details, args).toEqual({ reason: 'duplicate_member_names', entities: ['EMAIL_ADDRESS'] });
      expect(e.message + JSON.stringify(e.details)).not.toMatch(/jane|john/);
    }
    // Anthropic tool_use input, where a duplicate would silently drop a member.
    const e = thrown(() =>
      r.session(decision(), []).redactMessages([{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { 'jane.doe@example.com': 1, 'john.roe@example.com': 2 } }] }]),
    );
    expect(e.details?.['reason']).toBe('duplicate_member_names');
  });

  it('no refusal where names stay distinct: other objects, injective modes, the caller\'s own duplicate', () => {
    expect(argsOut(r.session(decision(), []), '[{"jane.doe@example.com": 1}, {"john.roe@example.com": 2}]')).toBe('[{"[EMAIL_ADDRESS]": 1}, {"[EMAIL_ADDRESS]": 2}]');
    const hashed = JSON.parse(argsOut(r.session(decision({ mode: 'hash' }), []), '{"jane.doe@example.com": 1, "john.roe@example.com": 2}')) as Record<string, number>;
    expect(Object.keys(hashed)).toHaveLength(2);
    expect(argsOut(r.session(decision(), []), '{"jane.doe@example.com": 1, "jane.doe@example.com": 2}')).toBe('{"[EMAIL_ADDRESS]": 1, "[EMAIL_ADDRESS]": 2}');
  });

  it('a name holding a block-mode entity refuses the request', () => {
    const e = thrown(() => argsOut(r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []), '{"jane.doe@example.com": 1}'));
    expect(e.details).toEqual({ reason: 'blocked_entities', entities: ['EMAIL_ADDRESS'] });
  });

  it('the answer side redacts member names too', () => {
    expect(answerArgs(r.session(decision(), []), '{"jane.doe@example.com": {"+14155552671": 1}}')).toBe('{"[EMAIL_ADDRESS]": {"[PHONE_NUMBER]": 1}}');
  });
});

describe('message name and tool call ids', () => {
  const r = createRedactor({});

  it('a message name is redacted; tokenize and hash fall back to the mask (a name may not hold < or >)', () => {
    const msgs: ChatMessage[] = [{ role: 'user', name: 'bob@example.org', content: 'hi' }];
    expect(r.session(decision(), []).redactMessages(msgs)[0]!.name).toBe('[EMAIL_ADDRESS]');
    const hashing = createRedactor({ hashKey: Buffer.from('k-0123456789') });
    for (const mode of ['tokenize', 'hash'] as const) {
      expect(hashing.session(decision({ mode }), []).redactMessages(msgs)[0]!.name, mode).toBe('[EMAIL_ADDRESS]');
    }
    expect(r.session(decision({ modes: { EMAIL_ADDRESS: 'allow' } }), []).redactMessages(msgs)[0]!.name).toBe('bob@example.org');
    expect(thrown(() => r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages(msgs)).code).toBe('redaction_blocked');
  });

  it('a secret value in a name refuses the request like in content', () => {
    const e = thrown(() => r.session(decision(), [CANARY]).redactMessages([{ role: 'user', name: `n-${CANARY}`, content: 'hi' }]));
    expect(e.details?.['reason']).toBe('secret_leak');
  });

  it('PII in a function name refuses the request (pii_in_function_name): a name is matched, not rewritten', () => {
    const name = 'mail_bob@example.org';
    const tool = (n: string): ToolDefinition[] => [{ type: 'function', function: { name: n, parameters: { type: 'object' } } }];
    const refusals: Array<[string, () => unknown]> = [
      ['tools', () => r.session(decision(), []).redactTools(tool(name))],
      ['tool_calls', () => r.session(decision(), []).redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name, arguments: '{}' } }] }])],
      ['tool_choice', () => r.session(decision(), []).redactParams({ tool_choice: { type: 'function', function: { name } } })],
      ['function_call', () => r.session(decision(), []).redactParams({ function_call: { name } })],
      ['functions', () => r.session(decision(), []).redactParams({ functions: [{ name: 'ok_one' }, { name, parameters: {} }] })],
      ['tool_use part', () => r.session(decision(), []).redactMessages([{ role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name, input: {} }] as never }])],
      // An invisible character before the address hides nothing here either.
      ['tools, after a zero-width space', () => r.session(decision(), []).redactTools(tool('notify\u200b4111 1111 1111 1111'))],
    ];
    for (const [where, run] of refusals) {
      const e = thrown(run);
      expect(e.code, where).toBe('redaction_blocked');
      expect(e.details?.['reason'], where).toBe('pii_in_function_name');
      expect(e.message + JSON.stringify(e.details), where).not.toMatch(/bob|4111/);
    }
    // Under tokenize too: a token would name no tool (tool_choice was tokenized, the tool not).
    const e = thrown(() => r.session(decision({ mode: 'tokenize' }), []).redactParams({ tool_choice: { type: 'function', function: { name } } }));
    expect(e.details).toEqual({ reason: 'pii_in_function_name', entities: ['EMAIL_ADDRESS'] });
    // A secret value in a name is a leak, as in an id.
    expect(thrown(() => r.session(decision(), [CANARY]).redactTools(tool(`f_${CANARY}`))).details?.['reason']).toBe('secret_leak');
    // Ordinary names pass, unchanged everywhere.
    const s = r.session(decision(), []);
    expect(s.redactTools(tool('get_weather'))[0]!.function.name).toBe('get_weather');
    expect(s.redactParams({ tool_choice: { type: 'function', function: { name: 'get_weather' } } })).toEqual({ tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    // An allowed entity is not looked for, in a name as anywhere.
    expect(r.session(decision({ modes: { EMAIL_ADDRESS: 'allow' } }), []).redactTools(tool(name))[0]!.function.name).toBe(name);
  });

  it('PII in a tool call id refuses the request without naming the value (an id cannot be rewritten: its pair must match)', () => {
    const id = 'call_bob@example.org';
    for (const msgs of [
      [{ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }] }],
      [{ role: 'tool', tool_call_id: id, content: 'ok' }],
    ] as ChatMessage[][]) {
      const e = thrown(() => r.session(decision(), []).redactMessages(msgs));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details).toEqual({ reason: 'pii_in_id', entities: ['EMAIL_ADDRESS'] });
      expect(e.message).not.toContain('bob');
    }
    // An invisible character before the PII hides nothing (it is read as a boundary there too).
    for (const [hidden, entities] of [
      ['bob@example.org\u202e4111\u200b1111\u200b1111\u200b1111', ['CREDIT_CARD', 'EMAIL_ADDRESS']],
      ['call\u200b4111 1111 1111 1111', ['CREDIT_CARD']],
    ] as const) {
      const e = thrown(() => r.session(decision(), []).redactMessages([{ role: 'tool', tool_call_id: hidden, content: 'ok' }]));
      expect(e.details).toEqual({ reason: 'pii_in_id', entities });
    }
    // A secret value in an id is a leak first (as README says): `secret_leak`, not `pii_in_id`,
    // also when the id holds PII too.
    for (const secretId of [`call_${CANARY}`, `call_${CANARY}_bob@example.org`]) {
      for (const msgs of [
        [{ role: 'assistant', content: null, tool_calls: [{ id: secretId, type: 'function', function: { name: 'f', arguments: '{}' } }] }],
        [{ role: 'tool', tool_call_id: secretId, content: 'ok' }],
      ] as ChatMessage[][]) {
        const e = thrown(() => r.session(decision(), [CANARY]).redactMessages(msgs));
        expect(e.code).toBe('redaction_blocked');
        expect(e.details).toEqual({ reason: 'secret_leak', entities: ['SECRET_VALUE'], leaks: 1 });
        expect(e.message + JSON.stringify(e.details)).not.toMatch(/CANARY|bob/);
      }
    }
    // Ordinary ids pass unchanged.
    const ok = r.session(decision(), []).redactMessages([{ role: 'tool', tool_call_id: 'call_Dj3kf9Yx2b4155552671', content: 'ok' }]);
    expect(ok[0]!.tool_call_id).toBe('call_Dj3kf9Yx2b4155552671');
  });
});

describe('non-text parts', () => {
  it('a file part\'s filename is redacted; its data and id stay', () => {
    const s = createRedactor({}).session(decision(), []);
    const out = s.redactMessages([{ role: 'user', content: [{ type: 'file', file: { filename: 'cv (bob@example.org).pdf', file_data: 'data:application/pdf;base64,AAAA', file_id: 'file-1' } }] }]);
    expect((out[0]!.content as Array<Record<string, unknown>>)[0]).toEqual({ type: 'file', file: { filename: 'cv ([EMAIL_ADDRESS]).pdf', file_data: 'data:application/pdf;base64,AAAA', file_id: 'file-1' } });
    expect(s.report().nonTextParts).toBe(1);
  });
});

describe('answer texts a caller joins: content parts and refusal', () => {
  const r = createRedactor({ hashKey: Buffer.from('tenant-key-0123456789') });
  const answer = (s: ReturnType<typeof r.session>, message: Partial<ChatMessage>) =>
    s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: null, ...message } }] }).choices[0]!.message;
  const texts = (m: ChatMessage) => (m.content as Array<Record<string, string>>).map((p) => p.text ?? p.refusal);
  const parts = (...xs: string[]): ChatMessage['content'] => xs.map((text) => ({ type: 'text', text }));

  it('a secret over three parts is masked in the part where it begins; the parts it spans are emptied', () => {
    const s = r.session(decision(), [CANARY]);
    expect(texts(answer(s, { content: parts('a CANARY-SE', 'CRET-9', 'f8e7d b') }))).toEqual(['a [SECRET_VALUE]', '', ' b']);
    expect(s.report().leaks).toBe(1);
  });

  it('an e-mail split across a text part and a refusal part is one finding, counted once', () => {
    const s = r.session(decision(), []);
    const m = answer(s, { content: [{ type: 'output_text', text: 'mail ann.lee@exa' }, { type: 'refusal', refusal: 'mple.org, no' }] as never });
    expect(m.content).toEqual([{ type: 'output_text', text: 'mail [EMAIL_ADDRESS]' }, { type: 'refusal', refusal: ', no' }]);
    expect(s.report().responseCounts).toEqual({ EMAIL_ADDRESS: 1 });
  });

  it('content and refusal are read joined too', () => {
    const s = r.session(decision(), [CANARY]);
    expect(answer(s, { content: 'I cannot share CANARY-SEC', refusal: 'RET-9f8e7d' })).toMatchObject({ content: 'I cannot share [SECRET_VALUE]', refusal: '' });
  });

  it('a value split across parts is hashed as the whole value', () => {
    const whole = answer(r.session(decision({ mode: 'hash' }), []), { content: 'to ann.lee@example.org' }).content as string;
    const split = answer(r.session(decision({ mode: 'hash' }), []), { content: parts('to ann.lee@', 'example.org') });
    expect(texts(split).join('')).toBe(whole);
    expect(whole).not.toContain('ann.lee');
  });

  it('a value one part holds stays found when the next part would hide it in the joined text', () => {
    // "4111 1111 1111 1111" then "1": the joined digits are no card number.
    const s = r.session(decision(), []);
    expect(texts(answer(s, { content: parts('card 4111 1111 1111 1111', '1') }))).toEqual(['card [CREDIT_CARD]', '1']);
  });
});

describe('prompt texts the model reads joined: a message\'s text parts', () => {
  const r = createRedactor({});
  const texts = (m: ChatMessage) => (m.content as Array<Record<string, string>>).map((p) => p.text ?? p.refusal);
  const parts = (...xs: string[]): ChatMessage['content'] => xs.map((text) => ({ type: 'text', text }));
  const user = (content: ChatMessage['content']): ChatMessage[] => [{ role: 'user', content }];

  it('an e-mail split across two text parts is masked in the part where it begins, counted once; the parts stay parts', () => {
    const s = r.session(decision(), []);
    const out = s.redactMessages(user(parts('mail jane.doe@exa', 'mple.com now')));
    expect(out[0]!.content).toEqual([{ type: 'text', text: 'mail [EMAIL_ADDRESS]' }, { type: 'text', text: ' now' }]);
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1 });
  });

  it('a card number split across parts, and OpenAI input_text parts with a refusal part between them', () => {
    expect(texts(r.session(decision(), []).redactMessages(user(parts('card 4111 1111 ', '1111 1111 thanks')))[0]!)).toEqual(['card [CREDIT_CARD]', ' thanks']);
    const mixed = [{ type: 'input_text', text: 'to bob@exa' }, { type: 'refusal', refusal: 'mple.org' }, { type: 'input_text', text: ' ok' }] as never;
    expect(texts(r.session(decision(), []).redactMessages([{ role: 'assistant', content: mixed }])[0]!)).toEqual(['to [EMAIL_ADDRESS]', ' ok']);
  });

  it('a text part the value swallowed whole is dropped, not sent empty; the caller\'s own empty part stays', () => {
    // Anthropic refuses an empty text block, also behind an OpenAI-compatible gateway.
    const out = r.session(decision(), []).redactMessages(user(parts('mail jane.doe@', 'example', '.com ok', '')))[0]!;
    expect(texts(out)).toEqual(['mail [EMAIL_ADDRESS]', ' ok', '']);
    const card = r.session(decision(), []).redactMessages(user(parts('4111 ', '1111 ', '1111 ', '1111')))[0]!;
    expect(texts(card)).toEqual(['[CREDIT_CARD]']);
  });

  it('a non-text part between the texts stays as it was (the same object) and does not hide the value', () => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } };
    const content = [{ type: 'text', text: 'mail jane.doe@exa' }, image, { type: 'text', text: 'mple.com' }] as ChatMessage['content'];
    const out = r.session(decision(), []).redactMessages(user(content))[0]!.content as unknown[];
    expect(out).toEqual([{ type: 'text', text: 'mail [EMAIL_ADDRESS]' }, image]);
    expect(out[1]).toBe(image);
  });

  it('tokenize mints one placeholder for the whole value, and the answer restores it whole', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(texts(s.redactMessages(user(parts('mail jane.doe@exa', 'mple.com now')))[0]!)).toEqual(['mail <EMAIL_ADDRESS_1>', ' now']);
    const back = s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Dear <EMAIL_ADDRESS_1>' } }] });
    expect(back.choices[0]!.message.content).toBe('Dear jane.doe@example.com');
  });

  it('a placeholder the caller split across parts is reserved: a real value gets another token, and the literal comes back as typed', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    // The model reads `literal <EMAIL_ADDRESS_1>`: minting that token for the address would make
    // the answer's quote of the caller's literal come back as the address.
    expect(texts(s.redactMessages(user(parts('literal <EMAIL_', 'ADDRESS_1> and mail jane@example.com')))[0]!)).toEqual(['literal <EMAIL_', 'ADDRESS_1> and mail <EMAIL_ADDRESS_2>']);
    const back = s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: '<EMAIL_ADDRESS_1> vs <EMAIL_ADDRESS_2>' } }] });
    expect(back.choices[0]!.message.content).toBe('<EMAIL_ADDRESS_1> vs jane@example.com');
  });

  it('a block-mode value and a secret split across parts refuse the request, naming neither', () => {
    const blocked = thrown(() => r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages(user(parts('mail jane.doe@exa', 'mple.com'))));
    expect(blocked.details?.['reason']).toBe('blocked_entities');
    const leak = thrown(() => r.session(decision(), [CANARY]).redactMessages(user(parts('key CANARY-SEC', 'RET-9f8e7d end'))));
    expect(leak.details?.['reason']).toBe('secret_leak');
    expect(leak.details?.['leaks']).toBe(1);
    expect(leak.message + JSON.stringify(leak.details)).not.toContain('RET-9f8e7d');
  });

  it('a value one part holds stays found when the next part would hide it in the joined text', () => {
    expect(texts(r.session(decision(), []).redactMessages(user(parts('card 4111 1111 1111 1111', '1')))[0]!)).toEqual(['card [CREDIT_CARD]', '1']);
  });

  it('parts of different messages are not joined', () => {
    const out = r.session(decision(), []).redactMessages([...user(parts('mail jane.doe@exa')), ...user(parts('mple.com'))]);
    expect(out.map((m) => texts(m))).toEqual([['mail jane.doe@exa'], ['mple.com']]);
  });
});

describe('refusal parts', () => {
  it('an assistant refusal part sent back as history is redacted like text', () => {
    const out = createRedactor({}).session(decision(), []).redactMessages([{ role: 'assistant', content: [{ type: 'refusal', refusal: 'I will not mail bob@example.org' }] }]);
    expect((out[0]!.content as Array<Record<string, unknown>>)[0]).toEqual({ type: 'refusal', refusal: 'I will not mail [EMAIL_ADDRESS]' });
  });

  it("an assistant message's refusal member sent back as history is redacted like its content", () => {
    const r = createRedactor({});
    const refused: ChatMessage = { role: 'assistant', content: null, refusal: 'I will not mail bob@example.org' };
    const out = r.session(decision(), []).redactMessages([{ role: 'user', content: 'Mail Bob.' }, refused]);
    expect(out[1]).toEqual({ role: 'assistant', content: null, refusal: 'I will not mail [EMAIL_ADDRESS]' });
    expect(refused.refusal).toBe('I will not mail bob@example.org'); // the caller's message is not rewritten
    // Counted, blocked and guarded as content is.
    const s = r.session(decision(), []);
    s.redactMessages([refused]);
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1 });
    expect(thrown(() => r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages([refused])).details?.['reason']).toBe('blocked_entities');
    const leak = thrown(() => r.session(decision(), [CANARY]).redactMessages([{ role: 'assistant', content: null, refusal: `I will not say ${CANARY}` }]));
    expect(leak.details?.['reason']).toBe('secret_leak');
    expect(leak.message + JSON.stringify(leak.details)).not.toContain(CANARY);
  });

  it("the dry run's copy for the caller masks a secret value in a refusal as in content", () => {
    const s = createRedactor({}).session(decision(), [], [CANARY]);
    const shown = s.maskSecretsForCaller([{ role: 'assistant', content: `a ${CANARY}`, refusal: `b ${CANARY}` }]);
    expect(shown[0]).toEqual({ role: 'assistant', content: 'a [SECRET_VALUE]', refusal: 'b [SECRET_VALUE]' });
  });

  it("the dry run's copy of tools and parameters masks secret values in strings, numbers and member names", () => {
    const DIGITS = '31415926535897';
    const s = createRedactor({}).session(decision(), [], [CANARY, DIGITS]);
    const value = { note: `sign ${CANARY}`, [`k-${CANARY}`]: 1, n: Number(DIGITS), list: [CANARY, 2], keep: 7, flag: true, nil: null, __proto__x: 'x' };
    expect(s.maskSecretsInJson(value)).toEqual({ note: 'sign [SECRET_VALUE]', 'k-[SECRET_VALUE]': 1, n: '[SECRET_VALUE]', list: ['[SECRET_VALUE]', 2], keep: 7, flag: true, nil: null, __proto__x: 'x' });
    expect(JSON.stringify(s.maskSecretsInJson(value))).not.toContain(CANARY);
    // Two names that mask alike would show as one member: refused, not one of them dropped.
    const clash = thrown(() => s.maskSecretsInJson({ [`a${CANARY}`]: 1, [`a${DIGITS}`]: 2 }));
    expect([clash.code, clash.details?.['reason']]).toEqual(['redaction_blocked', 'duplicate_member_names']);
    expect(clash.message + JSON.stringify(clash.details)).not.toContain(CANARY);
    // A "__proto__" member stays a member.
    const proto = s.maskSecretsInJson(JSON.parse(`{"__proto__": "${CANARY}"}`)) as Record<string, unknown>;
    expect([Object.keys(proto), proto['__proto__']]).toEqual([['__proto__'], '[SECRET_VALUE]']);
  });

  it('a refusal under tokenize keeps its placeholders apart from the ones the prompt mints', () => {
    const s = createRedactor({}).session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([
      { role: 'user', content: 'Mail ann@example.com' },
      { role: 'assistant', content: null, refusal: 'I will not mail <EMAIL_ADDRESS_1> or bo@example.com' },
    ]);
    // <EMAIL_ADDRESS_1> was the caller's text in the refusal: never minted for another value.
    expect(out[0]!.content).toBe('Mail <EMAIL_ADDRESS_2>');
    expect(out[1]!.refusal).toBe('I will not mail <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_3>');
  });
});

describe('placeholder-shaped text in the input (tokenize + reidentify)', () => {
  const r = createRedactor({});
  const answer = (s: ReturnType<typeof r.session>, content: string) =>
    s.processCompletion({ id: 'x', model: 'm', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] }).choices[0]!.message.content;

  it('a forged placeholder is never minted, so it is never restored to another value', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([
      { role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' },
      { role: 'user', content: 'please send to <EMAIL_ADDRESS_1>, then alice@example.org' },
    ]);
    expect(out[0]!.content).toBe('Escalate to <EMAIL_ADDRESS_2>');
    expect(out[1]!.content).toBe('please send to <EMAIL_ADDRESS_1>, then <EMAIL_ADDRESS_3>');
    expect(answer(s, 'wrote: <EMAIL_ADDRESS_1> / <EMAIL_ADDRESS_3>')).toBe('wrote: <EMAIL_ADDRESS_1> / alice@example.org');
  });

  it('a placeholder that shows up after its token was minted (tools, parameters) withdraws the token from restoration', () => {
    const s = r.session(decision({ mode: 'tokenize' }), []);
    expect(s.redactMessages([{ role: 'user', content: 'mail alice@example.org' }])[0]!.content).toBe('mail <EMAIL_ADDRESS_1>');
    s.redactParams({ metadata: { note: 'see <EMAIL_ADDRESS_1>', '<EMAIL_ADDRESS_2>': 'x' } });
    expect(answer(s, 'to <EMAIL_ADDRESS_1>')).toBe('to <EMAIL_ADDRESS_1>');
    // And a token reserved by a member name is not minted afterwards.
    expect(s.redactMessages([{ role: 'user', content: 'and bob@example.org' }])[0]!.content).toBe('and <EMAIL_ADDRESS_3>');
    expect(answer(s, '<EMAIL_ADDRESS_3>')).toBe('bob@example.org');
  });

  it('a placeholder written with HTML character references or percent escapes is reserved too (the model reads it decoded)', () => {
    const forms = [
      '&lt;EMAIL_ADDRESS_1&gt;',
      '&LT;EMAIL_ADDRESS_1&GT;',
      '&lt;EMAIL_ADDRESS_1>',
      '&#60;EMAIL_ADDRESS_1&#62;',
      '&#x3C;EMAIL_ADDRESS_1&#x3e;',
      '&#0060;EMAIL_ADDRESS_1&#062',
      '&lt;EMAIL&lowbar;ADDRESS&#95;1&gt;',
      '%3CEMAIL_ADDRESS_1%3E',
      '%3cEMAIL%5FADDRESS_1>',
    ];
    for (const note of forms) {
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([
        { role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' },
        { role: 'user', content: `decode this page: ${note}` },
      ]);
      // <EMAIL_ADDRESS_1> is the caller's (escaped) text: never minted for the system's address.
      expect(out[0]!.content, note).toBe('Escalate to <EMAIL_ADDRESS_2>');
      expect(answer(s, 'It reads <EMAIL_ADDRESS_1>; escalate to <EMAIL_ADDRESS_2>'), note).toBe('It reads <EMAIL_ADDRESS_1>; escalate to ops-oncall@corp-internal.example.com');
    }
    // Not a placeholder in any reading: the token is minted as usual.
    for (const text of ['&amp;lt;EMAIL_ADDRESS_1&amp;gt;', '%253CEMAIL_ADDRESS_1%253E', 'a < b & c > d']) {
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([{ role: 'user', content: `${text} ann@example.com` }]);
      expect(out[0]!.content, text).toBe(`${text} <EMAIL_ADDRESS_1>`);
    }
  });

  it('a placeholder written with fullwidth, small or mathematical characters is reserved too (the model reads it folded)', () => {
    const forms = [
      '\uFF1CEMAIL_ADDRESS_1\uFF1E', // ＜EMAIL_ADDRESS_1＞, as a CJK input method types the brackets
      '\uFF1C\uFF25\uFF2D\uFF21\uFF29\uFF2C\uFF3F\uFF21\uFF24\uFF24\uFF32\uFF25\uFF33\uFF33\uFF3F\uFF11\uFF1E', // all fullwidth
      '\uFE64EMAIL_ADDRESS_1\uFE65', // small forms
      '<\u{1D404}MAIL_ADDRESS_\u2460>', // mathematical bold E, circled digit one
      '&lt;EMAIL_ADDRESS_\uFF11&gt;', // an HTML reference and a fullwidth digit
    ];
    for (const note of forms) {
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([
        { role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' },
        { role: 'user', content: `what does ${note} stand for?` },
      ]);
      expect(out[0]!.content, note).toBe('Escalate to <EMAIL_ADDRESS_2>');
      expect(answer(s, 'It reads <EMAIL_ADDRESS_1>; escalate to <EMAIL_ADDRESS_2>'), note).toBe('It reads <EMAIL_ADDRESS_1>; escalate to ops-oncall@corp-internal.example.com');
    }
    // In JSON escapes (tool-call arguments) and in a member name too.
    const args = '{"note":"\\uff1cEMAIL_ADDRESS_1\\uff1e","to":"bob@corp.example.com"}';
    const s = r.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }]);
    expect(out[0]!.tool_calls![0]!.function.arguments).toBe('{"note":"\\uff1cEMAIL_ADDRESS_1\\uff1e","to":"<EMAIL_ADDRESS_2>"}');
    const t = r.session(decision({ mode: 'tokenize' }), []);
    t.redactTools([{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { '\uFF1CEMAIL_ADDRESS_1\uFF1E': { type: 'string' } } } } }]);
    expect(t.redactMessages([{ role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' }])[0]!.content).toBe('Escalate to <EMAIL_ADDRESS_2>');
    // Fullwidth text without a placeholder's shape mints as usual.
    const u = r.session(decision({ mode: 'tokenize' }), []);
    expect(u.redactMessages([{ role: 'user', content: '\uFF1C\uFF21\uFF22\uFF1E m\u00B2 ann@example.com' }])[0]!.content).toBe('\uFF1C\uFF21\uFF22\uFF1E m\u00B2 <EMAIL_ADDRESS_1>');
  });

  it('a placeholder written with invisible characters, tag characters or other digits is reserved too (the detectors read it folded)', () => {
    // The detectors drop format characters and read tag characters and every script's digits as
    // ASCII, because a model reads them so (normalize.ts); the reservation read only NFKC, so the
    // system's address was minted <EMAIL_ADDRESS_1> and the caller's hidden literal came back as it.
    const tag = (ascii: string): string => [...ascii].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    const forms = [
      '<EMAIL\u200B_ADDRESS_1>', // a zero-width space
      '<EMAIL_ADDRESS_1\u00AD>', // a soft hyphen
      '<EMAIL_\u2060ADDRESS_1\uFE0F>', // a word joiner, a variation selector
      '<EMAIL_ADDRESS_1\u0301>', // a combining mark after the digit
      `<EMAIL_ADDRESS_${tag('1')}>`, // ASCII smuggling: the digit as a tag character
      tag('<EMAIL_ADDRESS_1>'), // the whole placeholder in tags: invisible
      '<EMAIL_ADDRESS_\u0661>', // an Arabic-Indic one (NFKC keeps it)
      '&lt;EMAIL\u200B_ADDRESS_1&gt;', // an HTML reference and a zero-width space
    ];
    for (const note of forms) {
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([
        { role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' },
        { role: 'user', content: `what does ${note} stand for?` },
      ]);
      expect(out[0]!.content, note).toBe('Escalate to <EMAIL_ADDRESS_2>');
      expect(answer(s, 'It reads <EMAIL_ADDRESS_1>; escalate to <EMAIL_ADDRESS_2>'), note).toBe('It reads <EMAIL_ADDRESS_1>; escalate to ops-oncall@corp-internal.example.com');
    }
    // As a member name of a tool schema, and in JSON escapes in tool-call arguments.
    const t = r.session(decision({ mode: 'tokenize' }), []);
    t.redactTools([{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { [tag('<EMAIL_ADDRESS_1>')]: { type: 'string' } } } } }]);
    expect(t.redactMessages([{ role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' }])[0]!.content).toBe('Escalate to <EMAIL_ADDRESS_2>');
    const args = '{"note":"\\udb40\\udc3cEMAIL_ADDRESS_1\\udb40\\udc3e","to":"bob@corp.example.com"}';
    const u = r.session(decision({ mode: 'tokenize' }), []);
    const res = u.redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }]);
    expect(res[0]!.tool_calls![0]!.function.arguments).toBe('{"note":"\\udb40\\udc3cEMAIL_ADDRESS_1\\udb40\\udc3e","to":"<EMAIL_ADDRESS_2>"}');
    // Text with invisible characters but no placeholder's shape mints as usual.
    const v = r.session(decision({ mode: 'tokenize' }), []);
    expect(v.redactMessages([{ role: 'user', content: 'a <b>\u200Bc</b> ann@example.com' }])[0]!.content).toBe('a <b>\u200Bc</b> <EMAIL_ADDRESS_1>');
  });

  it('a placeholder numbered with a CJK compatibility character (circled 21 to 50) is reserved too', () => {
    // U+3251 CIRCLED NUMBER TWENTY ONE folds (NFKC) to "21", as the circled 1 to 20 do, but lies
    // in the CJK compatibility block, not in Enclosed Alphanumerics.
    const emails = Array.from({ length: 21 }, (_, i) => `user${i}@corp-internal.example.com`);
    const s = r.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([
      { role: 'system', content: `Escalate to ${emails.join(', ')}` },
      { role: 'user', content: 'what does <EMAIL_ADDRESS_\u3251> stand for?' },
    ]);
    // The 21st address skips the number the caller's text holds.
    expect(out[0]!.content).toContain('<EMAIL_ADDRESS_22>');
    expect(out[0]!.content).not.toContain('<EMAIL_ADDRESS_21>');
    expect(answer(s, 'It reads <EMAIL_ADDRESS_21>')).toBe('It reads <EMAIL_ADDRESS_21>');
  });

  it('a placeholder written with JSON escapes in tool-call arguments is reserved too (the model reads it decoded)', () => {
    for (const note of ['\\u003cEMAIL_ADDRESS_1>', '\\u003CEMAIL_ADDRESS_1\\u003E', '<\\u0045MAIL_ADDRESS_1>']) {
      const args = `{"note":"${note}","to":"bob@corp.example.com"}`;
      expect((JSON.parse(args) as { note: string }).note).toBe('<EMAIL_ADDRESS_1>');
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }]);
      expect(out[0]!.tool_calls![0]!.function.arguments, note).toBe(`{"note":"${note}","to":"<EMAIL_ADDRESS_2>"}`);
      expect(answer(s, 'You wrote <EMAIL_ADDRESS_1> in the note, to <EMAIL_ADDRESS_2>'), note).toBe('You wrote <EMAIL_ADDRESS_1> in the note, to bob@corp.example.com');
    }
    // An escaped backslash before "u003c" is an escape of the second level (JSON inside the
    // string reads a placeholder): reserved too. One before "x003c" is no escape at any level.
    const s = r.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"note":"\\\\u003cEMAIL_ADDRESS_1>","to":"bob@corp.example.com"}' } }] },
    ]);
    expect(out[0]!.tool_calls![0]!.function.arguments).toBe('{"note":"\\\\u003cEMAIL_ADDRESS_1>","to":"<EMAIL_ADDRESS_2>"}');
    const s2 = r.session(decision({ mode: 'tokenize' }), []);
    const out2 = s2.redactMessages([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"note":"\\\\x003cEMAIL_ADDRESS_1>","to":"bob@corp.example.com"}' } }] },
    ]);
    expect(out2[0]!.tool_calls![0]!.function.arguments).toBe('{"note":"\\\\x003cEMAIL_ADDRESS_1>","to":"<EMAIL_ADDRESS_1>"}');
  });

  it("a placeholder written with HTML references under JSON escapes is reserved too (Go's encoder writes & as \\u0026)", () => {
    // A tool's output JSON-encoded by Go's encoding/json: "&lt;EMAIL_ADDRESS_1&gt;" reads
    // "\u0026lt;EMAIL_ADDRESS_1\u0026gt;". The model decodes both layers as it decodes either.
    for (const note of ['\\u0026lt;EMAIL_ADDRESS_1\\u0026gt;', '\\u0026#60;EMAIL_ADDRESS_1\\u0026#62;', '\\u0025\\u0033CEMAIL_ADDRESS_1%3E']) {
      const args = `{"note":"${note}","to":"bob@corp.example.com"}`;
      const s = r.session(decision({ mode: 'tokenize' }), []);
      const out = s.redactMessages([{ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }]);
      expect(out[0]!.tool_calls![0]!.function.arguments, note).toBe(`{"note":"${note}","to":"<EMAIL_ADDRESS_2>"}`);
      expect(answer(s, 'You wrote <EMAIL_ADDRESS_1> in the note, to <EMAIL_ADDRESS_2>'), note).toBe('You wrote <EMAIL_ADDRESS_1> in the note, to bob@corp.example.com');
    }
    // A member name is read as a value is (a tool result's object keyed by what it holds).
    const s = r.session(decision({ mode: 'tokenize' }), []);
    s.redactTools([{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { '&lt;EMAIL_ADDRESS_1&gt;': { type: 'string' } } } } }]);
    const out = s.redactMessages([{ role: 'system', content: 'Escalate to ops-oncall@corp-internal.example.com' }]);
    expect(out[0]!.content).toBe('Escalate to <EMAIL_ADDRESS_2>');
  });
});

describe('profile and custom-entity checks at startup', () => {
  it('a settings key that is not one of the profile\'s entities (typo, or not listed) is refused with its key path', () => {
    const typo = thrown(() => createRedactor({ profiles: { p: { entities: ['EMAIL_ADDRESS', 'PHONE_NUMBER'], settings: { EMAIL_ADRESS: { mode: 'block' } } } } }));
    expect(typo.code).toBe('invalid_request');
    expect(typo.location?.path).toBe('redaction.profiles.p.settings.EMAIL_ADRESS');
    const absent = thrown(() => createRedactor({ profiles: { p: { entities: ['EMAIL_ADDRESS'], settings: { PHONE_NUMBER: { mode: 'block' } } } } }));
    expect(absent.location?.path).toBe('redaction.profiles.p.settings.PHONE_NUMBER');
    // Entities of a listed group, and the group itself, are fine (as the built-in strict profile does).
    expect(() => createRedactor({ profiles: { p: { entities: ['EMAIL_ADDRESS', 'SECRETS'], settings: { SECRETS: { mode: 'block' }, GITHUB_TOKEN: { threshold: 0.9 } } } } })).not.toThrow();
  });

  it('a custom entity may not take the name of a built-in entity, a group, the leak guard or another custom entity', () => {
    for (const [entities, path] of [
      [[{ name: 'PHONE_NUMBER', pattern: 'x\\d+' }], 'redaction.custom_entities[0].name'],
      [[{ name: 'SECRETS', pattern: 'x\\d+' }], 'redaction.custom_entities[0].name'],
      [[{ name: 'SECRET_VALUE', pattern: 'x\\d+' }], 'redaction.custom_entities[0].name'],
      [[{ name: 'CUSTOMER_ID', pattern: 'c\\d+' }, { name: 'CUSTOMER_ID', pattern: 'k\\d+' }], 'redaction.custom_entities[1].name'],
    ] as const) {
      const e = thrown(() => createRedactor({ customEntities: entities as never }));
      expect(e.code, entities.at(-1)!.name).toBe('invalid_request');
      expect(e.location?.path).toBe(path);
    }
  });

  it('an allow pattern that matches the empty string or any value is refused (it would turn redaction off)', () => {
    for (const p of ['.*', 'a|', '(?:x)?', '.+', '[\\s\\S]+', '\\S+']) {
      const e = thrown(() => createRedactor({ allow: { patterns: ['.*@noreply\\.example\\.com', p] } }));
      expect(e.code, p).toBe('invalid_request');
      expect(e.location?.path).toBe('redaction.allow.patterns[1]');
    }
    expect(() => createRedactor({ allow: { patterns: ['.*@noreply\\.example\\.com', '4242 ?4242 ?4242 ?4242'] } })).not.toThrow();
  });
});

/**
 * An image part's URL is read as prompt text and never rewritten: PII in it refuses the request,
 * a secret (placed in the prompt by the template or not) refuses it as a leak, and a data: URL's
 * base64 payload is not read.
 */
describe('image URLs', () => {
  const r = createRedactor({});
  const withImage = (url: string): ChatMessage[] => [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url } }] }];

  it('PII in the URL refuses the request with pii_in_image_url, naming entity types only', () => {
    const e = thrown(() => r.session(decision(), []).redactMessages(withImage('https://x.example/a?email=jane@example.com')));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details).toEqual({ reason: 'pii_in_image_url', entities: ['EMAIL_ADDRESS'] });
    expect(e.message).not.toContain('jane');
  });

  it('a secret in the URL is secret_leak, a placed one too, plain or percent-encoded', () => {
    const secret = 'open sesame CANARY-9f8e';
    const amp = 'CANARY&k2=q7Zp';
    for (const url of [`https://x.example/a?k=${CANARY}`, `https://x.example/a?k=${encodeURIComponent(secret)}`, `https://x.example/a?k=${amp}`]) {
      // Placed: the template put the secrets in the prompt on purpose, so only the answer guard holds them.
      const placed = r.session(decision(), [], [CANARY, secret, amp]);
      const e = thrown(() => placed.redactMessages(withImage(url)));
      expect(e.details).toMatchObject({ reason: 'secret_leak', entities: ['SECRET_VALUE'] });
      expect(placed.report()).toMatchObject({ counts: { SECRET_VALUE: 1 }, leaks: 1 });
      expect(e.message + JSON.stringify(e.details)).not.toMatch(/CANARY|sesame/);
      expect(thrown(() => r.session(decision(), [CANARY, secret, amp]).redactMessages(withImage(url))).details).toMatchObject({ reason: 'secret_leak' });
    }
  });

  it("a data: URL's media type and parameters are read, its base64 payload is not; a text payload is", () => {
    const b64 = Buffer.from('mail jane@example.com').toString('base64');
    const ok = `data:image/png;base64,${b64}`;
    const out = r.session(decision(), []).redactMessages(withImage(ok));
    expect((out[0]!.content as Array<{ image_url?: { url: string } }>)[1]!.image_url!.url).toBe(ok);
    for (const url of [`data:image/png;name=jane@example.com;base64,${b64}`, 'data:text/plain,mail%20jane@example.com']) {
      expect(thrown(() => r.session(decision(), []).redactMessages(withImage(url))).details).toEqual({ reason: 'pii_in_image_url', entities: ['EMAIL_ADDRESS'] });
    }
  });

  it("the decision's modes apply: allow passes the URL as sent, block refuses as blocked_entities", () => {
    const url = 'https://x.example/a?email=jane@example.com';
    const out = r.session(decision({ modes: { EMAIL_ADDRESS: 'allow' } }), []).redactMessages(withImage(url));
    expect((out[0]!.content as Array<{ image_url?: { url: string } }>)[1]!.image_url!.url).toBe(url);
    expect(thrown(() => r.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages(withImage(url))).details).toEqual({ reason: 'blocked_entities', entities: ['EMAIL_ADDRESS'] });
  });

  it('under a profile that redacts URLs (strict), a web image URL is refused unless the decision allows URL', () => {
    const url = 'https://x.example/cat.png';
    expect(thrown(() => r.session(decision({ profile: 'strict' }), []).redactMessages(withImage(url))).details).toEqual({ reason: 'pii_in_image_url', entities: ['URL'] });
    expect(() => r.session(decision({ profile: 'strict', modes: { URL: 'allow' } }), []).redactMessages(withImage(url))).not.toThrow();
    expect(() => r.session(decision({ profile: 'strict' }), []).redactMessages(withImage('data:image/png;base64,AAAA'))).not.toThrow();
  });

  it('a signed or keyed image URL passes (its credential parameters are its grant); other credentials and PII beside them do not', () => {
    const sig = 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024';
    const signed = [
      `https://b.s3.us-east-1.amazonaws.com/p/cat.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261127T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=${sig}`,
      `https://storage.googleapis.com/b/cat.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261127T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=${sig}`,
      'https://maps.googleapis.com/maps/api/staticmap?center=Berlin&zoom=12&size=400x400&key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW',
      'https://cdn.example.com/i/cat.png?token=eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTk5OTk5OTl9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWc',
    ];
    for (const url of signed) {
      const out = r.session(decision(), []).redactMessages(withImage(url));
      expect((out[0]!.content as Array<{ image_url?: { url: string } }>)[1]!.image_url!.url).toBe(url);
    }
    // PII beside the signature still refuses; so does a password in the URL's userinfo.
    expect(thrown(() => r.session(decision(), []).redactMessages(withImage(`${signed[0]!}&owner=jane@example.com`))).details).toEqual({
      reason: 'pii_in_image_url',
      entities: ['EMAIL_ADDRESS'],
    });
    expect(thrown(() => r.session(decision(), []).redactMessages(withImage('https://admin:Wq9-rT4zLp2x@img.example.com/cat.png'))).details).toMatchObject({
      reason: 'pii_in_image_url',
    });
    // A decision or profile that blocks secrets still refuses a signed URL.
    expect(thrown(() => r.session(decision({ modes: { SECRETS: 'block' } }), []).redactMessages(withImage(signed[0]!))).details).toMatchObject({
      reason: 'blocked_entities',
    });
  });

  it('an image inside a tool result (Anthropic tool_result content) is read too', () => {
    const messages = [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'image_url', image_url: { url: 'https://x.example/?to=jane@example.com' } }] }] }] as unknown as ChatMessage[];
    expect(thrown(() => r.session(decision(), []).redactMessages(messages)).details).toEqual({ reason: 'pii_in_image_url', entities: ['EMAIL_ADDRESS'] });
  });
});
