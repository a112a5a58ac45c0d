import { describe, expect, it } from 'vitest';
import { RegoSet, type Value } from '../../../../src/policy/rego/value.js';
import { call, callError, ctx } from './helpers.js';
import { RegoError } from '../../../../src/policy/rego/index.js';
import { policy } from '../helpers.js';

const NS = 1_000_000_000n;

describe('time', () => {
  it('time.now_ns is the query clock', () => {
    expect(call('time.now_ns')).toBe(ctx.nowNs);
  });

  it('parses RFC 3339 exactly, with offsets and nanoseconds', () => {
    expect(call('time.parse_rfc3339_ns', '1970-01-01T00:00:00Z')).toBe(0);
    expect(call('time.parse_rfc3339_ns', '2017-06-02T19:00:00-07:00')).toBe(1496455200n * NS);
    expect(call('time.parse_rfc3339_ns', '2023-11-14T22:13:20.123456789Z')).toBe(1700000000n * NS + 123456789n);
    expect(call('time.parse_rfc3339_ns', '1969-12-31T23:59:59Z')).toBe(-1_000_000_000);
    expect(callError('time.parse_rfc3339_ns', '2023-02-30T00:00:00Z').code).toBe('eval_builtin_error');
    expect(callError('time.parse_rfc3339_ns', 'yesterday').code).toBe('eval_builtin_error');
    expect(callError('time.parse_rfc3339_ns', '2023-11-14t22:13:20z').code).toBe('eval_builtin_error');
    expect(call('time.parse_rfc3339_ns', '1970-01-01T00:00:00.0000000019Z')).toBe(1);
  });

  it('parses Go layouts', () => {
    expect(call('time.parse_ns', '2006-01-02', '2017-06-02')).toBe(1496361600n * NS);
    expect(call('time.parse_ns', 'RFC1123Z', 'Fri, 02 Jun 2017 19:00:00 -0700')).toBe(1496455200n * NS);
    expect(call('time.parse_ns', 'Jan 2, 2006 at 3:04pm (MST)', 'Jun 2, 2017 at 7:00pm (UTC)')).toBe(1496430000n * NS);
    expect(call('time.parse_ns', '2006-01-02 15:04:05', '2017-06-02 19:00:00.5')).toBe(1496430000n * NS + 500_000_000n);
    expect(callError('time.parse_ns', '2006-01-02', '02/06/2017').code).toBe('eval_builtin_error');
  });

  it('parses Go durations', () => {
    expect(call('time.parse_duration_ns', '1h30m')).toBe(5_400_000_000_000);
    expect(call('time.parse_duration_ns', '2562047h')).toBe(9223369200000000000n);
    expect(callError('time.parse_duration_ns', '2562048h').code).toBe('eval_builtin_error');
    expect(call('time.parse_duration_ns', '1.5s')).toBe(1_500_000_000);
    expect(call('time.parse_duration_ns', '-2ms')).toBe(-2_000_000);
    expect(call('time.parse_duration_ns', '100µs')).toBe(100_000);
    expect(call('time.parse_duration_ns', '0')).toBe(0);
    expect(callError('time.parse_duration_ns', '5 minutes').code).toBe('eval_builtin_error');
    expect(callError('time.parse_duration_ns', '').code).toBe('eval_builtin_error');
  });

  it('date, clock, weekday in UTC and in a named zone', () => {
    const t = 1496455200n * NS; // 2017-06-03T02:00:00Z
    expect(call('time.date', t)).toEqual([2017, 6, 3]);
    expect(call('time.clock', t)).toEqual([2, 0, 0]);
    expect(call('time.weekday', t)).toBe('Saturday');
    expect(call('time.date', [t, 'America/Los_Angeles'])).toEqual([2017, 6, 2]);
    expect(call('time.clock', [t, 'America/Los_Angeles'])).toEqual([19, 0, 0]);
    expect(call('time.weekday', [t, 'Asia/Kolkata'])).toBe('Saturday');
    expect(call('time.clock', [t, 'Asia/Kolkata'])).toEqual([7, 30, 0]);
    expect(call('time.date', -1)).toEqual([1969, 12, 31]);
    expect(callError('time.date', [t, 'Mars/Olympus']).code).toBe('eval_builtin_error');
  });

  it('formats RFC 3339 and Go layouts', () => {
    const t = 1700000000n * NS + 120_000_000n;
    expect(call('time.format', t)).toBe('2023-11-14T22:13:20.12Z');
    expect(call('time.format', [t, 'Europe/Paris'])).toBe('2023-11-14T23:13:20.12+01:00');
    expect(call('time.format', [t, 'UTC', '2006-01-02 15:04'])).toBe('2023-11-14 22:13');
    expect(call('time.format', [t, 'UTC', 'Mon Jan _2 3:04PM'])).toBe('Tue Nov 14 10:13PM');
    expect(call('time.format', [t, 'Asia/Kolkata', '15:04 -07:00:00'])).toBe('03:43 +05:30:00');
    expect(call('time.parse_ns', '2006-01-02 15:04:05 -070000', '2023-11-14 23:13:20 +010000')).toBe(1700000000n * NS);
  });

  it('add_date normalises like Go AddDate', () => {
    const jan31 = call('time.parse_rfc3339_ns', '2023-01-31T10:00:00Z')!;
    expect(call('time.format', call('time.add_date', jan31, 0, 1, 0)!)).toBe('2023-03-03T10:00:00Z');
    expect(call('time.format', call('time.add_date', jan31, 1, 0, -31)!)).toBe('2023-12-31T10:00:00Z');
  });

  it('add_date keeps the wall clock across a DST change in the given zone', () => {
    const before = call('time.parse_rfc3339_ns', '2023-03-25T12:00:00+01:00')!;
    const next = call('time.add_date', [before, 'Europe/Paris'], 0, 0, 1)!;
    expect(call('time.format', [next, 'Europe/Paris'])).toBe('2023-03-26T12:00:00+02:00');
  });

  it('rejects malformed time operands as OPA does', () => {
    expect(callError('time.date', 'x').message).toBe(
      'time.date: operand 1 must be either number (ns) or [number (ns), string (tz)] but got string',
    );
    expect(call('time.date', [0])).toEqual([1970, 1, 1]);
    expect(callError('time.date', 1.5).message).toBe('time.date: timestamp too big');
    // Only OPA's named layouts are names; anything else is a literal Go layout.
    expect(callError('time.parse_ns', 'DateOnly', '2023-01-01').code).toBe('eval_builtin_error');
  });

  it('diff gives years, months, days, hours, minutes, seconds', () => {
    const a = call('time.parse_rfc3339_ns', '2020-01-31T10:00:00Z')!;
    const b = call('time.parse_rfc3339_ns', '2021-03-01T09:30:15Z')!;
    expect(call('time.diff', a, b)).toEqual([1, 1, 0, 23, 30, 15]);
    expect(call('time.diff', b, a)).toEqual([1, 1, 0, 23, 30, 15]);
  });
});

describe('net', () => {
  it('cidr_contains for IPs and CIDRs, v4 and v6', () => {
    expect(call('net.cidr_contains', '10.0.0.0/8', '10.1.2.3')).toBe(true);
    expect(call('net.cidr_contains', '10.0.0.0/8', '11.0.0.1')).toBe(false);
    expect(call('net.cidr_contains', '10.0.0.0/8', '10.1.0.0/16')).toBe(true);
    expect(call('net.cidr_contains', '10.1.0.0/16', '10.0.0.0/8')).toBe(false);
    expect(call('net.cidr_contains', '2001:db8::/32', '2001:db8:1::1')).toBe(true);
    expect(call('net.cidr_contains', '2001:db8::/32', '2001:db9::1')).toBe(false);
    // Go tests an IPv4-mapped address as IPv4: an IPv4 network holds it, an IPv6 one does not.
    expect(call('net.cidr_contains', '10.0.0.0/8', '::ffff:10.0.0.1')).toBe(true);
    expect(call('net.cidr_contains', '::ffff:0:0/96', '::ffff:10.0.0.1')).toBe(false);
    expect(call('net.cidr_contains', '0.0.0.0/0', '::1')).toBe(false);
    expect(call('net.cidr_contains', '0.0.0.0/0', '1.2.3.4')).toBe(true);
    expect(callError('net.cidr_contains', '10.0.0.0/33', '10.0.0.1').code).toBe('eval_builtin_error');
    expect(callError('net.cidr_contains', '10.0.0.0/8', 'nope').code).toBe('eval_builtin_error');
  });

  it('cidr_intersects and cidr_is_valid', () => {
    expect(call('net.cidr_intersects', '192.168.0.0/16', '192.168.1.0/24')).toBe(true);
    expect(call('net.cidr_intersects', '192.168.0.0/24', '192.168.1.0/24')).toBe(false);
    expect(call('net.cidr_intersects', 'fd00::/8', 'fd12::/16')).toBe(true);
    expect(call('net.cidr_is_valid', '10.0.0.0/8')).toBe(true);
    expect((call('net.cidr_expand', '192.168.0.0/30') as RegoSet).sorted()).toEqual([
      '192.168.0.0',
      '192.168.0.1',
      '192.168.0.2',
      '192.168.0.3',
    ]);
    expect((call('net.cidr_expand', '2001:db8::/127') as RegoSet).sorted()).toEqual(['2001:db8::', '2001:db8::1']);
    expect(callError('net.cidr_expand', '10.0.0.0/8').code).toBe('eval_builtin_error');
  });

  it('cidr_merge merges adjacent, contained and duplicate networks', () => {
    const m = (...xs: string[]) => (call('net.cidr_merge', xs) as RegoSet).sorted();
    expect(m('192.0.128.0/24', '192.0.129.0/24')).toEqual(['192.0.128.0/23']);
    expect(m('10.0.0.0/8', '10.1.0.0/16', '10.0.0.0/8')).toEqual(['10.0.0.0/8']);
    expect(m('10.0.0.0/24', '10.0.2.0/24')).toEqual(['10.0.0.0/24', '10.0.2.0/24']);
    expect(m('10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24')).toEqual(['10.0.0.0/23', '10.0.2.0/24']);
    expect(m('2001:db8::/33', '2001:db8:8000::/33', '10.0.0.1/32')).toEqual(['10.0.0.1/32', '2001:db8::/32']);
    expect(callError('net.cidr_merge', ['2001:db8::1']).code).toBe('eval_builtin_error');
  });

  it('cidr_contains_matches reports which entries contain which', () => {
    const r = call(
      'net.cidr_contains_matches',
      RegoSet.from([['1.1.1.0/24', 'foo'], '1.1.2.0/24']),
      { x: '1.1.1.128', y: ['1.1.254.1', 'bar'] },
    ) as RegoSet;
    expect(r.sorted()).toEqual([[['1.1.1.0/24', 'foo'], 'x']]);
    expect((call('net.cidr_contains_matches', ['10.0.0.0/8', '192.168.0.0/16'], '10.1.2.3') as RegoSet).sorted()).toEqual([
      [0, '10.1.2.3'],
    ]);
    expect(call('net.cidr_is_valid', '10.0.0.0')).toBe(false);
  });

  it('cidr_contains_matches checks an element only when OPA reaches it, and tries each pair on parsed texts', () => {
    const empty = (x: Value | undefined) => (x as RegoSet).sorted();
    // Nothing to pair with: OPA reads no element of the other operand, so none is refused.
    expect(empty(call('net.cidr_contains_matches', [], [1]))).toEqual([]);
    expect(empty(call('net.cidr_contains_matches', ['not a cidr'], []))).toEqual([]);
    expect(empty(call('net.cidr_contains_matches', 5, ['x']))).toEqual([]);
    // Errors in OPA's order: the pair's CIDR first, then its candidate, then later elements.
    expect(callError('net.cidr_contains_matches', ['bad'], ['nope']).message).toBe('net.cidr_contains_matches: not a valid CIDR');
    expect(callError('net.cidr_contains_matches', ['10.0.0.0/8'], ['10.0.0.1', 'nope']).message).toBe(
      'net.cidr_contains_matches: not a valid textual representation of an IP address or CIDR',
    );
    expect(callError('net.cidr_contains_matches', ['10.0.0.0/8', 5], ['10.0.0.1']).message).toBe(
      'net.cidr_contains_matches: operand 1: element must be string or non-empty array',
    );
    // Every pair, operand 2's parsed elements reused for each element of operand 1.
    const many = Array.from({ length: 50 }, (_, i) => `10.${i}.0.0/16`);
    const ips = Array.from({ length: 50 }, (_, i) => `10.${i}.1.1`);
    expect(empty(call('net.cidr_contains_matches', many, ips))).toEqual(ips.map((_, i) => [i, i]));
    expect(empty(call('net.cidr_contains_matches', { k1: '10.0.0.0/8', k2: ['0.0.0.0/0'] }, { a: '10.0.0.1', b: ['2001:db8::1'] }))).toEqual([
      ['k1', 'a'],
      ['k2', 'a'],
    ]);
  });
});

describe('semver', () => {
  it('validates and compares by SemVer 2.0 precedence', () => {
    expect(call('semver.is_valid', '1.0.0-alpha.1+build.5')).toBe(true);
    expect(call('semver.is_valid', 'v1.0.0')).toBe(false);
    expect(call('semver.is_valid', '1.0')).toBe(false);
    expect(call('semver.is_valid', 1)).toBe(false);
    expect(call('semver.is_valid', '1.0.0-' + '1'.repeat(100_000) + '!')).toBe(false);
    expect(call('semver.compare', '1.0.0', '1.0.1')).toBe(-1);
    expect(call('semver.compare', '2.0.0', '1.99.99')).toBe(1);
    expect(call('semver.compare', '1.0.0-alpha', '1.0.0')).toBe(-1);
    expect(call('semver.compare', '1.0.0-alpha.1', '1.0.0-alpha.beta')).toBe(-1);
    expect(call('semver.compare', '1.0.0-rc.10', '1.0.0-rc.9')).toBe(1);
    expect(call('semver.compare', '1.0.0+a', '1.0.0+b')).toBe(0);
    expect(callError('semver.compare', 'x', '1.0.0').code).toBe('eval_builtin_error');
  });
});

describe('units', () => {
  it('parse_bytes as OPA', () => {
    expect(call('units.parse_bytes', '1KB')).toBe(1000);
    expect(call('units.parse_bytes', '1KiB')).toBe(1024);
    expect(call('units.parse_bytes', '1.5Gi')).toBe(1610612736);
    expect(call('units.parse_bytes', '100')).toBe(100);
    expect(call('units.parse_bytes', '20EiB')).toBe(23058430092136939520n);
    expect(callError('units.parse_bytes', 'foo').code).toBe('eval_builtin_error');
    expect(callError('units.parse_bytes', '1 KB').code).toBe('eval_builtin_error');
    expect(callError('units.parse_bytes', '1XB').message).toBe('units.parse_bytes: byte unit not recognized');
    expect(call('units.parse_bytes', '"10MB"')).toBe(10_000_000);
    expect(call('units.parse_bytes', '1e3kb')).toBe(1_000_000);
    expect(call('units.parse_bytes', '2eb')).toBe(2_000_000_000_000_000_000n);
    expect(callError('units.parse_bytes', ' 1KB').message).toBe('units.parse_bytes: spaces not allowed in resource strings');
  });

  it('parse distinguishes milli from mega', () => {
    expect(call('units.parse', '1500m')).toBe(1.5);
    expect(call('units.parse', '2M')).toBe(2_000_000);
    expect(call('units.parse', '2Ki')).toBe(2048);
    expect(call('units.parse', '1e3k')).toBe(1_000_000);
    expect(call('units.parse', '0.5')).toBe(0.5);
    expect(call('units.parse', '1MI')).toBe(1_048_576);
    expect(callError('units.parse', '1KB').message).toBe('units.parse: unit not recognized');
  });
});

describe('crypto', () => {
  it('hashes and HMACs as hex', () => {
    expect(call('crypto.sha256', 'abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(call('crypto.md5', '')).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(call('crypto.hmac.sha256', 'The quick brown fox jumps over the lazy dog', 'key')).toBe(
      'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
    expect(call('crypto.hmac.equal', 'abc', 'abc')).toBe(true);
    expect(call('crypto.hmac.equal', 'abc', 'abd')).toBe(false);
  });
});

describe('graph', () => {
  it('graph.reachable follows edges from the initial nodes', () => {
    const g = { a: ['b'], b: RegoSet.from(['c']), c: [], d: ['a'] };
    expect((call('graph.reachable', g, ['a']) as RegoSet).sorted()).toEqual(['a', 'b', 'c']);
    expect((call('graph.reachable', g, RegoSet.from(['z'])) as RegoSet).size).toBe(0);
    expect(callError('graph.reachable', g, 1).message).toBe('graph.reachable: operand 2 must be {array, set} but got number');
  });

  it('graph.reachable_paths lists paths to leaves, stopping at cycles', () => {
    const g = { a: ['b', 'c'], b: ['d'], c: ['a'], d: [] };
    expect((call('graph.reachable_paths', g, ['a']) as RegoSet).sorted()).toEqual([
      ['a', 'b', 'd'],
      ['a', 'c'],
    ]);
    expect((call('graph.reachable_paths', { x: ['y'] }, ['x']) as RegoSet).sorted()).toEqual([['x']]);
  });
});

describe('runtime', () => {
  it('opa.runtime reveals nothing', () => {
    expect(call('opa.runtime')).toEqual({});
    expect(call('trace', 'note')).toBe(true);
  });

  // Warden never makes the call, so no answer (not even "undefined", which `not` would turn
  // into an allow) may reach the policy: the evaluation ends with an error, whatever the mode.
  const RISK = `package t
import rego.v1
default allow := false
allow if not blocked
blocked if {
  resp := http.send({"method": "GET", "url": "http://risk.internal/check", "raise_error": false})
  resp.status_code != 200
}
blocked if http.send({"method": "GET", "url": "http://risk.internal/check"}).body.blocked
`;

  it.each([false, true])('a real http.send call ends the evaluation (strict: %s), even with raise_error: false', (strict) => {
    const p = policy(RISK);
    let err: unknown;
    try {
      p.evaluate('data.t.allow', {}, { strictBuiltinErrors: strict });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegoError);
    expect((err as RegoError).code).toBe('eval_builtin_error');
    expect((err as RegoError).message).toMatch(/^http\.send: network calls are disabled/);
    expect((err as RegoError).location).toMatchObject({ file: 'policy.rego', row: 6 });
  });

  it('a real http.send ends the evaluation in queries too', () => {
    expect(() => policy(RISK).query('x := http.send({"method": "GET", "url": "http://x"})')).toThrow(/http\.send: network calls are disabled/);
  });

  it('http.send mocked with `with` still works (policy tests)', () => {
    const p = policy(`${RISK}
mock_ok(_) := {"status_code": 200, "body": {"blocked": false}}
mock_down(_) := {"status_code": 0, "error": {"message": "down"}}
t_ok if allow with http.send as mock_ok
t_down if not allow with http.send as mock_down
`);
    expect(p.evaluate('data.t.t_ok', {})).toBe(true);
    expect(p.evaluate('data.t.t_down', {})).toBe(true);
  });
});
