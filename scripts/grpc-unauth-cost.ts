/**
 * What a gRPC caller without valid credentials can make Warden spend on one request message, and
 * what decoding costs an authenticated call.
 *
 * 1. A real Warden (in this process, run through tsx) and a gRPC client that sends ready-made
 *    bytes (no client-side encoding in the figure): the median time to the UNAUTHENTICATED answer
 *    for a message of `entries` empty `messages` entries (just under limits.max_json_values
 *    fields, ~200 KB), and for a small message, with a bad token. Client and server share the
 *    event loop, so the time is the server's work plus two loopback hops.
 * 2. In-process, the request deserializer alone and then the decode of an ordinary authenticated
 *    request (a 4 KB prompt, a few turns): median µs per call. The decode is now done after the
 *    credentials, so the two are timed together, as one call pays them.
 *
 *   npx tsx scripts/grpc-unauth-cost.ts [entries=99998] [calls=15]
 *
 * Not a test: the figures depend on the machine. README (Status and limits) quotes them.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { withUtf8Check } from '../src/server/grpc-utf8.js';
import { loadProtos, lookupService, protoDefinition } from '../src/server/proto.js';
import { startUpstream } from '../test/e2e/helpers/upstream.js';
import { startWarden } from '../test/e2e/helpers/warden.js';

const entries = Number(process.argv[2] ?? 99_998);
const calls = Number(process.argv[3] ?? 15);

const service = lookupService(loadProtos(), 'warden.v1.PromptGateway').service;
const encode = (request: object): Buffer => service.Complete!.requestSerialize(request);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A Complete call that sends `bytes` as they are (identity serializer) and resolves with its status. */
function rawComplete(client: grpc.Client, bytes: Buffer, metadata: grpc.Metadata): Promise<grpc.status> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/warden.v1.PromptGateway/Complete',
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      metadata,
      (err) => resolve(err ? err.code : grpc.status.OK),
    );
  });
}

async function refusalTimes(): Promise<void> {
  const upstream = await startUpstream();
  const w = await startWarden({
    upstreamUrl: upstream.url,
    limits: 'limits: { max_body_bytes: 1048576, client_timeout_ms: 30000, upstream_timeout_ms: 5000, shutdown_grace_ms: 2000 }',
  });
  const client = new grpc.Client(w.addresses.grpc, grpc.credentials.createInsecure());
  try {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer not-a-jwt');
    const big = encode({ model: 'gpt-4o-mini', messages: Array.from({ length: entries }, () => ({})) });
    const small = encode({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    for (const [name, bytes] of [['small message', small], [`${entries} empty entries (${big.length} bytes)`, big]] as const) {
      const times: number[] = [];
      for (let i = 0; i < calls + 2; i++) {
        const t = performance.now();
        const status = await rawComplete(client, bytes, md);
        if (status !== grpc.status.UNAUTHENTICATED) throw new Error(`${name}: status ${status}, not UNAUTHENTICATED`);
        if (i >= 2) times.push(performance.now() - t); // the first two warm up
      }
      console.log(`bad token, ${name}: median ${median(times).toFixed(1)} ms to UNAUTHENTICATED (${calls} calls)`);
    }
  } finally {
    client.close();
    await w.close();
    await upstream.close();
  }
}

/** The deserializer, then (when it hands back an undecoded message) the decode, per call. */
function decodeCost(): void {
  const checked = withUtf8Check(service, protoDefinition(), 100_000).Complete!;
  const prompt = 'The quick brown fox jumps over the lazy dog; '.repeat(92);
  const bytes = encode({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: prompt },
      { role: 'user', content: 'Summarise the ticket below.' },
      { role: 'assistant', content: 'Which ticket?' },
      { role: 'user', content: 'T-1042: the export button does nothing on Safari.' },
    ],
    max_tokens: 256,
    temperature: 0.2,
    params_json: '{"user":"u-17"}',
  });
  const one = (): unknown => {
    const out = checked.requestDeserialize(bytes) as { decode?: () => unknown };
    return typeof out.decode === 'function' ? out.decode() : out;
  };
  const batches: number[] = [];
  for (let b = 0; b < 30; b++) {
    const n = 2000;
    const t = performance.now();
    for (let i = 0; i < n; i++) one();
    batches.push(((performance.now() - t) * 1000) / n);
  }
  console.log(`authenticated call, ${bytes.length}-byte request: deserialize + decode median ${median(batches.slice(5)).toFixed(2)} µs per call`);
}

await refusalTimes();
decodeCost();
