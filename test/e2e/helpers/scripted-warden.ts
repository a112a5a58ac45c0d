/**
 * A real Warden in front of a scripted upstream (scripted-upstream.ts), with a gRPC gateway
 * client: the setup of the answer tests, which script what the upstream answers next and read
 * what each real client receives.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll } from 'vitest';
import { gatewayClient } from './grpc.js';
import { startScriptedUpstream, type ScriptedUpstream } from './scripted-upstream.js';
import { startWarden, type FixtureOptions, type WardenFixture } from './warden.js';

type Completion = () => Record<string, unknown>;
type Chunks = () => Array<Record<string, unknown>>;

export interface ScriptedWarden {
  upstream: ScriptedUpstream;
  w: WardenFixture;
  gateway: any;
  /** The official openai client on Warden's HTTP listener, as `token`. */
  openai(token: string): OpenAI;
  close(): Promise<void>;
}

/** `completion` and `chunks` give what the upstream answers next (not streamed / streamed); `fixture`: Warden's config beyond the defaults. */
export async function startScriptedWarden(completion: Completion, chunks: Chunks, fixture: Omit<FixtureOptions, 'upstreamUrl'> = {}): Promise<ScriptedWarden> {
  const upstream = await startScriptedUpstream(completion, chunks);
  const w = await startWarden({ ...fixture, upstreamUrl: upstream.url });
  const gateway = gatewayClient(w.addresses.grpc);
  return {
    upstream,
    w,
    gateway,
    openai: (token) => new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 }),
    async close() {
      gateway.close();
      await w.close();
      await upstream.close();
    },
  };
}

/** A started scripted Warden and one caller of it. */
export interface ScriptedCaller extends Omit<ScriptedWarden, 'close'> {
  /** The caller's token (a projected service-account token of `caller`). */
  readonly token: string;
  /** The official openai client on Warden's HTTP listener, as the caller. */
  readonly client: OpenAI;
}

/**
 * Starts a scripted Warden in a `beforeAll` of the suite or `describe` block it is called in, with
 * a token and an openai client for `caller` (namespace, service account), and closes it in an
 * `afterAll`. What it returns reads the started Warden: its members may be read in tests and in
 * hooks registered after this call, and throw before the Warden is started.
 */
export function useScriptedWarden(
  completion: Completion,
  chunks: Chunks,
  caller: readonly [namespace: string, serviceAccount: string],
  fixture: Omit<FixtureOptions, 'upstreamUrl'> = {},
): ScriptedCaller {
  let started: (ScriptedWarden & { token: string; client: OpenAI }) | undefined;
  beforeAll(async () => {
    const scripted = await startScriptedWarden(completion, chunks, fixture);
    try {
      const token = await scripted.w.signer.token(...caller);
      started = { ...scripted, token, client: scripted.openai(token) };
    } catch (e) {
      await scripted.close();
      throw e;
    }
  });
  afterAll(async () => {
    const s = started;
    started = undefined;
    await s?.close();
  });
  const get = () => {
    if (started === undefined) throw new Error('useScriptedWarden: read outside its beforeAll/afterAll (the Warden is not started)');
    return started;
  };
  return {
    get upstream() {
      return get().upstream;
    },
    get w() {
      return get().w;
    },
    get gateway() {
      return get().gateway;
    },
    get token() {
      return get().token;
    },
    get client() {
      return get().client;
    },
    openai: (token) => get().openai(token),
  };
}
