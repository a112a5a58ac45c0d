/**
 * A key removed from the JWKS file (a rotation, or a compromised key withdrawn) stops being
 * honoured while the workloads keep presenting tokens signed with it: Warden looks at the file
 * again on its own (not only when a token names an unknown key), and a token it verified with
 * the removed key is not answered from its verified-token cache any more.
 */
import { randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwk, testKeyPair } from '../keys.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, rawBotToken, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

const status = async (token: string) => {
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  await res.text();
  return res.status;
};

describe('JWKS file rotation', () => {
  it('a key removed from the file is refused within seconds, for new tokens and for tokens verified before', { timeout: 30_000 }, async () => {
    // The fixture's key signs `old`; it is verified now, and so remembered.
    const old = await w.signer.token('labs', 'raw-bot');
    expect(await status(old)).toBe(200);

    // The file now holds another key only. No token naming the new key arrives yet.
    const next = testKeyPair('ec');
    const file = join(w.dir, 'jwks.json');
    writeFileSync(`${file}.tmp`, JSON.stringify({ keys: [await publicJwk(next, { kid: 'rotated-key', alg: 'ES256', use: 'sig' })] }));
    renameSync(`${file}.tmp`, file);

    // Tokens signed with the removed key, new ones (the workloads keep minting them) and the
    // one verified before, stop working; a token of the new key works.
    await eventually(async () => (await status(await w.signer.claims({ 'kubernetes.io': { namespace: 'labs', serviceaccount: { name: 'raw-bot', uid: 'u-1' } }, sub: 'system:serviceaccount:labs:raw-bot', jti: randomUUID() }))) === 401, 200);
    expect(await status(old)).toBe(401);
    expect(await status(await rawBotToken(next, 'rotated-key'))).toBe(200);
    expect(await status(old)).toBe(401);
  });

  it('a file that withdraws every key (an empty set) is used: no token is accepted, not the keys it held before', { timeout: 30_000 }, async () => {
    const file = join(w.dir, 'jwks.json');
    const key = testKeyPair('ec');
    writeFileSync(`${file}.tmp`, JSON.stringify({ keys: [await publicJwk(key, { kid: 'to-withdraw', alg: 'ES256', use: 'sig' })] }));
    renameSync(`${file}.tmp`, file);
    await eventually(async () => (await status(await rawBotToken(key, 'to-withdraw'))) === 200, 200);
    const remembered = await rawBotToken(key, 'to-withdraw');
    expect(await status(remembered)).toBe(200);

    // The issuer withdraws its only key (a compromise): the file is a valid set with no keys.
    writeFileSync(`${file}.tmp`, JSON.stringify({ keys: [] }));
    renameSync(`${file}.tmp`, file);
    await eventually(async () => (await status(await rawBotToken(key, 'to-withdraw'))) === 401, 200);
    expect(await status(remembered)).toBe(401);
    const line = w.logs.find((l) => l.includes('jwks_file holds no keys'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 'warn', method: 'kubernetes', file });
  });
});
