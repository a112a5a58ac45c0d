/**
 * The decision cache's key: the values of the policy input at the paths the policy can read
 * (rego/ast/compile/input-deps.ts), written as one short string such that equal strings mean
 * equal values as the Rego engine sees them. Anything this cannot write exactly (undefined
 * members, NaN, functions, class instances, holes) makes the input unkeyable: that call is not
 * cached.
 *
 * The text is a tagged form that reads back one way only: a number `n…`, a bigint `b…`, `t` `f`
 * `z` (null), `[…,…]`, `{key value,…}`, and
 * - a string `s<id>`: its number in this keyer's intern table. A key is hashed on every lookup,
 *   so it should be short; and the strings of an input are mostly the same string objects
 *   request after request (config, authenticator, route), whose hash V8 keeps, so interning
 *   costs a lookup that hashes nothing new. Ids are only meaningful within one generation of the
 *   table: when it is full it is cleared, and so is every key made from it (`onReset`).
 * - a deeply frozen object `#<n>`: its identity. The template part of the input is one, built
 *   once per template and shared; it can never change, and a token is never reused, so the same
 *   token means the same contents. A reload builds new objects, hence new tokens: old entries
 *   simply stop being hit.
 */

const hasOwn = Object.prototype.hasOwnProperty;

/** Deeply frozen objects seen so far → their token (process-wide: tokens are never reused). */
const tokens = new WeakMap<object, string>();
let nextToken = 0;

function isPlainProto(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

export class InputKeyer {
  private readonly strings = new Map<string, string>();
  /** Bumped on each reset: a key whose strings span two generations is thrown away. */
  private generation = 0;
  /** Set by `write` when the value it wrote is not deeply frozen; callers save and restore it. */
  private mutable = false;

  constructor(
    private readonly paths: readonly (readonly string[])[],
    /** Distinct strings kept before the table (and every key) starts over. */
    private readonly maxStrings: number,
    private readonly onReset: () => void,
  ) {}

  private intern(s: string): string {
    let id = this.strings.get(s);
    if (id === undefined) {
      if (this.strings.size >= this.maxStrings) {
        this.strings.clear();
        this.generation++;
        this.onReset();
      }
      id = 's' + this.strings.size;
      this.strings.set(s, id);
    }
    return id;
  }

  /** Writes a value exactly, or returns undefined for what the engine could see differently. */
  private write(v: unknown): string | undefined {
    switch (typeof v) {
      case 'string':
        return this.intern(v);
      case 'boolean':
        return v ? 't' : 'f';
      case 'number':
        // -0 is kept apart from 0: a policy may tell them apart (1 / x), and a miss costs nothing.
        return Number.isFinite(v) ? (Object.is(v, -0) ? 'n-0' : 'n' + v) : undefined;
      case 'bigint':
        return 'b' + v;
      case 'object':
        break;
      default:
        return undefined;
    }
    if (v === null) return 'z';
    const token = tokens.get(v);
    if (token !== undefined) return token;
    const outer = this.mutable;
    this.mutable = false;
    let out: string | undefined;
    if (Array.isArray(v)) out = this.writeArray(v);
    else if (isPlainProto(v)) out = this.writeObject(v as Record<string, unknown>);
    if (out === undefined) {
      this.mutable = outer;
      return undefined;
    }
    if (!this.mutable && Object.isFrozen(v)) {
      const t = `#${nextToken++}`;
      tokens.set(v, t);
      this.mutable = outer;
      return t;
    }
    this.mutable = true;
    return out;
  }

  private writeArray(v: unknown[]): string | undefined {
    if (Object.getPrototypeOf(v) !== Array.prototype) return undefined;
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (!hasOwn.call(v, i)) return undefined;
      const x = this.write(v[i]);
      if (x === undefined) return undefined;
      out += i === 0 ? x : ',' + x;
    }
    return out + ']';
  }

  private writeObject(v: Record<string, unknown>): string | undefined {
    let out = '{';
    let first = true;
    for (const k in v) {
      // An inherited enumerable key (a polluted prototype) is not something the engine reads.
      if (!hasOwn.call(v, k)) return undefined;
      const x = this.write(v[k]);
      if (x === undefined) return undefined;
      out += (first ? '' : ',') + this.intern(k) + ' ' + x;
      first = false;
    }
    return out + '}';
  }

  /**
   * One component per path: `a<i>` when the value is absent (no own key at depth i), `p<i>:<value>`
   * when a value at depth i is not an object (then the rest of the path is decided by that value,
   * whatever the engine makes of it), else `v<value>`. Components are joined by `|`, which no
   * written value contains. Undefined: this input cannot be keyed.
   */
  key(input: unknown): string | undefined {
    const generation = this.generation;
    const key = this.keyOnce(input);
    if (this.generation === generation) return key;
    // The table started over while this key was written: its early ids are stale. Once more,
    // now with room; if one input alone needs more strings than the table holds, no key.
    const again = this.generation;
    const retry = this.keyOnce(input);
    return this.generation === again ? retry : undefined;
  }

  private keyOnce(input: unknown): string | undefined {
    const paths = this.paths;
    let key = '';
    for (let p = 0; p < paths.length; p++) {
      const path = paths[p]!;
      let cur: unknown = input;
      let part: string | undefined;
      let i = 0;
      for (; i < path.length; i++) {
        if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !isPlainProto(cur)) {
          const x = this.write(cur);
          part = x === undefined ? undefined : `p${i}:${x}`;
          break;
        }
        const k = path[i]!;
        if (!hasOwn.call(cur, k)) {
          part = `a${i}`;
          break;
        }
        cur = (cur as Record<string, unknown>)[k];
      }
      if (i === path.length) {
        const x = this.write(cur);
        part = x === undefined ? undefined : 'v' + x;
      }
      if (part === undefined) return undefined;
      key += p === 0 ? part : '|' + part;
    }
    return key;
  }
}
