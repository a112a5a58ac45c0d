/**
 * CIDR built-ins (`net.cidr_contains`, `net.cidr_intersects`, `net.cidr_is_valid`) over IPv4
 * and IPv6 with exact bigint prefix math. Addresses are parsed strictly; an IPv4 address never
 * matches an IPv6 network (as Go's net.IPNet.Contains).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Value } from '../value.js';
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

function cidrArg(name: string, args: Value[], i: number): Net {
  const n = parseCIDR(str(name, args, i));
  if (!n) throw builtinErr(name, `operand ${i + 1} is not a valid CIDR`);
  return n;
}

function contains(a: Net, b: Net): boolean {
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
    return contains(a, b) || contains(b, a);
  }),
  def('net.cidr_is_valid', 1, (args) => typeof args[0] === 'string' && parseCIDR(args[0]) !== undefined),
];
