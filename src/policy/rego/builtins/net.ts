/**
 * CIDR built-ins (`net.cidr_contains`, `net.cidr_intersects`, `net.cidr_is_valid`) over IPv4
 * and IPv6 with exact bigint prefix math, following Go's net.IPNet.Contains: an IPv4 address
 * (or an IPv4-mapped IPv6 one) never matches an IPv6 network, and vice versa.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { RegoSet, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';

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

export const NET: BuiltinDef[] = [
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
