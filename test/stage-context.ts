/** Builds a real RequestContext for stage tests (the same shape the pipeline builds). */
import type { RequestContext } from '../src/pipeline/stage.js';
import type { Decision, PromptRequest, Template } from '../src/pipeline/types.js';

export function makeRequest(over: Partial<PromptRequest> = {}): PromptRequest {
  return {
    id: 'req-1',
    protocol: 'openai-http',
    action: 'prompt.execute',
    model: 'echo',
    variables: {},
    stream: false,
    params: {},
    credentials: { peer: { address: '127.0.0.1', local: true, transport: 'tcp' } },
    signal: new AbortController().signal,
    receivedAt: Date.now(),
    ...over,
  };
}

export function makeContext(over: Partial<PromptRequest> = {}, extra: Partial<RequestContext> = {}): RequestContext {
  return {
    request: makeRequest(over),
    trace: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' },
    timings: {},
    ...extra,
  };
}

export function allowDecision(over: Partial<Decision> = {}): Decision {
  return {
    allow: true,
    reasons: [],
    secrets: [],
    redaction: { profile: 'standard', entities: [], modes: {}, reidentify: false, fail_open: false },
    models: ['echo'],
    audit: { log_variables_names: true },
    id: 'dec-1',
    ...over,
  };
}

/**
 * A template for render, redact and audit tests: the governance members (owner, approvals, ...)
 * filled with neutral values, the rest from `over`. Tests of the governance members themselves
 * load real template files.
 */
export function makeTemplate(over: Partial<Template> & Pick<Template, 'messages'>): Template {
  return {
    id: 'test/template',
    version: 1,
    owner: 'o',
    sensitivity: 'internal',
    description: 'd',
    approvals: [],
    allowed_services: [],
    models: [],
    variables: {},
    ...over,
  };
}
