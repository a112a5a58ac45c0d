/**
 * Signing keys for tests (real RSA and EC keys, generated per run).
 *
 * Why keys are re-imported from their own DER encoding rather than used as generated: on Node 20,
 * exporting a freshly generated key as JWK can deadlock. The JWK export holds the key's mutex
 * while it allocates; a garbage collection in that window destroys the finished key-generation
 * job, whose destructor takes the same mutex (seen in CI as a test worker hung in
 * `KeyGenJob::~KeyGenJob` under `ExportJWK`). A key imported from bytes shares its mutex with no
 * job, so exporting or signing with it cannot meet that destructor.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';

export interface TestKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A fresh key pair: RSA 2048 (RS256) or EC P-256 (ES256). */
export function testKeyPair(kind: 'rsa' | 'ec'): TestKeyPair {
  const generated = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateKey = createPrivateKey({ key: generated.privateKey.export({ type: 'pkcs8', format: 'der' }), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The public key as a JWK with the given members added (kid, alg, use). */
export async function publicJwk(pair: TestKeyPair, extra: Record<string, string>): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), ...extra };
}
