/**
 * The pipeline observes a request's metrics (stage durations, decision, request outcome) after
 * the request is answered, in the check phase of the same event-loop turn, so the caller does not
 * wait for them; they must still all arrive, once, with the request's own duration.
 */
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { createPipeline, type PipelineMetrics, type PipelineStages, type RequestOutcome } from '../../src/pipeline/pipeline.js';
import type { Stage, StageName } from '../../src/pipeline/stage.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from './fake-stages.js';

function harness(throwing?: StageName) {
  const stageSeen: string[] = [];
  const requests: RequestOutcome[] = [];
  const decisions: boolean[] = [];
  const metrics: PipelineMetrics = {
    observeStage: (stage) => void stageSeen.push(stage),
    observeRequest: (o) => void requests.push(o),
    observeDecision: (allow) => void decisions.push(allow),
  };
  const stages: PipelineStages = fakeStages(
    {
      name: 'forward',
      async run(ctx) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ctx.response = { kind: 'complete', result: { id: 'x', model: 'echo', created: 0, choices: [] } as never };
      },
    },
    (name) => {
      if (name === throwing) throw new WardenError('policy_denied', 'no');
    },
  );
  const audit: Stage = { name: 'audit', run: () => undefined };
  const pipeline = createPipeline({ stages, audit, auditRequired: true, metrics, logger: { error: () => {}, warn: () => {} } });
  return { pipeline, stageSeen, requests, decisions };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('request metrics', () => {
  it('are observed once the request is answered, all of them, with its duration', async () => {
    const h = harness();
    const started = performance.now();
    await h.pipeline.run(makeRequest({ receivedAt: performance.timeOrigin + started }));
    const answeredMs = performance.now() - started;
    // Answered: the caller did not wait for the metrics.
    expect(h.requests).toEqual([]);
    await nextTurn();
    expect(h.stageSeen).toEqual(['authenticate', 'resolve', 'decide', 'fetch', 'render', 'redact', 'forward', 'respond', 'audit']);
    expect(h.decisions).toEqual([true]);
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0]).toMatchObject({ code: 'ok', decision: 'allow', stream: false });
    // The duration is the request's (forward alone waited 20 ms), not the later observation time.
    expect(h.requests[0]!.seconds * 1000).toBeGreaterThanOrEqual(19);
    expect(h.requests[0]!.seconds * 1000).toBeLessThanOrEqual(answeredMs + 1);
    await nextTurn();
    expect(h.requests).toHaveLength(1);
  });

  it('are observed for a request a stage refused, up to that stage', async () => {
    const h = harness('decide');
    await expect(h.pipeline.run(makeRequest())).rejects.toMatchObject({ code: 'policy_denied' });
    await nextTurn();
    expect(h.stageSeen).toEqual(['authenticate', 'resolve', 'decide', 'audit']);
    expect(h.requests).toEqual([expect.objectContaining({ code: 'policy_denied', decision: 'none' })]);
  });

  it('for a request refused before it was read, are the audit stage only', async () => {
    const h = harness();
    await h.pipeline.auditRejected(makeRequest(), new WardenError('invalid_request', 'bad JSON'));
    await nextTurn();
    expect(h.stageSeen).toEqual(['audit']);
    expect(h.requests).toEqual([]);
  });
});
