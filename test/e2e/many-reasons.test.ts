/**
 * A policy's words are unbounded: a rule that makes one reason per entry of a large data list (or
 * allows every model of one) makes megabytes. The refusal carries a bounded part on every ingress:
 * 64 KiB of reasons and a count of the rest over HTTP and /v1/messages, as the audit record keeps;
 * trailers under 8 KiB over gRPC (found: with ~70 KB of reasons a grpc-js call never ended, its
 * trailers over the client's header-list limit; Java and C-core clients refuse 8 KiB).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, rpcStatus, streamOutcome, unaryCall } from './helpers/grpc.js';
import { postRoute } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const ENTRIES = 20_000;
const reasonAt = (i: number) => `entrée ${String(i).padStart(6, '0')} of the data list is not allowed here, see the runbook`;
/**
 * Some 1.7 MB of reasons (non-ASCII too: a cut must fall on a character boundary) and of model
 * names, as data: a comprehension making them would run into the evaluation's time budget on a
 * loaded host.
 */
const DATA = JSON.stringify({
  big: {
    reasons: Array.from({ length: ENTRIES }, (_, i) => reasonAt(i + 1)),
    models: Array.from({ length: ENTRIES }, (_, i) => `tenant-model-${String(i + 1).padStart(6, '0')}`),
    // A redaction profile (and an entity type) no config has, of a megabyte.
    profile: `profile-${'p'.repeat(1_000_000)}`,
  },
});
const POLICY = `package warden

import rego.v1

decision := {"allow": false, "reasons": data.big.reasons} if {
  input.request.model == "echo"
  input.action != "prompt.render"
}

# A dry run of the same call is allowed, with as many reasons and models.
decision := {"allow": true, "reasons": data.big.reasons, "models": array.concat(data.big.models, ["echo"]), "secrets": [], "redaction": {"profile": "standard"}} if {
  input.request.model == "echo"
  input.action == "prompt.render"
}

decision := {"allow": true, "models": data.big.models, "secrets": [], "redaction": {"profile": "standard"}} if input.request.model == "gpt-4o-mini"

decision := {"allow": true, "models": ["down-model"], "redaction": {"profile": data.big.profile}} if input.request.model == "down-model"
`;

let up: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  up = await startUpstream();
  w = await startWarden({ upstreamUrl: up.url, files: { 'policies/e2e.rego': POLICY, 'policies/big.json': DATA } });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await up?.close();
});

const prompt = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });
const anthropicPrompt = (model: string) => ({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

/** The bytes of a gRPC error's trailers as the server sent them (grpc-message percent-encoded, binary values in base64). */
function trailerBytes(err: grpc.ServiceError): number {
  let n = Buffer.byteLength(`grpc-status${err.code}grpc-message${encodeURI(err.details)}`);
  for (const [key, values] of Object.entries(err.metadata.toJSON())) {
    for (const v of values as Array<string | Buffer>) n += key.length + (Buffer.isBuffer(v) ? v.toString('base64').length : Buffer.byteLength(v));
  }
  return n;
}

/** A unary and a streaming call's errors (a deadline, so a call that never ends fails the test rather than hanging it). */
async function grpcErrors(model: string): Promise<grpc.ServiceError[]> {
  const client = gatewayClient(w.addresses.grpc);
  try {
    const deadline = () => ({ deadline: Date.now() + 30_000 });
    const unary = await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.Complete(prompt(model), bearerMetadata(token), deadline(), (err: grpc.ServiceError | null) => (err ? resolve(err) : reject(new Error('the call succeeded')))),
    );
    const streamed = await streamOutcome(client.StreamComplete(prompt(model), bearerMetadata(token), deadline()));
    return [unary, streamed.err as grpc.ServiceError];
  } finally {
    client.close();
  }
}

describe('a refusal with megabytes of policy words', { timeout: 120_000 }, () => {
  it('over HTTP and /v1/messages keeps 64 KiB of reasons, in order, and counts the rest, in the message and details alike', async () => {
    for (const [path, body] of [['/v1/chat/completions', prompt('echo')], ['/v1/messages', anthropicPrompt('echo')]] as const) {
      const r = await postRoute(w.addresses.http, path, body, token);
      expect([path, r.status]).toEqual([path, 403]);
      expect(r.text.length, path).toBeLessThan(3 * 64 * 1024);
      const error = JSON.parse(r.text).error;
      expect(error.code).toBe('policy_denied');
      const reasons: string[] = error.details.reasons;
      expect(reasons.slice(0, -1)).toEqual(Array.from({ length: reasons.length - 1 }, (_, i) => reasonAt(i + 1)));
      expect(reasons.at(-1)).toBe(`(${ENTRIES - reasons.length + 1} more reason(s) not shown: an error keeps 65536 characters of reasons)`);
      expect(error.message).toBe(`denied by policy: ${reasons.join('; ')}`);
      expect(typeof error.details.decision_id).toBe('string');
    }
  });

  it('over HTTP bounds the models a model_not_allowed refusal lists alike', async () => {
    const r = await postRoute(w.addresses.http, '/v1/chat/completions', prompt('gpt-4o-mini'), token);
    expect(r.status).toBe(403);
    const error = JSON.parse(r.text).error;
    expect(error.code).toBe('model_not_allowed');
    const allowed: string[] = error.details.allowed;
    expect(allowed[0]).toBe('tenant-model-000001');
    expect(allowed.at(-1)).toBe(`(${ENTRIES - allowed.length + 1} more model(s) not shown: an error keeps 65536 characters of models)`);
  });

  it('over gRPC ends the unary and the streaming call with PERMISSION_DENIED and trailers under 8 KiB', async () => {
    for (const err of await grpcErrors('echo')) {
      expect([err.code, err.metadata.get('warden-code')]).toEqual([grpc.status.PERMISSION_DENIED, ['policy_denied']]);
      expect(trailerBytes(err)).toBeLessThan(8192);
      expect(err.details).toMatch(/^denied by policy: entrée 000001 of the data list .* \.\.\. \(\d+ bytes; a gRPC status message keeps 1024\)$/);
      const status = rpcStatus(err)!;
      expect(status.message).toBe(err.details);
      const reasons = JSON.parse(status.errorInfo!.metadata.reasons!) as string[];
      expect(reasons.slice(0, -1)).toEqual(Array.from({ length: reasons.length - 1 }, (_, i) => reasonAt(i + 1)));
      expect(reasons.at(-1)).toMatch(/^\(\d+ more item\(s\) not shown: gRPC error details keep 2048 bytes\)$/);
      // The short detail is kept whole next to the long one.
      expect(status.errorInfo!.metadata.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('over gRPC bounds a model_not_allowed refusal alike', async () => {
    for (const err of await grpcErrors('gpt-4o-mini')) {
      expect([err.code, err.metadata.get('warden-code')]).toEqual([grpc.status.PERMISSION_DENIED, ['model_not_allowed']]);
      expect(trailerBytes(err)).toBeLessThan(8192);
      const allowed = JSON.parse(rpcStatus(err)!.errorInfo!.metadata.allowed!) as string[];
      expect(allowed[0]).toBe('tenant-model-000001');
      expect(allowed.at(-1)).toMatch(/^\(\d+ more item\(s\) not shown: gRPC error details keep 2048 bytes\)$/);
    }
  });

  it('a gRPC Render of an allowing decision keeps 64 KiB of its reasons and of its models, and counts the rest', async () => {
    // Found: all 20,000 reasons and models went into the answer (some 2.2 MB), toward a client's 4 MiB receive limit.
    const client = gatewayClient(w.addresses.grpc);
    try {
      const res = await unaryCall(client, 'Render', prompt('echo'), bearerMetadata(token));
      expect(res.decision.allow).toBe(true);
      const reasons: string[] = res.decision.reasons;
      expect(reasons.slice(0, -1)).toEqual(Array.from({ length: reasons.length - 1 }, (_, i) => reasonAt(i + 1)));
      expect(reasons.at(-1)).toBe(`(${ENTRIES - reasons.length + 1} more reason(s) not shown: a dry run keeps 65536 characters of reasons)`);
      const models: string[] = res.decision.models;
      expect(models[0]).toBe('tenant-model-000001');
      expect(models.at(-1)).toBe(`(${ENTRIES + 1 - models.length + 1} more model(s) not shown: a dry run keeps 65536 characters of models)`);
    } finally {
      client.close();
    }
    // Its record keeps the same 64 KiB of reasons.
    const rendered = w.audit().filter((r) => r.action === 'prompt.render');
    expect(rendered.map((r) => r.status)).toEqual(['ok']);
    expect(rendered[0]!.decision.reasons.at(-1)).toMatch(/^\(\d+ more reason\(s\) not recorded: a record keeps 65536 characters of reasons\)$/);
  });

  it('a redaction profile the policy made of a megabyte is named by its start and length, over HTTP and gRPC', async () => {
    // Found: the whole megabyte went into the 500's message and its details.profile.
    const shown = `profile-${'p'.repeat(120)}... (1000008 characters)`;
    const r = await postRoute(w.addresses.http, '/v1/chat/completions', prompt('down-model'), token);
    expect(r.status).toBe(500);
    expect(r.text.length).toBeLessThan(1024);
    const error = JSON.parse(r.text).error;
    expect([error.code, error.message, error.details.profile]).toEqual(['redaction_failed', `unknown redaction profile "${shown}"`, shown]);
    const client = gatewayClient(w.addresses.grpc);
    try {
      const err = await unaryCall(client, 'Complete', prompt('down-model'), bearerMetadata(token)).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect([err?.code, err?.details]).toEqual([grpc.status.INTERNAL, `unknown redaction profile "${shown}"`]);
      expect(rpcStatus(err!)!.errorInfo!.metadata.profile).toBe(shown);
    } finally {
      client.close();
    }
    // The log names the field, never the value.
    expect(w.logs.filter((l) => l.includes('pppppppp'))).toEqual([]);
  });

  it('records 64 KiB of reasons, whatever the caller was sent', () => {
    const denied = w.audit().filter((r) => r.error_code === 'policy_denied');
    expect(denied.length).toBeGreaterThan(0);
    for (const r of denied) expect(r.decision.reasons.at(-1)).toMatch(/^\(\d+ more reason\(s\) not recorded: a record keeps 65536 characters of reasons\)$/);
  });
});
