/**
 * A secret the decision granted and the template placed in the prompt (`source: secret`) is the
 * credential the policy allowed upstream: it goes out exactly as fetched, even when it holds text
 * a PII detector reads (an e-mail address, an IP address, a phone number), and the caller (the
 * answer, the dry run) never sees any of it. Before the fix the redactor rewrote the PII inside
 * the value, the leak guard then no longer found the whole value, and the rest of the secret
 * reached the caller in clear. Runs the real render and redact stages, as a request does.
 */
import { describe, expect, it } from 'vitest';
import { isWardenError, type WardenError } from '../../src/pipeline/errors.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { CompletionResult, RedactionDecision, Template } from '../../src/pipeline/types.js';
import { createRedactor, createRedactStage, type WardenRedactor } from '../../src/redact/index.js';
import { createRenderStage } from '../../src/templates/index.js';
import { allowDecision, makeContext, makeTemplate } from '../stage-context.js';

const WITH_EMAIL = 'contact admin@example.com then use CANARY-SECRET-7f3a';
const WITH_IP = 'CANARY-SECRET-7f3b 10.1.2.3';
const WITH_PHONE = 'CANARY-SECRET-7f3c call +1 415 555 2671';
const SECRETS = new Map([
  ['file:secrets/mail', WITH_EMAIL],
  ['file:secrets/ip', WITH_IP],
  ['file:secrets/phone', WITH_PHONE],
]);
const FILLER = 'You are the support assistant of Example Corp. Answer in the customer language, stay factual. ';

/** Any piece of a canary, or of the PII the secrets hold. */
const FRAGMENT = /CANARY|SECRET-7f3|admin@example|10\.1\.2\.3|415 555 2671/;

const templates = new Map<string, Template>();

/** One template object per content: a compiled template keeps its provenance keys (the cache's). */
function template(content: string): Template {
  let t = templates.get(content);
  if (t === undefined) templates.set(content, (t = build(content)));
  return t;
}

function build(content: string): Template {
  return makeTemplate({
    id: 'test/placed',
    variables: {
      mail: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/mail' },
      ip: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/ip' },
      phone: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/phone' },
      who: { source: 'request', type: 'string', required: true, pii: true },
    },
    messages: [
      { role: 'system', content },
      { role: 'user', content: 'Ticket from {{who}}' },
    ],
  });
}

const PLAIN = 'M={{mail}} I={{ip}} P={{phone}} reply to {{who}}';

async function render(
  r: WardenRedactor,
  content = PLAIN,
  redaction: Partial<RedactionDecision> = {},
  who = 'grace.hopper@example.com',
  secrets: Map<string, string> = SECRETS,
): Promise<RequestContext> {
  const t = template(content);
  const d = allowDecision();
  const ctx = makeContext(
    { template: { id: t.id, version: 1 }, variables: { who } },
    { template: t, secrets, decision: { ...d, redaction: { ...d.redaction, ...redaction } } },
  );
  await createRenderStage().run(ctx);
  await createRedactStage(() => r).run(ctx);
  return ctx;
}

function thrownBy(p: Promise<unknown>): Promise<WardenError> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: unknown) => {
      if (!isWardenError(err)) throw err;
      return err;
    },
  );
}

function echo(ctx: RequestContext): string {
  const text = ctx.outbound!.map((m) => `${m.role}: ${m.content as string}`).join('\n');
  const result: CompletionResult = { id: 'x', model: 'echo', created: 0, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: text } }] };
  return ctx.redaction!.processCompletion(result).choices[0]!.message.content as string;
}

describe('a granted secret the template placed, holding PII', () => {
  it('goes upstream exactly as fetched, while the PII around it is still redacted', async () => {
    const r = createRedactor({});
    const ctx = await render(r);
    expect(ctx.outbound![0]!.content).toBe(`M=${WITH_EMAIL} I=${WITH_IP} P=${WITH_PHONE} reply to [EMAIL_ADDRESS]`);
    expect(ctx.outbound![1]!.content).toBe('Ticket from [EMAIL_ADDRESS]');
    // Only the caller's address was redacted: nothing inside the secrets is counted.
    expect(ctx.redaction!.report().counts).toEqual({ EMAIL_ADDRESS: 2 });
  });

  it('under tokenize and hash too (the value is never rewritten)', async () => {
    const r = createRedactor({ hashKey: Buffer.from('tenant-key-0123456789') });
    for (const mode of ['tokenize', 'hash'] as const) {
      const ctx = await render(r, PLAIN, { mode, reidentify: true });
      const out = ctx.outbound![0]!.content as string;
      expect(out.startsWith(`M=${WITH_EMAIL} I=${WITH_IP} P=${WITH_PHONE} reply to <EMAIL_ADDRESS`), `${mode}: ${out}`).toBe(true);
    }
  });

  it('is placed exactly in a long prompt whose findings come from the cache', async () => {
    const r = createRedactor({});
    const content = `${FILLER.repeat(8)}${PLAIN}`;
    for (let i = 0; i < 3; i++) {
      const ctx = await render(r, content);
      expect(ctx.outbound![0]!.content, `request ${i}`).toBe(`${FILLER.repeat(8)}M=${WITH_EMAIL} I=${WITH_IP} P=${WITH_PHONE} reply to [EMAIL_ADDRESS]`);
    }
    expect(r.findingsCache!.stats().hits).toBeGreaterThan(0);
  });

  it('is never shown to the caller: the dry run and an echoed answer mask each whole value', async () => {
    const r = createRedactor({});
    for (const mode of ['mask', 'tokenize'] as const) {
      const ctx = await render(r, PLAIN, { mode, reidentify: true });
      const dry = ctx.redaction!.maskSecretsForCaller(ctx.outbound!);
      expect(dry[0]!.content as string).toMatch(/^M=\[SECRET_VALUE\] I=\[SECRET_VALUE\] P=\[SECRET_VALUE\] reply to /);
      expect(JSON.stringify(dry)).not.toMatch(FRAGMENT);
      const answer = echo(ctx);
      expect(answer).toMatch(/^system: M=\[SECRET_VALUE\] I=\[SECRET_VALUE\] P=\[SECRET_VALUE\] reply to /);
      expect(answer, mode).not.toMatch(FRAGMENT);
      expect(ctx.redaction!.report().leaks).toBe(3);
    }
  });

  it('a finding that crosses the edge of the value is redacted outside it only', async () => {
    const r = createRedactor({});
    // The caller's "bob" and the secret's "@corp.example.com..." read as one address.
    const at = '@corp.example.com CANARY-SECRET-7f3d';
    const ctx = await render(r, 'X={{who}}{{mail}}', {}, 'bob', new Map([...SECRETS, ['file:secrets/mail', at]]));
    expect(ctx.outbound![0]!.content).toBe(`X=[EMAIL_ADDRESS]${at}`);
    expect(JSON.stringify(ctx.redaction!.maskSecretsForCaller(ctx.outbound!))).not.toMatch(/CANARY|corp\.example/);
  });

  it('a block mode still refuses it: the value is sent whole or not at all', async () => {
    const r = createRedactor({});
    const e = await thrownBy(render(r, 'M={{mail}} I={{ip}} P={{phone}}', { modes: { IP_ADDRESS: 'block' } }, 'nobody'));
    expect(e.code).toBe('redaction_blocked');
    expect(e.details).toEqual({ reason: 'blocked_entities', entities: ['IP_ADDRESS'] });
    expect(`${e.message} ${JSON.stringify(e.details)}`).not.toMatch(FRAGMENT);
    // A placed secret that looks like a credential, under a policy that blocks SECRETS.
    const key = new Map([...SECRETS, ['file:secrets/mail', 'AKIAIOSFODNN7EXAMPLE']]);
    const blocked = await thrownBy(render(r, 'K={{mail}}', { modes: { SECRETS: 'block' } }, 'nobody', key));
    expect(blocked.details).toEqual({ reason: 'blocked_entities', entities: ['AWS_ACCESS_KEY_ID'] });
  });

  it('a secret the template did not place is still refused, also inside a placed one', async () => {
    const r = createRedactor({});
    const other = 'UNPLACED-SECRET-5e6f';
    const secrets = new Map([...SECRETS, ['file:secrets/other', other]]);
    const inVariable = await thrownBy(render(r, PLAIN, {}, `see ${other}`, secrets));
    expect(inVariable.details).toMatchObject({ reason: 'secret_leak' });
    const inPlaced = new Map([...secrets, ['file:secrets/mail', `${WITH_EMAIL} ${other}`]]);
    const inSecret = await thrownBy(render(r, PLAIN, {}, 'nobody', inPlaced));
    expect(inSecret.details).toMatchObject({ reason: 'secret_leak' });
  });
});
