/**
 * The pipeline lets the audit stage prepare while the forward stage waits for the upstream: the
 * work happens after the prompt is final and before the answer arrives, and a prepare that fails
 * costs nothing but itself.
 */
import { describe, expect, it } from 'vitest';
import { createPipeline, type PipelineStages } from '../../src/pipeline/pipeline.js';
import type { Stage } from '../../src/pipeline/stage.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from './fake-stages.js';

function harness(prepareThrows = false) {
  const events: string[] = [];
  const warnings: object[] = [];
  let answer: () => void = () => {};
  const stages: PipelineStages = fakeStages(
    {
      name: 'forward',
      run(ctx) {
        events.push('forward sent');
        return new Promise<void>((resolve) => {
          answer = () => {
            events.push('upstream answered');
            ctx.response = { kind: 'complete', result: { id: 'x', model: 'echo', created: 0, choices: [] } as never };
            resolve();
          };
        });
      },
    },
    (name) => void events.push(name),
  );
  const audit: Stage = {
    name: 'audit',
    run() {
      events.push('audit');
    },
    prepare(ctx) {
      events.push(`audit prepare (outbound ${ctx.outbound ? 'final' : 'missing'})`);
      if (prepareThrows) throw new Error('prepare broke');
    },
  };
  const pipeline = createPipeline({
    stages,
    audit,
    auditRequired: true,
    logger: { error: () => {}, warn: (obj) => warnings.push(obj) },
  });
  return { pipeline, events, warnings, answer: () => answer() };
}

describe('audit prepare', () => {
  it('runs while the forward stage waits for the upstream, after the prompt is final', async () => {
    const h = harness();
    const done = h.pipeline.run(makeRequest());
    await new Promise((r) => setImmediate(r));
    // The upstream has not answered yet, and the audit has already prepared.
    expect(h.events.slice(-2)).toEqual(['forward sent', 'audit prepare (outbound final)']);
    h.answer();
    const res = await done;
    expect(res.kind).toBe('complete');
    expect(h.events.slice(-4)).toEqual(['audit prepare (outbound final)', 'upstream answered', 'respond', 'audit']);
  });

  it('is not called for a dry run, which never forwards', async () => {
    const h = harness();
    await h.pipeline.run(makeRequest({ action: 'prompt.render' }));
    expect(h.events).not.toContain('forward sent');
    expect(h.events.some((e) => e.startsWith('audit prepare'))).toBe(false);
    expect(h.events.at(-1)).toBe('audit');
  });

  it('a prepare that throws is logged and the request still completes and is audited', async () => {
    const h = harness(true);
    const done = h.pipeline.run(makeRequest());
    await new Promise((r) => setImmediate(r));
    h.answer();
    expect((await done).kind).toBe('complete');
    expect(h.events.at(-1)).toBe('audit');
    expect(h.warnings).toEqual([expect.objectContaining({ stage: 'audit', error_type: 'Error' })]);
    // The error's message (it could carry request data) is not logged.
    expect(JSON.stringify(h.warnings)).not.toContain('prepare broke');
  });
});
