/**
 * What `/metrics` says about real traffic through a running Warden: redaction findings counted
 * under the entity type the audit record names, and an exposition the standard linter accepts
 * (`promtool`, from the same Debian package as the Prometheus in admin.test.ts).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

// A custom entity from config, and a standard profile that detects it next to built-in types.
const REDACTION = `redaction:
  custom_entities: [{ name: CUSTOMER_ID, pattern: "CUST-[0-9]{6}" }]
  profiles:
    standard: { entities: [EMAIL_ADDRESS, IBAN_CODE, MAC_ADDRESS, SECRETS, CUSTOMER_ID], mode: mask }
`;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, extraConfig: REDACTION });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** Every `warden_redactions_total` sample, by its entity label. */
async function redactionCounts(): Promise<Record<string, number>> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^warden_redactions_total\{[^}]*entity="([^"]+)"[^}]*\} (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

describe('warden_redactions_total', () => {
  it('counts each built-in entity type, the leak guard and a custom entity under its own name', async () => {
    const before = await redactionCounts();
    const raw = await w.signer.token('labs', 'raw-bot');
    const prompt = [
      'mac 00:1A:2B:3C:4D:5E',
      'key sk-proj-abcdefghijklmnopqrstuvwxyzABCDEFGH1234567890abcd',
      'db https://admin:hunter2hunter2@db.example.com/x',
      'iban DE89 3704 0044 0532 0130 00',
      'aws AKIAIOSFODNN7EXAMPLE',
      'gh ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123',
      'mail jane.doe@example.com',
      'customer CUST-123456',
    ].join('\n');
    const r1 = await postChat(w.addresses.http, raw, { model: 'echo', messages: [{ role: 'user', content: prompt }] });
    expect(r1.status).toBe(200);
    await r1.arrayBuffer();
    // The echo provider repeats the prompt, whose system message carries the template's secret:
    // the leak guard masks it in the answer.
    const bot = await w.signer.token('support', 'ticket-bot');
    const r2 = await postChat(w.addresses.http, bot, { model: 'echo', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 's' } } });
    expect(r2.status).toBe(200);
    await r2.arrayBuffer();

    const audited: Record<string, number> = {};
    for (const id of [r1.headers.get('x-request-id'), r2.headers.get('x-request-id')]) {
      const rec = w.audit().find((r) => r.request_id === id)!;
      for (const counts of [rec.redaction.counts, rec.redaction.response_counts]) {
        for (const [k, v] of Object.entries(counts as Record<string, number>)) audited[k] = (audited[k] ?? 0) + v;
      }
    }
    expect(Object.keys(audited)).toEqual(
      expect.arrayContaining(['MAC_ADDRESS', 'OPENAI_API_KEY', 'URL_CREDENTIALS', 'IBAN_CODE', 'AWS_ACCESS_KEY_ID', 'GITHUB_TOKEN', 'EMAIL_ADDRESS', 'CUSTOMER_ID', 'SECRET_VALUE']),
    );
    // The metric agrees with the audit records, name for name: nothing folded into `custom`.
    expect(delta(before, await redactionCounts())).toEqual(audited);
  });
});

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}

describe('/metrics exposition', () => {
  it('passes promtool check metrics after traffic', async () => {
    const bot = await w.signer.token('support', 'ticket-bot');
    const r = await postChat(w.addresses.http, bot, { model: 'gpt-4o-mini', messages: [], warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hi' } } });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
    expect(text).toContain('warden_nodejs_active_handles');
    // Every series carries the config's environment.name (README: Metrics), process metrics too.
    const samples = text.split('\n').filter((l) => l.startsWith('warden_'));
    expect(samples.length).toBeGreaterThan(50);
    for (const line of samples) expect(line, line).toContain('environment="test"');
    const { code, output } = await promtoolCheck(text);
    expect(output).toBe('');
    expect(code).toBe(0);
  });
});
