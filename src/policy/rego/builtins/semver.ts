/** `semver.is_valid` and `semver.compare` (SemVer 2.0.0 precedence; no leading "v", as OPA). */
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

interface Version {
  core: [bigint, bigint, bigint];
  pre: string[];
}

/** Longer strings are not versions; the cap also keeps the regex's work small on hostile input. */
const MAX_VERSION_LENGTH = 256;

function parse(s: string): Version | undefined {
  if (s.length > MAX_VERSION_LENGTH) return undefined;
  const m = SEMVER.exec(s);
  if (!m) return undefined;
  return { core: [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!)], pre: m[4] ? m[4].split('.') : [] };
}

const isNum = (s: string) => /^\d+$/.test(s);

function cmpIdent(a: string, b: string): number {
  const an = isNum(a);
  const bn = isNum(b);
  if (an && bn) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (an !== bn) return an ? -1 : 1; // numeric identifiers sort before alphanumeric
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a.core[i] !== b.core[i]) return a.core[i]! < b.core[i]! ? -1 : 1;
  // A pre-release has lower precedence than the release itself.
  if (a.pre.length === 0 || b.pre.length === 0) return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  const n = Math.min(a.pre.length, b.pre.length);
  for (let i = 0; i < n; i++) {
    const c = cmpIdent(a.pre[i]!, b.pre[i]!);
    if (c !== 0) return c;
  }
  return Math.sign(a.pre.length - b.pre.length);
}

function versionArg(args: Value[], i: number): Version {
  const s = str('semver.compare', args, i);
  const v = parse(s);
  // OPA quotes the string; Warden does not repeat operand values in errors.
  if (!v) throw builtinErr('semver.compare', `operand ${i + 1}: string is not a valid SemVer`);
  return v;
}

export const SEMVER_BUILTINS: BuiltinDef[] = [
  def('semver.is_valid', 1, (args) => typeof args[0] === 'string' && parse(args[0]) !== undefined),
  def('semver.compare', 2, (args) => compareVersions(versionArg(args, 0), versionArg(args, 1))),
];
