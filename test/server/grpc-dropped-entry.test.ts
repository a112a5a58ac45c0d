/**
 * droppedEntryLine: what Warden writes for grpc-js's "Failed to add metadata entry NAME: VALUE"
 * line. The e2e test (test/e2e/grpc-metadata.test.ts) reads a real process's stderr; the rate
 * limit is checked here, with the clock given, since a test cannot wait ten seconds honestly.
 */
import { describe, expect, it } from 'vitest';
import { droppedEntryLine } from '../../src/server/grpc.js';

const line = (name: string, value: string) =>
  `Failed to add metadata entry ${name}: ${value}. Metadata string value "${value}" contains illegal characters. For more information see https://github.com/grpc/grpc-node/issues/1173`;

describe('droppedEntryLine', () => {
  it('names a valid key, never the value; another name is not repeated; at most one line per 10 s, counting the rest', () => {
    const t = 1e12;
    expect(droppedEntryLine(line('authorization', 'Bearer CANARY-é'), t)).toBe(
      "grpc-js dropped the metadata entry authorization (its value is not printable ASCII) from a call's metadata; the value is not shown",
    );
    expect(droppedEntryLine(line('x-note', 'CANARY-é'), t + 1)).toBeUndefined();
    expect(droppedEntryLine(line('x-note', 'CANARY-é'), t + 9_999)).toBeUndefined();
    expect(droppedEntryLine(`Failed to add metadata entry X"Y: CANARY. Metadata key "X"Y" contains illegal characters`, t + 10_000)).toBe(
      "grpc-js dropped a metadata entry whose name gRPC does not allow from a call's metadata; the value is not shown; 2 more dropped since the last such line",
    );
  });
});
