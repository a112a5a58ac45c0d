/**
 * Prompt texts are read through JSON string escapes, as the answer is (commit 8be9f3f): a tool
 * result is JSON more often than not, and so is content an app serialised with Python's
 * `json.dumps` (every non-ASCII character escaped) or a user pasted. The model reads
 * `jane.doe\u0040example.com` as an address and `+1\u00a0415\u00a0555\u00a02671` as a phone
 * number; before the fix both went upstream as written while their plain forms were redacted, and
 * a granted secret written `\u0043ANARY…` passed the prompt check. Every mode, the secret check,
 * the findings cache, placed secrets and the joined parts of a message.
 */
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { ChatMessage, CompletionResult, RedactionDecision, Template } from '../../src/pipeline/types.js';
import { createRedactor, createRedactStage, type WardenRedactor } from '../../src/redact/index.js';
import { runRedactCli } from '../../src/redact/cli.js';
import { createRenderStage } from '../../src/templates/index.js';
import { PassThrough } from 'node:stream';
import { allowDecision, makeContext, makeTemplate } from '../stage-context.js';
import { decision, thrown } from './helpers.js';

const HASH_KEY = Buffer.from('tenant-key-0123456789');
const CANARY = 'CANARY-SECRET-7f3a';
const MAIL = 'jane.doe@example.com';
const PHONE = '+1 415 555 2671';
/** As Python's json.dumps writes them: `@` as an escape here, U+00A0 (no-break space) always. */
const ESC_MAIL = 'jane.doe\\u0040example.com';
const ESC_PHONE = '+1\\u00a0415\\u00a0555\\u00a02671';
const ESC_CANARY = `\\u0043\\u0041${CANARY.slice(2)}`;
/** A tool result as an app hands it back: JSON text whose values, parsed, are the PII. */
const TOOL_RESULT = `{"phone": "${ESC_PHONE}", "mail": "${ESC_MAIL}", "note": "line\\nok"}`;
const MASKED_RESULT = '{"phone": "[PHONE_NUMBER]", "mail": "[EMAIL_ADDRESS]", "note": "line\\nok"}';

/** Any piece of the PII or the canary, as written or decoded. */
const FRAGMENT = /jane\.doe|u0040example|example\.com|415|2671|CANARY|ANARY-SECRET|u0043/;

const redactor = createRedactor({ hashKey: HASH_KEY });

function toolMessage(content: string): ChatMessage {
  return { role: 'tool', tool_call_id: 'call_1', content };
}

function history(content: string): ChatMessage[] {
  return [
    { role: 'user', content: 'look the customer up' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"id": 7}' } }] },
    toolMessage(content),
  ];
}

function answer(content: string): CompletionResult {
  return { id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] };
}

describe('prompt texts holding JSON escapes: PII', () => {
  it('mask: a tool result written by json.dumps goes up with its address and phone number masked', () => {
    const s = redactor.session(decision(), []);
    const out = s.redactMessages(history(TOOL_RESULT));
    expect(out[2]!.content).toBe(MASKED_RESULT);
    expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1, PHONE_NUMBER: 1 });
    // As its plain form is.
    const plain = redactor.session(decision(), []).redactMessages(history(`{"phone": "${PHONE}", "mail": "${MAIL}", "note": "line\\nok"}`));
    expect(plain[2]!.content).toBe(MASKED_RESULT);
  });

  it('mask: in every prompt text a message has (content string, text part, refusal, an Anthropic tool_result)', () => {
    const s = redactor.session(decision(), []);
    const out = s.redactMessages([
      { role: 'system', content: `mail ${ESC_MAIL}` },
      { role: 'user', content: [{ type: 'text', text: `call ${ESC_PHONE}` }] },
      { role: 'assistant', content: null, refusal: `not ${ESC_MAIL}` },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: TOOL_RESULT } as never] },
    ]);
    expect(out[0]!.content).toBe('mail [EMAIL_ADDRESS]');
    expect(out[1]!.content).toEqual([{ type: 'text', text: 'call [PHONE_NUMBER]' }]);
    expect(out[2]!.refusal).toBe('not [EMAIL_ADDRESS]');
    expect((out[3]!.content as unknown as Array<{ content: string }>)[0]!.content).toBe(MASKED_RESULT);
    expect(JSON.stringify(out)).not.toMatch(FRAGMENT);
  });

  it('mask: an escape split between two parts of one message is read joined', () => {
    const s = redactor.session(decision(), []);
    const out = s.redactMessages([{ role: 'user', content: [{ type: 'text', text: 'mail jane.doe\\u00' }, { type: 'text', text: '40example.com please' }] }]);
    expect(out[0]!.content).toEqual([{ type: 'text', text: 'mail [EMAIL_ADDRESS]' }, { type: 'text', text: ' please' }]);
  });

  it('a value right after an escape is replaced after it: the escape stays whole and the JSON valid', () => {
    // Read as written, `\njane.doe@…` holds the address `njane.doe@…`, begun after the backslash:
    // replaced so, the text read `line\[EMAIL_ADDRESS]`, which no JSON parser takes.
    const s = redactor.session(decision(), []);
    const text = `{"a": "line\\n${MAIL}", "b": "x\\t${MAIL}\\u000a${PHONE}"}`;
    const out = s.redactMessages(history(text))[2]!.content as string;
    expect(out).toBe('{"a": "line\\n[EMAIL_ADDRESS]", "b": "x\\t[EMAIL_ADDRESS]\\u000a[PHONE_NUMBER]"}');
    expect(JSON.parse(out)).toEqual({ a: 'line\n[EMAIL_ADDRESS]', b: 'x\t[EMAIL_ADDRESS]\n[PHONE_NUMBER]' });
    // tokenize restores the address itself, not `njane.doe@…`.
    const t = redactor.session(decision({ mode: 'tokenize', reidentify: true }), []);
    expect(t.redactMessages(history(`{"a": "line\\n${MAIL}"}`))[2]!.content).toBe('{"a": "line\\n<EMAIL_ADDRESS_1>"}');
    expect(t.processCompletion(answer('to <EMAIL_ADDRESS_1>')).choices[0]!.message.content).toBe(`to ${MAIL}`);
  });

  it('tokenize: the token goes up, and the answer restores the value as the caller wrote it', () => {
    const s = redactor.session(decision({ mode: 'tokenize', reidentify: true }), []);
    const out = s.redactMessages(history(TOOL_RESULT));
    expect(out[2]!.content).toBe('{"phone": "<PHONE_NUMBER_1>", "mail": "<EMAIL_ADDRESS_1>", "note": "line\\nok"}');
    const back = s.processCompletion(answer('Reach <EMAIL_ADDRESS_1> or <PHONE_NUMBER_1>.')).choices[0]!.message.content;
    expect(back).toBe(`Reach ${ESC_MAIL} or ${ESC_PHONE}.`);
  });

  it('tokenize: restored into tool-call arguments, a value written with escapes parses as the value the model read (second review)', () => {
    const s = redactor.session(decision({ mode: 'tokenize', reidentify: true }), []);
    expect(s.redactMessages(history(`{"mail": "${ESC_MAIL}"}`))[2]!.content).toBe('{"mail": "<EMAIL_ADDRESS_1>"}');
    const call: CompletionResult = {
      id: 'x',
      model: 'm',
      created: 1,
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send', arguments: '{"to": "<EMAIL_ADDRESS_1>"}' } }] } }],
    };
    const args = s.processCompletion(call).choices[0]!.message.tool_calls![0]!.function.arguments;
    expect(JSON.parse(args)).toEqual({ to: MAIL });
  });

  it('tokenize: a value holding other escapes (a line break) is escaped again in arguments, so JSON nested in them still parses (third review)', () => {
    const s = redactor.session(decision({ mode: 'tokenize', reidentify: true }), []);
    expect(s.redactMessages(history('{"card": "4111\\n1111\\n1111\\n1111"}'))[2]!.content).toBe('{"card": "<CREDIT_CARD_1>"}');
    const call: CompletionResult = {
      id: 'x',
      model: 'm',
      created: 1,
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send', arguments: '{"payload": "{\\"v\\": \\"<CREDIT_CARD_1>\\"}"}' } }] } }],
    };
    const args = s.processCompletion(call).choices[0]!.message.tool_calls![0]!.function.arguments;
    const payload = (JSON.parse(args) as { payload: string }).payload;
    // The model read line breaks between the groups: the app reads them too, at the inner level.
    expect(JSON.parse(payload)).toEqual({ v: '4111\n1111\n1111\n1111' });
  });

  it('tokenize: a placeholder the caller wrote with escapes in a tool result is never minted', () => {
    // The model reads `\u003cEMAIL_ADDRESS_1>` as `<EMAIL_ADDRESS_1>`: minting that token for the
    // real address would restore the caller's literal as the address in the answer.
    const s = redactor.session(decision({ mode: 'tokenize', reidentify: true }), []);
    const out = s.redactMessages(history(`{"ref": "\\u003cEMAIL_ADDRESS_1>", "mail": "${MAIL}"}`));
    expect(out[2]!.content).toBe('{"ref": "\\u003cEMAIL_ADDRESS_1>", "mail": "<EMAIL_ADDRESS_2>"}');
    const back = s.processCompletion(answer('<EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>')).choices[0]!.message.content;
    expect(back).toBe(`<EMAIL_ADDRESS_1> and ${MAIL}`);
  });

  it('hash: the escaped value is replaced by its keyed hash', () => {
    const s = redactor.session(decision({ mode: 'hash' }), []);
    const out = s.redactMessages(history(TOOL_RESULT))[2]!.content as string;
    expect(out).toMatch(/^\{"phone": "<PHONE_NUMBER:[0-9a-f]{8}>", "mail": "<EMAIL_ADDRESS:[0-9a-f]{8}>", "note": "line\\nok"\}$/);
    expect(out).not.toMatch(FRAGMENT);
  });

  it('block: an entity found only through escapes refuses the request as its plain form does', () => {
    for (const content of [TOOL_RESULT, `{"mail": "${ESC_MAIL}"}`]) {
      const e = thrown(() => redactor.session(decision({ modes: { EMAIL_ADDRESS: 'block' } }), []).redactMessages(history(content)));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details).toEqual({ reason: 'blocked_entities', entities: ['EMAIL_ADDRESS'] });
      expect(`${e.message} ${JSON.stringify(e.details)}`).not.toMatch(FRAGMENT);
    }
  });

  it('an escape that is not one stays as written, and so does a text without a finding', () => {
    const s = redactor.session(decision(), []);
    const texts = ['C:\\new\\table \\u00zz \\q', '{"path": "C:\\\\temp\\\\new", "n": "a\\tb"}', 'regex \\d+\\.\\d+ and \\u0041BC'];
    const out = s.redactMessages(texts.map((t) => ({ role: 'user', content: t })));
    expect(out.map((m) => m.content)).toEqual(texts);
    expect(s.report().counts).toEqual({});
  });

  it('tool descriptions and pass-through parameters are prompt text too', () => {
    const s = redactor.session(decision(), []);
    const tools = s.redactTools([{ type: 'function', function: { name: 'notify', description: `mails ${ESC_MAIL}`, parameters: { type: 'object', properties: {} } } }]);
    expect(tools[0]!.function.description).toBe('mails [EMAIL_ADDRESS]');
    expect(s.redactParams({ metadata: { note: `call ${ESC_PHONE}` } })).toEqual({ metadata: { note: 'call [PHONE_NUMBER]' } });
  });

  it('the findings cache keeps the decoded findings with the text: cached and uncached agree on every pass', () => {
    const uncached = createRedactor({ hashKey: HASH_KEY }, { findingsCache: false });
    const cached = createRedactor({ hashKey: HASH_KEY });
    const long = `${'Customer record follows, answer from it only. '.repeat(12)}${TOOL_RESULT}`;
    expect(long.length).toBeGreaterThan(512);
    for (const d of [decision(), decision({ mode: 'tokenize' }), decision({ mode: 'hash' }), decision({ modes: { PHONE_NUMBER: 'block' } })]) {
      const run = (r: WardenRedactor): string => {
        try {
          const s = r.session(d, []);
          return JSON.stringify([s.redactMessages(history(long)), s.report()]);
        } catch (err) {
          return JSON.stringify(err);
        }
      };
      const want = run(uncached);
      expect(want).not.toMatch(FRAGMENT);
      for (let pass = 0; pass < 3; pass++) expect(run(cached), `${d.mode ?? JSON.stringify(d.modes)} pass ${pass}`).toBe(want);
    }
    expect(cached.findingsCache!.stats().hits).toBeGreaterThan(0);
  });

  it('warden redact --detect reports what redaction replaces', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    stdin.end(`${TOOL_RESULT}\n`);
    expect(await runRedactCli(['--detect'], { stdin, stdout, stderr: new PassThrough() }, {})).toBe(0);
    const findings = (JSON.parse(out) as { findings: Array<{ entity: string; start: number; end: number }> }).findings;
    expect(findings.map((f) => [f.entity, TOOL_RESULT.slice(f.start, f.end)])).toEqual([
      ['PHONE_NUMBER', ESC_PHONE],
      ['EMAIL_ADDRESS', ESC_MAIL],
    ]);
  });
});

describe('prompt texts holding JSON escapes: the secret check', () => {
  it('a granted secret written with escapes in a tool result refuses the request as the plain value does', () => {
    for (const content of [`{"code": "${ESC_CANARY}"}`, `{"code": "${CANARY}"}`]) {
      const e = thrown(() => redactor.session(decision(), [CANARY]).redactMessages(history(content)));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details).toEqual({ reason: 'secret_leak', entities: ['SECRET_VALUE'], leaks: 1 });
      expect(`${e.message} ${JSON.stringify(e.details)}`).not.toMatch(FRAGMENT);
    }
  });

  it('in content, a text part, a refusal and a tool description, and split across two parts', () => {
    const cases: Array<(s: ReturnType<typeof redactor.session>) => unknown> = [
      (s) => s.redactMessages([{ role: 'user', content: `use ${ESC_CANARY}` }]),
      (s) => s.redactMessages([{ role: 'user', content: [{ type: 'text', text: `use ${ESC_CANARY}` }] }]),
      (s) => s.redactMessages([{ role: 'assistant', content: null, refusal: `not ${ESC_CANARY}` }]),
      (s) => s.redactMessages([{ role: 'user', content: [{ type: 'text', text: 'use \\u0043\\u00' }, { type: 'text', text: `41${CANARY.slice(2)}` }] }]),
      (s) => s.redactTools([{ type: 'function', function: { name: 'f', description: `key ${ESC_CANARY}` } }]),
    ];
    for (const [i, run] of cases.entries()) {
      const e = thrown(() => run(redactor.session(decision(), [CANARY])));
      expect(e.details, `case ${i}`).toMatchObject({ reason: 'secret_leak' });
    }
  });

  it('in an image URL, written with JSON or percent escapes, as the fetcher reads it (second review)', () => {
    for (const url of [`https://x.test/i.png?e=${ESC_CANARY}`, `https://x.test/i.png?e=%43%41${CANARY.slice(2)}`, `https://x.test/i.png?e=${CANARY}`]) {
      const e = thrown(() =>
        redactor.session(decision(), [CANARY]).redactMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] } as ChatMessage]),
      );
      expect(e.details, url).toMatchObject({ reason: 'secret_leak', leaks: 1 });
    }
    // A URL with escapes and no secret passes.
    const ok = redactor.session(decision(), [CANARY]).redactMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x.test/i.png?q=%41b\\u0041' } }] } as ChatMessage]);
    expect(ok).toHaveLength(1);
  });

  it('a value found both as written and through escapes at one place counts once; two places count two', () => {
    // `\n` elsewhere makes the text one with a backslash: the decoded search finds the plain value again.
    const once = thrown(() => redactor.session(decision(), [CANARY]).redactText(`line\\n${CANARY}`));
    expect(once.details).toMatchObject({ leaks: 1 });
    const twice = thrown(() => redactor.session(decision(), [CANARY]).redactText(`${CANARY} and ${ESC_CANARY}`));
    expect(twice.details).toMatchObject({ leaks: 2 });
    // A value holding what reads as an escape is still found as written.
    const raw = 'pa\\ss\\nword-7f3a';
    expect(thrown(() => redactor.session(decision(), [raw]).redactText(`use ${raw}`)).details).toMatchObject({ leaks: 1 });
  });

  it('text that only looks like an escaped secret is not refused', () => {
    const s = redactor.session(decision(), [CANARY]);
    expect(s.redactText('\\u0043ANARY-SECRET-7f3b and \\u00zzCANARY')).toBe('\\u0043ANARY-SECRET-7f3b and \\u00zzCANARY');
  });
});

// A secret the template places is the credential the decision granted: it goes up exactly as
// fetched, even when it holds what reads, decoded, as PII (placed-secrets.test.ts, plain).
describe('prompt texts holding JSON escapes: a secret the template placed', () => {
  const PLACED = 'CANARY-SECRET-7f3e ops\\u0040corp.example.com';
  const template: Template = makeTemplate({
    id: 'test/placed-escapes',
    variables: {
      key: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/key' },
      who: { source: 'request', type: 'string', required: true, pii: true },
    },
    messages: [{ role: 'system', content: `${'Support assistant of Example Corp. '.repeat(16)}K={{key}} reply to {{who}}` }],
  });

  async function render(r: WardenRedactor, redaction: Partial<RedactionDecision> = {}, who = ESC_MAIL): Promise<RequestContext> {
    const d = allowDecision();
    const ctx = makeContext(
      { template: { id: template.id, version: 1 }, variables: { who } },
      { template, secrets: new Map([['file:secrets/key', PLACED]]), decision: { ...d, redaction: { ...d.redaction, ...redaction } } },
    );
    await createRenderStage().run(ctx);
    await createRedactStage(() => r).run(ctx);
    return ctx;
  }

  it('is sent as fetched while the escaped address around it is masked, from the cache too', async () => {
    const r = createRedactor({});
    for (let pass = 0; pass < 3; pass++) {
      const ctx = await render(r);
      expect((ctx.outbound![0]!.content as string).endsWith(`K=${PLACED} reply to [EMAIL_ADDRESS]`), `pass ${pass}`).toBe(true);
      expect(ctx.redaction!.report().counts).toEqual({ EMAIL_ADDRESS: 1 });
    }
  });

  it('a block mode still refuses it, as a plain address inside it does', async () => {
    const ctx = render(createRedactor({}), { modes: { EMAIL_ADDRESS: 'block' } }, 'nobody');
    await expect(ctx).rejects.toMatchObject({ code: 'redaction_blocked', details: { reason: 'blocked_entities', entities: ['EMAIL_ADDRESS'] } });
  });
});
