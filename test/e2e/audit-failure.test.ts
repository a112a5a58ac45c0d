/**
 * An audit sink that cannot be written (a file sink whose path turns out to be /dev/full, where
 * every write fails with ENOSPC): with `audit.required` the request fails closed with `audit_unavailable`; without it
 * the request is served and the failure is logged.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

async function governed(w: WardenFixture, stream = false) {
  const token = await w.signer.token('support', 'ticket-bot');
  const res = await postChat(w.addresses.http, token, {
    model: 'gpt-4o-mini',
    stream,
    warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } },
  });
  return { status: res.status, text: await res.text() };
}

/**
 * The sink's file does not exist at start (so the chain resumes from nothing) and is opened at the
 * first write; pointing its path at /dev/full before that makes every write fail.
 */
async function wardenWithFullDisk(required: boolean): Promise<WardenFixture> {
  const w = await startWarden({ upstreamUrl: upstream.url, audit: `audit: { sinks: [{ file: full.log }], required: ${String(required)} }` });
  symlinkSync('/dev/full', join(w.dir, 'full.log'));
  return w;
}

describe('audit sink failure', () => {
  it('audit.required: the request fails closed with audit_unavailable', async () => {
    const w = await wardenWithFullDisk(true);
    try {
      const r = await governed(w);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text).error.code).toBe('audit_unavailable');
      expect(r.text).not.toContain('upstream saw');
      // A stream cannot take back what it already sent: it ends with an error event, no [DONE].
      const s = await governed(w, true);
      expect(s.status).toBe(200);
      expect(s.text).toContain('"code":"audit_unavailable"');
      expect(s.text).not.toContain('[DONE]');
      const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      expect(metrics).toMatch(/warden_requests_total\{[^}]*code="audit_unavailable"[^}]*\} [1-9]/);
    } finally {
      await w.close();
    }
  });

  it('audit.required false: the request is served and the failure is logged', async () => {
    const w = await wardenWithFullDisk(false);
    try {
      const r = await governed(w);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text).choices[0].message.content).toContain('upstream saw');
      expect(w.logs.some((l) => l.includes('audit record could not be written') && l.includes('"required":false'))).toBe(true);
    } finally {
      await w.close();
    }
  });
});
