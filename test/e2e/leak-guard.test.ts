/**
 * End to end: the answer-side leak guard over HTTP. A template places two secrets in its system
 * prompt (a passphrase with spaces and the escalation code); the loopback upstream answers with
 * them, streamed in pieces, past the hold-back cap, obfuscated or JSON-escaped. No form of either
 * canary may reach the caller, the log or the audit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream, type ScriptedAnswer } from './helpers/upstream.js';
import { CANARY_SECRET, startWarden, type WardenFixture } from './helpers/warden.js';

const PHRASE = 'open sesame CANARY-PHRASE-4d2c';
const CAP = 512;

const TEMPLATE = `id: ops/passphrase
version: 1
owner: sre@example.com
sensitivity: internal
description: Holds a passphrase with spaces and the escalation code.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1312 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  service: { type: string, max_length: 64 }
  passphrase: { source: secret, ref: "file:secrets/passphrase" }
  escalation_code: { source: secret, ref: "file:secrets/escalation-code" }
messages:
  - role: system
    content: "Door passphrase: {{passphrase}}. Escalation code: {{escalation_code}}. Never reveal them."
  - role: user
    content: "Service {{service}} is failing."
`;

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    files: { 'templates/ops/passphrase.yaml': TEMPLATE, 'secrets/passphrase': `${PHRASE}\n` },
    extraConfig: `redaction: { max_hold_back: ${CAP} }`,
  });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

interface Answer {
  /** The response body as the caller received it. */
  raw: string;
  /** Content, or tool-call arguments, joined. */
  text: string;
}

async function ask(script: ScriptedAnswer, stream: boolean): Promise<Answer> {
  upstream.mode = 'scripted';
  upstream.script = script;
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', stream, warden: { template: 'ops/passphrase@1', variables: { service: 'billing-api' } } });
  const raw = await res.text();
  expect(res.status, raw.slice(0, 200)).toBe(200);
  if (!stream) {
    const m = (JSON.parse(raw) as any).choices[0].message;
    return { raw, text: script.toolArgs ? m.tool_calls[0].function.arguments : m.content };
  }
  let text = '';
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    for (const c of (JSON.parse(line.slice(6)) as any).choices ?? []) {
      text += c.delta?.content ?? '';
      for (const t of c.delta?.tool_calls ?? []) text += t.function?.arguments ?? '';
    }
  }
  return { raw, text };
}

/** No part of either canary in a body, decoded or not. */
function expectNoCanary(raw: string): void {
  const decoded = raw.replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/[\u200b-\u200d\u00ad]/g, '');
  for (const t of [raw, decoded, decoded.normalize('NFKC')]) expect(t).not.toMatch(/sesame|CANARY|ANARY-|PHRASE-4d2c|SECRET-9f8e7d/);
}

describe('answer leak guard over HTTP', () => {
  it('a passphrase with spaces is masked whole, streamed in pieces of 1 to 13 and not streamed', async () => {
    const script = { text: `The passphrase is ${PHRASE} ok` };
    const whole = await ask(script, false);
    expect(whole.text).toBe('The passphrase is [SECRET_VALUE] ok');
    for (let piece = 1; piece <= 13; piece++) {
      const got = await ask({ ...script, piece }, true);
      expect(got.text, `pieces of ${piece}`).toBe(whole.text);
      expectNoCanary(got.raw);
    }
  });

  it('a value right at the max_hold_back release of a long whitespace-free answer is masked whole', async () => {
    for (const value of [CANARY_SECRET, PHRASE, '4111111111111111']) {
      for (const at of [CAP - 5, CAP, CAP + 3, CAP + CAP / 2, CAP + CAP / 2 + 7]) {
        const pad = 'y,'.repeat(at >> 1).slice(0, at - 13);
        const text = `{"k":"${pad}","v":"${value}"}`;
        const whole = await ask({ text }, false);
        expect(whole.text).not.toContain(value);
        const got = await ask({ text, piece: 7 }, true);
        expect(got.text, `${value.slice(0, 4)} at ${at}`).toBe(whole.text);
        expectNoCanary(got.raw);
      }
    }
  });

  it('tool-call arguments with a \\u-escaped secret, and content with a zero-width or fullwidth one, are masked', async () => {
    const cases: Array<[ScriptedAnswer, string]> = [
      [{ text: '{"code":"\\u0043ANARY-SECRET-9f8e7d"}', toolArgs: true }, '{"code":"[SECRET_VALUE]"}'],
      [{ text: '{"door":"open\\u0020sesame CANARY-PHRASE-4d2c"}', toolArgs: true }, '{"door":"[SECRET_VALUE]"}'],
      [{ text: 'code CANARY\u200b-SECRET-9f8e7d here' }, 'code [SECRET_VALUE] here'],
      [{ text: 'code ＣＡＮＡＲＹ－ＳＥＣＲＥＴ－９ｆ８ｅ７ｄ here' }, 'code [SECRET_VALUE] here'],
    ];
    for (const [script, expected] of cases) {
      for (const stream of [false, true]) {
        const got = await ask({ ...script, piece: 5 }, stream);
        expect(got.text, `${script.text} stream=${stream}`).toBe(expected);
        expectNoCanary(got.raw);
      }
    }
  });

  it('a secret repeated in another case or spaced out is masked and counted, streamed in pieces and not', async () => {
    const cases: Array<[ScriptedAnswer, string]> = [
      [{ text: 'code canary-secret-9f8e7d here' }, 'code [SECRET_VALUE] here'],
      [{ text: 'code C A N A R Y S E C R E T 9 F 8 E 7 D here' }, 'code [SECRET_VALUE] here'],
      [{ text: 'code c-a-n-a-r-y-s-e-c-r-e-t-9-f-8-e-7-d.' }, 'code [SECRET_VALUE].'],
      [{ text: 'door OPEN SESAME canary.phrase.4D2C' }, 'door [SECRET_VALUE]'],
      [{ text: '{"code":"Canary Secret 9F8E7D"}', toolArgs: true }, '{"code":"[SECRET_VALUE]"}'],
    ];
    for (const [script, expected] of cases) {
      for (const [stream, piece] of [[false, 1], [true, 1], [true, 3], [true, 7]] as const) {
        const got = await ask({ ...script, piece }, stream);
        expect(got.text, `${script.text} stream=${stream} piece=${piece}`).toBe(expected);
        // No form of either canary: lower-cased, separators dropped.
        const squashed = got.raw.toLowerCase().replace(/[\s\-_.,:;/|'"`*+~]|\\[nt]/g, '');
        expect(squashed).not.toMatch(/canarysecret|canaryphrase|secret9f8e7d|opensesame/);
        const record = w.audit().at(-1)!['redaction'];
        expect(record, script.text).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1 } });
      }
    }
  });

  it('no canary reaches the log or the audit records, which count the leaks', () => {
    expectNoCanary(w.logs.join('\n'));
    const records = w.audit();
    expect(records.length).toBeGreaterThan(20);
    expectNoCanary(JSON.stringify(records));
    // Every answer held a secret but the ten with only a card number.
    const leaks = records.map((r) => r['redaction']?.leaks ?? 0);
    expect(leaks.filter((n) => n === 0).length, JSON.stringify(leaks)).toBe(10);
  });
});
