/**
 * End to end: secrets that hold PII-like text (an e-mail address, an IP address, a phone number),
 * granted by the policy and placed by a template. The upstream must receive each exactly as
 * fetched; the caller must never see any part of one: not in an answer (HTTP, echo model and a
 * model that repeats them, streamed or not), not in the gRPC Render dry run, and no part reaches
 * the log or the audit record. Before the fix the PII inside the value was rewritten in the
 * prompt, so the leak guard no longer recognised the value and the rest of it came back in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { FakeUpstream, ScriptedAnswer } from './helpers/upstream.js';
import type { WardenFixture } from './helpers/warden.js';

const WITH_EMAIL = 'contact admin@example.com then use CANARY-SECRET-7f3a';
const WITH_IP = 'CANARY-SECRET-7f3b 10.1.2.3';
const WITH_PHONE = 'CANARY-SECRET-7f3c call +1 415 555 2671';

const TEMPLATE = `id: ops/pii-secrets
version: 1
owner: sre@example.com
sensitivity: internal
description: Places three secrets that hold PII-like text.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1313 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini, echo]
variables:
  service: { type: string, max_length: 64 }
  mail: { source: secret, ref: "file:secrets/with-email" }
  ip: { source: secret, ref: "file:secrets/with-ip" }
  phone: { source: secret, ref: "file:secrets/with-phone" }
messages:
  - role: system
    content: "M={{mail}} I={{ip}} P={{phone}}"
  - role: user
    content: "Service {{service}} is failing, write to ops@corp.example.com."
`;

const SYSTEM = `M=${WITH_EMAIL} I=${WITH_IP} P=${WITH_PHONE}`;
const MASKED = 'M=[SECRET_VALUE] I=[SECRET_VALUE] P=[SECRET_VALUE]';

let g: GatewayWarden;
let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;
let gateway: any;

beforeAll(async () => {
  g = await startGatewayWarden({
    files: {
      'templates/ops/pii-secrets.yaml': TEMPLATE,
      'secrets/with-email': `${WITH_EMAIL}\n`,
      'secrets/with-ip': `${WITH_IP}\n`,
      'secrets/with-phone': `${WITH_PHONE}\n`,
    },
  });
  ({ upstream, w, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

/** No piece of any of the three secrets, raw or with JSON escapes decoded. */
function expectNoSecret(raw: string): void {
  const decoded = raw.replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  for (const t of [raw, decoded]) expect(t).not.toMatch(/CANARY|SECRET-7f3|admin@example|then use|10\.1\.2\.3|415 555 2671/);
}

async function ask(model: string, stream: boolean): Promise<{ raw: string; text: string }> {
  const res = await postChat(w.addresses.http, token, { model, stream, warden: { template: 'ops/pii-secrets@1', variables: { service: 'billing-api' } } });
  const raw = await res.text();
  expect(res.status, raw.slice(0, 300)).toBe(200);
  if (!stream) return { raw, text: (JSON.parse(raw) as any).choices[0].message.content };
  let text = '';
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    for (const c of (JSON.parse(line.slice(6)) as any).choices ?? []) text += c.delta?.content ?? '';
  }
  return { raw, text };
}

describe('granted secrets holding PII, placed by the template', () => {
  it('reach the upstream exactly as fetched, the rest of the prompt redacted as usual', async () => {
    upstream.mode = 'ok';
    await ask('gpt-4o-mini', false);
    const sent = upstream.calls.at(-1)!.body.messages;
    expect(sent[0].content).toBe(SYSTEM);
    expect(sent[1].content).toBe('Service billing-api is failing, write to [EMAIL_ADDRESS].');
  });

  it('are masked whole in the echo model answer, streamed or not', async () => {
    for (const stream of [false, true]) {
      const got = await ask('echo', stream);
      expect(got.text, `stream=${stream}`).toContain(MASKED);
      expectNoSecret(got.raw);
    }
  });

  it('are masked whole when the upstream model repeats them, in pieces of 1 to 9', async () => {
    upstream.mode = 'scripted';
    const script: ScriptedAnswer = { text: `Sure: ${SYSTEM} done` };
    upstream.script = script;
    const whole = await ask('gpt-4o-mini', false);
    expect(whole.text).toBe(`Sure: ${MASKED} done`);
    expectNoSecret(whole.raw);
    for (let piece = 1; piece <= 9; piece++) {
      upstream.script = { ...script, piece };
      const got = await ask('gpt-4o-mini', true);
      expect(got.text, `pieces of ${piece}`).toBe(whole.text);
      expectNoSecret(got.raw);
    }
  });

  it('are masked whole in the gRPC Render dry run', async () => {
    const before = upstream.calls.length;
    const res = await unaryCall(
      gateway,
      'Render',
      { model: 'gpt-4o-mini', template: { id: 'ops/pii-secrets', version: 1 }, variables: { service: 'billing-api' } },
      bearerMetadata(token),
    );
    expect(upstream.calls.length).toBe(before);
    expect(res.messages[0].content).toBe(MASKED);
    expect(res.messages[1].content).toBe('Service billing-api is failing, write to [EMAIL_ADDRESS].');
    expectNoSecret(JSON.stringify(res));
  });

  it('never reach the log or the audit record', () => {
    expectNoSecret(w.logs.join('\n'));
    const records = w.audit();
    expect(records.length).toBeGreaterThanOrEqual(14);
    expectNoSecret(JSON.stringify(records));
    // The caller's address is the only prompt finding: nothing inside the secrets was rewritten.
    const executed = records.filter((r) => r['action'] === 'prompt.execute');
    for (const r of executed) expect(r['redaction']?.counts).toEqual({ EMAIL_ADDRESS: 1 });
  });
});
