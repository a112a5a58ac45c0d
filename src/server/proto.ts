/**
 * Loads Warden's .proto files once (gateway + standard health) with @grpc/proto-loader.
 * The proto directory is found relative to this file both in `src/` (tsx) and `dist/src/` (built).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const GATEWAY_PROTO = 'warden/v1/gateway.proto';
export const HEALTH_PROTO = 'grpc/health/v1/health.proto';

/** The repository's (or image's) `proto/` directory. */
export function protoDir(): string {
  for (const rel of ['../../proto/', '../../../proto/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir + GATEWAY_PROTO)) return dir;
  }
  throw new Error('proto directory not found next to the warden sources');
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let definition: protoLoader.PackageDefinition | undefined;
let cached: grpc.GrpcObject | undefined;

/** The protos' message and service definitions, descriptors included. */
export function protoDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync([GATEWAY_PROTO, HEALTH_PROTO], { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
  return definition;
}

/** The loaded package tree: `warden.v1.PromptGateway`, `grpc.health.v1.Health`. */
export function loadProtos(): grpc.GrpcObject {
  cached ??= grpc.loadPackageDefinition(protoDefinition());
  return cached;
}

/** Walks `a.b.C` in a loaded package tree. */
export function lookupService(root: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`service ${path} not found in protos`);
  return node as grpc.ServiceClientConstructor;
}
