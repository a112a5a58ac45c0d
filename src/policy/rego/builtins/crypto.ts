/** Hashes and HMACs over UTF-8 strings, as hex: `crypto.sha256`, `crypto.hmac.sha256`, ... */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { BuiltinDef } from './types.js';
import { def, str } from './util.js';

const hash = (alg: string): BuiltinDef =>
  def(`crypto.${alg}`, 1, (a) => createHash(alg).update(str(`crypto.${alg}`, a, 0), 'utf8').digest('hex'));

const hmac = (alg: string): BuiltinDef => {
  const name = `crypto.hmac.${alg}`;
  return def(name, 2, (a) => createHmac(alg, Buffer.from(str(name, a, 1), 'utf8')).update(str(name, a, 0), 'utf8').digest('hex'));
};

// Exactly OPA's set (there is no crypto.sha512): a policy must compile the same on both engines.
export const CRYPTO: BuiltinDef[] = [
  hash('md5'),
  hash('sha1'),
  hash('sha256'),
  hmac('md5'),
  hmac('sha1'),
  hmac('sha256'),
  hmac('sha512'),
  // Constant-time comparison, so a policy checking a MAC does not leak it through timing.
  def('crypto.hmac.equal', 2, (a) => {
    const x = Buffer.from(str('crypto.hmac.equal', a, 0), 'utf8');
    const y = Buffer.from(str('crypto.hmac.equal', a, 1), 'utf8');
    return x.length === y.length && timingSafeEqual(x, y);
  }),
];
