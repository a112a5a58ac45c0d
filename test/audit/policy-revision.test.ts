/**
 * `policy_revision` names the policy set that decided, not whichever set is current when the
 * record is written: a reload that lands between decide and the audit (while a secret is being
 * fetched, say) must not put the new set's revision next to the old set's decision. The reload is
 * driven from inside the fetch stage, so the order is fixed, not left to timing.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, createAuditStage } from '../../src/audit/index.js';
import { createStreamSink } from '../../src/audit/sinks.js';
import { WardenError } from '../../src/pipeline/errors.js';
import { createPipeline } from '../../src/pipeline/pipeline.js';
import type { PolicyEngine } from '../../src/pipeline/ports.js';
import { createDecideStage, createRegoPolicyEngine } from '../../src/policy/index.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from '../pipeline/fake-stages.js';

const ALLOWS = 'package warden\nimport rego.v1\ndecision := {"allow": true, "models": ["echo"]}\n';
const DENIES = 'package warden\nimport rego.v1\ndecision := {"allow": false, "reasons": ["set B denies everything"]}\n';

let dir: string;
let setA: PolicyEngine;
let setB: PolicyEngine;

async function engineOf(name: string, source: string): Promise<PolicyEngine> {
  await mkdir(join(dir, name));
  await writeFile(join(dir, name, 'warden.rego'), source);
  return createRegoPolicyEngine({ paths: [join(dir, name)], entrypoint: 'warden/decision' });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-policy-rev-'));
  setA = await engineOf('a', ALLOWS);
  setB = await engineOf('b', DENIES);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/**
 * A pipeline wired as the runtime wires it (decide reads the current engine, the audit stage's
 * fallback revision reads the current set), whose fetch stage swaps the current set to B — what a
 * reload finishing during a slow secret fetch does — and then ends as `fetchEnds` says.
 */
function pipelineReloadingDuringFetch(fetchEnds: 'ok' | 'secret_unavailable') {
  let current = setA;
  const lines: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString('utf8').split('\n').filter(Boolean)));
  const audit = createAuditStage({
    log: createAuditLog({ sinks: [createStreamSink(out, 'test')] }),
    hmacKey: 'policy-revision-test-key-0123456789',
    environment: 'test',
    getPolicyRevision: () => current.revision,
    configuredModel: (m) => m === 'echo',
  });
  const forward = {
    name: 'forward' as const,
    run(ctx: Parameters<typeof audit.run>[0]) {
      ctx.response = { kind: 'complete', result: { id: 'x', model: 'echo', created: 0, choices: [] } as never };
    },
  };
  const stages = {
    ...fakeStages(forward),
    authenticate: {
      name: 'authenticate' as const,
      run(ctx: Parameters<typeof audit.run>[0]) {
        ctx.principal = { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] };
      },
    },
    decide: createDecideStage({ getEngine: () => current, environment: { name: 'test', cluster: 'local' } }),
    fetch: {
      name: 'fetch' as const,
      async run() {
        await new Promise((r) => setImmediate(r));
        current = setB;
        if (fetchEnds === 'secret_unavailable') throw new WardenError('secret_unavailable', 'secret is unavailable');
      },
    },
  };
  const pipeline = createPipeline({ stages, audit, auditRequired: true, logger: { error: () => {}, warn: () => {} } });
  return { pipeline, lines, current: () => current };
}

describe('policy_revision in the audit record', () => {
  it('is the revision of the set that decided when a reload lands before the forward (draft path)', async () => {
    expect(setA.revision).not.toBe(setB.revision);
    const h = pipelineReloadingDuringFetch('ok');
    const res = await h.pipeline.run(makeRequest());
    expect(res.kind).toBe('complete');
    expect(h.current()).toBe(setB);
    expect(h.lines).toHaveLength(1);
    const rec = JSON.parse(h.lines[0]!) as { decision: { allow: boolean }; policy_revision: string };
    expect(rec.decision.allow).toBe(true);
    expect(rec.policy_revision).toBe(setA.revision);
  });

  it('is the revision of the set that decided for a request that ends after decide, before any forward', async () => {
    const h = pipelineReloadingDuringFetch('secret_unavailable');
    await expect(h.pipeline.run(makeRequest())).rejects.toMatchObject({ code: 'secret_unavailable' });
    expect(h.lines).toHaveLength(1);
    const rec = JSON.parse(h.lines[0]!) as { decision: { allow: boolean }; policy_revision: string; error_code: string };
    expect(rec).toMatchObject({ decision: { allow: true }, error_code: 'secret_unavailable', policy_revision: setA.revision });
  });
});
