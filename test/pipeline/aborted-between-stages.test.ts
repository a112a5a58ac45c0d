/**
 * A request whose client left does not start its next stage: no secret is read and nothing is
 * forwarded for nobody, and the record says why it ended (`cancelled`, or the abort's own
 * WardenError). Once the upstream has answered, the request is finished as usual: that answer's
 * usage was paid for and belongs in the record.
 */
import { describe, expect, it } from 'vitest';
import { RequestSignal } from '../../src/pipeline/cancel.js';
import { WardenError } from '../../src/pipeline/errors.js';
import { createPipeline } from '../../src/pipeline/pipeline.js';
import type { RequestContext, Stage, StageName } from '../../src/pipeline/stage.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from './fake-stages.js';

function harness(abortDuring: StageName, reason: unknown) {
  const ran: string[] = [];
  const audited: Array<{ code: string | undefined; usage: unknown }> = [];
  const signal = new RequestSignal();
  const forward: Stage = {
    name: 'forward',
    run(ctx) {
      ran.push('forward');
      ctx.response = { kind: 'complete', result: { id: 'x', model: 'echo', created: 0, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } } as never };
      if (abortDuring === 'forward') return Promise.resolve().then(() => signal.abort(reason));
    },
  };
  const stages = fakeStages(forward, (name) => {
    ran.push(name);
    if (name === abortDuring) signal.abort(reason);
  });
  // The stage the client leaves during is async, as authentication's first check of a token is.
  const original = stages[abortDuring as 'authenticate'];
  if (abortDuring !== 'forward') stages[abortDuring as 'authenticate'] = { name: original.name, run: (ctx: RequestContext) => Promise.resolve(original.run(ctx)) };
  const audit: Stage = {
    name: 'audit',
    run(ctx) {
      audited.push({ code: ctx.error?.code, usage: ctx.usage });
    },
  };
  const pipeline = createPipeline({ stages, audit, auditRequired: true, logger: { error: () => {}, warn: () => {} } });
  return { run: () => pipeline.run(makeRequest({ signal })), ran, audited };
}

describe('a request whose client left', () => {
  it('does not start its next stage and is audited cancelled', async () => {
    const h = harness('authenticate', new WardenError('cancelled', 'the client closed the request'));
    await expect(h.run()).rejects.toMatchObject({ code: 'cancelled' });
    expect(h.ran).toEqual(['authenticate']);
    expect(h.audited).toEqual([{ code: 'cancelled', usage: undefined }]);
  });

  it("ends with the abort's own WardenError (shutdown cut it)", async () => {
    const h = harness('decide', new WardenError('shutting_down', 'warden is shutting down'));
    await expect(h.run()).rejects.toMatchObject({ code: 'shutting_down' });
    expect(h.ran).toEqual(['authenticate', 'resolve', 'decide']);
    expect(h.audited).toEqual([{ code: 'shutting_down', usage: undefined }]);
  });

  it('a plain abort (no WardenError reason) is cancelled', async () => {
    const h = harness('fetch', undefined);
    await expect(h.run()).rejects.toMatchObject({ code: 'cancelled' });
    expect(h.ran).not.toContain('forward');
  });

  it('after the upstream answered, the request is finished and its usage recorded', async () => {
    const h = harness('forward', new WardenError('cancelled', 'the client closed the request'));
    const res = await h.run();
    expect(res.kind).toBe('complete');
    expect(h.ran.at(-1)).toBe('respond');
    expect(h.audited).toEqual([{ code: undefined, usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }]);
  });
});
