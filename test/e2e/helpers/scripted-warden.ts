/**
 * A real Warden in front of a scripted upstream (scripted-upstream.ts), with a gRPC gateway
 * client: the setup of the answer tests, which script what the upstream answers next and read
 * what each real client receives.
 */
import OpenAI from 'openai';
import { gatewayClient } from './grpc.js';
import { startScriptedUpstream, type ScriptedUpstream } from './scripted-upstream.js';
import { startWarden, type WardenFixture } from './warden.js';

export interface ScriptedWarden {
  upstream: ScriptedUpstream;
  w: WardenFixture;
  gateway: any;
  /** The official openai client on Warden's HTTP listener, as `token`. */
  openai(token: string): OpenAI;
  close(): Promise<void>;
}

/** `completion` and `chunks` give what the upstream answers next (not streamed / streamed). */
export async function startScriptedWarden(completion: () => Record<string, unknown>, chunks: () => Array<Record<string, unknown>>): Promise<ScriptedWarden> {
  const upstream = await startScriptedUpstream(completion, chunks);
  const w = await startWarden({ upstreamUrl: upstream.url });
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
