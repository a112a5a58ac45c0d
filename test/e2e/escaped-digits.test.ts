/**
 * End to end: a card and a phone number whose ASCII digits the model wrote as JSON escapes
 * (`\u0034\u0031\u0031\u0031 \u0031…`), one to four levels deep (`\\u0034` is a `4` once an app
 * has parsed twice). The non-streamed answer masks them; streamed one character per chunk, the
 * hold-back read the text as written, where an escaped digit is no digit and the escaped chain is
 * six to sixteen times longer than it counts: the card's first group (the phone's `+1`) went out
 * in clear before the rest arrived, and at the third level the cut split an escape, so the text
 * no longer parsed one level down. Each route must now hand the app exactly the non-streamed
 * answer: /v1/chat/completions, /v1/messages and gRPC StreamComplete, content and tool-call
 * arguments. Real server on loopback, a scripted loopback upstream, the official `openai` SDK,
 * plain HTTP and @grpc/grpc-js.
 */
import { describe, expect, it } from 'vitest';
import { CARD_LEAK } from './helpers/canaries.js';
import { bearerMetadata, streamMessages } from './helpers/grpc.js';
import { anthropicEvents, postRoute } from './helpers/http.js';
import { completionBody, joinedOpenAI, oneCharChunks } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';

const CARD = '4111 1111 1111 1111';
const PHONE = '+1 415 555 2671';
const TEMPLATE = 'ops/incident-brief';
const VARIABLES = { service: 'billing-api' };

/** `value` with each ASCII digit written as a JSON escape `level` levels deep (2^(level-1) backslashes). */
function escapedDigits(value: string, level: number): string {
  const bs = '\\'.repeat(2 ** (level - 1));
  return value.replace(/[0-9]/g, (d) => `${bs}u00${d.charCodeAt(0).toString(16)}`);
}

/** The answer: the card and the phone with their digits escaped, as content or as JSON arguments. */
function answer(level: number, asArgs: boolean): string {
  const text = `card ${escapedDigits(CARD, level)} or call ${escapedDigits(PHONE, level)} today`;
  return asArgs ? `{"note": "${text}"}` : text;
}

/** `text` read as an app that parses it `n` times reads it (each JSON string escape decoded, `n` passes). */
function decoded(text: string, n: number): string {
  let t = text;
  for (let i = 0; i < n; i++) {
    t = t.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => (e[0] === 'u' ? String.fromCharCode(parseInt(e.slice(1), 16)) : e === 'n' ? '\n' : e));
  }
  return t;
}

/** No digit of the canaries in any reading of `text`, down to the deepest. */
function expectNoDigits(text: string, level: number): void {
  for (let n = 0; n <= level; n++) {
    const t = decoded(text, n);
    expect(t).not.toMatch(CARD_LEAK);
    expect(t, `read ${n} times: ${t}`).not.toMatch(/\d/);
  }
}

let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
const scripted = useScriptedWarden(() => completion, () => chunks, ['support', 'ticket-bot']);

const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: `${TEMPLATE}@1`, variables: VARIABLES } } as any;

function grpcStream(): Promise<any[]> {
  const request = { model: 'gpt-4o-mini', template: { id: TEMPLATE, version: 1 }, variables: VARIABLES, params_json: '{}' };
  const call = scripted.gateway.StreamComplete(request, bearerMetadata(scripted.token));
  return streamMessages(call);
}

describe('a card and a phone number with their digits written as JSON escapes, streamed one character per chunk', () => {
  for (const level of [1, 2, 3, 4]) {
    for (const asArgs of [false, true]) {
      it(`level ${level}, ${asArgs ? 'tool-call arguments' : 'content'}: every route hands back the non-streamed answer`, async () => {
        const text = answer(level, asArgs);
        // The answer really holds the values at that level.
        expect(decoded(text, level)).toContain(asArgs ? `card ${CARD} or call ${PHONE}` : `card ${CARD} or call ${PHONE} today`);

        completion = asArgs
          ? completionBody({ content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: text } }] }, 'tool_calls')
          : completionBody({ content: text });
        const res = await scripted.client.chat.completions.create(governed);
        const message = res.choices[0]!.message;
        const whole = asArgs ? (message.tool_calls![0]! as any).function.arguments as string : message.content!;
        expect(decoded(whole, level)).toMatch(/card \[CREDIT_CARD\] or call \[PHONE_NUMBER\] today/);
        expectNoDigits(whole, level);
        if (asArgs) expect(() => JSON.parse(whole)).not.toThrow();

        chunks = oneCharChunks(text, asArgs);
        const openai = await postRoute(scripted.w.addresses.http, '/v1/chat/completions', { ...governed, stream: true }, scripted.token);
        expect(openai.status, openai.text).toBe(200);
        expect(joinedOpenAI(openai.text, asArgs)).toBe(whole);

        const body = { model: 'gpt-4o-mini', max_tokens: 64, messages: [], warden: governed.warden, stream: true };
        const messages = await postRoute(scripted.w.addresses.http, '/v1/messages', body, scripted.token);
        expect(messages.status, messages.text).toBe(200);
        const kind = asArgs ? 'input_json_delta' : 'text_delta';
        const joined = anthropicEvents(messages.text)
          .filter((e) => e.data?.delta?.type === kind)
          .map((e) => (asArgs ? e.data.delta.partial_json : e.data.delta.text) as string)
          .join('');
        expect(joined).toBe(whole);

        const got = await grpcStream();
        const grpcJoined = got
          .map((c) => (asArgs ? (c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '') : (c.choices[0]?.delta?.content ?? '')))
          .join('');
        expect(grpcJoined).toBe(whole);
      });
    }
  }

  it('the log and the audit records hold none of the digits', () => {
    for (const text of [scripted.w.logs.join('\n'), JSON.stringify(scripted.w.audit())]) {
      for (let n = 0; n <= 4; n++) {
        expect(decoded(text, n)).not.toMatch(CARD_LEAK);
        expect(decoded(text, n)).not.toMatch(/415.555.2671/);
      }
    }
  });
});
