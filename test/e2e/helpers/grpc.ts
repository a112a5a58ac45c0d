/**
 * gRPC clients generated at run time from the repository's protos with @grpc/proto-loader, as an
 * application would build them — deliberately not through Warden's own loader (src/server/proto.ts),
 * so the tests see the wire contract the proto files publish.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
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

/** Calls a unary method and resolves with its response (rejects with the ServiceError). */
export function unaryCall(client: any, method: string, request: object, metadata = new grpc.Metadata()): Promise<any> {
  return new Promise((resolve, reject) => client[method](request, metadata, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))));
}
