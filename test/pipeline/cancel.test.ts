/**
 * RequestSignal: the cheap cancellation the HTTP ingress gives each request. It must behave as
 * undici expects of an EventEmitter signal, so a real upstream call is aborted by it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { onAbort, RequestSignal } from '../../src/pipeline/cancel.js';

describe('RequestSignal', () => {
  it('aborts once, keeps the first reason, and tells each listener once', () => {
    const s = new RequestSignal();
    const heard: unknown[] = [];
    onAbort(s, () => heard.push(s.reason));
    expect(s.aborted).toBe(false);
    s.abort('first');
    s.abort('second');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('first');
    expect(heard).toEqual(['first']);
  });

  it('onAbort stops listening when asked, for both kinds of signal', () => {
    const mine = new RequestSignal();
    const web = new AbortController();
    let calls = 0;
    onAbort(mine, () => calls++)();
    onAbort(web.signal, () => calls++)();
    mine.abort('x');
    web.abort('y');
    expect(calls).toBe(0);
    onAbort(web.signal, () => calls++);
    const late = new AbortController();
    onAbort(late.signal, () => calls++);
    late.abort();
    expect(calls).toBe(1);
  });
});

describe('RequestSignal with undici', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it('aborts an upstream call in flight with its reason and closes the socket', async () => {
    let closed!: () => void;
    const socketClosed = new Promise<void>((r) => (closed = r));
    server = createServer((req) => {
      // Never answers; the request's socket closing proves the call was really abandoned.
      req.socket.once('close', () => closed());
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const signal = new RequestSignal();
    const call = pool.request({ method: 'POST', path: '/', body: 'x', signal });
    setTimeout(() => signal.abort(new Error('client went away')), 50);
    await expect(call).rejects.toThrow('client went away');
    await socketClosed;
    await pool.close();
  });

  it('refuses to start a call whose signal is already aborted', async () => {
    let requests = 0;
    server = createServer((_req, res) => {
      requests++;
      res.end('ok');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const signal = new RequestSignal();
    signal.abort(new Error('gone before start'));
    await expect(pool.request({ method: 'GET', path: '/', signal })).rejects.toThrow('gone before start');
    expect(requests).toBe(0);
    await pool.close();
  });
});
