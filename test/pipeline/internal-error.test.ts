/**
 * A stage that throws something other than a WardenError ends the request as `internal`, and the
 * log learns the error's type and stack frames, never its message: a message may quote request
 * data (a prompt, a secret value), over several lines, and a line of it may even look like a frame.
 */
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/pipeline/pipeline.js';
import type { Stage } from '../../src/pipeline/stage.js';
import { makeRequest } from '../stage-context.js';
import { fakeStages } from './fake-stages.js';

const CANARY = 'CANARY-7c1e-stack';

function run(thrown: unknown) {
  const errors: Array<Record<string, unknown>> = [];
  const forward: Stage = {
    name: 'forward',
    run() {
      throw thrown;
    },
  };
  const pipeline = createPipeline({
    stages: fakeStages(forward),
    audit: { name: 'audit', run() {} },
    auditRequired: true,
    logger: { error: (obj) => void errors.push(obj as Record<string, unknown>), warn: () => {} },
  });
  return { done: pipeline.run(makeRequest()), errors };
}

describe('an unexpected error in a stage', () => {
  it('logs the frames of its stack and none of its message, however many lines the message has', async () => {
    const err = new TypeError(`first line\nthe prompt was ${CANARY}\n    at ${CANARY} (a line of the message shaped as a frame)`);
    const { done, errors } = run(err);
    // The caller gets `internal` and nothing of the message either.
    const thrown = await done.then(() => undefined, (e: unknown) => e);
    expect(thrown).toMatchObject({ code: 'internal', message: 'internal error' });
    const logged = errors.find((e) => e.stage === 'forward');
    expect(logged).toMatchObject({ stage: 'forward', error_type: 'TypeError' });
    const frames = String(logged!.frames);
    // This test file is on the stack: the frames are there, and they are real ones.
    expect(frames).toContain('internal-error.test');
    expect(frames.split('\n').every((l) => l.startsWith('    at '))).toBe(true);
    expect(JSON.stringify(errors)).not.toContain(CANARY);
  });

  it('keeps at most seven frames, and only frame lines of a stack its code rewrote', async () => {
    const err = new Error('boom');
    err.stack = `rewritten header ${CANARY}\n${Array.from({ length: 12 }, (_, i) => `    at f${i} (file.js:${i}:1)`).join('\n')}`;
    const { done, errors } = run(err);
    await done.catch(() => undefined);
    const frames = String(errors.find((e) => e.stage === 'forward')!.frames).split('\n');
    expect(frames).toEqual(Array.from({ length: 7 }, (_, i) => `    at f${i} (file.js:${i}:1)`));
    expect(JSON.stringify(errors)).not.toContain(CANARY);
  });
});
