/**
 * `input.request.attachments`: the policy sees how many images, audio clips and files a call
 * carries (Warden passes them upstream unread), on every ingress, and can refuse them. A real
 * Warden on loopback runs the default policy plus README's example rule ("Non-text parts in the
 * input", read from README here so the example is the one tested), driven by the official
 * `openai` and `@anthropic-ai/sdk` clients and @grpc/grpc-js from the proto, in front of the
 * loopback OpenAI-contract upstream. A refused call must not reach the upstream; the decision
 * cache must not serve a decision cached for a call without files to one with files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';
import { bearerMetadata, gatewayClient, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

/** README's example rules, appended to the default policy as README says to. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const at = readme.indexOf('\n#### Non-text parts in the input\n');
  expect(at, 'README has the section').toBeGreaterThanOrEqual(0);
  const block = /```rego\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block, 'the section has a Rego example').not.toBeNull();
  return block![1]!;
}

const POLICY = `${readFileSync(join(REPO, 'policies', 'warden.rego'), 'utf8')}\n${readmeExample()}`;

const FILES_DENIED = 'files and audio clips are not allowed';
const PDF = 'data:application/pdf;base64,JVBERi0xLjQKJcfsj6IK';
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PNG_BASE64 = PNG.slice('data:image/png;base64,'.length);

let up: FakeUpstream;
let w: WardenFixture;
/** labs/raw-bot: not listed in the example's image_services. */
let labs: string;
/** support/ticket-bot: listed, so its images pass. */
let bot: string;

beforeAll(async () => {
  up = await startUpstream();
  w = await startWarden({ upstreamUrl: up.url, files: { 'policies/e2e.rego': POLICY } });
  labs = await w.signer.token('labs', 'raw-bot');
  bot = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w.close();
  await up.close();
});

function openai(token: string): OpenAI {
  return new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 });
}

function anthropic(token: string): Anthropic {
  return new Anthropic({ baseURL: w.addresses.http, apiKey: token, maxRetries: 0, timeout: 15_000 });
}

/** What a call failed with: status and Warden's error (the test fails when the call succeeds). */
async function refusal(call: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const e = await call.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof OpenAI.APIError) return { status: e.status!, code: e.code!, message: e.message };
  if (e instanceof Anthropic.APIError) {
    const body = (e.error as { error: { code: string; message: string } }).error;
    return { status: e.status!, code: body.code, message: body.message };
  }
  throw new Error(`the call should have been refused by the policy, got ${String(e)}`);
}

/** Runs `call` and says whether it reached the upstream. */
async function upstreamCalls<T>(call: () => Promise<T>): Promise<{ result: T; reached: number }> {
  const before = up.calls.length;
  const result = await call();
  return { result, reached: up.calls.length - before };
}

async function cacheHits(): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const m = /^warden_policy_cache_total\{[^}]*result="hit"[^}]*\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const filePart = { type: 'file' as const, file: { file_data: PDF, filename: 'statement.pdf' } };
const audioPart = { type: 'input_audio' as const, input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' as const } };
const imagePart = { type: 'image_url' as const, image_url: { url: PNG } };

describe('OpenAI HTTP (openai npm)', () => {
  it('refuses a file part and an audio part, and lets the same call without them through', async () => {
    const text = { role: 'user' as const, content: [{ type: 'text' as const, text: 'Summarise the attachment.' }] };
    const ok = await upstreamCalls(() => openai(labs).chat.completions.create({ model: 'gpt-4o-mini', messages: [text] }));
    expect(ok.result.choices[0]!.message.content).toBeTypeOf('string');
    expect(ok.reached).toBe(1);
    for (const part of [filePart, audioPart]) {
      const denied = await upstreamCalls(() => refusal(openai(labs).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [...text.content, part] }] })));
      expect(denied.result, part.type).toMatchObject({ status: 403, code: 'policy_denied' });
      expect(denied.result.message, part.type).toContain(FILES_DENIED);
      expect(denied.reached, part.type).toBe(0);
    }
  });

  it('counts a file in a tool result', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Fetch the statement.' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'fetch', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'here it is' }, filePart as never] },
    ];
    const denied = await upstreamCalls(() => refusal(openai(labs).chat.completions.create({ model: 'gpt-4o-mini', messages })));
    expect(denied.result).toMatchObject({ status: 403, code: 'policy_denied' });
    expect(denied.result.message).toContain(FILES_DENIED);
    expect(denied.reached).toBe(0);
  });

  it('refuses an image to a service the rule does not list, and passes it for one it lists', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, imagePart] }];
    const denied = await upstreamCalls(() => refusal(openai(labs).chat.completions.create({ model: 'gpt-4o-mini', messages })));
    expect(denied.result).toMatchObject({ status: 403, code: 'policy_denied' });
    expect(denied.result.message).toContain('system:serviceaccount:labs:raw-bot may not send images');
    expect(denied.reached).toBe(0);
    const ok = await upstreamCalls(() => openai(bot).chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(ok.reached).toBe(1);
    expect(up.calls.at(-1)!.body.messages[0].content[1]).toEqual(imagePart);
  });

  it('does not serve a decision cached for a call without files to the same call with one', async () => {
    const text = { type: 'text' as const, text: 'Read this.' };
    const plain = () => openai(bot).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [text] }] });
    const hitsBefore = await cacheHits();
    // A result is kept from the second sight of its key: the third call is served from the cache.
    for (let i = 0; i < 3; i++) expect((await upstreamCalls(plain)).reached).toBe(1);
    expect(await cacheHits()).toBeGreaterThan(hitsBefore);
    for (let i = 0; i < 3; i++) {
      const denied = await upstreamCalls(() => refusal(openai(bot).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [text, filePart] }] })));
      expect(denied.result.code, `call ${i}`).toBe('policy_denied');
      expect(denied.reached, `call ${i}`).toBe(0);
    }
    // And the cached deny is not served back to the call without files.
    expect((await upstreamCalls(plain)).reached).toBe(1);
  });
});

describe('Anthropic /v1/messages (@anthropic-ai/sdk)', () => {
  const image = { type: 'image' as const, source: { type: 'base64' as const, media_type: 'image/png' as const, data: PNG_BASE64 } };

  it('refuses an image block to a service the rule does not list, and lets the call without it through', async () => {
    const ok = await upstreamCalls(() =>
      anthropic(labs).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe it.' }] }] }),
    );
    expect(ok.result.type).toBe('message');
    expect(ok.reached).toBe(1);
    const denied = await upstreamCalls(() =>
      refusal(anthropic(labs).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe it.' }, image] }] })),
    );
    expect(denied.result).toMatchObject({ status: 403, code: 'policy_denied' });
    expect(denied.result.message).toContain('may not send images');
    expect(denied.reached).toBe(0);
    const listed = await upstreamCalls(() =>
      anthropic(bot).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe it.' }, image] }] }),
    );
    expect(listed.reached).toBe(1);
  });

  it('counts an image inside a tool_result block', async () => {
    const denied = await upstreamCalls(() =>
      refusal(
        anthropic(labs).messages.create({
          model: 'gpt-4o-mini',
          max_tokens: 64,
          messages: [
            { role: 'user', content: 'Take a screenshot.' },
            { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'screenshot', input: {} }] },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [image] }] },
          ],
        }),
      ),
    );
    expect(denied.result).toMatchObject({ status: 403, code: 'policy_denied' });
    expect(denied.result.message).toContain('may not send images');
    expect(denied.reached).toBe(0);
  });
});

describe('gRPC (@grpc/grpc-js)', () => {
  const complete = (token: string, parts: object[]) =>
    unaryCall(gatewayClient(w.addresses.grpc), 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', parts }] }, bearerMetadata(token));
  const text = { type: 'text', text: 'Summarise the attachment.' };
  const part = (p: { type: string }) => ({ type: p.type, json: JSON.stringify(p) });

  it('refuses a file part and an image part, and lets the call without them through', async () => {
    const ok = await upstreamCalls(() => complete(labs, [text]));
    expect(ok.result.choices[0].message.content).toBeTypeOf('string');
    expect(ok.reached).toBe(1);
    for (const [p, reason] of [
      [filePart, FILES_DENIED],
      [imagePart, 'may not send images'],
    ] as const) {
      const denied = await upstreamCalls(() =>
        complete(labs, [text, part(p)]).then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        ),
      );
      expect(denied.result?.code, p.type).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.result?.details, p.type).toContain(reason);
      expect(denied.reached, p.type).toBe(0);
    }
  });
});

describe('the audit record', () => {
  it('still counts the parts of an allowed call as non_text_parts', async () => {
    await openai(bot).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'Two.' }, imagePart, imagePart] }] });
    expect(w.audit().at(-1)!.redaction.non_text_parts).toBe(2);
  });
});
