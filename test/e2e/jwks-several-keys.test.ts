/**
 * A key set in which several keys fit one token: a token without `kid` (every key of its type
 * fits), or a `kid` two keys share (an issuer publishing old and new key under one id while it
 * rotates). jose picks no key then; Warden tries each, as Kubernetes' own validator does, and a
 * token signed by one of them is accepted, a forged one refused as a bad signature.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { publicJwk, testKeyPair, type TestKeyPair } from '../keys.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { ISSUER, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let upstream: FakeUpstream;
let prepared: PreparedDir;
let runtime: Runtime;
let addresses: BoundAddresses;
let first: TestKeyPair;
let second: TestKeyPair;
let rogue: TestKeyPair;

/** A labs/raw-bot token signed with `pair`, under `kid` or none. */
function token(pair: TestKeyPair, kid: string | undefined): Promise<string> {
  return new SignJWT({ 'kubernetes.io': { namespace: 'labs', serviceaccount: { name: 'raw-bot', uid: 'u-1' } } })
    .setProtectedHeader(kid === undefined ? { alg: 'ES256' } : { alg: 'ES256', kid })
    .setIssuer(ISSUER)
    .setAudience('warden')
    .setSubject('system:serviceaccount:labs:raw-bot')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(pair.privateKey);
}

async function call(bearer: string): Promise<{ status: number; body: any }> {
  const res = await postChat(addresses.http, bearer, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({ upstreamUrl: upstream.url });
  first = testKeyPair('ec');
  second = testKeyPair('ec');
  rogue = testKeyPair('ec');
  // Two keys under one kid, and the fixture's own key (which fits a token without kid too).
  const keys = [
    await publicJwk(first, { kid: 'shared', alg: 'ES256', use: 'sig' }),
    await publicJwk(second, { kid: 'shared', alg: 'ES256', use: 'sig' }),
    ...(prepared.signer.jwks as { keys: object[] }).keys,
  ];
  writeFileSync(join(prepared.dir, 'jwks.json'), JSON.stringify({ keys }));
  const config = loadConfig(prepared.configFile, {});
  runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }, { write: () => {} }), configDir: prepared.dir });
  addresses = await runtime.start();
});

afterAll(async () => {
  await runtime?.shutdown('test finished');
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

describe('several keys of the set fit the token', () => {
  it('a kid two keys share: a token signed by either is accepted, a forged one is a bad signature', async () => {
    expect((await call(await token(first, 'shared'))).status).toBe(200);
    expect((await call(await token(second, 'shared'))).status).toBe(200);
    const forged = await call(await token(rogue, 'shared'));
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatchObject({ code: 'unauthenticated', message: 'kubernetes authentication failed: signature verification failed' });
  });

  it('no kid: the key that signed it is found among the keys of its type', async () => {
    expect((await call(await token(second, undefined))).status).toBe(200);
    expect((await call(await token(first, undefined))).status).toBe(200);
    const forged = await call(await token(rogue, undefined));
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatchObject({ code: 'unauthenticated', message: 'kubernetes authentication failed: signature verification failed' });
    // The fixture's key, with its kid, is unaffected.
    expect((await call(await prepared.signer.token('labs', 'raw-bot'))).status).toBe(200);
  });
});
