/**
 * A provider's base_url may carry a key in its query (`https://host/v1?key=…`, as Azure and
 * Gemini users pass one): Warden sends it, and it appears nowhere else: not in an error, a log
 * line, an audit record, a metric label or a dry run, whichever way the call goes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream, type UpstreamMode } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';
import { runMain } from './helpers/cli.js';

const KEY = 'QUERYKEY-Zq7pLm2Xw9';
const CALL = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'hi' } } };

let upstream: FakeUpstream;
let w: WardenFixture;
let down: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: `${upstream.url}?api-version=2024-06-01&key=${KEY}` });
  down = await startWarden({ upstreamUrl: `http://127.0.0.1:9/v1?key=${KEY}` });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await down?.close();
  await upstream?.close();
});

async function metrics(f: WardenFixture): Promise<string> {
  return (await fetch(`${f.addresses.admin}/metrics`)).text();
}

describe('a key in the query of a provider base_url', () => {
  it('is sent upstream with the call', async () => {
    upstream.mode = 'ok';
    const res = await postChat(w.addresses.http, token, CALL);
    expect(res.status, await res.text()).toBe(200);
    expect(upstream.calls.at(-1)!.url).toBe(`/v1/chat/completions?api-version=2024-06-01&key=${KEY}`);
  });

  for (const mode of ['ok', 'error500', 'garbage', 'rate-limited', 'bad-request'] as UpstreamMode[]) {
    for (const stream of [false, true]) {
      it(`${mode}${stream ? ', streamed' : ''}: not in the answer or error`, async () => {
        upstream.mode = mode;
        const res = await postChat(w.addresses.http, token, { ...CALL, stream });
        expect(await res.text()).not.toContain(KEY);
      });
    }
  }

  it('unreachable: not in the error', async () => {
    const t = await down.signer.token('support', 'ticket-bot');
    const res = await postChat(down.addresses.http, t, CALL);
    const body = await res.text();
    expect(res.status, body).toBe(502);
    expect(body).not.toContain(KEY);
  });

  it('in no log line, audit record or metric', async () => {
    for (const f of [w, down]) {
      expect(f.logs.join('')).not.toContain(KEY);
      expect(JSON.stringify(f.audit())).not.toContain(KEY);
      expect(await metrics(f)).not.toContain(KEY);
    }
  });

  it('warden render (the dry run) prints no part of it', async () => {
    const out = await runMain(['render', '--config', `${w.dir}/warden.yaml`, '--template', 'support/ticket-summary@2', '--principal', 'support/ticket-bot', '--var', 'ticket_id=T-1', '--var', 'customer_message=hi']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('Upstream: provider=upstream model=gpt-4o-mini');
    expect(out.stdout + out.stderr).not.toContain(KEY);
  });
});
