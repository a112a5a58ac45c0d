/**
 * End to end: a template's rendered prompt is held to `limits.max_body_bytes` (65536 in the
 * fixture), as a raw prompt is by its body. A placeholder inserts its value each time it is used,
 * so a template that uses one 100 times turned a request of 1 KB into a 65 KB prompt (20,000 uses
 * and a 3 KB value: 60 MB, a serving Warden unresponsive for minutes). Over HTTP and gRPC the call
 * is refused `payload_too_large` at the variables, before the policy and before any secret is
 * read; a secret that takes the prompt over is refused at render, never repeated. Nothing goes
 * upstream, and the refusal is audited with the template.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import { eventually } from './helpers/warden.js';

const USES = 100;
const LIMIT = 65_536;
const SECRET = `CANARY-SECRET-SIZE-${'q'.repeat(700)}`;

/** `{{VAR}}` 100 times in one message: 100 copies of the value, no other text. */
function template(id: string, variables: string, name: string): string {
  return `id: ${id}
version: 1
owner: team@example.com
sensitivity: internal
description: Inserts one value many times.
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini, echo]
variables:
${variables}
messages:
  - role: user
    content: "${`{{${name}}}`.repeat(USES)}"
`;
}

let g: GatewayWarden;

beforeAll(async () => {
  g = await startGatewayWarden({
    files: {
      'templates/team/echoes.yaml': template('team/echoes', '  x: { type: string }', 'x'),
      'templates/team/signed.yaml': template('team/signed', '  code: { source: secret, ref: "file:secrets/big-code" }', 'code'),
      'secrets/big-code': SECRET,
    },
  });
});

afterAll(() => g?.close());

const body = (id: string, variables: Record<string, string> = {}) => ({ model: 'gpt-4o-mini', warden: { template: `${id}@1`, variables } });

describe("a template's rendered prompt is held to limits.max_body_bytes", () => {
  it('a render within the limit is sent; one past it is 413 payload_too_large over HTTP and gRPC, nothing upstream, audited', async () => {
    g.upstream.mode = 'ok';
    // 100 × 655 = 65,500 bytes: sent as rendered.
    const fits = await postChat(g.w.addresses.http, g.token, body('team/echoes', { x: 'a'.repeat(655) }));
    expect(fits.status, await fits.clone().text()).toBe(200);
    expect(g.upstream.calls.at(-1)!.body.messages[0].content).toBe('a'.repeat(655 * USES));
    const sent = g.upstream.calls.length;

    // 100 × 656 = 65,600 bytes; 100 × 328 "é" = 65,600 bytes of UTF-8 (32,800 UTF-16 units).
    for (const x of ['a'.repeat(656), 'é'.repeat(328)]) {
      const res = await postChat(g.w.addresses.http, g.token, body('team/echoes', { x }));
      const err = ((await res.json()) as any).error;
      expect(res.status).toBe(413);
      expect(err.code).toBe('payload_too_large');
      expect(err.param).toBe('warden.variables');
      expect(err.message).toContain(`template team/echoes@1 with these variables would render a prompt larger than limits.max_body_bytes (${LIMIT} bytes)`);

      const rpc = (await unaryCall(g.gateway, 'Render', { model: 'echo', template: { id: 'team/echoes', version: 1 }, variables: { x } }, bearerMetadata(g.token)).catch(
        (e: unknown) => e,
      )) as grpc.ServiceError;
      expect(rpc.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(rpc.metadata.get('warden-code')[0]).toBe('payload_too_large');
      expect(rpc.metadata.get('warden-param')[0]).toBe('variables');
    }
    expect(g.upstream.calls.length).toBe(sent);
    await eventually(() => g.w.audit().filter((r) => r.error_code === 'payload_too_large').length === 4);
    for (const r of g.w.audit().filter((x) => x.error_code === 'payload_too_large')) {
      // Refused at resolve: the template is named, the policy was not asked.
      expect(r.template).toEqual({ id: 'team/echoes', version: 1, sensitivity: 'internal' });
      expect(r.decision).toBeNull();
    }
  });

  it('a granted secret that takes the prompt past the limit is refused at render, its value nowhere', async () => {
    const sent = g.upstream.calls.length;
    const res = await postChat(g.w.addresses.http, g.token, body('team/signed'));
    const text = await res.text();
    expect(res.status).toBe(413);
    expect(JSON.parse(text).error.code).toBe('payload_too_large');
    expect(text).not.toContain('CANARY');
    expect(g.upstream.calls.length).toBe(sent);
    await eventually(() => g.w.audit().some((r) => r.template?.id === 'team/signed'));
    const record = g.w.audit().find((r) => r.template?.id === 'team/signed')!;
    expect(record.error_code).toBe('payload_too_large');
    expect(JSON.stringify(g.w.audit()) + g.w.logs.join('')).not.toContain('CANARY-SECRET-SIZE');
  });
});
