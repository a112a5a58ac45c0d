/**
 * Infix operators as built-ins (`+` is `plus`, `==` is `equal`, `|` is `or`, ...), named as
 * OPA names them so that `plus(1, 2)` and `1 + 2` share one implementation.
 */
import { RegoSet, compare, equal, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, num, set, typeErr } from './util.js';
import * as N from './numeric.js';

function checked(name: string, r: N.Num): N.Num {
  if (!N.isFiniteNum(r)) throw builtinErr(name, 'arithmetic result is not a finite number');
  return r;
}

function arith(name: string, op: (a: N.Num, b: N.Num) => N.Num): BuiltinDef {
  return def(name, 2, (args) => checked(name, op(num(name, args, 0), num(name, args, 1))));
}

export function setDifference(a: RegoSet, b: RegoSet): RegoSet {
  const out = new RegoSet();
  for (const [k, v] of a.map) if (!b.map.has(k)) out.map.set(k, v);
  return out;
}

export function setIntersection(a: RegoSet, b: RegoSet): RegoSet {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  const out = new RegoSet();
  for (const [k, v] of small.map) if (large.map.has(k)) out.map.set(k, v);
  return out;
}

export function setUnion(a: RegoSet, b: RegoSet): RegoSet {
  if (b.size === 0) return a;
  if (a.size === 0) return b;
  const out = new RegoSet();
  for (const [k, v] of a.map) out.map.set(k, v);
  for (const [k, v] of b.map) out.map.set(k, v);
  return out;
}

function minus(args: Value[]): Value {
  const [a, b] = args as [Value, Value];
  const an = typeof a === 'number' || typeof a === 'bigint';
  const bn = typeof b === 'number' || typeof b === 'bigint';
  if (an && bn) return checked('minus', N.sub(a, b));
  const as = a instanceof RegoSet;
  const bs = b instanceof RegoSet;
  if (as && bs) return setDifference(a, b);
  // Same order of checks as OPA, so the message names the same operand.
  if (!an && !as) throw typeErr('minus', 1, a, 'number', 'set');
  if (as) throw typeErr('minus', 2, b, 'set');
  throw typeErr('minus', 2, b, 'number');
}

export const OPERATORS: BuiltinDef[] = [
  arith('plus', N.add),
  def('minus', 2, minus),
  arith('mul', N.mul),
  def('div', 2, (args) => {
    const a = num('div', args, 0);
    const b = num('div', args, 1);
    if (N.isZero(b)) throw builtinErr('div', 'divide by zero');
    return checked('div', N.div(a, b));
  }),
  def('rem', 2, (args) => {
    const a = num('rem', args, 0);
    const b = num('rem', args, 1);
    if (!N.isInt(a) || !N.isInt(b)) throw builtinErr('rem', 'modulo on floating-point number');
    if (N.isZero(b)) throw builtinErr('rem', 'modulo by zero');
    return N.rem(a, b);
  }),
  def('equal', 2, (args) => equal(args[0]!, args[1]!)),
  def('neq', 2, (args) => !equal(args[0]!, args[1]!)),
  def('lt', 2, (args) => compare(args[0]!, args[1]!) < 0),
  def('lte', 2, (args) => compare(args[0]!, args[1]!) <= 0),
  def('gt', 2, (args) => compare(args[0]!, args[1]!) > 0),
  def('gte', 2, (args) => compare(args[0]!, args[1]!) >= 0),
  def('and', 2, (args) => setIntersection(set('and', args, 0), set('and', args, 1))),
  def('or', 2, (args) => setUnion(set('or', args, 0), set('or', args, 1))),
];
