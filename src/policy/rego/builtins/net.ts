/**
 * CIDR built-ins (`net.cidr_contains`, `net.cidr_intersects`, `net.cidr_is_valid`) over IPv4
 * and IPv6 with exact bigint prefix math, following Go's net.IPNet.Contains: an IPv4 address
 * (or an IPv4-mapped IPv6 one) never matches an IPv6 network, and vice versa.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { RegoSet, isObject, sortedEntries, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';
import { MAX_RESULT_ELEMENTS, checkElements, work } from '../meter.js';

interface Net {
  bits: bigint; // network address (host bits cleared)
  prefix: number;
  width: 32 | 128;
}

function v4(s: string): bigint {
  return s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6(s: string): bigint {
  let text = s;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two hex groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const n = v4(tail[1]!);
    text = text.slice(0, tail.index) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const hs = head ? head.split(':') : [];
  const ts = rest ? rest.split(':') : [];
  const groups = rest === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** An address as [value, width], or undefined. */
function parseIP(s: string): [bigint, 32 | 128] | undefined {
  if (isIPv4(s)) return [v4(s), 32];
  if (isIPv6(s) && !s.includes('%')) return [v6(s), 128];
  return undefined;
}

function parseCIDR(s: string): Net | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  const [value, width] = ip;
  if (prefix > width) return undefined;
  return { bits: value & mask(prefix, width), prefix, width };
}

function mask(prefix: number, width: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return prefix === 0 ? 0n : (all << BigInt(width - prefix)) & all;
}

const MAX_EXPAND = 65536n;

/** Go's net.IP.String(): dotted IPv4, or RFC 5952 IPv6 (longest zero run as ::, v4-mapped as ::ffff:a.b.c.d). */
function formatIP(v: bigint, width: 32 | 128): string {
  const v4 = (x: bigint) => [24n, 16n, 8n, 0n].map((s) => String((x >> s) & 0xffn)).join('.');
  if (width === 32) return v4(v);
  if (v >> 32n === 0xffffn) return '::ffff:' + v4(v & 0xffffffffn);
  const groups = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt((7 - i) * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
}

function cidrArg(name: string, args: Value[], i: number): Net {
  const n = parseCIDR(str(name, args, i));
  if (!n) throw builtinErr(name, `operand ${i + 1} is not a valid CIDR`);
  return n;
}

/**
 * Go converts an IPv4-mapped IPv6 address (::ffff:a.b.c.d) to IPv4 before testing whether a
 * network contains it, so the candidate side of a check does the same.
 */
function asCandidate(n: Net): Net {
  if (n.width === 128 && n.prefix >= 96 && n.bits >> 32n === 0xffffn) {
    return { bits: n.bits & 0xffffffffn, prefix: n.prefix - 96, width: 32 };
  }
  return n;
}

function contains(a: Net, candidate: Net): boolean {
  const b = asCandidate(candidate);
  return a.width === b.width && b.prefix >= a.prefix && (b.bits & mask(a.prefix, a.width)) === a.bits;
}

/** The text Go's IPNet.String() gives a parsed network: its (masked) address and prefix. */
function cidrText(bits: bigint, prefix: number, width: 32 | 128): string {
  return `${formatIP(bits, width)}/${prefix}`;
}

/** [first, last] address ranges to the fewest CIDRs covering exactly them. */
function rangeToCIDRs(first: bigint, last: bigint, width: 32 | 128): string[] {
  const out: string[] = [];
  let cur = first;
  while (cur <= last) {
    // The largest aligned block starting at `cur` that does not pass `last`.
    let size = 0;
    while (size < width && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= last) size++;
    out.push(cidrText(cur, width - size, width));
    cur += 1n << BigInt(size);
  }
  return out;
}

interface Block {
  first: bigint;
  last: bigint;
  width: 32 | 128;
  /** Set while the block is an input network not merged with another: printed as given. */
  text: string | undefined;
}

/** An address without a prefix gets Go's classful default mask, as OPA's net.cidr_merge does. */
function mergeBlock(name: string, x: Value): Block {
  if (typeof x !== 'string') throw builtinErr(name, 'element must be string');
  const ip = parseIP(x);
  if (ip) {
    if (ip[1] === 128) throw builtinErr(name, 'IPv6 invalid: needs prefix length');
    const top = Number(ip[0] >> 24n);
    const prefix = top < 128 ? 8 : top < 192 ? 16 : top < 224 ? 24 : -1;
    if (prefix < 0) throw builtinErr(name, 'IPv4 address has no default mask (give a prefix length)');
    const first = ip[0] & mask(prefix, 32);
    return { first, last: first | (~mask(prefix, 32) & 0xffffffffn), width: 32, text: `${x}/${prefix}` };
  }
  const n = parseCIDR(x);
  if (!n) throw builtinErr(name, 'element is not a valid IP address or CIDR');
  const all = (1n << BigInt(n.width)) - 1n;
  return { first: n.bits, last: n.bits | (~mask(n.prefix, n.width) & all), width: n.width, text: cidrText(n.bits, n.prefix, n.width) };
}

function cidrMerge(args: Value[]): Value {
  const name = 'net.cidr_merge';
  const v = args[0]!;
  const items = Array.isArray(v) ? v : v instanceof RegoSet ? v.sorted() : undefined;
  if (!items) throw builtinErr(name, 'operand must be an array');
  const out = new RegoSet();
  // Parsed once, metered: the merge is the caller's list, sorted, and folded in one pass (a
  // splice per fold made 65,536 adjacent /24s take 4 s, all of it past the deadline).
  const all = items.map((x) => (work(1), mergeBlock(name, x)));
  for (const width of [32, 128] as const) {
    const blocks = all.filter((b) => b.width === width);
    blocks.sort((a, b) => (work(1), a.last !== b.last ? (a.last < b.last ? -1 : 1) : a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    // From the end, fold each block into its predecessor when they touch or overlap.
    const merged: Block[] = [];
    for (let i = blocks.length - 1; i >= 0; i--) {
      work(1);
      const prev = blocks[i]!;
      const cur = merged[merged.length - 1];
      if (cur !== undefined && cur.first - 1n <= prev.last) {
        merged[merged.length - 1] = { first: prev.first < cur.first ? prev.first : cur.first, last: cur.last, width, text: undefined };
      } else merged.push(prev);
    }
    for (let i = merged.length - 1; i >= 0; i--) {
      const b = merged[i]!;
      if (b.text !== undefined) out.add(b.text);
      else for (const c of rangeToCIDRs(b.first, b.last, width)) out.add(c);
    }
  }
  return out;
}

/**
 * The elements of a cidr_contains_matches operand, as OPA iterates them: [cidr text, the index
 * reported for it], each checked when it is reached (an element OPA never reaches raises nothing:
 * `net.cidr_contains_matches([], [1])` is the empty set). A non-collection has no elements.
 */
function* matchEntries(name: string, pos: number, v: Value): Generator<[string, Value]> {
  const cidrOf = (x: Value): string => {
    const c = typeof x === 'string' ? x : Array.isArray(x) && x.length > 0 ? x[0] : undefined;
    if (typeof c !== 'string') throw builtinErr(name, `operand ${pos}: element must be string or non-empty array`);
    return c;
  };
  if (typeof v === 'string') yield [v, v];
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield [cidrOf(v[i]!), i];
  else if (v instanceof RegoSet) for (const x of v.sorted()) yield [cidrOf(x), x];
  else if (isObject(v)) for (const [k, x] of sortedEntries(v)) yield [cidrOf(x), k];
}

/** An address or CIDR (net.cidr_contains's second operand) as a network. */
function candidateNet(name: string, b: string): Net {
  const ip = parseIP(b);
  if (ip) return { bits: ip[0], prefix: ip[1], width: ip[1] };
  const other = parseCIDR(b);
  if (!other) throw builtinErr(name, 'not a valid textual representation of an IP address or CIDR');
  return other;
}

/**
 * Every pair, as OPA tries them (each element of operand 1 against every element of operand 2),
 * with each text parsed once rather than once per pair: operand 2's elements are read and
 * parsed while the first element of operand 1 is tried, then reused. Errors come in OPA's order.
 */
function containsMatches(args: Value[]): Value {
  const name = 'net.cidr_contains_matches';
  const out = new RegoSet();
  let inner: Array<[Net, Value]> | undefined;
  for (const [c1, i1] of matchEntries(name, 1, args[0]!)) {
    let net: Net | undefined;
    const netOf = (): Net => (net ??= parseCIDR(c1) ?? fail(builtinErr(name, 'not a valid CIDR')));
    if (inner === undefined) {
      const read: Array<[Net, Value]> = [];
      for (const [c2, i2] of matchEntries(name, 2, args[1]!)) {
        work(1);
        // The pair's CIDR is parsed before its candidate, as net.cidr_contains parses them.
        const outer = netOf();
        const other = candidateNet(name, c2);
        read.push([other, i2]);
        if (contains(outer, other)) out.add([i1, i2]);
      }
      inner = read;
    } else {
      work(inner.length);
      for (const [other, i2] of inner) if (contains(netOf(), other)) out.add([i1, i2]);
    }
    if (out.size > MAX_RESULT_ELEMENTS) checkElements(out.size, name);
  }
  return out;
}

function fail(e: Error): never {
  throw e;
}

export const NET: BuiltinDef[] = [
  def('net.cidr_merge', 1, cidrMerge),
  def('net.cidr_contains_matches', 2, containsMatches),
  def('net.cidr_contains', 2, (args) => {
    const net = cidrArg('net.cidr_contains', args, 0);
    const x = str('net.cidr_contains', args, 1);
    const ip = parseIP(x);
    if (ip) return contains(net, { bits: ip[0], prefix: ip[1], width: ip[1] });
    const other = parseCIDR(x);
    if (!other) throw builtinErr('net.cidr_contains', 'operand 2 is not a valid IP address or CIDR');
    return contains(net, other);
  }),
  def('net.cidr_intersects', 2, (args) => {
    const a = cidrArg('net.cidr_intersects', args, 0);
    const b = cidrArg('net.cidr_intersects', args, 1);
    // Overlap: either network holds the other's first address (Go's rule).
    return contains(a, { ...b, prefix: b.width }) || contains(b, { ...a, prefix: a.width });
  }),
  def('net.cidr_expand', 1, (args) => {
    const n = cidrArg('net.cidr_expand', args, 0);
    const count = 1n << BigInt(n.width - n.prefix);
    // A /8 is 16 million strings: refuse rather than exhaust memory.
    if (count > MAX_EXPAND) throw builtinErr('net.cidr_expand', `CIDR holds ${count} addresses, more than the limit of ${MAX_EXPAND}`);
    const out = new RegoSet();
    for (let i = 0n; i < count; i++) out.add(formatIP(n.bits + i, n.width));
    return out;
  }),
  def('net.cidr_is_valid', 1, (args) => typeof args[0] === 'string' && parseCIDR(args[0]) !== undefined),
];
