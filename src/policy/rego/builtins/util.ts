/**
 * Shared helpers for built-ins: OPA-formatted operand errors and typed operand accessors.
 * Messages follow OPA's `builtins.NewOperandTypeErr` so that `want_error` strings from OPA's
 * compliance cases match exactly, e.g. `count: operand 1 must be one of {array, object, set,
 * string} but got number`.
 */
import {
  RegoObject,
  RegoSet,
  isObject,
  typeName,
  type PlainObject,
  type Value,
} from '../value.js';
import { BuiltinError, type BuiltinContext, type BuiltinDef } from './types.js';

export type Fn = (args: Value[], ctx: BuiltinContext) => Value | undefined;

export function def(name: string, arity: number, fn: Fn, nondeterministic = false): BuiltinDef {
  return nondeterministic ? { name, arity, fn, nondeterministic } : { name, arity, fn };
}

/** `name: operand N must be T but got U` (or `one of {T1, T2}` for several expected types). */
export function typeErr(name: string, pos: number, got: Value, ...expected: string[]): BuiltinError {
  const want = expected.length === 1 ? expected[0] : `one of {${expected.join(', ')}}`;
  return new BuiltinError('eval_type_error', `${name}: operand ${pos} must be ${want} but got ${typeName(got)}`);
}

/** `name: operand N must be array of numbers but got array containing string`. */
export function elemErr(name: string, pos: number, composite: Value, got: Value, ...expected: string[]): BuiltinError {
  const t = typeName(composite);
  const msg =
    expected.length === 1
      ? `must be ${t} of ${expected[0]}s but got ${t} containing ${typeName(got)}`
      : `must be ${t} of (any of) {${expected.join(', ')}} but got ${t} containing ${typeName(got)}`;
  return new BuiltinError('eval_type_error', `${name}: operand ${pos} ${msg}`);
}

/** A non-type failure (`eval_builtin_error`), prefixed with the built-in's name as OPA does. */
export function builtinErr(name: string, message: string): BuiltinError {
  return new BuiltinError('eval_builtin_error', `${name}: ${message}`);
}

/** Operand-position error that is not about the type (e.g. `operand 1 must be integer`). */
export function operandErr(name: string, pos: number, message: string): BuiltinError {
  return new BuiltinError('eval_type_error', `${name}: operand ${pos} ${message}`);
}

export function str(name: string, args: Value[], i: number): string {
  const v = args[i]!;
  if (typeof v !== 'string') throw typeErr(name, i + 1, v, 'string');
  return v;
}

export function num(name: string, args: Value[], i: number): number | bigint {
  const v = args[i]!;
  if (typeof v !== 'number' && typeof v !== 'bigint') throw typeErr(name, i + 1, v, 'number');
  return v;
}

export function bool(name: string, args: Value[], i: number): boolean {
  const v = args[i]!;
  if (typeof v !== 'boolean') throw typeErr(name, i + 1, v, 'boolean');
  return v;
}

export function arr(name: string, args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (!Array.isArray(v)) throw typeErr(name, i + 1, v, 'array');
  return v;
}

export function set(name: string, args: Value[], i: number): RegoSet {
  const v = args[i]!;
  if (!(v instanceof RegoSet)) throw typeErr(name, i + 1, v, 'set');
  return v;
}

export function obj(name: string, args: Value[], i: number): PlainObject | RegoObject {
  const v = args[i]!;
  if (!isObject(v)) throw typeErr(name, i + 1, v, 'object');
  return v;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * An integer operand as a JS number (OPA's `IntOperand`, which takes any int64). An integer past
 * ±2^53 comes back as ±Number.MAX_SAFE_INTEGER: every caller uses it as a count, an index or a
 * length, which no string or array reaches, so the answer is OPA's (`substring(s, 2^53 + 1, 1)`
 * is ""). Non-integers and integers beyond int64 are refused with OPA's (odd) message.
 */
export function int(name: string, args: Value[], i: number): number {
  const v = num(name, args, i);
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > INT64_MAX) throw operandErr(name, i + 1, 'must be integer number but got floating-point number');
    return v < 0n ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  }
  if (!Number.isInteger(v)) throw operandErr(name, i + 1, 'must be integer number but got floating-point number');
  return v;
}

/** Elements of an array or set, or a type error naming both. */
export function collection(name: string, args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RegoSet) return [...v.values()];
  throw typeErr(name, i + 1, v, 'set', 'array');
}

/** Strings of an array or set of strings (e.g. `strings.any_prefix_match`, `concat`). */
export function stringsOf(name: string, args: Value[], i: number, ...expected: string[]): string[] {
  const v = args[i]!;
  let items: Value[];
  if (Array.isArray(v)) items = v;
  else if (v instanceof RegoSet) items = [...v.values()];
  else throw typeErr(name, i + 1, v, ...(expected.length ? expected : ['set', 'array']));
  const out: string[] = new Array(items.length);
  for (let k = 0; k < items.length; k++) {
    const x = items[k]!;
    if (typeof x !== 'string') throw elemErr(name, i + 1, v, x, 'string');
    out[k] = x;
  }
  return out;
}

/** Cached value in the per-query cache, computed once. */
export function cached<T>(ctx: BuiltinContext, key: string, make: () => T): T {
  const hit = ctx.cache.get(key);
  if (hit !== undefined) return hit as T;
  const v = make();
  ctx.cache.set(key, v);
  return v;
}
