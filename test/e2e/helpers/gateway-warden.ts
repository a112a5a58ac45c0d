/**
 * A real Warden in front of the loopback OpenAI-compatible upstream (upstream.ts), with a caller's
 * token and a gRPC gateway client: the setup that most e2e files share.
 */
import { gatewayClient } from './grpc.js';
import { startUpstream, type FakeUpstream } from './upstream.js';
import { startWarden, type FixtureOptions, type WardenFixture } from './warden.js';

export interface GatewayWarden {
  upstream: FakeUpstream;
  w: WardenFixture;
  gateway: any;
  /** A token of `caller` (namespace, service account), signed by the fixture's issuer. */
  token: string;
  close(): Promise<void>;
}

/** `opts`: the fixture's options but the upstream URL; `caller` defaults to support/ticket-bot. */
export async function startGatewayWarden(opts: Omit<FixtureOptions, 'upstreamUrl'> = {}, caller: [string, string] = ['support', 'ticket-bot']): Promise<GatewayWarden> {
  const upstream = await startUpstream();
  const w = await startWarden({ ...opts, upstreamUrl: upstream.url });
  const token = await w.signer.token(caller[0], caller[1]);
  const gateway = gatewayClient(w.addresses.grpc);
  return {
    upstream,
    w,
    gateway,
    token,
    async close() {
      gateway.close();
      await w.close();
      await upstream.close();
    },
  };
}
