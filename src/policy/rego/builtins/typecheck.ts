/** Type tests (`is_*`, true or false, never undefined) and `type_name`. */
import { RegoSet, isObject, typeName, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { def } from './util.js';

const is = (name: string, test: (v: Value) => boolean): BuiltinDef => def(name, 1, (a) => test(a[0]!));

export const TYPECHECK: BuiltinDef[] = [
  is('is_number', (v) => typeof v === 'number' || typeof v === 'bigint'),
  is('is_string', (v) => typeof v === 'string'),
  is('is_boolean', (v) => typeof v === 'boolean'),
  is('is_array', (v) => Array.isArray(v)),
  is('is_set', (v) => v instanceof RegoSet),
  is('is_object', (v) => isObject(v)),
  is('is_null', (v) => v === null),
  def('type_name', 1, (a) => typeName(a[0]!)),
];
