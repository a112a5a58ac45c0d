/**
 * End to end over gRPC: a client built from proto/warden/v1/gateway.proto with @grpc/grpc-js and
 * @grpc/proto-loader, against a real Warden on loopback.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, healthClient, rpcStatus, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_SECRET, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let gateway: any;
let health: any;
let token: string;

function meta(bearer: string): grpc.Metadata {
  return bearerMetadata(bearer);
}

function unary(method: string, request: object, bearer = token): Promise<any> {
  return unaryCall(gateway, method, request, meta(bearer));
}

const TEMPLATE = { id: 'support/ticket-summary', version: 2 };
const VARS = { ticket_id: 'T-2002', customer_message: 'Broken screen, email me at sam@example.org' };

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  token = await w.signer.token('support', 'ticket-bot');
  gateway = gatewayClient(w.addresses.grpc);
  health = healthClient(w.addresses.grpc);
});

afterAll(async () => {
  gateway?.close();
  health?.close();
  await w?.close();
  await upstream?.close();
});

describe('PromptGateway', () => {
  it('Complete renders, redacts and forwards', async () => {
    upstream.mode = 'ok';
    const res = await unary('Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS, temperature: 0.2 });
    expect(res.choices[0].message.role).toBe('assistant');
    expect(res.choices[0].message.content).toContain('upstream saw: Ticket T-2002:');
    expect(res.choices[0].message.content).toContain('[EMAIL_ADDRESS]');
    expect(res.usage.total_tokens).toBe(18);
    expect(upstream.calls.at(-1)!.body.temperature).toBe(0.2);
  });

  it('Render returns the decision and the outbound prompt, secret values masked, without calling upstream', async () => {
    const before = upstream.calls.length;
    const res = await unary('Render', { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: { service: 'billing-api' } });
    expect(upstream.calls.length).toBe(before);
    expect(res.decision.allow).toBe(true);
    expect(res.decision.secrets).toEqual(['file:secrets/escalation-code']);
    expect(res.provider).toBe('upstream');
    expect(res.messages.map((m: any) => m.role)).toEqual(['system', 'user']);
    // The template places the secret in the prompt; the dry run shows what would be sent, but
    // its caller is the app, which never holds the secrets Warden fetches for it.
    expect(res.messages[0].content).toBe('Write a short incident brief. Sign it with: [SECRET_VALUE]');
    expect(JSON.stringify(res)).not.toContain(CANARY_SECRET);
    expect(res.messages[1].content).toBe('Service billing-api is failing.');
  });

  it("Render shows a tool's `strict` when the request sets it, and none when it does not", async () => {
    const ask = (strict?: boolean) => ({
      model: 'gpt-4o-mini',
      template: { id: 'ops/incident-brief', version: 1 },
      variables: { service: 'billing-api' },
      tools: [{ type: 'function', function: { name: 'page_oncall', ...(strict === undefined ? {} : { strict }) } }],
    });
    expect((await unary('Render', ask(true))).tools[0].function.strict).toBe(true);
    expect((await unary('Render', ask(false))).tools[0].function.strict).toBe(false);
    expect((await unary('Render', ask())).tools[0].function.strict ?? undefined).toBeUndefined();
  });

  it('Render shows the tools and pass-through parameters that would go upstream, redacted as Complete sends them, secret values masked', async () => {
    const request = {
      model: 'gpt-4o-mini',
      template: { id: 'ops/incident-brief', version: 1 },
      variables: { service: 'billing-api' },
      temperature: 0.2,
      stop: ['END'],
      params_json: JSON.stringify({ seed: 7, user: 'sam@example.org', metadata: { note: `sign with ${CANARY_SECRET}` } }),
      tools: [
        {
          type: 'function',
          function: {
            name: 'page_oncall',
            description: 'Pages sam@example.org',
            parameters_json: JSON.stringify({ type: 'object', properties: { code: { type: 'string', description: `such as ${CANARY_SECRET}` } } }),
          },
        },
      ],
    };
    const before = upstream.calls.length;
    const res = await unary('Render', request);
    expect(upstream.calls.length).toBe(before);
    expect(res.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'page_oncall',
          description: 'Pages [EMAIL_ADDRESS]',
          parameters_json: JSON.stringify({ type: 'object', properties: { code: { type: 'string', description: 'such as [SECRET_VALUE]' } } }),
        },
      },
    ]);
    expect(JSON.parse(res.params_json)).toEqual({ seed: 7, user: '[EMAIL_ADDRESS]', metadata: { note: 'sign with [SECRET_VALUE]' }, temperature: 0.2, stop: ['END'] });
    expect(JSON.stringify(res)).not.toContain(CANARY_SECRET);
    // What Complete sends upstream is the same, but for the secret values the dry run masks.
    upstream.mode = 'ok';
    await unary('Complete', request);
    const sent = upstream.calls.at(-1)!.body;
    const masked = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll(CANARY_SECRET, '[SECRET_VALUE]'));
    expect(masked(sent.tools)).toEqual(res.tools.map((t: any) => ({ type: t.type, function: { name: t.function.name, description: t.function.description, parameters: JSON.parse(t.function.parameters_json) } })));
    expect(masked({ seed: sent.seed, user: sent.user, metadata: sent.metadata, temperature: sent.temperature, stop: sent.stop })).toEqual(JSON.parse(res.params_json));
    // None: the fields are empty.
    const bare = await unary('Render', { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: { service: 'billing-api' } });
    expect([bare.tools, bare.params_json]).toEqual([[], '']);
  });

  it('Render refuses a model the config does not route with the error Complete gives', async () => {
    // The policy allows echo; this Warden does not route it.
    const unrouted = await startWarden({ upstreamUrl: upstream.url, models: 'models: { gpt-4o-mini: upstream, down-model: down }' });
    const client = gatewayClient(unrouted.addresses.grpc);
    try {
      const bearer = await unrouted.signer.token('support', 'ticket-bot');
      const request = { model: 'echo', template: TEMPLATE, variables: VARS };
      const complete = await unaryCall(client, 'Complete', request, meta(bearer)).catch((e: unknown) => e);
      const render = await unaryCall(client, 'Render', request, meta(bearer)).catch((e: unknown) => e);
      expect(complete).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'model "echo" is not configured' });
      expect(render).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'model "echo" is not configured' });
      expect(unrouted.audit().at(-1)).toMatchObject({ action: 'prompt.render', error_code: 'invalid_request' });
    } finally {
      client.close();
      await unrouted.close();
    }
  });

  it('StreamComplete streams chunks to the end', async () => {
    upstream.mode = 'ok';
    const call = gateway.StreamComplete({ model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, meta(token));
    let text = '';
    let last: any;
    for await (const chunk of call) {
      text += chunk.choices[0]?.delta.content ?? '';
      last = chunk;
    }
    expect(text).toContain('upstream saw: Ticket T-2002:');
    expect(last.choices[0].finish_reason).toBe('stop');
  });

  it('cancelling StreamComplete aborts the upstream call', async () => {
    upstream.mode = 'stream-slow';
    const aborted = upstream.aborted;
    const call = gateway.StreamComplete({ model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, meta(token));
    call.on('error', () => {});
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.cancel();
    await aborted;
    upstream.mode = 'ok';
  });

  it('maps Warden codes to gRPC status codes, with the stable code in the trailer', async () => {
    // The last column: the `details` HTTP's error body carries for the same error.
    const cases: Array<[object, string | undefined, grpc.status, string, Record<string, unknown>]> = [
      [{ model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, 'not-a-jwt', grpc.status.UNAUTHENTICATED, 'unauthenticated', { methods: ['kubernetes'] }],
      [{ model: 'gpt-4o-mini', template: { id: 'support/nope', version: 1 } }, undefined, grpc.status.NOT_FOUND, 'template_not_found', {}],
      [{ model: 'gpt-4o-mini', template: TEMPLATE, variables: { ticket_id: 'T-1' } }, undefined, grpc.status.INVALID_ARGUMENT, 'variable_missing', { variable: 'customer_message' }],
      [{ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 1 }, variables: { ticket_id: 'T' } }, undefined, grpc.status.FAILED_PRECONDITION, 'template_retired', { template: 'support/ticket-summary@1', retire_after: '2020-01-31' }],
      [{ model: 'down-model', template: TEMPLATE, variables: VARS }, undefined, grpc.status.UNAVAILABLE, 'upstream_error', { provider: 'down', reason: 'ECONNREFUSED' }],
      [{ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] }, undefined, grpc.status.INVALID_ARGUMENT, 'invalid_request', {}],
      [{ model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS, params_json: '{not json' }, undefined, grpc.status.INVALID_ARGUMENT, 'invalid_request', {}],
    ];
    for (const [req, bearer, status, code, details] of cases) {
      const err = (await unary('Complete', req, bearer ?? token).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code, code).toBe(status);
      expect(err.metadata.get('warden-code')[0], code).toBe(code);
      // The same in google.rpc.Status: code and message as the gRPC status, the Warden code as
      // ErrorInfo's reason, HTTP's details and the field (if any) as in warden-param in its
      // metadata (strings, the rest as JSON text); none of these asks for a wait, so no RetryInfo.
      const [param] = err.metadata.get('warden-param');
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(details)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      if (param !== undefined) metadata.param = String(param);
      expect(rpcStatus(err), code).toEqual({
        code: status,
        message: err.details,
        types: ['type.googleapis.com/google.rpc.ErrorInfo'],
        errorInfo: { reason: code, domain: 'warden', metadata },
      });
    }
    const outsider = await w.signer.token('marketing', 'campaign-bot');
    const denied = (await unary('Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, outsider).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(denied.details).toContain('marketing/campaign-bot');
  });

  it('template-stage errors name the gRPC request fields in warden-param (template, variables.x), not the HTTP ones', async () => {
    const cases: Array<[object, string, string, Record<string, string>]> = [
      [{ model: 'gpt-4o-mini', template: { id: 'support/nope', version: 1 } }, 'template_not_found', 'template', {}],
      [{ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 1 }, variables: { ticket_id: 'T' } }, 'template_retired', 'template', { template: 'support/ticket-summary@1', retire_after: '2020-01-31' }],
      [{ model: 'gpt-4o-mini', template: TEMPLATE, variables: { ...VARS, undeclared_one: 'x' } }, 'variable_missing', 'variables.undeclared_one', { variable: 'undeclared_one' }],
    ];
    for (const [req, code, param, details] of cases) {
      const err = (await unary('Complete', req).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.metadata.get('warden-code')[0], code).toBe(code);
      expect(err.metadata.get('warden-param')[0], code).toBe(param);
      expect(rpcStatus(err)?.errorInfo, code).toEqual({ reason: code, domain: 'warden', metadata: { ...details, param } });
    }
  });

  it('a template id, variable or model name no template could have is INVALID_ARGUMENT, not repeated', async () => {
    const canary = 'jane.CANARY-NAME@example.com';
    const cases: Array<[object, string]> = [
      [{ model: 'gpt-4o-mini', template: { id: canary, version: 1 }, variables: VARS }, 'template.id'],
      // HTTP's `id@version` names at most nine digits: gRPC takes the same range.
      [{ model: 'gpt-4o-mini', template: { ...TEMPLATE, version: 1_000_000_000 }, variables: VARS }, 'template.version'],
      [{ model: 'gpt-4o-mini', template: TEMPLATE, variables: { ...VARS, [canary]: 'x' } }, 'variables'],
      [{ model: `${canary}${'m'.repeat(256)}`, template: TEMPLATE, variables: VARS }, 'model'],
    ];
    for (const [req, param] of cases) {
      const err = (await unary('Complete', req).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code, param).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')[0], param).toBe('invalid_request');
      expect(err.metadata.get('warden-param')[0], param).toBe(param);
      expect(err.details).not.toContain('CANARY');
    }
  });

  it('an upstream rate limit is RESOURCE_EXHAUSTED with its retry-after; a refused request INVALID_ARGUMENT', async () => {
    upstream.mode = 'rate-limited';
    const limited = (await unary('Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(limited.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(limited.metadata.get('warden-code')[0]).toBe('upstream_rate_limited');
    expect(limited.metadata.get('retry-after')[0]).toBe('3');
    expect(limited.metadata.get('grpc-retry-pushback-ms')).toEqual(['3000']);
    // And as google.rpc.RetryInfo, where clients following Google's API design look for it.
    expect(rpcStatus(limited)).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: limited.details,
      types: ['type.googleapis.com/google.rpc.ErrorInfo', 'type.googleapis.com/google.rpc.RetryInfo'],
      errorInfo: { reason: 'upstream_rate_limited', domain: 'warden', metadata: { provider: 'upstream', status: '429', retry_after_s: '3' } },
      retryInfo: { retry_delay: { seconds: 3, nanos: 0 } },
    });
    upstream.mode = 'bad-request';
    const refused = (await unary('Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.metadata.get('warden-code')[0]).toBe('upstream_rejected');
    // No wait was asked for: no pushback (the client's own backoff applies).
    expect(refused.metadata.get('grpc-retry-pushback-ms')).toEqual([]);
    // HTTP's details.status (the provider's), so a caller can tell a 413 from a 422 as over HTTP.
    expect(rpcStatus(refused)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, errorInfo: { reason: 'upstream_rejected', metadata: { provider: 'upstream', status: '400' } } });
    expect(rpcStatus(refused)?.retryInfo).toBeUndefined();
    expect(refused.details).not.toContain('context too long');
    upstream.mode = 'ok';
  });

  it('a message over the size limit is refused', async () => {
    const err = (await unary('Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: { ticket_id: 'T', customer_message: 'x'.repeat(70_000) } }).catch(
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe('grpc.health.v1.Health', () => {
  it('Check reports SERVING for the server and the gateway, NOT_FOUND for others', async () => {
    const check = (service: string) =>
      new Promise<any>((resolve, reject) => health.Check({ service }, (err: any, res: any) => (err ? reject(err) : resolve(res))));
    expect((await check('')).status).toBe('SERVING');
    expect((await check('warden.v1.PromptGateway')).status).toBe('SERVING');
    const err = await check('nope.Service').catch((e: grpc.ServiceError) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    // The caller's name is not repeated back.
    const canary = await check(`CANARY-${'x'.repeat(5000)}`).catch((e: grpc.ServiceError) => e);
    expect([canary.code, canary.details]).toEqual([grpc.status.NOT_FOUND, 'unknown service']);
  });

  it('Watch sends the current status at once', async () => {
    const call = health.Watch({ service: '' });
    const first = await new Promise<any>((resolve) => call.once('data', resolve));
    expect(first.status).toBe('SERVING');
    call.on('error', () => {});
    call.cancel();
  });
});

describe('the upstream deadline over gRPC (limits.upstream_timeout_ms)', () => {
  // A Warden of its own with a short upstream deadline; client_timeout_ms (10 s) never cuts a call.
  let shortUpstream: FakeUpstream;
  let short: WardenFixture;
  let client: any;
  let bot: string;
  beforeAll(async () => {
    shortUpstream = await startUpstream();
    short = await startWarden({
      upstreamUrl: shortUpstream.url,
      limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 300, shutdown_grace_ms: 2000 }',
    });
    bot = await short.signer.token('support', 'ticket-bot');
    client = gatewayClient(short.addresses.grpc);
  });
  afterAll(async () => {
    client?.close();
    await short?.close();
    await shortUpstream?.close();
  });

  it('Complete past the deadline is DEADLINE_EXCEEDED with warden-code upstream_timeout', async () => {
    shortUpstream.mode = 'slow';
    const err = (await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, bearerMetadata(bot)).catch(
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.metadata.get('warden-code')[0]).toBe('upstream_timeout');
  });

  it('a stream that outlives the deadline ends with DEADLINE_EXCEEDED after the chunks sent so far', async () => {
    shortUpstream.mode = 'stream-slow';
    const aborted = shortUpstream.aborted;
    const call = client.StreamComplete({ model: 'gpt-4o-mini', template: TEMPLATE, variables: VARS }, bearerMetadata(bot));
    let chunks = 0;
    call.on('data', () => chunks++);
    const err = await new Promise<grpc.ServiceError>((resolve) => call.once('error', resolve));
    expect(chunks).toBeGreaterThan(0);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.metadata.get('warden-code')[0]).toBe('upstream_timeout');
    await aborted;
  });
});
