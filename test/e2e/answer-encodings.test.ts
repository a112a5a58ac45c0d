/**
 * A placed secret that the model hands back encoded (hex, base32, HTML-escaped, hex bytes after
 * `0x`, numeric and named character references, percent-escapes, ROT13: what a model asked to
 * "encode the key", writing HTML or putting it in a URL produces) is masked in the answer as the
 * value is, streamed or not, and counted; the canary is in no log line or audit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const SECRET = 'Kx4&Hb9Qz2-Vt7';
const bytes = Buffer.from(SECRET, 'utf8');
/** RFC 4648 base32, written the slow way (a bit string). */
function base32(b: Buffer): string {
  const bits = [...b].map((x) => x.toString(2).padStart(8, '0')).join('');
  const chars = (bits.match(/.{1,5}/g) ?? []).map((c) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(c.padEnd(5, '0'), 2)]).join('');
  return chars.padEnd(Math.ceil(chars.length / 8) * 8, '=');
}
const FORMS: Record<string, string> = {
  'hex': bytes.toString('hex'),
  'hex dump, upper case': bytes.toString('hex').toUpperCase().match(/../g)!.join(' '),
  'base32': base32(bytes),
  'HTML-escaped': SECRET.replace('&', '&amp;'),
  'base32 in lower case': base32(bytes).toLowerCase(),
  'hex bytes each after 0x (a C array)': bytes.toString('hex').match(/../g)!.map((b) => `0x${b}`).join(', '),
  'numeric HTML references': [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join(''),
  'every byte percent-escaped (a link or image URL)': bytes.toString('hex').toUpperCase().replace(/../g, '%$&'),
  'named HTML references (&amp;, &hyphen;)': SECRET.replace('&', '&amp;').replace('-', '&hyphen;'),
  'hex bytes after 0x, a C array over lines': bytes.toString('hex').match(/.{1,8}/g)!.map((l) => l.match(/../g)!.map((b) => `0x${b}`).join(', ')).join(',\n    '),
  'character codes in decimal': [...bytes].join(', '),
  'chr() calls concatenated (Python)': [...SECRET].map((c) => `chr(${c.charCodeAt(0)})`).join(' + '),
  "one-character strings concatenated ('K' + 'x' + …)": [...SECRET].map((c) => `'${c}'`).join(' + '),
  'octal escapes': [...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join(''),
  'binary octets': [...bytes].map((b) => b.toString(2).padStart(8, '0')).join(' '),
  'U+ notation': [...SECRET].map((c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`).join(' '),
  'reversed': [...SECRET].reverse().join(''),
  'ROT13': SECRET.replace(/[A-Za-z]/g, (c) => String.fromCharCode((c <= 'Z' ? 65 : 97) + ((c.charCodeAt(0) - (c <= 'Z' ? 65 : 97) + 13) % 26))),
};

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    files: {
      'templates/ops/key.yaml': `id: ops/key
version: 1
owner: sre@example.com
sensitivity: internal
description: Places a secret.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1402 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  key: { source: secret, ref: "file:secrets/key" }
messages:
  - role: system
    content: "The key is {{key}}."
  - role: user
    content: "Encode the key."
`,
      'secrets/key': `${SECRET}\n`,
    },
  });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** The answer's text as the caller reads it, and the audit record's leak count. */
async function ask(answer: string, stream: boolean): Promise<{ text: string; leaks: unknown }> {
  upstream.mode = 'scripted';
  upstream.script = { text: answer, piece: 3 };
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', stream, warden: { template: 'ops/key@1' } });
  const body = await res.text();
  expect(res.status, body).toBe(200);
  const text = stream
    ? body
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? '')
        .join('')
    : JSON.parse(body).choices[0].message.content;
  return { text, leaks: w.audit().at(-1)?.redaction?.leaks };
}

describe('a placed secret handed back encoded', () => {
  for (const [name, form] of Object.entries(FORMS)) {
    for (const stream of [false, true]) {
      it(`${name}, ${stream ? 'streamed' : 'not streamed'}: masked and counted`, async () => {
        const { text, leaks } = await ask(`Encoded: ${form} done`, stream);
        expect(text).toBe('Encoded: [SECRET_VALUE] done');
        expect(leaks).toBe(1);
      });
    }
  }

  it('no form of the canary in the log or any audit record', () => {
    const all = w.logs.join('') + JSON.stringify(w.audit());
    for (const form of [SECRET, ...Object.values(FORMS)]) expect(all).not.toContain(form);
  });
});
