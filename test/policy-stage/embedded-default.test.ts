/**
 * The stage modules chained by hand over the embedded default (deploy/local templates and
 * secrets, the shipped policies/): the example templates must render under the default policy.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { guardable } from '../../src/redact/index.js';
import { createAuthenticateStage, DevAuthenticator } from '../../src/identity/index.js';
import { WardenError } from '../../src/pipeline/errors.js';
import type { PolicyEngine, TemplateStore } from '../../src/pipeline/ports.js';
import type { RequestContext, Stage } from '../../src/pipeline/stage.js';
import type { PromptRequest } from '../../src/pipeline/types.js';
import { createDecideStage, createRegoPolicyEngine } from '../../src/policy/index.js';
import { createRedactor, createRedactStage, createRespondStage } from '../../src/redact/index.js';
import { createFetchStage, createFileSecretProvider, createSecretResolver } from '../../src/secrets/index.js';
import { createRenderStage, createResolveStage, loadTemplateStore } from '../../src/templates/index.js';
import { makeContext } from '../stage-context.js';

let stages: Stage[];

beforeAll(async () => {
  const store: TemplateStore = await loadTemplateStore(['deploy/local/templates']);
  const engine: PolicyEngine = await createRegoPolicyEngine({ paths: ['policies'], entrypoint: 'warden/decision' });
  const resolver = createSecretResolver({ providers: [createFileSecretProvider()], baseDir: 'deploy/local' });
  stages = [
    createAuthenticateStage([new DevAuthenticator({ principal: { namespace: 'dev', service_account: 'local' } })]),
    createResolveStage(() => store),
    createDecideStage({ getEngine: () => engine, environment: { name: 'development', cluster: 'local' } }),
    createFetchStage(() => resolver, guardable),
    createRenderStage(),
  ];
});

async function run(over: Partial<PromptRequest>): Promise<{ ctx: RequestContext; error?: WardenError }> {
  const ctx = makeContext(over);
  try {
    for (const s of stages) await s.run(ctx);
    return { ctx };
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return { ctx, error: err as WardenError };
  }
}

describe('example templates under the default policy', () => {
  it('renders support/ticket-summary@2 with its config value', async () => {
    const { ctx, error } = await run({
      template: { id: 'support/ticket-summary', version: 2 },
      variables: { ticket_id: 'T-1234', customer_message: 'My order {{tone}} never arrived' },
    });
    expect(error).toBeUndefined();
    expect(ctx.messages).toEqual([
      { role: 'system', content: 'You are a support assistant. Be friendly and concise.\nSummarize the ticket in exactly three bullet points. Never invent order numbers.' },
      { role: 'user', content: 'Ticket T-1234:\nMy order {{tone}} never arrived' },
    ]);
  });

  it('refuses the retired version 1', async () => {
    const { error } = await run({ template: { id: 'support/ticket-summary', version: 1 }, variables: { ticket_id: 'T-1', customer_message: 'x' } });
    expect(error?.code).toBe('template_retired');
  });

  it('runs the restricted refund review for dev/local with typed variables', async () => {
    const { ctx, error } = await run({
      template: { id: 'billing/refund-review', version: 1 },
      variables: { order_id: 'A-77', amount: '120.50', reason: 'arrived broken' },
    });
    expect(error).toBeUndefined();
    expect(ctx.decision?.redaction.profile).toBe('strict');
    expect(ctx.messages![1]!.content).toBe('Order A-77, amount 120.50 EUR, first-time customer: .\nCustomer\'s reason: arrived broken');
    const bad = await run({ template: { id: 'billing/refund-review', version: 1 }, variables: { order_id: 'A-77', amount: 'lots', reason: 'r' } });
    expect(bad.error?.code).toBe('variable_invalid');
  });

  it('resolves the granted file secret into the incident brief', async () => {
    const { ctx, error } = await run({
      template: { id: 'ops/incident-brief', version: 1 },
      variables: { service: 'checkout', symptoms: '5xx on /pay' },
    });
    expect(error).toBeUndefined();
    expect(ctx.decision?.secrets).toEqual(['file:secrets/escalation-code']);
    expect(ctx.messages![0]!.content).toMatch(/Escalation code: ESC-DEV-0000-local"\.$/);
    expect([...ctx.secretsInPrompt!]).toEqual(['file:secrets/escalation-code']);
  });

  it('the secret the brief places in the prompt goes upstream, but is masked in the answer, whole or streamed', async () => {
    const { ctx, error } = await run({ template: { id: 'ops/incident-brief', version: 1 }, variables: { service: 'checkout', symptoms: '5xx on /pay' } });
    expect(error).toBeUndefined();
    const redact = createRedactStage(() => createRedactor({}));
    await redact.run(ctx);
    expect(ctx.outbound![0]!.content).toContain('ESC-DEV-0000-local'); // placed on purpose: it is sent
    // A model that repeats its prompt hands the code back: the caller never gets it.
    const answer = `Brief done. Escalation code: ESC-DEV-0000-local (${Buffer.from('ESC-DEV-0000-local').toString('base64')})`;
    ctx.response = { kind: 'complete', result: { id: 'c', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: answer } }] } };
    const respond = createRespondStage();
    await respond.run(ctx);
    expect(ctx.response.kind === 'complete' && ctx.response.result.choices[0]!.message.content).toBe('Brief done. Escalation code: [SECRET_VALUE] ([SECRET_VALUE])');
    const pieces = answer.match(/.{1,3}/g)!.map((content) => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: null }] }));
    async function* chunks() {
      yield* pieces;
    }
    ctx.response = { kind: 'stream', chunks: chunks() };
    await respond.run(ctx);
    let streamed = '';
    if (ctx.response.kind === 'stream') for await (const c of ctx.response.chunks) streamed += c.choices[0]?.delta.content ?? '';
    expect(streamed).toBe('Brief done. Escalation code: [SECRET_VALUE] ([SECRET_VALUE])');
    expect(ctx.redaction!.report().leaks).toBeGreaterThanOrEqual(2);
  });

  it('denies a model the template sensitivity does not allow', async () => {
    const { error } = await run({ model: 'claude-sonnet-4-0', template: { id: 'billing/refund-review', version: 1 }, variables: { order_id: 'A', amount: '1', reason: 'r' } });
    expect(error?.code).toBe('model_not_allowed');
  });
});
