/**
 * `input.request.params`: the call's pass-through parameters as the policy sees them (README,
 * "The input"): what each ingress puts there, the summary that keeps the caller's text out, and
 * the decision cache keyed on it. The end-to-end cases (the default policy refusing `store: true`
 * for a restricted template, over HTTP and gRPC) are in test/e2e/request-params.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../src/pipeline/types.js';
import type { DecisionCacheOutcome } from '../../src/policy/decision-cache.js';
import { buildPolicyInput } from '../../src/policy/input.js';
import { NO_PARAMS, paramsInput } from '../../src/policy/params-input.js';
import { createRegoPolicyEngine } from '../../src/policy/rego-engine.js';
import { anthropicPromptRequest } from '../../src/server/anthropic.js';
import { fromWireRequest } from '../../src/server/grpc.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { toPromptRequest } from '../../src/server/request.js';
import { makeContext } from '../stage-context.js';

const ENV = { name: 'development', cluster: 'local' };
const PRINCIPAL = { kind: 'dev' as const, subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] };
const CANARY = 'CANARY-PARAM-7f3e1d';

function meta() {
  return { id: 'r', credentials: { peer: { address: '127.0.0.1', local: true, transport: 'tcp' as const } }, signal: new AbortController().signal, receivedAt: 0 };
}

function inputOf(params: Record<string, unknown>): PolicyInput {
  return buildPolicyInput(makeContext({ params }, { principal: PRINCIPAL, provider: 'echo' }), ENV, Date.parse('2026-06-01T12:00:00Z'));
}

describe('paramsInput', () => {
  it('gives booleans, numbers and null as sent', () => {
    expect(paramsInput({ store: true, parallel_tool_calls: false, n: 2, temperature: 0.25, seed: -7, top_p: null })).toEqual({
      store: true,
      parallel_tool_calls: false,
      n: 2,
      temperature: 0.25,
      seed: -7,
      top_p: null,
    });
  });

  it('gives the words of enumerated parameters, and only the kind of any other value', () => {
    expect(
      paramsInput({
        service_tier: 'flex',
        reasoning_effort: 'high',
        verbosity: 'low',
        tool_choice: 'required',
        prompt_cache_retention: '24h',
        user: CANARY,
        prompt_cache_key: 'tenant-42',
        stop: [CANARY],
        metadata: { customer: CANARY },
        response_format: { type: 'json_object' },
        web_search_options: {},
      }),
    ).toEqual({
      service_tier: 'flex',
      reasoning_effort: 'high',
      verbosity: 'low',
      tool_choice: 'required',
      prompt_cache_retention: '24h',
      user: 'string',
      prompt_cache_key: 'string',
      stop: 'array',
      metadata: 'object',
      response_format: 'object',
      web_search_options: 'object',
    });
  });

  it('gives an enumerated parameter holding text that is not one word as "string"', () => {
    for (const text of [CANARY, 'jane.doe@example.com', 'Flex', 'a'.repeat(33), '', 'auto\n', ' auto']) {
      expect(paramsInput({ service_tier: text }).service_tier, JSON.stringify(text)).toBe('string');
    }
    expect(paramsInput({ tool_choice: { type: 'function', function: { name: 'lookup' } } }).tool_choice).toBe('object');
  });

  it('counts parameters whose names are not parameter-like under "*", without naming them', () => {
    const params = JSON.parse(`{"temperature": 1, "${CANARY}@example.com": 1, "x y": true, "__proto__": {"store": true}, "${'p'.repeat(65)}": 0}`) as Record<string, unknown>;
    const out = paramsInput(params);
    expect(out).toEqual({ temperature: 1, '*': 4 });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).not.toContain(CANARY);
  });

  it('leaves out members that are not sent (undefined) and shares one frozen object for none', () => {
    expect(paramsInput({})).toBe(NO_PARAMS);
    expect(paramsInput({ stream_options: undefined })).toBe(NO_PARAMS);
    expect(Object.isFrozen(NO_PARAMS)).toBe(true);
    expect(paramsInput({ stream_options: undefined, n: 1 })).toEqual({ n: 1 });
  });
});

describe('what each ingress puts in input.request.params', () => {
  it('HTTP: every member of the body but the ones Warden handles itself', () => {
    const req = toPromptRequest(
      { model: 'echo', messages: [{ role: 'user', content: 'hi' }], stream: false, max_tokens: 5, store: true, user: CANARY, service_tier: 'priority', metadata: { k: 'v' } },
      meta(),
      DEFAULT_LIMITS,
    );
    const input = inputOf(req.params);
    expect(input.request.params).toEqual({ store: true, user: 'string', service_tier: 'priority', metadata: 'object' });
    // The token limit is the request's own member (input.request.max_tokens), not a parameter.
    expect(req.params).not.toHaveProperty('max_tokens');
  });

  it('HTTP: a templated call with no other parameters gives the shared empty object', () => {
    const req = toPromptRequest({ model: 'echo', warden: { template: 'support/ticket-summary@2' } }, meta(), DEFAULT_LIMITS);
    expect(inputOf(req.params).request.params).toBe(NO_PARAMS);
  });

  it('/v1/messages: parameters under the names they go upstream with', () => {
    const req = anthropicPromptRequest(
      { model: 'echo', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], temperature: 0.5, top_k: 3, stop_sequences: ['END'], metadata: { user_id: CANARY } },
      meta(),
      DEFAULT_LIMITS,
    );
    expect(inputOf(req.params).request.params).toEqual({ temperature: 0.5, top_k: 3, stop: 'array', user: 'string' });
  });

  it('gRPC: the own fields and the members of params_json', () => {
    const wire = {
      model: 'echo',
      messages: [{ role: 'user', content: 'hi', name: '', tool_call_id: '', tool_calls: [], parts: [] }],
      template: null,
      variables: {},
      max_tokens: 0,
      temperature: 0.75,
      top_p: null,
      stop: [],
      params_json: JSON.stringify({ store: true, service_tier: 'flex', user: CANARY }),
      tools: [],
    };
    const req = fromWireRequest(wire as never, { id: 'r', credentials: meta().credentials, signal: new AbortController().signal, receivedAt: 0 } as never, DEFAULT_LIMITS);
    expect(inputOf(req.params).request.params).toEqual({ temperature: 0.75, store: true, service_tier: 'flex', user: 'string' });
  });
});

describe('the decision cache with a policy that reads params', () => {
  it('is keyed on them: a decision cached for store: false is not served to store: true', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-params-'));
    writeFileSync(
      join(dir, 'p.rego'),
      'package warden\n\nimport rego.v1\n\ndecision := {"allow": count(reasons) == 0, "reasons": reasons, "models": ["*"]}\n\n' +
        'reasons contains "no storing" if input.request.params.store == true\n',
    );
    const outcomes: DecisionCacheOutcome[] = [];
    const engine = await createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden/decision', onDecisionCache: (o) => outcomes.push(o) });
    const decide = (input: PolicyInput) => engine.evaluate(input) as { allow: boolean; reasons: string[] };
    const kept = inputOf({ store: false });
    const stored = inputOf({ store: true });
    for (let i = 0; i < 3; i++) expect(decide(kept).allow).toBe(true);
    expect(outcomes).toEqual(['miss', 'miss', 'hit']);
    expect(decide(stored)).toMatchObject({ allow: false, reasons: ['no storing'] });
    expect(outcomes.at(-1)).toBe('miss');
    // Another parameter the policy does not read does not split the key.
    for (let i = 0; i < 2; i++) expect(decide(inputOf({ store: false, seed: i })).allow).toBe(true);
    expect(outcomes.slice(-2)).toEqual(['hit', 'hit']);
  });
});
