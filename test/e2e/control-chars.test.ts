/**
 * End to end: ASCII control characters between the digit groups of a card, an SSN or an IBAN (a
 * vertical tab, Word's manual line break; a form feed, the page break of a PDF's extracted text;
 * NUL and the information separators) hide nothing from the model, which reads the digits on
 * either side. They hid the value from redaction: `4111\v1111\v1111\v1111` reached the upstream
 * whole, and came back to the app whole when the model wrote it. Now the upstream receives the
 * mask, and so does the caller (openai SDK, streamed or not); no canary in the log or audit.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';

const VALUES = ['card 4111\v1111\v1111\v1111', 'ssn 536\f22\f1234', 'iban DE89\x1c3704\x1c0044\x1c0532\x1c0130\x1c00', 'card 4111\x001111\x001111\x001111'];
/** Two groups of a value, with whatever stood between them (a control, or its JSON escape). */
const CANARY = /4111\D{0,6}1111|536\D{0,6}22\D{0,6}1234|DE89\D{0,6}3704/;

let g: GatewayWarden;
let client: OpenAI;

beforeAll(async () => {
  g = await startGatewayWarden({}, ['labs', 'raw-bot']);
  client = new OpenAI({ baseURL: `${g.w.addresses.http}/v1`, apiKey: g.token, maxRetries: 0, timeout: 15_000 });
});

afterAll(() => g?.close());

describe('ASCII control characters between digit groups', () => {
  it('the prompt goes upstream with the value masked', async () => {
    g.upstream.mode = 'ok';
    for (const value of VALUES) {
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `pay with ${value} please` }] });
      const sent = g.upstream.calls.at(-1)!.body.messages[0].content as string;
      expect(sent, JSON.stringify(value)).toMatch(/^pay with \w+ \[(CREDIT_CARD|US_SSN|IBAN_CODE)\] please$/);
    }
  });

  it('the answer reaches the app with the value masked, streamed or not', async () => {
    g.upstream.mode = 'scripted';
    for (const value of VALUES) {
      g.upstream.script = { text: `stored ${value} ok`, piece: 3 };
      const whole = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      expect(whole.choices[0]!.message.content, JSON.stringify(value)).toMatch(/^stored \w+ \[(CREDIT_CARD|US_SSN|IBAN_CODE)\] ok$/);
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      expect(text, JSON.stringify(value)).toBe(whole.choices[0]!.message.content);
    }
  });

  it('no canary in the log or any audit record', () => {
    expect(g.w.logs.join('\n')).not.toMatch(CANARY);
    expect(JSON.stringify(g.w.audit())).not.toMatch(CANARY);
  });
});
