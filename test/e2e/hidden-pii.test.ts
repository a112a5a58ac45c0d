/**
 * End to end: PII hidden from a plain reading but read by a model. First, PII written with HTML character references (text copied from a web page or an
 * HTML e-mail: `&#64;` for the '@' of an address obfuscated against spam, `&nbsp;` between a
 * card's groups, a fully encoded `&#106;&#97;…`), which a model reads as the characters they
 * stand for. Before the fix such a prompt went upstream as written, and such an answer reached
 * the caller unmasked. The official `openai` SDK against a loopback upstream that records what it
 * received; the upstream, the caller, the log and the audit record hold no canary.
 *
 * Then PII written in Unicode tag characters (U+E0021-U+E007E: invisible, each mirroring an ASCII
 * character, and read by models as that character, "ASCII smuggling"): they were dropped as
 * invisible before detection, so the value went upstream whole.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const MAIL = 'canary.pii.5e1b@example.com';
/** Every character as a decimal reference, as mail obfuscators write an address. */
const MAIL_ENCODED = [...MAIL].map((c) => `&#${c.charCodeAt(0)};`).join('');
const PROMPT =
  `<p>Customer: canary.pii.5e1b&#64;example.com, card&nbsp;4111&nbsp;1111&nbsp;1111&nbsp;1111, ` +
  `SSN 536&#45;22&#45;1234, tel &#x2B;1&#x20;415&#x20;555&#x20;2671, mailto:${MAIL_ENCODED}</p>`;
const REDACTED =
  '<p>Customer: [EMAIL_ADDRESS], card&nbsp;[CREDIT_CARD], SSN [US_SSN], tel [PHONE_NUMBER], mailto:[EMAIL_ADDRESS]</p>';

let upstream: FakeUpstream;
let w: WardenFixture;
let openai: OpenAI;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  const token = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  openai = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** No canary in `text`, as written or with its HTML references and JSON escapes decoded. */
function expectNoCanary(text: string): void {
  const decoded = text
    .replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#x([0-9a-fA-F]+);?/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);?/g, (_, d: string) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&nbsp;/g, ' ');
  for (const t of [text, decoded]) expect(t).not.toMatch(/canary\.pii|5e1b|536.22.1234|415.555.2671|4111.1111/);
}

describe('HTML character references in the prompt', () => {
  it('openai SDK: the upstream gets each value masked over its references, the rest as written', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const answer = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] });
    expect(upstream.calls.length).toBe(before + 1);
    const body = upstream.calls[before]!.body as { messages: Array<{ role: string; content: string }> };
    expectNoCanary(JSON.stringify(body));
    expect(body.messages.at(-1)!.content).toBe(REDACTED);
    expect(answer.choices[0]!.message.content).toBe(`upstream saw: ${REDACTED}`);
    expect(w.audit().at(-1)!['redaction']).toMatchObject({ counts: { EMAIL_ADDRESS: 2, CREDIT_CARD: 1, US_SSN: 1, PHONE_NUMBER: 1 } });
  });
});

describe('HTML character references in the answer', () => {
  const ANSWER = `Reach her at canary.pii.5e1b&#64;example.com or ${MAIL_ENCODED}; card 4111 1111 1111&nbsp;1111 on file.`;
  const MASKED = 'Reach her at [EMAIL_ADDRESS] or [EMAIL_ADDRESS]; card [CREDIT_CARD] on file.';

  it('not streamed: the caller gets the values masked', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: ANSWER };
    const answer = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Who is it?' }] });
    expect(answer.choices[0]!.message.content).toBe(MASKED);
  });

  it('streamed in pieces that cut the references, the caller gets the same', async () => {
    for (const piece of [1, 3, 7]) {
      upstream.mode = 'scripted';
      upstream.script = { text: ANSWER, piece };
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Who is it?' }], stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text, `pieces of ${piece}`).toBe(MASKED);
    }
  });

  it('the log and the audit records hold no canary', () => {
    expectNoCanary(w.logs.join('\n'));
    expectNoCanary(JSON.stringify(w.audit()));
  });
});

describe('Unicode tag characters in the prompt', () => {
  const tag = (t: string): string => [...t].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
  /** What a model reads in `text`: each tag character as the ASCII it mirrors. */
  const untag = (text: string): string => text.replace(/[\u{E0020}-\u{E007E}]/gu, (c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000));

  it('openai SDK: a card and an address written in tags go upstream masked', async () => {
    const prompt = `Bill ${tag('4111 1111 1111 1111')} and mail the receipt to canary.pii.5e1b${tag('@')}example.com, thanks.`;
    expect(untag(prompt)).toBe('Bill 4111 1111 1111 1111 and mail the receipt to canary.pii.5e1b@example.com, thanks.');
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] });
    expect(upstream.calls.length).toBe(before + 1);
    const body = upstream.calls[before]!.body as { messages: Array<{ role: string; content: string }> };
    expectNoCanary(untag(JSON.stringify(body)));
    expect(body.messages.at(-1)!.content).toBe('Bill [CREDIT_CARD] and mail the receipt to [EMAIL_ADDRESS], thanks.');
    expect(w.audit().at(-1)!['redaction']).toMatchObject({ counts: { EMAIL_ADDRESS: 1, CREDIT_CARD: 1 } });
  });
});
