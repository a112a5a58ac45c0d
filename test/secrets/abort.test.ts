/**
 * The resolver and a request that goes away: every promise the resolver creates is handled on
 * every path (an unhandled rejection ends a Node process), and the caller learns why it stopped
 * (`cancelled`, or the abort's own WardenError), never a secret backend fault.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RequestSignal } from '../../src/pipeline/cancel.js';
import { WardenError } from '../../src/pipeline/errors.js';
import type { SecretProvider } from '../../src/pipeline/ports.js';
import { createFileSecretProvider, createSecretResolver } from '../../src/secrets/index.js';

const unhandled: unknown[] = [];
const listener = (reason: unknown) => void unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', listener);
});
afterEach(() => {
  process.off('unhandledRejection', listener);
});

/** Lets every pending rejection settle and Node's unhandled-rejection check run. */
const settle = () => new Promise((r) => setTimeout(r, 50));

/** A provider whose fetches fail when `fail()` is called (until then they wait). */
function failingLater(): { provider: SecretProvider; fail: () => void } {
  let fail!: () => void;
  const gate = new Promise<never>((_, reject) => (fail = () => reject(new Error('backend down'))));
  gate.catch(() => undefined);
  return { provider: { scheme: 'env', fetch: () => gate }, fail };
}

async function errorOf(p: Promise<unknown>): Promise<WardenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  return err as WardenError;
}

describe('resolver and an aborted request', () => {
  it('a signal aborted before resolve: cancelled, and the failing fetch is not an unhandled rejection', async () => {
    const r = createSecretResolver({ providers: [createFileSecretProvider()] });
    const ac = new AbortController();
    ac.abort();
    const err = await errorOf(r.resolve(['file:///nonexistent/warden-abort-test'], ac.signal));
    expect(err.code).toBe('cancelled');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a remembered failure handed to an aborted request is not an unhandled rejection', async () => {
    const r = createSecretResolver({ providers: [createFileSecretProvider()], failureTtlMs: 60_000 });
    const ref = 'file:///nonexistent/warden-abort-test';
    expect((await errorOf(r.resolve([ref]))).code).toBe('secret_unavailable');
    const ac = new AbortController();
    ac.abort();
    expect((await errorOf(r.resolve([ref], ac.signal))).code).toBe('cancelled');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a request that leaves while waiting ends cancelled; the shared fetch failing later is handled', async () => {
    const { provider, fail } = failingLater();
    const r = createSecretResolver({ providers: [provider] });
    const signal = new RequestSignal();
    const waiting = r.resolve(['env://A', 'env://B'], signal);
    signal.abort(new Error('client went away'));
    const err = await errorOf(waiting);
    expect(err.code).toBe('cancelled');
    // Not a made-up ref such as "env://A, env://B".
    expect(JSON.stringify(err.details ?? {})).not.toContain(', ');
    fail();
    await settle();
    expect(unhandled).toEqual([]);
  });

  it("ends with the abort's own WardenError when the reason is one (shutdown cut the request)", async () => {
    const { provider, fail } = failingLater();
    const r = createSecretResolver({ providers: [provider] });
    const signal = new RequestSignal();
    const waiting = r.resolve(['env://A'], signal);
    signal.abort(new WardenError('shutting_down', 'warden is shutting down'));
    expect((await errorOf(waiting)).code).toBe('shutting_down');
    fail();
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a bad ref after a pending one fails the request, and the pending fetch failing later is handled', async () => {
    const { provider, fail } = failingLater();
    const r = createSecretResolver({ providers: [provider] });
    const err = await errorOf(r.resolve(['env://A', 's3://bucket/key']));
    expect(err.code).toBe('secret_unavailable');
    expect(err.message).toContain('s3://bucket/key');
    fail();
    await settle();
    expect(unhandled).toEqual([]);
  });
});
