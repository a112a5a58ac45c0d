/**
 * Listener addresses: `host:port` (IPv6 as `[::1]:8700`). Parsed once at load so the servers get
 * numbers, not strings to split on every start.
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port`; returns a reason string when it is not a valid address. */
export function parseListen(text: string): ListenAddress | string {
  const trimmed = text.trim();
  let host: string;
  let portText: string;
  if (trimmed.startsWith('[')) {
    const end = trimmed.indexOf(']');
    if (end < 0 || trimmed[end + 1] !== ':') return 'must be host:port (IPv6 as [addr]:port)';
    host = trimmed.slice(1, end);
    portText = trimmed.slice(end + 2);
    if (isIP(host) !== 6) return 'bracketed host must be an IPv6 address';
  } else {
    const colon = trimmed.lastIndexOf(':');
    if (colon <= 0) return 'must be host:port, e.g. 127.0.0.1:8700';
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    if (host.includes(':')) return 'IPv6 hosts must be bracketed, e.g. [::1]:8700';
    if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)) {
      return 'host must be an IP address or a host name';
    }
  }
  if (!/^\d{1,5}$/.test(portText)) return 'port must be a number from 0 to 65535';
  const port = Number(portText);
  if (port > 65535) return 'port must be a number from 0 to 65535';
  return { host, port };
}

/** Formats an address back to `host:port` (for logs and /readyz). */
export function formatListen(addr: ListenAddress): string {
  return isIP(addr.host) === 6 ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** True when only this machine can reach the address. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  // IPv4-mapped loopback, e.g. ::ffff:127.0.0.1
  return /^::ffff:127\./i.test(host);
}

/**
 * The addresses a listen host stands for, as far as the config can tell without a lookup:
 * `localhost` is 127.0.0.1 or ::1 (whichever the resolver gives first), an IP is itself, and any
 * other host name is known only by its name.
 */
function hostAddresses(host: string): string[] {
  const h = host.toLowerCase();
  return h === 'localhost' ? ['127.0.0.1', '::1'] : [h];
}

/** The one of `x`, `y` both listeners would hold, when a wildcard or equality makes them meet. */
function meet(x: string, y: string): string | undefined {
  if (x === y) return x;
  // `::` is dual-stack (Node's default), so it takes every address; 0.0.0.0 takes every IPv4 one.
  if (x === '::') return y;
  if (y === '::') return x;
  if (x === '0.0.0.0' && isIP(y) === 4) return y;
  if (y === '0.0.0.0' && isIP(x) === 4) return x;
  return undefined;
}

/**
 * The address two fixed-port listeners would both hold (so the second bind would fail with
 * EADDRINUSE), or undefined when they can coexist or the config cannot tell for certain.
 */
export function sharedAddress(a: ListenAddress, b: ListenAddress): string | undefined {
  if (a.port === 0 || a.port !== b.port) return undefined;
  // Certain only when they meet whichever address each side's name resolves to: `localhost` next
  // to `[::1]` binds fine where localhost is 127.0.0.1 (the bind then names the listener if not).
  let shared: string | undefined;
  for (const x of hostAddresses(a.host)) {
    for (const y of hostAddresses(b.host)) {
      const met = meet(x, y);
      if (met === undefined) return undefined;
      shared ??= met;
    }
  }
  return shared;
}
