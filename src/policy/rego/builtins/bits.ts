/** Bitwise built-ins on integers of any size (`bits.or`, `bits.and`, `bits.xor`, `bits.negate`, `bits.lsh`, `bits.rsh`). */
import { normalizeInt, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, num, operandErr } from './util.js';

function intArg(name: string, args: Value[], i: number): bigint {
  const v = num(name, args, i);
  if (typeof v === 'number' && !Number.isInteger(v)) throw operandErr(name, i + 1, 'must be integer number but got floating-point number');
  return BigInt(v);
}

/** Shifts are bounded: a policy has no use for numbers millions of bits long. */
const MAX_SHIFT = 4096n;

const binary = (name: string, op: (a: bigint, b: bigint) => bigint): BuiltinDef =>
  def(name, 2, (args) => normalizeInt(op(intArg(name, args, 0), intArg(name, args, 1))));

export const BITS: BuiltinDef[] = [
  binary('bits.or', (a, b) => a | b),
  binary('bits.and', (a, b) => a & b),
  binary('bits.xor', (a, b) => a ^ b),
  def('bits.negate', 1, (args) => normalizeInt(~intArg('bits.negate', args, 0))),
  def('bits.lsh', 2, (args) => {
    const a = intArg('bits.lsh', args, 0);
    const b = intArg('bits.lsh', args, 1);
    if (b < 0n) throw operandErr('bits.lsh', 2, 'must be an unsigned integer number but got a negative integer');
    if (b > MAX_SHIFT) throw builtinErr('bits.lsh', `shift larger than ${MAX_SHIFT} bits`);
    return normalizeInt(a << b);
  }),
  def('bits.rsh', 2, (args) => {
    const a = intArg('bits.rsh', args, 0);
    const b = intArg('bits.rsh', args, 1);
    if (b < 0n) throw operandErr('bits.rsh', 2, 'must be an unsigned integer number but got a negative integer');
    return normalizeInt(b > MAX_SHIFT ? (a < 0n ? -1n : 0n) : a >> b);
  }),
];
