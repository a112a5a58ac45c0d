/**
 * `warden serve` as a real child process: SIGHUP reloads, SIGTERM lets the in-flight request
 * finish, flushes the audit log and exits 0.
 */
import { once } from 'node:events';
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { spawnWarden, watchServe } from './helpers/cli.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let upstream: FakeUpstream;
let prepared: PreparedDir;

beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

const V3 = `
---
id: support/ticket-summary
version: 3
owner: support-platform@example.com
sensitivity: internal
description: Added before SIGHUP.
approvals: [{ by: dana.lee@example.com, ticket: SEC-2002 }]
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  ticket_id: { type: string, max_length: 32 }
messages:
  - { role: user, content: "v3 {{ticket_id}}" }
`;

describe('warden serve lifecycle', () => {
  it('SIGHUP reloads; SIGTERM finishes the in-flight request, flushes audit and exits 0', { timeout: 60_000 }, async () => {
    const child = spawnWarden(['serve', '--config', prepared.configFile]);
    const { lines, listening, exited } = watchServe(child);
    const addr = await listening;
    const token = await prepared.signer.token('support', 'ticket-bot');
    const readyz = async () => (await (await fetch(`${addr.admin}/readyz`)).json()) as any;

    // SIGHUP: the watch is off in this config, so only the signal can pick up the change.
    const before = (await readyz()).template_revision;
    appendFileSync(join(prepared.dir, 'templates', 'support', 'ticket-summary.yaml'), V3);
    child.kill('SIGHUP');
    await eventually(async () => (await readyz()).template_revision !== before, 50);

    // SIGTERM while a request is in flight upstream.
    upstream.mode = 'delayed';
    const callsBefore = upstream.calls.length;
    const pending = postChat(addr.http, token, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@3', variables: { ticket_id: 'T-77' } } });
    await eventually(() => upstream.calls.length > callsBefore, 5);
    child.kill('SIGTERM');

    const res = await pending;
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].message.content).toBe('upstream saw: v3 T-77');
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.includes('"shutting down"'))).toBe(true);
    expect(lines.some((l) => l.includes('"shutdown complete"') && l.includes('"drained"'))).toBe(true);

    // The in-flight request's audit record reached the file before exit.
    const records = readFileSync(prepared.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as any);
    expect(records.at(-1).template).toEqual({ id: 'support/ticket-summary', version: 3, sensitivity: 'internal' });
    expect(records.at(-1).status).toBe('ok');
    upstream.mode = 'ok';
  });

  it('SIGHUP after a rotation (the file renamed away) writes the next record to a new file at the path, continuing the chain', { timeout: 60_000 }, async () => {
    const child = spawnWarden(['serve', '--config', prepared.configFile]);
    const { lines, listening, exited } = watchServe(child);
    const addr = await listening;
    const token = await prepared.signer.token('support', 'ticket-bot');
    const body = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-79', customer_message: 'hi' } } };
    expect((await postChat(addr.http, token, body)).status).toBe(200);
    const rotated = `${prepared.auditFile}.1`;
    renameSync(prepared.auditFile, rotated);
    child.kill('SIGHUP');
    await eventually(() => lines.some((l) => l.includes('"audit sinks reopened"') && l.includes('"SIGHUP"')), 5);
    expect(existsSync(prepared.auditFile)).toBe(true);
    expect((await postChat(addr.http, token, body)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const last = JSON.parse(readFileSync(rotated, 'utf8').trim().split('\n').at(-1)!) as any;
    const next = JSON.parse(readFileSync(prepared.auditFile, 'utf8').trim().split('\n')[0]!) as any;
    expect(next.seq).toBe(last.seq + 1);
    expect(next.prev_hash).toBe(last.hash);
  });

  describe('a signal during the start', () => {
    let devDir: PreparedDir;
    // The dev method makes serve log a config warning before it loads anything: the test's cue
    // that the start is under way.
    beforeAll(async () => {
      devDir = await prepareWardenDir({ upstreamUrl: upstream.url, methods: '[kubernetes, dev]' });
    });
    afterAll(() => rmSync(devDir.dir, { recursive: true, force: true }));

    function startingServe(dir: PreparedDir = devDir) {
      const child = spawnWarden(['serve', '--config', dir.configFile]);
      const serve = watchServe(child);
      serve.listening.catch(() => undefined); // a test that stops it early never sees it listen
      const warned = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (serve.lines.some((l) => l.includes('identity method \\"dev\\" is enabled'))) {
            clearInterval(check);
            resolve();
          }
        }, 1);
        void serve.exited.then(() => clearInterval(check));
      });
      return { child, ...serve, warned };
    }

    it('SIGHUP is logged and done once started, instead of killing the process', { timeout: 60_000 }, async () => {
      const { child, lines, listening, exited, warned } = startingServe();
      await warned;
      child.kill('SIGHUP');
      const addr = await listening;
      expect((await fetch(`${addr.admin}/readyz`)).status).toBe(200);
      await eventually(() => lines.some((l) => l.includes('"reload requested during the start; done once started"')), 5);
      // The reload it asked for ran once started (it reopens the audit sinks too).
      await eventually(() => lines.some((l) => l.includes('"audit sinks reopened"') && l.includes('"SIGHUP"')), 5);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    });

    it('SIGTERM stops it cleanly (exit 0) once the start is done', { timeout: 60_000 }, async () => {
      const { child, lines, exited, warned } = startingServe();
      await warned;
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.some((l) => l.includes('"shutdown requested during the start; stopping once started"'))).toBe(true);
      expect(lines.some((l) => l.includes('"shutdown complete"'))).toBe(true);
    });

    describe('a start that takes its time', () => {
      // Nothing in the start waits for the network, and each step that could stall has a deadline
      // (reload.timeout_ms, secrets.fetch_timeout_ms), so a slow start is made of a large template
      // set: loading it keeps the start under way for about a second, yielding between files.
      let slowDir: PreparedDir;
      beforeAll(async () => {
        const files: Record<string, string> = {};
        for (let i = 0; i < 2000; i++) {
          files[`templates/bulk/t${i}.yaml`] =
            `id: bulk/t${i}\nversion: 1\nowner: a@example.com\nsensitivity: internal\ndescription: d\napprovals: [{ by: lee.chen@example.com, ticket: SEC-1 }]\n` +
            `retire_after: 2099-12-31\nmodels: [echo]\nvariables:\n  x: { type: string, max_length: 64 }\nmessages:\n  - { role: user, content: "Say {{x}}" }\n`;
        }
        slowDir = await prepareWardenDir({ upstreamUrl: upstream.url, methods: '[kubernetes, dev]', files });
      });
      afterAll(() => rmSync(slowDir.dir, { recursive: true, force: true }));

      it('a second SIGTERM or SIGINT exits at once, non-zero, with a log line, instead of waiting for the start', { timeout: 60_000 }, async () => {
        const { child, lines, exited, warned } = startingServe(slowDir);
        await warned;
        child.kill('SIGTERM');
        await eventually(() => lines.some((l) => l.includes('"shutdown requested during the start; stopping once started"')), 1);
        // A different signal, so the two cannot merge into one pending signal.
        child.kill('SIGINT');
        expect(await exited).toBe(130);
        const line = lines.find((l) => l.includes('"second signal during the start: exiting now without waiting for it"'));
        expect(line && JSON.parse(line)).toMatchObject({ level: 'warn', signal: 'SIGINT', first_signal: 'SIGTERM' });
        // It never got to serve: the start was abandoned, not finished and drained.
        expect(lines.some((l) => l.includes('"warden listening"'))).toBe(false);
        expect(lines.some((l) => l.includes('"shutdown complete"'))).toBe(false);
      });
    });
  });

  it('exits 0 after "shutdown complete" though a library timer and idle kept-alive connections would hold the process', { timeout: 60_000 }, async () => {
    // What could keep a drained process up is made to last far past the test's timeout, so a
    // shutdown that waits for it fails the test by hanging (no wall-clock bound): a library's
    // ref'd interval (preloaded into the child), an upstream that asks for a 600 s keep-alive
    // (undici keeps its pooled socket for the hint less 2 s), and Warden's own keep-alive
    // (idle_timeout_ms) for the caller's connection.
    const upstreamSockets: Socket[] = [];
    const lingering = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: 'chatcmpl-linger',
            object: 'chat.completion',
            created: 1_700_000_000,
            model: 'gpt-4o-mini',
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, logprobs: null, finish_reason: 'stop' }],
          }),
        ),
      );
    });
    lingering.keepAliveTimeout = 600_000;
    lingering.on('connection', (s) => upstreamSockets.push(s));
    lingering.listen(0, '127.0.0.1');
    await once(lingering, 'listening');
    const p = await prepareWardenDir({
      upstreamUrl: `http://127.0.0.1:${(lingering.address() as AddressInfo).port}/v1`,
      limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 5000, shutdown_grace_ms: 2000, idle_timeout_ms: 600000 }',
    });
    const agent = new Agent({ keepAlive: true });
    const libraryTimer = '--import=data:text/javascript,setInterval(()=>{},2**30)';
    const child = spawnWarden(['serve', '--config', p.configFile], { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${libraryTimer}` });
    // Also when the test times out (which ends it without its finally): the child would outlive it.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    try {
      const { lines, listening, exited } = watchServe(child);
      const addr = await listening;
      const token = await p.signer.token('support', 'ticket-bot');
      const answer = await new Promise<{ status: number; socket: Socket }>((resolve, reject) => {
        const req = request(`${addr.http}/v1/chat/completions`, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, socket: req.socket! }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-79', customer_message: 'hi' } } }));
      });
      expect(answer.status).toBe(200);
      // Idle and kept: the caller's connection in its agent, Warden's upstream socket in its pool.
      expect(upstreamSockets).toHaveLength(1);
      expect(upstreamSockets[0]!.destroyed).toBe(false);
      expect(answer.socket.destroyed).toBe(false);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.some((l) => l.includes('"shutdown complete"'))).toBe(true);
    } finally {
      agent.destroy();
      lingering.closeAllConnections();
      lingering.close();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('a second SIGTERM, a SIGINT or a SIGHUP during the drain neither kills the process nor cuts the request', { timeout: 60_000 }, async () => {
    const child = spawnWarden(['serve', '--config', prepared.configFile]);
    const { lines, listening, exited } = watchServe(child);
    const addr = await listening;
    const token = await prepared.signer.token('support', 'ticket-bot');
    upstream.mode = 'delayed';
    const callsBefore = upstream.calls.length;
    const pending = postChat(addr.http, token, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-78', customer_message: 'hi' } } });
    await eventually(() => upstream.calls.length > callsBefore, 5);
    child.kill('SIGTERM');
    await eventually(() => lines.some((l) => l.includes('"shutting down"')), 5);
    child.kill('SIGHUP');
    child.kill('SIGTERM');
    child.kill('SIGINT');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.includes('already shutting down'))).toBe(true);
    expect(lines.some((l) => l.includes('reload skipped: shutting down'))).toBe(true);
    const records = readFileSync(prepared.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as any);
    expect(records.at(-1)).toMatchObject({ status: 'ok', template: { id: 'support/ticket-summary', version: 2 } });
    upstream.mode = 'ok';
  });
});
