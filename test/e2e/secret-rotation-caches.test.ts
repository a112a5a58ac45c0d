/**
 * A secret rotated in its file, seen through the caches that name secret values by their
 * resolver stamp: the prompt findings cache (where the email after the secret is, in a system
 * message long enough to be cached) and the audit's prompt-HMAC prefix states. Once the lease
 * ends, the upstream gets the new value, the redaction lands where it did before the rotation,
 * and each record's prompt_hmac is the HMAC of exactly what the upstream was sent.
 */
import { createHmac } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

const HMAC_KEY = 'prompt-hmac-key-for-rotation-0123456789';
const BEFORE = 'ROTATE-ME-first-value-7q2w';
const AFTER = 'ROTATE-ME-the-second-and-longer-value-9x8c';

const TEMPLATE = `id: ops/rotating
version: 1
owner: sre@example.com
sensitivity: internal
description: A long fixed system message with a secret in it, then an email.
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  service: { type: string, max_length: 64 }
  code: { source: secret, ref: "file:secrets/rotating-code" }
messages:
  - role: system
    content: "${'You write incident briefs for the on-call team, short and factual. '.repeat(9)}Sign with {{code}} and copy oncall.lead@example.com on every brief."
  - role: user
    content: "Service {{service}} is failing."
`;

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    files: { 'templates/ops/rotating.yaml': TEMPLATE, 'secrets/rotating-code': `${BEFORE}\n`, 'secrets/hmac-key': HMAC_KEY },
    secrets: 'secrets: { file_roots: [secrets], default_ttl_ms: 300 }',
    audit: `audit: { sinks: [{ file: audit.log }], required: true, hmac_key: "file:secrets/hmac-key" }`,
  });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('a secret rotated under the caches', () => {
  it('after its lease the new value is sent, redacted at the right place, and the audit HMAC is of what was sent', { timeout: 30_000 }, async () => {
    const token = await w.signer.token('support', 'ticket-bot');
    /** One call; what the upstream got, and whether the record's HMAC is of exactly that. */
    const call = async () => {
      const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'ops/rotating@1', variables: { service: 'billing' } } });
      expect(res.status).toBe(200);
      const requestId = res.headers.get('x-request-id');
      await res.text();
      const sent = upstream.calls.at(-1)!.body.messages as Array<{ role: string; content: string }>;
      const canonical = JSON.stringify(sent.map((m) => ({ content: m.content, role: m.role })));
      const record = w.audit().find((r) => r.request_id === requestId)!;
      expect(record.prompt_hmac).toBe(createHmac('sha256', HMAC_KEY).update(canonical).digest('hex'));
      return sent[0]!.content;
    };

    const first = await call();
    expect(first).toContain(BEFORE);
    expect(first).not.toContain('oncall.lead@example.com');
    expect(first.length).toBeGreaterThan(600);
    // Seen again: the findings and the HMAC prefix state are kept now, and served.
    for (let i = 0; i < 3; i++) expect(await call()).toBe(first);

    writeFileSync(join(w.dir, 'secrets', 'rotating-code.tmp'), `${AFTER}\n`);
    renameSync(join(w.dir, 'secrets', 'rotating-code.tmp'), join(w.dir, 'secrets', 'rotating-code'));
    let latest = first;
    await eventually(async () => (latest = await call()) !== first, 50);
    // The new value, and the email masked exactly as before: no finding kept for the old text.
    expect(latest).toBe(first.replace(BEFORE, AFTER));
    for (let i = 0; i < 3; i++) expect(await call()).toBe(latest);
  });
});
