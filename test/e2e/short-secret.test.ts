/**
 * A secret shorter than the leak guard's minimum (6 characters) cannot be recognised in an answer:
 * placed in a prompt, a model repeating it would hand it to the caller unmasked. The fetch stage
 * refuses it, closed; from 6 characters on the answer is masked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const SHORT = 'Zq7Vw';
const SIX = 'Zq7Vw2';
/**
 * Six units or more, but five visible characters: the leak guard reads the text as it renders
 * (invisible characters dropped), where it is SHORT, too short to look for. Each invisible kind.
 */
const INVISIBLE: Record<string, string> = {
  'zero-width space': 'Zq7\u200bVw',
  'soft hyphen': 'Zq\u00ad7Vw',
  'BOM inside (zero-width no-break space)': 'Zq7\ufeffVw',
  'word joiner and zero-width joiner': 'Z\u2060q7\u200dVw\u200c',
};

function template(id: string, file: string): string {
  return `id: ${id}
version: 1
owner: sre@example.com
sensitivity: internal
description: Places a short secret.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1401 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  pin: { source: secret, ref: "file:secrets/${file}" }
messages:
  - role: system
    content: "The door pin is {{pin}}."
  - role: user
    content: "What is the pin?"
`;
}

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    files: {
      'templates/ops/short.yaml': template('ops/short', 'short'),
      'templates/ops/six.yaml': template('ops/six', 'six'),
      'secrets/short': `${SHORT}\n`,
      'secrets/six': `${SIX}\n`,
      ...Object.fromEntries(Object.values(INVISIBLE).flatMap((v, i) => [[`templates/ops/inv${i}.yaml`, template(`ops/inv${i}`, `inv${i}`)], [`secrets/inv${i}`, `${v}\n`]])),
    },
  });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function ask(template: string, answer: string): Promise<{ status: number; body: string }> {
  upstream.mode = 'scripted';
  upstream.script = { text: answer };
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template } });
  return { status: res.status, body: await res.text() };
}

describe('a secret too short for the leak guard', () => {
  it('is refused before anything is sent (503 secret_unavailable), and the model never echoes it', async () => {
    const before = upstream.calls.length;
    const { status, body } = await ask('ops/short@1', `The pin is ${SHORT}.`);
    expect(status, body).toBe(503);
    const err = JSON.parse(body).error;
    expect(err.code).toBe('secret_unavailable');
    expect(err.message).toBe('secret file:secrets/short is unavailable: shorter than 6 characters, too short for the leak guard to recognise in an answer');
    expect(upstream.calls.length).toBe(before);
    expect(w.audit().at(-1)?.error_code).toBe('secret_unavailable');
    for (const text of [body, JSON.stringify(w.audit()), w.logs.join('')]) expect(text).not.toContain(SHORT);
  });

  it('is refused again on the next call, its value now cached', async () => {
    const { status } = await ask('ops/short@1', `The pin is ${SHORT}.`);
    expect(status).toBe(503);
  });

  it('from 6 characters on, the value is placed and masked in the answer', async () => {
    const { status, body } = await ask('ops/six@1', `The pin is ${SIX}.`);
    expect(status, body).toBe(200);
    expect(JSON.parse(body).choices[0].message.content).toBe('The pin is [SECRET_VALUE].');
    expect(JSON.stringify(upstream.calls.at(-1)!.body)).toContain(SIX);
  });

  for (const [i, [name, value]] of Object.entries(INVISIBLE).entries()) {
    it(`six units or more that are under 6 visible characters (${name}) are refused too, with a value-free message`, async () => {
      expect(value.length).toBeGreaterThanOrEqual(6);
      const before = upstream.calls.length;
      const { status, body } = await ask(`ops/inv${i}@1`, `The pin is ${SHORT}.`);
      expect(status, body).toBe(503);
      const err = JSON.parse(body).error;
      expect(err.code).toBe('secret_unavailable');
      expect(err.message).toBe(`secret file:secrets/inv${i} is unavailable: shorter than 6 visible characters, too short for the leak guard to recognise in an answer`);
      expect(upstream.calls.length).toBe(before);
      for (const text of [body, JSON.stringify(w.audit()), w.logs.join('')]) expect(text).not.toContain(SHORT);
    });
  }
});
