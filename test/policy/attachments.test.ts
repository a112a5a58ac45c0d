/**
 * `input.request.attachments`: the counts each ingress takes on its walk over the parts, the
 * policy input's own count for a request built without one, and the decision cache keyed on them
 * (README, "Non-text parts in the input"). The end-to-end cases are in test/e2e/attachments.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NO_ATTACHMENTS, countAttachments } from '../../src/pipeline/attachments.js';
import type { ChatMessage, PolicyInput } from '../../src/pipeline/types.js';
import type { DecisionCacheOutcome } from '../../src/policy/decision-cache.js';
import { buildPolicyInput } from '../../src/policy/input.js';
import { createRegoPolicyEngine } from '../../src/policy/rego-engine.js';
import { anthropicPromptRequest } from '../../src/server/anthropic.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { toPromptRequest } from '../../src/server/request.js';
import { makeContext, makeTemplate } from '../stage-context.js';
import { runCli } from './rego/helpers.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ENV = { name: 'development', cluster: 'local' };
const PRINCIPAL = { kind: 'dev' as const, subject: 'system:serviceaccount:labs:raw-bot', namespace: 'labs', service_account: 'raw-bot', audiences: [] };

const image = { type: 'image_url', image_url: { url: 'https://img.example/cat.png' } };
const audio = { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } };
const file = { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'a.pdf' } };
const fileById = { type: 'file', file: { file_id: 'file-abc123' } };
const text = { type: 'text', text: 'hello' };

function meta() {
  return { id: 'r', credentials: { peer: { address: '127.0.0.1', local: true, transport: 'tcp' as const } }, signal: new AbortController().signal, receivedAt: 0 };
}

function inputOf(messages: ChatMessage[] | undefined, over: Parameters<typeof makeContext>[0] = {}): PolicyInput {
  const ctx = makeContext({ ...(messages ? { messages } : {}), ...over }, { principal: PRINCIPAL, provider: 'echo' });
  return buildPolicyInput(ctx, ENV, Date.parse('2026-06-01T12:00:00Z'));
}

describe('the count the ingress takes', () => {
  it('HTTP: every non-text part of every message, tool messages and assistant history included', () => {
    const req = toPromptRequest(
      {
        model: 'echo',
        messages: [
          { role: 'user', content: [text, image, file, fileById] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: [text, audio, image] },
        ],
      },
      meta(),
      DEFAULT_LIMITS,
    );
    expect(req.attachments).toEqual({ image: 2, audio: 1, file: 2 });
  });

  it('HTTP: a call with text parts only shares the frozen zero counts (no object of its own)', () => {
    const parts = toPromptRequest({ model: 'echo', messages: [{ role: 'user', content: [text, { type: 'input_text', text: 'x' }] }] }, meta(), DEFAULT_LIMITS);
    expect(parts.attachments).toBe(NO_ATTACHMENTS);
    const plain = toPromptRequest({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, meta(), DEFAULT_LIMITS);
    expect(plain.attachments).toBe(NO_ATTACHMENTS);
    expect(Object.isFrozen(NO_ATTACHMENTS)).toBe(true);
  });

  it('HTTP: a templated call carries no messages and so no count (the policy input gives 0s)', () => {
    const req = toPromptRequest({ model: 'echo', warden: { template: 'support/ticket-summary@2' } }, meta(), DEFAULT_LIMITS);
    expect(req.attachments).toBeUndefined();
  });

  it('/v1/messages: image blocks, a tool_result\'s included, are images', () => {
    const req = anthropicPromptRequest(
      {
        model: 'echo',
        max_tokens: 5,
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image', source: { type: 'url', url: 'https://img.example/a.png' } }] },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'shot', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }] },
        ],
      },
      meta(),
      DEFAULT_LIMITS,
    );
    expect(req.attachments).toEqual({ image: 2, audio: 0, file: 0 });
  });
});

describe('buildPolicyInput', () => {
  it('uses the count the ingress took, without walking the messages again', () => {
    const counted = { image: 0, audio: 0, file: 7 };
    expect(inputOf([{ role: 'user', content: 'no parts here' }], { attachments: counted }).request.attachments).toBe(counted);
  });

  it('counts a request built without one itself, tool_result containers included', () => {
    const messages = [
      { role: 'user', content: [text, image, audio] },
      { role: 'tool', tool_call_id: 't', content: [file] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [image, text] }] },
      { role: 'user', content: 'plain' },
    ] as ChatMessage[];
    expect(inputOf(messages).request.attachments).toEqual({ image: 2, audio: 1, file: 1 });
    expect(countAttachments(messages)).toEqual({ image: 2, audio: 1, file: 1 });
  });

  it('gives 0s for a call without parts, a templated call and models.list', () => {
    const zero = { image: 0, audio: 0, file: 0 };
    expect(inputOf([{ role: 'user', content: 'hi' }]).request.attachments).toEqual(zero);
    const template = makeTemplate({ messages: [{ role: 'user', content: 'x' }] });
    const templated = buildPolicyInput(makeContext({ template: { id: template.id } }, { principal: PRINCIPAL, template, provider: 'echo' }), ENV, 0);
    expect(templated.request.attachments).toEqual(zero);
    expect(inputOf(undefined, { action: 'models.list', model: '' }).request.attachments).toEqual(zero);
  });
});

/** README's example rule, appended to the default policy, in a directory of its own. */
function readmePolicyDir(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n#### Non-text parts in the input\n'));
  const example = /```rego\n([\s\S]*?)```/.exec(section)![1]!;
  const dir = mkdtempSync(join(tmpdir(), 'warden-attachments-'));
  writeFileSync(join(dir, 'warden.rego'), `${readFileSync(join(REPO, 'policies', 'warden.rego'), 'utf8')}\n${example}`);
  return dir;
}

describe('the decision cache with a policy that reads attachments', () => {
  it('is keyed on them: a decision cached for a call without files is not served to one with a file', async () => {
    const outcomes: DecisionCacheOutcome[] = [];
    const engine = await createRegoPolicyEngine({ paths: [readmePolicyDir()], entrypoint: 'warden/decision', onDecisionCache: (o) => outcomes.push(o) });
    const plain = inputOf([{ role: 'user', content: [text] }]);
    const withFile = inputOf([{ role: 'user', content: [text, file] }]);
    const decide = (input: PolicyInput) => engine.evaluate(input) as { allow: boolean; reasons: string[] };
    for (let i = 0; i < 3; i++) expect(decide(plain).allow).toBe(true);
    expect(outcomes).toEqual(['miss', 'miss', 'hit']);
    const denied = decide(withFile);
    expect(outcomes.at(-1)).toBe('miss');
    expect(denied).toMatchObject({ allow: false, reasons: ['files and audio clips are not allowed'] });
    // Kept on its second sight, served on its third: the deny, for the call with the file only.
    expect(decide(withFile).allow).toBe(false);
    expect(decide(withFile).allow).toBe(false);
    expect(outcomes.slice(-2)).toEqual(['miss', 'hit']);
    expect(decide(plain).allow).toBe(true);
    expect(outcomes.at(-1)).toBe('hit');
  });
});

describe('warden policy', () => {
  it('check names the attachment counts among the cache key\'s paths', async () => {
    const r = await runCli(['check', readmePolicyDir()]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/decision cache: applies, keyed on .*input\.request\.attachments\.audio, input\.request\.attachments\.file, input\.request\.attachments\.image/);
  });

  it('eval decides on an input carrying attachments, as the sidecar does', async () => {
    const dir = readmePolicyDir();
    // Not in the policy directory, whose JSON files are data.
    const inputs = mkdtempSync(join(tmpdir(), 'warden-attachments-input-'));
    const base = inputOf([{ role: 'user', content: [text] }]);
    const write = (name: string, attachments: object) => {
      const path = join(inputs, name);
      writeFileSync(path, JSON.stringify({ ...base, time: { now_ns: 1_780_000_000_000_000_000, rfc3339: base.time.rfc3339 }, request: { ...base.request, attachments } }));
      return path;
    };
    const decision = async (path: string) => {
      const r = await runCli(['eval', '-d', dir, '-i', path, 'data.warden.decision']);
      expect(r.code, r.err).toBe(0);
      return (JSON.parse(r.out) as { result: [{ expressions: [{ value: { allow: boolean; reasons: string[] } }] }] }).result[0].expressions[0].value;
    };
    expect(await decision(write('none.json', { image: 0, audio: 0, file: 0 }))).toMatchObject({ allow: true, reasons: [] });
    expect(await decision(write('file.json', { image: 0, audio: 0, file: 1 }))).toMatchObject({ allow: false, reasons: ['files and audio clips are not allowed'] });
    expect(await decision(write('image.json', { image: 1, audio: 0, file: 0 }))).toMatchObject({
      allow: false,
      reasons: ['system:serviceaccount:labs:raw-bot may not send images'],
    });
  });
});
