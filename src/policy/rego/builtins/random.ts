/**
 * `rand.intn` and `uuid.rfc4122`: random, but stable within one query for the same arguments
 * (as OPA caches them per query), so a rule sees one value however often it asks.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { BuiltinDef } from './types.js';
import { cached, def, int, str } from './util.js';

export const RANDOM: BuiltinDef[] = [
  def(
    'rand.intn',
    2,
    (args, ctx) => {
      const key = str('rand.intn', args, 0);
      const n = Math.abs(int('rand.intn', args, 1));
      return cached(ctx, `rand.intn\u0000${key}\u0000${n}`, () => (n === 0 ? 0 : randomInt(Math.min(n, 2 ** 48 - 1))));
    },
    true,
  ),
  def(
    'uuid.rfc4122',
    1,
    (args, ctx) => cached(ctx, `uuid.rfc4122\u0000${str('uuid.rfc4122', args, 0)}`, () => randomUUID()),
    true,
  ),
];
