/**
 * Stages for pipeline tests: each synchronous stage does the least its successors need (a
 * decision, messages, the outbound prompt) and reports itself to `onRun`, which may also throw to
 * end the request there; `forward` is the test's own.
 */
import type { PipelineStages } from '../../src/pipeline/pipeline.js';
import type { RequestContext, Stage, StageName } from '../../src/pipeline/stage.js';
import { createRedactor } from '../../src/redact/index.js';
import { allowDecision } from '../stage-context.js';

const redactor = createRedactor({});

export function fakeStages(forward: Stage, onRun: (name: StageName, ctx: RequestContext) => void = () => {}): PipelineStages {
  const sync = (name: StageName, run: (ctx: RequestContext) => void = () => {}): Stage => ({
    name,
    run(ctx) {
      onRun(name, ctx);
      run(ctx);
    },
  });
  return {
    authenticate: sync('authenticate'),
    resolve: sync('resolve'),
    decide: sync('decide', (ctx) => (ctx.decision = allowDecision())),
    fetch: sync('fetch'),
    render: sync('render', (ctx) => (ctx.messages = [{ role: 'user', content: 'hi' }])),
    redact: sync('redact', (ctx) => {
      ctx.outbound = ctx.messages;
      ctx.redaction = redactor.session(ctx.decision!.redaction, []);
    }),
    forward,
    respond: sync('respond'),
  };
}
