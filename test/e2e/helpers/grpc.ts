/**
 * gRPC clients generated at run time from the repository's protos with @grpc/proto-loader, as an
 * application would build them — deliberately not through Warden's own loader (src/server/proto.ts),
 * so the tests see the wire contract the proto files publish.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { REPO } from './cli.js';

let root: any;

function packageRoot(): any {
  root ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(['warden/v1/gateway.proto', 'grpc/health/v1/health.proto'], {
      includeDirs: [join(REPO, 'proto')],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    }),
  );
  return root;
}

/** A `warden.v1.PromptGateway` client for `address` (plaintext loopback). */
export function gatewayClient(address: string): any {
  return new (packageRoot().warden.v1.PromptGateway)(address, grpc.credentials.createInsecure());
}

/** A `warden.v1.PromptRequest` as the bytes of one gRPC message (for raw HTTP/2 calls). */
export function encodePromptRequest(request: object): Buffer {
  return packageRoot().warden.v1.PromptGateway.service.Complete.requestSerialize(request) as Buffer;
}

/** A `grpc.health.v1.Health` client for `address`. */
export function healthClient(address: string): any {
  return new (packageRoot().grpc.health.v1.Health)(address, grpc.credentials.createInsecure());
}

/** Call metadata carrying `authorization: Bearer <token>` plus any `extra` entries. */
export function bearerMetadata(token: string, extra: Record<string, string> = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

/**
 * How a server-streaming call ended: the messages it received, and the ServiceError it ended with
 * (undefined when it ended OK). Never rejects: the messages before an error are kept.
 */
export function streamOutcome(call: grpc.ClientReadableStream<any>): Promise<{ got: any[]; err?: any }> {
  const got: any[] = [];
  return new Promise((resolve) => {
    call.on('data', (c: any) => got.push(c));
    call.on('end', () => resolve({ got }));
    call.on('error', (err: grpc.ServiceError) => resolve({ got, err }));
  });
}

/** The messages of a server-streaming call, once it has ended (rejects with the ServiceError). */
export async function streamMessages(call: grpc.ClientReadableStream<any>): Promise<any[]> {
  const { got, err } = await streamOutcome(call);
  if (err !== undefined) throw err;
  return got;
}

/** Calls a unary method and resolves with its response (rejects with the ServiceError). */
export function unaryCall(client: any, method: string, request: object, metadata = new grpc.Metadata()): Promise<any> {
  return new Promise((resolve, reject) => client[method](request, metadata, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))));
}

/**
 * google.rpc types with the field numbers of googleapis' google/rpc/status.proto and
 * error_details.proto (and protobuf's Any and Duration), written out here rather than loaded from
 * Warden's proto/google/rpc/: the tests check the trailer against Google's definitions, not
 * against Warden's copy of them.
 */
const RPC_TYPES = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 } as protobuf.IMapField,
              },
            },
          },
        },
      },
    },
  },
});

const DECODE: protobuf.IConversionOptions = { longs: Number, defaults: true };

export interface RpcStatus {
  code: number;
  message: string;
  /** The details' type URLs, in order. */
  types: string[];
  errorInfo?: { reason: string; domain: string; metadata: Record<string, string> };
  retryInfo?: { retry_delay: { seconds: number; nanos: number } };
}

/** The `google.rpc.Status` in an error's `grpc-status-details-bin` trailer (undefined if none). */
export function rpcStatus(err: { metadata?: grpc.Metadata | undefined }): RpcStatus | undefined {
  if (!err.metadata) return undefined;
  const [bin, ...more] = err.metadata.get('grpc-status-details-bin');
  if (bin === undefined) return undefined;
  if (more.length > 0 || !Buffer.isBuffer(bin)) throw new Error('grpc-status-details-bin must be one binary value');
  const type = (name: string) => RPC_TYPES.lookupType(`google.rpc.${name}`);
  const status = type('Status').toObject(type('Status').decode(bin), DECODE) as { code: number; message: string; details: Array<{ type_url: string; value: Uint8Array }> };
  const out: RpcStatus = { code: status.code, message: status.message, types: status.details.map((d) => d.type_url) };
  for (const d of status.details) {
    const name = d.type_url.replace('type.googleapis.com/google.rpc.', '');
    if (name === 'ErrorInfo') out.errorInfo = type(name).toObject(type(name).decode(d.value), DECODE) as RpcStatus['errorInfo'];
    if (name === 'RetryInfo') out.retryInfo = type(name).toObject(type(name).decode(d.value), DECODE) as RpcStatus['retryInfo'];
  }
  return out;
}

/** A protobuf base-128 varint, as a hand-written wire message needs it (bigint: past 2^53 too). */
export function varint(n: bigint): Buffer {
  const out: number[] = [];
  do {
    out.push(Number(n & 0x7fn) | (n > 0x7fn ? 0x80 : 0));
    n >>= 7n;
  } while (n > 0n);
  return Buffer.from(out);
}
