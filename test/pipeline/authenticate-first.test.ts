/**
 * Pipeline.authenticate: the authenticate stage run ahead of the body (the ingress's credentials
 * check). A refusal is audited once there; an admission carries the principal into `run`, which
 * then does not authenticate again, and only for the very credentials it was made for.
 */
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { createPipeline, type Admitted } from '../../src/pipeline/pipeline.js';
import type { Stage, StageName } from '../../src/pipeline/stage.js';
import type { Principal } from '../../src/pipeline/types.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from './fake-stages.js';

const PRINCIPAL: Principal = { kind: 'dev', subject: 'system:serviceaccount:dev:local', audiences: [] };

function harness(refuse: (bearer: string | undefined) => boolean) {
  const ran: StageName[] = [];
  const audited: Array<{ code: string | undefined; principal: string | undefined }> = [];
  const forward: Stage = {
    name: 'forward',
    run(ctx) {
      ctx.response = { kind: 'complete', result: { id: 'x', model: 'echo', created: 0, choices: [] } as never };
    },
  };
  const stages = fakeStages(forward, (name) => ran.push(name));
  const auth = stages.authenticate;
  stages.authenticate = {
    name: 'authenticate',
    run(ctx) {
      auth.run(ctx);
      if (refuse(ctx.request.credentials.bearer)) throw new WardenError('unauthenticated', 'no');
      ctx.principal = { ...PRINCIPAL, subject: ctx.request.credentials.bearer ?? 'none' };
    },
  };
  const audit: Stage = {
    name: 'audit',
    run(ctx) {
      audited.push({ code: ctx.error?.code, principal: ctx.principal?.subject });
    },
  };
  const pipeline = createPipeline({ stages, audit, auditRequired: true, logger: { error: () => {}, warn: () => {} } });
  return { pipeline, ran, audited };
}

describe('Pipeline.authenticate', () => {
  it('refuses credentials that fail, audited once, and nothing else runs', async () => {
    const h = harness(() => true);
    const request = makeRequest({ credentials: { bearer: 'bad', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } } });
    await expect(Promise.resolve(h.pipeline.authenticate(request))).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(h.ran).toEqual(['authenticate']);
    expect(h.audited).toEqual([{ code: 'unauthenticated', principal: undefined }]);
  });

  it('admits credentials that pass: run takes the principal and does not authenticate again', async () => {
    const h = harness(() => false);
    const request = makeRequest({ credentials: { bearer: 'good', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } } });
    const admitted = (await h.pipeline.authenticate(request)) as Admitted;
    expect(h.ran).toEqual(['authenticate']);
    await h.pipeline.run(request, admitted);
    expect(h.ran.filter((n) => n === 'authenticate')).toHaveLength(1);
    expect(h.ran).toContain('respond');
    expect(h.audited).toEqual([{ code: undefined, principal: 'good' }]);
  });

  it('an admission for other credentials counts for nothing: the request is authenticated on its own', async () => {
    const h = harness((bearer) => bearer === 'bad');
    const good = makeRequest({ credentials: { bearer: 'good', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } } });
    const admitted = (await h.pipeline.authenticate(good)) as Admitted;
    const bad = makeRequest({ credentials: { bearer: 'bad', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } } });
    await expect(h.pipeline.run(bad, admitted)).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(h.audited).toEqual([{ code: 'unauthenticated', principal: undefined }]);
    expect(h.ran).not.toContain('resolve');
  });
});
