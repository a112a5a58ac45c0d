import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { Template } from '../../src/pipeline/types.js';
import {
  compileTemplate,
  createRenderStage,
  createResolveStage,
  isRetired,
  parseTemplateRef,
  renderTemplate,
  TemplateRegistry,
} from '../../src/templates/index.js';
import { makeContext, makeTemplate } from '../stage-context.js';

function tpl(over: Partial<Template> = {}): Template {
  return makeTemplate({
    id: 'team/hello',
    variables: {
      name: { source: 'request', type: 'string', required: true, pii: false, max_length: 12 },
      count: { source: 'request', type: 'number', required: false, pii: false },
      vip: { source: 'request', type: 'boolean', required: false, pii: false },
      tone: { source: 'config', type: 'string', required: true, pii: false, value: 'kind' },
      code: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/code' },
    },
    messages: [
      { role: 'system', content: 'Be {{tone}}. Code {{code}}.' },
      { role: 'user', content: 'Hi {{name}} <b>&</b> {{count}}/{{vip}}' },
      { role: 'assistant', content: 'fixed text' },
    ],
    ...over,
  });
}

async function run(stage: { run(ctx: RequestContext): unknown }, ctx: RequestContext): Promise<WardenError | undefined> {
  try {
    await stage.run(ctx);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return err as WardenError;
  }
}

function renderCtx(variables: Record<string, string>, template = tpl()): RequestContext {
  return makeContext(
    { template: { id: template.id, version: template.version }, variables },
    { template, secrets: new Map([['file:secrets/code', 'CANARY-SECRET-9f8e7d']]) },
  );
}

/** Wrong variables for tpl(), with the error code and the variable it names. */
const BAD_VARIABLES: Array<[Record<string, string>, string, string]> = [
  [{}, 'variable_missing', 'name'],
  [{ name: 'a', extra: 'CANARY-VALUE-1' }, 'variable_missing', 'extra'],
  [{ name: 'CANARY-VALUE-2-long' }, 'variable_invalid', 'name'],
  [{ name: 'a', count: 'CANARY-3' }, 'variable_invalid', 'count'],
  [{ name: 'a', vip: 'yes-CANARY' }, 'variable_invalid', 'vip'],
  [{ name: 'a', tone: 'CANARY-override' }, 'variable_invalid', 'tone'],
  [{ name: 'a', code: 'CANARY-override' }, 'variable_invalid', 'code'],
  [{ name: 'a', constructor: 'CANARY-proto' }, 'variable_missing', 'constructor'],
  [JSON.parse('{"name":"a","__proto__":"CANARY-proto"}') as Record<string, string>, 'variable_missing', '__proto__'],
];

describe('renderer', () => {
  it('compiles once per template object', () => {
    const t = tpl();
    expect(compileTemplate(t)).toBe(compileTemplate(t));
  });

  it('inserts values as data: no re-expansion, no HTML escaping', () => {
    const t = tpl();
    const out = renderTemplate(t, { tone: '{{code}}', code: 'C', name: '{{tone}} & <x>', count: '', vip: '' });
    expect(out).toEqual([
      { role: 'system', content: 'Be {{code}}. Code C.' },
      { role: 'user', content: 'Hi {{tone}} & <x> <b>&</b> /' },
      { role: 'assistant', content: 'fixed text' },
    ]);
  });

  it('renders a message of many placeholders in one pass, linear in its length', () => {
    // Whether a value began with the second half of a surrogate pair that the text before it
    // ended with was read from the text built so far: a string V8 builds by `+=` and flattens
    // (copies whole) to read a character of, so every inserted value copied the prompt again.
    // 200,000 placeholders (a 1 MB template) and a 3-character value held the event loop for
    // many minutes on one small request. Counted, not timed: the characters of every string a
    // character is read from (charCodeAt) while rendering; copying per value sums to ~n²/2.
    const count = 20_000;
    const t = makeTemplate({
      id: 'team/many',
      variables: { v: { source: 'request', type: 'string', required: true, pii: false } },
      messages: [{ role: 'user', content: `<${'{{v}}'.repeat(count)}>` }],
    });
    const expected = `<${'a\u00e9"'.repeat(count)}>`;
    const json: Array<string | undefined> = [];
    const charCodeAt = String.prototype.charCodeAt;
    let read = 0;
    String.prototype.charCodeAt = function (this: string, index: number): number {
      read += this.length;
      return charCodeAt.call(this, index);
    };
    let out: ReturnType<typeof renderTemplate>;
    try {
      out = renderTemplate(t, { v: 'a\u00e9"' }, json);
    } finally {
      String.prototype.charCodeAt = charCodeAt;
    }
    expect(out[0]!.content === expected).toBe(true);
    expect(json[0] === JSON.stringify(expected)).toBe(true);
    expect(read).toBeLessThan(4 * expected.length);
  });

  it('fails closed on a placeholder without a value', () => {
    const err = (() => {
      try {
        renderTemplate(tpl(), { tone: 't', code: 'c' });
      } catch (e) {
        return e as WardenError;
      }
    })();
    expect(err?.code).toBe('variable_missing');
    expect(err?.message).toContain('name');
  });
});

describe('render stage', () => {
  const stage = createRenderStage();

  it('renders with request, config and granted secret values and records the secret as placed', async () => {
    const ctx = renderCtx({ name: 'Ada', count: '3', vip: 'true' });
    expect(await run(stage, ctx)).toBeUndefined();
    expect(ctx.messages![0]!.content).toBe('Be kind. Code CANARY-SECRET-9f8e7d.');
    expect(ctx.messages![1]!.content).toBe('Hi Ada <b>&</b> 3/true');
    expect([...ctx.secretsInPrompt!]).toEqual(['file:secrets/code']);
  });

  it('treats a caller value containing {{...}} as literal text', async () => {
    const ctx = renderCtx({ name: '{{code}}' });
    expect(await run(stage, ctx)).toBeUndefined();
    expect(ctx.messages![1]!.content).toBe('Hi {{code}} <b>&</b> /');
    expect(ctx.messages![1]!.content).not.toContain('CANARY');
  });

  it('rejects missing, undeclared, mistyped and oversize variables, naming the variable not the value', async () => {
    for (const [vars, code, variable] of BAD_VARIABLES) {
      const err = await run(stage, renderCtx(vars));
      expect(err?.code, JSON.stringify(vars)).toBe(code);
      expect(err?.details).toEqual({ variable });
      expect(err?.location).toEqual({ path: `warden.variables.${variable}` });
      expect(JSON.stringify([err?.message, err?.details])).not.toContain('CANARY');
    }
  });

  it('counts max_length in characters, not UTF-16 units', async () => {
    expect(await run(stage, renderCtx({ name: '😀'.repeat(12) }))).toBeUndefined();
    expect((await run(stage, renderCtx({ name: '😀'.repeat(13) })))?.code).toBe('variable_invalid');
  });

  it('counts a lone surrogate as one character, as the ingress limit does', async () => {
    // A high surrogate not followed by a low one is a character of its own: skipping the next
    // unit let 24 characters through a max_length of 12.
    expect((await run(stage, renderCtx({ name: '\ud800A'.repeat(12) })))?.code).toBe('variable_invalid');
    expect((await run(stage, renderCtx({ name: '\ud800'.repeat(13) })))?.code).toBe('variable_invalid');
    expect((await run(stage, renderCtx({ name: '\udc00'.repeat(13) })))?.code).toBe('variable_invalid');
    expect(await run(stage, renderCtx({ name: '\ud800'.repeat(12) }))).toBeUndefined();
    expect(await run(stage, renderCtx({ name: `${'😀'.repeat(11)}\ud800` }))).toBeUndefined();
  });

  it('fails closed when a secret variable was not resolved', async () => {
    const ctx = renderCtx({ name: 'a' });
    ctx.secrets = new Map();
    const err = await run(stage, ctx);
    expect(err?.code).toBe('secret_unavailable');
    expect(ctx.messages).toBeUndefined();
  });

  it('passes raw messages through for untemplated requests', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const ctx = makeContext({ messages });
    await run(stage, ctx);
    expect(ctx.messages).toBe(messages);
    expect((await run(stage, makeContext()))?.code).toBe('invalid_request');
  });
});

describe('the size of a rendered prompt', () => {
  // A placeholder inserts its value each time it is used: 100 uses of a 650-character value make
  // 65 KB from a request of less than 1 KB. Held to limits.max_body_bytes (here 65536), counted in
  // UTF-8 bytes of the messages' text, config values included, as a raw prompt is by its body.
  const many = makeTemplate({
    id: 'team/echoes',
    variables: {
      x: { source: 'request', type: 'string', required: true, pii: false },
      tone: { source: 'config', type: 'string', required: true, pii: false, value: 'calm' },
      code: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/code' },
    },
    // 36 bytes of fixed text: "Be calm." is 8 with the config value, "<>" x 10 is 20, "Sign ." is 6, and 2 of "ab".
    messages: [
      { role: 'system', content: 'Be {{tone}}.' },
      { role: 'user', content: `${'<{{x}}>'.repeat(10).replace('<{{x}}>', 'a<{{x}}>b')}${'{{x}}'.repeat(90)}` },
      { role: 'assistant', content: 'Sign {{code}}.' },
    ],
  });
  const store = new TemplateRegistry([many], 'rev-size');
  const LIMIT = 65_536;
  const fixed = 36;
  const resolve = createResolveStage(() => store, { maxPromptBytes: LIMIT });
  const render = createRenderStage({ maxPromptBytes: LIMIT });
  const ctxFor = (x: string) => makeContext({ template: { id: 'team/echoes', version: 1 }, variables: { x } });

  it('resolve refuses a render over limits.max_body_bytes, before the policy or a secret: payload_too_large naming the template, no value and no size', async () => {
    const fits = 'a'.repeat(654);
    const ok = ctxFor(fits);
    expect(await run(resolve, ok)).toBeUndefined();
    // With the secret (counted when it is known), exactly the limit: sent.
    ok.secrets = new Map([['file:secrets/code', 's'.repeat(LIMIT - fixed - 100 * fits.length)]]);
    expect(await run(render, ok)).toBeUndefined();
    expect(ok.messages!.reduce((n, m) => n + Buffer.byteLength(m.content as string), 0)).toBe(LIMIT);

    // Bytes of UTF-8, not UTF-16 units: 328 × "é" is 656 bytes (65,636 with the fixed text).
    for (const x of [`${fits}CANARY-VALUE`, 'é'.repeat(328)]) {
      const ctx = ctxFor(x);
      const err = await run(resolve, ctx);
      expect(err?.code, x.slice(0, 8)).toBe('payload_too_large');
      expect(err?.message).toBe(
        `template team/echoes@1 with these variables would render a prompt larger than limits.max_body_bytes (${LIMIT} bytes), the most a request may carry (a value is inserted at every placeholder naming it)`,
      );
      expect(err?.location).toEqual({ path: 'warden.variables' });
      expect(JSON.stringify([err?.message, err?.details])).not.toContain('CANARY');
      // Audited with the template asked for; nothing handed to render.
      expect(ctx.template?.id).toBe('team/echoes');
      expect(ctx.variableValues).toBeUndefined();
    }
    // Sent in the x-warden-variables header: named there.
    const header = makeContext({ template: { id: 'team/echoes', version: 1 }, variables: { x: 'a'.repeat(700) }, variablesPath: 'x-warden-variables' });
    expect((await run(resolve, header))?.location).toEqual({ path: 'x-warden-variables' });
  });

  it('render counts the secrets resolve could not: one that takes the prompt over is refused, never repeated', async () => {
    const ctx = ctxFor('a'.repeat(600));
    expect(await run(resolve, ctx)).toBeUndefined();
    ctx.secrets = new Map([['file:secrets/code', `CANARY-SECRET-${'s'.repeat(LIMIT)}`]]);
    const err = await run(render, ctx);
    expect(err?.code).toBe('payload_too_large');
    expect(JSON.stringify([err?.message, err?.details])).not.toContain('CANARY');
    expect(ctx.messages).toBeUndefined();
  });
});

describe('resolve stage and retirement', () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const store = new TemplateRegistry(
    [tpl(), tpl({ version: 2, retire_after: '2026-05-31' }), tpl({ id: 'team/old', retire_after: '2026-05-31T23:59:59Z' })],
    'rev-1',
  );
  const stage = createResolveStage(() => store, { now: () => now });

  it('resolves by id and version; untemplated requests pass through', async () => {
    const ctx = makeContext({ template: { id: 'team/hello', version: 1 }, variables: { name: 'Ada' } });
    expect(await run(stage, ctx)).toBeUndefined();
    expect(ctx.template?.version).toBe(1);
    const raw = makeContext();
    await run(stage, raw);
    expect(raw.template).toBeUndefined();
  });

  it('reports unknown templates and retired ones', async () => {
    // An id no template has is the caller's text: not repeated, not recorded.
    const unknown = makeContext({ template: { id: 'team/nope' } });
    expect(await run(stage, unknown)).toMatchObject({ code: 'template_not_found', message: 'no template has the requested id', details: undefined });
    expect(unknown.refusedTemplate).toBeUndefined();
    // A version no template has, of an id one has: both are named (the id is the operator's).
    const version = makeContext({ template: { id: 'team/hello', version: 9 } });
    expect(await run(stage, version)).toMatchObject({ message: 'template team/hello@9 not found', details: { template: 'team/hello@9' } });
    expect(version.refusedTemplate).toEqual({ id: 'team/hello', version: 9 });
    // The highest version is retired: asking without a version gets it, and it is refused.
    expect((await run(stage, makeContext({ template: { id: 'team/hello' } })))?.code).toBe('template_retired');
    expect((await run(stage, makeContext({ template: { id: 'team/old' } })))?.code).toBe('template_retired');
  });

  it('treats a date-only retire_after as the end of that day (UTC)', () => {
    expect(isRetired({ retire_after: '2026-05-31' }, Date.parse('2026-05-31T23:59:59Z'))).toBe(false);
    expect(isRetired({ retire_after: '2026-05-31' }, Date.parse('2026-06-01T00:00:00Z'))).toBe(true);
    expect(isRetired({}, now)).toBe(false);
    expect(isRetired({ retire_after: 'garbage' }, now)).toBe(true);
  });

  it('reads the store through the getter, so a reload swaps it', async () => {
    let current = new TemplateRegistry([], 'empty');
    const s = createResolveStage(() => current, { now: () => now });
    expect((await run(s, makeContext({ template: { id: 'team/hello', version: 1 } })))?.code).toBe('template_not_found');
    current = store;
    expect(await run(s, makeContext({ template: { id: 'team/hello', version: 1 }, variables: { name: 'Ada' } }))).toBeUndefined();
  });

  it('checks the variables against the template it resolved, before any later stage runs', async () => {
    // The same refusals as the render stage's, from resolve: a call that cannot render ends
    // before the policy is asked and before a secret is fetched. The record keeps the template.
    for (const [variables, code, variable] of BAD_VARIABLES) {
      const ctx = makeContext({ template: { id: 'team/hello', version: 1 }, variables });
      const err = await run(stage, ctx);
      expect(err?.code, JSON.stringify(variables)).toBe(code);
      expect(err?.details).toEqual({ variable });
      expect(err?.location).toEqual({ path: `warden.variables.${variable}` });
      expect(JSON.stringify([err?.message, err?.details])).not.toContain('CANARY');
      expect(ctx.template?.version).toBe(1);
      expect(ctx.variableValues).toBeUndefined();
    }
    // A required variable no placeholder uses was never asked for (as when render found it).
    const unused = new TemplateRegistry([tpl({ id: 'team/unused', variables: { ...tpl().variables, spare: { source: 'request', type: 'string', required: true, pii: false } } })], 'r');
    expect(await run(createResolveStage(() => unused, { now: () => now }), makeContext({ template: { id: 'team/unused', version: 1 }, variables: { name: 'a' } }))).toBeUndefined();
  });

  it('hands render the checked values, which render does not check again', async () => {
    const ctx = makeContext({ template: { id: 'team/hello', version: 1 }, variables: { name: 'Ada', count: '3' } });
    expect(await run(stage, ctx)).toBeUndefined();
    expect({ ...ctx.variableValues }).toEqual({ name: 'Ada', count: '3' });
    // Render uses resolve's values as they are: one check per request on the hot path.
    ctx.variableValues!.name = 'set by resolve';
    ctx.secrets = new Map([['file:secrets/code', 'S']]);
    expect(await run(createRenderStage(), ctx)).toBeUndefined();
    expect(ctx.messages![1]!.content).toBe('Hi set by resolve <b>&</b> 3/');
  });

  it('parses template references', () => {
    expect(parseTemplateRef('support/ticket-summary@2')).toEqual({ id: 'support/ticket-summary', version: 2 });
    expect(parseTemplateRef('support/ticket-summary')).toEqual({ id: 'support/ticket-summary' });
    expect(parseTemplateRef('x@0')).toBeUndefined();
    expect(parseTemplateRef('x@two')).toBeUndefined();
    expect(parseTemplateRef('@2')).toBeUndefined();
  });
});
