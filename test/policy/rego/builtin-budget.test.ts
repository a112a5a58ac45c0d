/**
 * One built-in call is one evaluation step, but its work and its result can be as large as its
 * operands allow: the work meter (meter.ts) keeps it inside the deadline, and the size caps keep
 * any one result (and any serialization) bounded, so that runaway work ends as
 * `eval_budget_exceeded` instead of a blocked event loop or an out-of-memory crash.
 */
import { describe, expect, it, vi } from 'vitest';
import { RegoError, type EvalOptions } from '../../../src/policy/rego/index.js';
import { walkPairs } from '../../../src/policy/rego/builtins/index.js';
import { MAX_RESULT_ELEMENTS, MAX_RESULT_STRING } from '../../../src/policy/rego/meter.js';
import { policy } from './helpers.js';

/** The sidecar's budget (config defaults: 100,000 steps, 50 ms). */
const SIDECAR: EvalOptions = { maxSteps: 100_000, deadlineMs: 50, inputBounded: true };

/**
 * Evaluates `data.t.x` of `body`; returns the error and the CPU time evaluation took (this
 * process's, in ms). CPU time, not wall time: on a loaded machine the evaluation waits for a core
 * as long as the other processes make it, which is no work of its own; the deadline is still the
 * wall clock's, so a metered call uses at most about the deadline's worth of CPU.
 */
function fails(body: string, opts: EvalOptions = SIDECAR, input: unknown = {}): { e: RegoError; ms: number } {
  const p = policy(`package t\nimport rego.v1\n${body}\n`);
  const c0 = process.cpuUsage();
  try {
    p.evaluate('data.t.x', input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    const used = process.cpuUsage(c0);
    return { e: e as RegoError, ms: (used.user + used.system) / 1000 };
  }
  throw new Error(`expected an evaluation error: ${body}`);
}

function value(body: string, opts?: EvalOptions): unknown {
  return policy(`package t\nimport rego.v1\n${body}\n`).evaluate('data.t.x', {}, opts);
}

/** For the size caps, which hold whatever the deadline. */
const LONG: EvalOptions = { ...SIDECAR, deadlineMs: 60_000 };

/**
 * Generous: a loaded CI machine is slow, but a second is far from the seconds these ran before.
 * An upper clock bound is kept here (20× the 50 ms deadline) because nothing else tells a metered
 * call from an unmetered one: evaluation is synchronous (no test timeout can cut it short), and an
 * unmetered call that runs to its end still fails with the same error (the end-of-evaluation
 * deadline check, or the size cap), only seconds later.
 */
const WELL_PAST_DEADLINE_MS = 1_000;

describe('built-in calls are metered', () => {
  it('caps integer products (product, *) at 2^65536 instead of running for seconds', () => {
    const { e, ms } = fails('x := product(numbers.range(1, 100000))');
    expect(e.code).toBe('eval_budget_exceeded');
    expect(e.location?.row).toBe(3);
    expect(ms).toBeLessThan(WELL_PAST_DEADLINE_MS);
    expect(fails('x := product(numbers.range(1, 100000))', LONG).e.message).toContain('2^65536');
    expect(fails('x := 1e20000 * 1e20000').e.message).toContain('2^65536');
    // Below the cap products stay exact.
    expect(value('x := product(numbers.range(1, 30)) == 265252859812191058636308480000000')).toBe(true);
    expect(value('x := count(format_int(product(numbers.range(1, 2000)), 10))')).toBe(5736);
  });

  it('stops doubling arrays at the result size cap (array.concat, array.flatten)', () => {
    const doubling = ['a0 := numbers.range(1, 1000000)', ...Array.from({ length: 10 }, (_, i) => `a${i + 1} := array.concat(a${i}, a${i})`)];
    const doubled = `x := count(a10) if {\n${doubling.join('\n')}\n}`;
    const { e, ms } = fails(doubled);
    expect(e.code).toBe('eval_budget_exceeded');
    expect(ms).toBeLessThan(WELL_PAST_DEADLINE_MS);
    expect(fails(doubled, LONG).e.message).toContain(`more than ${MAX_RESULT_ELEMENTS} elements`);
    // flatten is sized before it builds: 1000 copies of a 1M array is 10^9 elements.
    const flat = fails('big := numbers.range(1, 1000000)\nx := count(array.flatten([big | some _ in numbers.range(1, 1000)]))', LONG);
    expect(flat.e.message).toContain('array.flatten');
    expect(value('x := array.concat([1, 2], [3])')).toEqual([1, 2, 3]);
  });

  it('sizes replace, concat and strings.replace_n before building super-linear results', () => {
    const chained = 'x := count(s3) if {\ns0 := "aaaaaaaaaa"\ns1 := replace(s0, "", s0)\ns2 := replace(s1, "", s1)\ns3 := replace(s2, "", s2)\n}';
    const chain = fails(chained);
    expect(chain.e.code).toBe('eval_budget_exceeded');
    expect(chain.ms).toBeLessThan(WELL_PAST_DEADLINE_MS);
    expect(fails(chained, LONG).e.message).toContain(`more than ${MAX_RESULT_STRING} characters`);
    // s: about 2.7 million characters, in one step.
    const s = 's := json.marshal(numbers.range(1, 400000))';
    const joined = fails(`${s}\nx := count(concat(s, [s | some _ in numbers.range(1, 10)]))`, LONG);
    expect(joined.e.message).toContain('concat');
    const n = fails(`${s}\nx := count(strings.replace_n({",": s}, s))`, LONG);
    expect(n.e.message).toContain('strings.replace_n');
    expect(value('x := [replace("a.b.c", ".", "--"), replace("ab", "", "-"), strings.replace_n({"a": "xyz"}, "banana")]')).toEqual([
      'a--b--c',
      '-a-b-',
      'bxyznxyznxyz',
    ]);
  });

  it('meters serializers over a value holding one large value many times (json, yaml, sprintf, print text)', () => {
    const shared = 'big := numbers.range(1, 1000000)\nmany := [big | some _ in numbers.range(1, 1000)]';
    for (const call of ['json.marshal(many)', 'json.marshal_with_options(many, {"indent": "  "})', 'yaml.marshal(many)', 'sprintf("%v", [many])']) {
      const { e, ms } = fails(`${shared}\nx := count(${call})`);
      expect(e.code, call).toBe('eval_budget_exceeded');
      expect(ms, call).toBeLessThan(WELL_PAST_DEADLINE_MS);
    }
    // Under a long deadline the size cap ends it, not memory.
    const { e } = fails(`${shared}\nx := count(json.marshal(many))`, LONG);
    expect(e.message).toContain(`more than ${MAX_RESULT_STRING} characters`);
  });

  it('meters keys, comparisons and results built from shared values', () => {
    const shared = 'big := numbers.range(1, 1000000)';
    const cases = [
      `x := count({[big, i] | some i in numbers.range(1, 1000)})`,
      // Two equal (not identical) large arrays, compared 1000 times over.
      `b1 := array.concat(big, [0])\nb2 := array.concat(big, [0])\nx := [b1 | some _ in numbers.range(1, 1000)] == [b2 | some _ in numbers.range(1, 1000)]`,
      `x := [big | some _ in numbers.range(1, 1000)]`,
    ];
    for (const c of cases) {
      const { e, ms } = fails(`${shared}\n${c}`);
      expect(e.code, c).toBe('eval_budget_exceeded');
      expect(ms, c).toBeLessThan(WELL_PAST_DEADLINE_MS);
    }
  });

  it('meters built-ins that try every pair of two lists (strings.any_prefix_match, object.subset, net.cidr_contains_matches)', () => {
    const input = {
      a: Array.from({ length: 30_000 }, (_, i) => `p${i}`),
      b: Array.from({ length: 30_000 }, (_, i) => `zz${i}`),
      ones: new Array<number>(1_000_000).fill(1),
      run: [...new Array<number>(5_000).fill(1), 9],
    };
    for (const call of ['strings.any_prefix_match(input.a, input.b)', 'strings.any_suffix_match(input.a, input.b)', 'object.subset(input.ones, input.run)']) {
      const { e, ms } = fails(`x := ${call}`, SIDECAR, input);
      expect(e.code, call).toBe('eval_budget_exceeded');
      expect(ms, call).toBeLessThan(WELL_PAST_DEADLINE_MS);
    }
    expect(value('x := [strings.any_prefix_match(["ab", "cd"], ["c"]), object.subset([1, 2, 3], [2, 3])]')).toEqual([true, true]);
  });

  it('reads the clock while it builds a large result, not once before (numbers.range, indexof_n, split, regex matches)', () => {
    // Charged in one sum before the build, these read the clock once and then built a million
    // elements — 150 ms to a second past the deadline on a loaded machine (found with OPA's
    // cases beside the compliance set). Charged as they build, the clock is read every
    // WORK_CHUNK units, so the deadline can stop them midway. Counted, not timed.
    // [policy, input, result, clock reads at least]: one unit per element built (1/8 per code
    // point for split on ""), the clock read every WORK_CHUNK (16,384) units.
    const cases: Array<[string, unknown, number, number]> = [
      ['x := count(numbers.range(1, 1000000))', {}, 1_000_000, 30],
      ['x := count(indexof_n(input.s, "a"))', { s: 'a'.repeat(1_000_000) }, 1_000_000, 30],
      ['x := count(split(input.s, "a"))', { s: 'ab'.repeat(1_000_000) }, 1_000_001, 30],
      ['x := count(split(input.s, ""))', { s: 'ab'.repeat(1_000_000) }, 2_000_000, 8],
      // A regex exec is charged 32 units and its groups: at one unit a match, 16,384 execs (tens
      // of ms) ran between two reads.
      ['x := count(regex.find_n("a", input.s, -1))', { s: 'a'.repeat(200_000) }, 200_000, 200],
    ];
    for (const [body, input, n, reads] of cases) {
      const p = policy(`package t\nimport rego.v1\n${body}\n`);
      const clock = vi.spyOn(Date, 'now');
      try {
        expect(p.evaluate('data.t.x', input, LONG), body).toBe(n);
        expect(clock.mock.calls.length, body).toBeGreaterThanOrEqual(reads);
      } finally {
        clock.mockRestore();
      }
    }
  }, 60_000); // millions of elements are built: seconds on a loaded machine

  it('trims and takes substrings by scanning, with code points as before', () => {
    expect(value('x := [trim("xxhixx", "x"), trim_left("😀😀a😀", "😀"), trim_right("a😀😀", "😀"), substring("abcdef", 2, 3), substring("a😀bc", 1, 2), substring("abc", 5, 1), substring("abc", 1, -1), strings.count("a😀c", "")]')).toEqual(
      ['hi', 'a😀', 'a', 'cde', '😀b', '', 'bc', 4],
    );
    const p = policy('package t\nimport rego.v1\nx := [count(trim(input.s, "a")), substring(input.s, 5, 3)]\n');
    // LONG: counting 5M code points may itself take more than 50 ms on a loaded machine.
    expect(p.evaluate('data.t.x', { s: `aa${'b'.repeat(5_000_000)}aa` }, LONG)).toEqual([5_000_000, 'bbb']);
  });

  it('enumerates walk lazily: the first pairs come before the rest are built', () => {
    // 10^9 pairs: building them all first (as before) exhausts memory.
    const big = new Array<number>(1_000_000).fill(0);
    const many = new Array<number[]>(1000).fill(big);
    const it = walkPairs(many);
    expect(it.next().value).toEqual([[], many]);
    expect(it.next().value).toEqual([[0], big]);
    expect(it.next().value).toEqual([[0, 0], 0]);
    const p = policy(`package t
import rego.v1
big := numbers.range(1, 1000000)
x if {
  walk([big | some _ in numbers.range(1, 1000)], [p, _])
  p == [0, 5]
}
`);
    // LONG: building the million-number range alone may take more than 50 ms on a loaded machine.
    expect(p.evaluate('data.t.x', {}, LONG)).toBe(true);
    // Each pair counts a step, so a full walk of it ends at the step budget.
    const { e } = fails('big := numbers.range(1, 1000000)\nx := count([p | walk([big | some _ in numbers.range(1, 1000)], [p, _])])');
    expect(e.code).toBe('eval_budget_exceeded');
  });

  it('keeps json.unmarshal numbers exact and finite (1e400 is an integer, 1e99999 an error)', () => {
    expect(value('x := [json.unmarshal("1e400") == 1e400, json.unmarshal("1e400") > 1e300, json.unmarshal("[1e400]")[0] == 1e400]')).toEqual([true, true, true]);
    expect(value('x := count({json.unmarshal("1e400"), json.unmarshal("2e400")})')).toBe(2);
    expect(value('x := json.unmarshal("1e99999")')).toBeUndefined();
    const { e } = fails('x := json.unmarshal("1e99999")', { strictBuiltinErrors: true });
    expect(e.code).toBe('eval_builtin_error');
    expect(e.message).toContain('number out of range');
  });
});

describe('numbers that are not Rego numbers', () => {
  it('never recurse in comparison (±Infinity against a big integer)', async () => {
    const { compare } = await import('../../../src/policy/rego/value.js');
    expect(compare(Infinity, 10n ** 400n)).toBe(1);
    expect(compare(10n ** 400n, Infinity)).toBe(-1);
    expect(compare(-Infinity, -(10n ** 400n))).toBe(-1);
  });

  it('a built-in RangeError that is not exhaustion is a built-in error, not a budget error', () => {
    // Infinity can only come from a caller's JS input; format_int's BigInt() then throws a RangeError.
    const p = policy('package t\nimport rego.v1\nx := format_int(input.n, 10)\n');
    expect(p.evaluate('data.t.x', { n: Infinity })).toBeUndefined();
  });
});

describe('built-ins that answer false or undefined on a bad document still end on exhaustion', () => {
  // Found with the decision cache on: a policy `blocked := yaml.unmarshal(data.blocklist)` allowed
  // everyone once the blocklist nested a thousand levels deep (the parser's stack overflow passed
  // for an invalid document), and the cache kept that allow.
  const deep = JSON.stringify('['.repeat(5000) + ']'.repeat(5000));
  for (const call of [`yaml.unmarshal(${deep})`, `yaml.is_valid(${deep})`]) {
    it(`${call.slice(0, 16)}… of a 5000-deep document ends the evaluation (not undefined, not false)`, () => {
      const { e } = fails(`x := ${call}`);
      expect(e.code).toBe('eval_budget_exceeded');
      expect(e.message).toMatch(/nested more than 256 levels/);
    });
  }

  it('a shallow invalid document is still just invalid', () => {
    expect(value('x := [yaml.is_valid("a: [1"), json.is_valid("{"), base64.is_valid("!!")]')).toEqual([false, false, false]);
    expect(value(`x := yaml.unmarshal(${JSON.stringify('['.repeat(100) + ']'.repeat(100))})`)).toBeDefined();
  });

  it('json.is_valid whose metering finds the deadline passed ends the evaluation instead of answering false', () => {
    // A million-number range takes milliseconds in a handful of steps (no step reads the clock);
    // json.is_valid then charges its document, reads the clock and finds the deadline passed.
    const doc = JSON.stringify(JSON.stringify(Array.from({ length: 50_000 }, (_, i) => i)));
    const { e } = fails(`x := json.is_valid(${doc}) if {\n  r := numbers.range(1, 1000000)\n  count(r) > 0\n}`, { maxSteps: 1e9, deadlineMs: 1 });
    expect(e.code).toBe('eval_budget_exceeded');
  });
});

describe('policy.timeout_ms holds for size-proportional built-ins and the evaluation as a whole', () => {
  /**
   * Far less than these calls took unmetered (0.4–4 s), 6× the sidecar's 50 ms. A clock bound for
   * the reason given at WELL_PAST_DEADLINE_MS: unmetered, the call ends with the same error, late.
   */
  const NEAR_DEADLINE_MS = 300;
  const M4 = 4 * 1024 * 1024;
  // The operand comes in as input: evaluation is then the one call, nothing else.
  const cases: Array<[string, string, unknown]> = [
    ['to_number of a long digit string', 'x := to_number(input.s) > 0', { s: '7'.repeat(M4) }],
    ['units.parse_bytes of a long digit string', 'x := units.parse_bytes(input.s) > 0', { s: '7'.repeat(M4) }],
    ['urlquery.encode', 'x := count(urlquery.encode(input.s))', { s: 'é/'.repeat(M4 / 2) }],
    ['urlquery.decode', 'x := count(urlquery.decode(input.s))', { s: '%41'.repeat(M4 / 2) }],
    ['sprintf %q', 'x := count(sprintf("%q", [input.s]))', { s: '"\n'.repeat(M4 / 2) }],
    ['strings.reverse', 'x := count(strings.reverse(input.s))', { s: 'ab😀'.repeat(M4) }],
    ['strings.count', 'x := strings.count(input.s, "a")', { s: 'a'.repeat(4 * M4) }],
    ['yaml.is_valid', 'x := yaml.is_valid(input.s)', { s: '- 1\n'.repeat(131_072) }],
    ['yaml.unmarshal', 'x := count(yaml.unmarshal(input.s))', { s: '- 1\n'.repeat(131_072) }],
    ['yaml.marshal', 'x := count(yaml.marshal([{"a": input.a}]))', { a: Array.from({ length: 150_000 }, (_, i) => i) }],
    // 65,536 adjacent /24s (a splice per fold: 4 s) and 200,000 IPv6 /64s (14 s), unmetered before.
    ['net.cidr_merge of adjacent blocks', 'x := net.cidr_merge(input.c)', { c: Array.from({ length: 65_536 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`) }],
    ['net.cidr_merge of many blocks', 'x := net.cidr_merge(input.c)', { c: Array.from({ length: 200_000 }, (_, i) => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`) }],
  ];
  it.each(cases)('%s stops near the deadline with eval_budget_exceeded', (_name, body, input) => {
    // The least of up to three tries: process CPU time counts V8's collector threads too, which
    // on a busy 2-core CI machine freeing a 16 Mi-unit string put one try at 303 ms (final CI of
    // the twenty-seventh session). A call that is not metered runs past the bound every time, so
    // the least try still tells the two apart; every try must end eval_budget_exceeded.
    let least = Infinity;
    for (let attempt = 0; attempt < 3 && least >= NEAR_DEADLINE_MS; attempt++) {
      const { e, ms } = fails(body, SIDECAR, input);
      expect(e.code).toBe('eval_budget_exceeded');
      least = Math.min(least, ms);
    }
    expect(least).toBeLessThan(NEAR_DEADLINE_MS);
  });

  it('refuses to_number and units of integers beyond 2^65536, as products are, and keeps smaller ones exact', () => {
    expect(fails('x := to_number(input.s)', LONG, { s: '9'.repeat(20_000) }).e.message).toMatch(/to_number: .*2\^65536/);
    expect(fails('x := units.parse_bytes(input.s)', LONG, { s: '9'.repeat(20_000) }).e.message).toMatch(/units\.parse_bytes: .*2\^65536/);
    expect(value(`x := to_number("${'9'.repeat(19_000)}") > 1e18999`, LONG)).toBe(true);
    expect(value('x := [to_number("123456789012345678901234567890"), units.parse_bytes("1.5KiB"), to_number("0.25")]')).toEqual([123456789012345678901234567890n, 1536, 0.25]);
  });

  it('an evaluation that ends after its deadline is an error, never a result', () => {
    // The clock as the engine sees it: the budget starts at t0, and by the end 100 ms passed
    // (as after a long call that does not read the clock). Too short an evaluation to read it itself.
    const p = policy('package t\nimport rego.v1\nx := 1\n');
    const t0 = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValueOnce(t0).mockReturnValue(t0 + 100);
    // nowNs given: the budget reads the clock once, for the deadline.
    const opts = { ...SIDECAR, nowNs: 0n };
    try {
      expect(() => p.evaluate('data.t.x', {}, opts)).toThrow(/deadline passed/);
      clock.mockReturnValueOnce(t0).mockReturnValue(t0 + 100);
      expect(() => p.query('x := data.t.x', {}, opts)).toThrow(/deadline passed/);
      clock.mockReturnValueOnce(t0).mockReturnValue(t0 + 10);
      expect(p.evaluate('data.t.x', {}, opts)).toBe(1);
    } finally {
      clock.mockRestore();
    }
  });
});
